// Fuzzes the control API's HTTP request parser, feeding the input whole and byte by byte.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cloister/vmm/api/http.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cloister::vmm;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto whole = http::parse_request(input);
  if (whole.ok() && whole->has_value() && (*whole)->consumed > size) std::abort();
  for (std::size_t n = 0; n <= size && n < 512; ++n) (void)http::parse_request(input.substr(0, n));
  return 0;
}
