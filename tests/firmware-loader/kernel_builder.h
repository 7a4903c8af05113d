// Minimal kernel images for tests: a bzImage and an ELF64 executable that the firmware-loader
// parsers accept, for the parser tests and the VMM's placement tests.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cloister/common/bytes.h"

namespace cloister::testing {

// A bzImage with boot protocol 2.15: one setup sector plus the boot sector (setup_size 1024),
// a header through 0x26c, relocatable, pref_address 16 MiB, init_size 0x20000, cmdline_size
// 2047; then `payload` bytes i & 0xff.
Bytes synthetic_bzimage(std::size_t payload = 4096);

// An ELF64 x86-64 ET_EXEC with one PT_LOAD segment at file offset 120 (`filesz` bytes of 0xab,
// `memsz` bytes at `paddr`) and entry point paddr + 0x10.
Bytes synthetic_elf(std::uint64_t paddr, std::uint64_t filesz, std::uint64_t memsz);

}  // namespace cloister::testing
