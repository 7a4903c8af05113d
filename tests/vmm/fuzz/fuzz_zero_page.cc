// Fuzzes the boot_params builder with the setup header of every bzImage the parser accepts.
#include <cstddef>
#include <cstdint>

#include "cloister/firmware_loader/bzimage.h"
#include "cloister/vmm/arch/x86/boot_params.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cloister::vmm::x86;
  auto bz = cloister::fw::parse_bzimage({data, size});
  if (bz.ok()) {
    ZeroPageInputs in;
    in.setup_header = bz->setup_header;
    in.e820 = build_e820(64ull << 20);
    (void)build_zero_page(in);
  }
  return 0;
}
