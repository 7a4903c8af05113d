// Fuzzes the VM config parser (JSON text -> validated VmConfig -> canonical JSON round trip).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cloister/vmm/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cloister::vmm;
  auto config = parse_config_text({reinterpret_cast<const char*>(data), size});
  if (config.ok() && !parse_config(to_json(*config)).ok()) std::abort();  // round trip must hold
  return 0;
}
