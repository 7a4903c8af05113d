// ELF64 executables for direct boot (test guests, vmlinux): the one parser of this untrusted
// format. Only what a loader needs: the entry point and the PT_LOAD segments.
#pragma once

#include <cstdint>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"

namespace cloister::fw {

struct ElfSegment {
  std::uint64_t file_offset;
  std::uint64_t file_size;
  std::uint64_t phys_addr;  // p_paddr: where the loader places it
  std::uint64_t mem_size;   // >= file_size; the rest is zeroed
};

struct ElfImage {
  std::uint64_t entry;
  std::vector<ElfSegment> segments;  // PT_LOAD only, at least one
};

// Accepts little-endian ELF64 ET_EXEC files for EM_X86_64 whose program headers and segments
// lie inside the file; rejects anything else naming the field.
Result<ElfImage> parse_elf(ByteView file);

bool looks_like_elf(ByteView file);

}  // namespace cloister::fw
