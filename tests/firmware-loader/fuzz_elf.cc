// Fuzzes the ELF64 kernel parser; accepted segments must lie inside the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "cloister/firmware_loader/elf.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto elf = cloister::fw::parse_elf({data, size});
  if (elf.ok())
    for (const auto& s : elf->segments)
      if (s.file_offset > size || s.file_size > size - s.file_offset) std::abort();
  return 0;
}
