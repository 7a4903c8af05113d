// Fuzzes the bzImage header parser; an accepted image's setup part and payload must be the
// whole input, in order.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "cloister/firmware_loader/bzimage.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto bz = cloister::fw::parse_bzimage({data, size});
  if (bz.ok()) {
    if (bz->setup_size + bz->protected_mode.size() != size) std::abort();
    if (cloister::fw::bzimage::kSetupSects + bz->setup_header.size() > bz->setup_size) std::abort();
  }
  return 0;
}
