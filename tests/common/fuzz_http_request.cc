// Fuzzes the HTTP/1.1 request parser the servers share, feeding the input whole and byte by byte
// (as a slow client would deliver it), with the default limits and with tiny ones. A refusal's
// reason must be printable ASCII whatever the client sent: the servers' owners put it in JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <variant>

#include "cloister/common/http.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cloister::http;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  for (const Limits& limits : {Limits{}, Limits{64, 16}}) {
    auto whole = parse_request(input, limits);
    if (const auto* parsed = std::get_if<Parsed>(&whole)) {
      if (parsed->consumed > size) std::abort();
      if (parsed->request.body.size() > limits.max_body_bytes) std::abort();
    }
    if (const auto* rejection = std::get_if<Rejection>(&whole)) {
      if (rejection->status != 400 && rejection->status != 413 && rejection->status != 431)
        std::abort();
      for (const char c : rejection->reason)
        if (c < 0x20 || c > 0x7e) std::abort();
    }
  }
  for (std::size_t n = 0; n <= size && n < 512; ++n) (void)parse_request(input.substr(0, n));
  return 0;
}
