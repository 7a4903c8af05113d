#include "cloister/firmware_loader/elf.h"

#include <string>

#include "cloister/common/hex.h"

namespace cloister::fw {
namespace {

// ELF-64 Object File Format 1.5, §3 (header) and §5 (program header).
constexpr std::size_t kEhdrSize = 64;
constexpr std::size_t kPhdrSize = 56;
constexpr std::uint16_t kEtExec = 2;
constexpr std::uint16_t kEmX86_64 = 62;
constexpr std::uint32_t kPtLoad = 1;
constexpr std::uint16_t kMaxPhdrs = 64;

}  // namespace

bool looks_like_elf(ByteView file) {
  return file.size() >= 4 && file[0] == 0x7f && file[1] == 'E' && file[2] == 'L' && file[3] == 'F';
}

Result<ElfImage> parse_elf(ByteView file) {
  if (file.size() < kEhdrSize)
    return Error("ELF: file is " + std::to_string(file.size()) +
                 " bytes, shorter than the 64-byte ELF64 header");
  if (!looks_like_elf(file)) return Error("ELF e_ident: expected magic 7f 45 4c 46");
  if (file[4] != 2)
    return Error("ELF EI_CLASS: expected 2 (ELFCLASS64), found " + std::to_string(file[4]));
  if (file[5] != 1)
    return Error("ELF EI_DATA: expected 1 (little-endian), found " + std::to_string(file[5]));
  ByteReader reader(file);
  CLOISTER_CHECK_OK(reader.skip(16, "e_ident"));
  CLOISTER_TRY(auto type, reader.u16("e_type"));
  CLOISTER_TRY(auto machine, reader.u16("e_machine"));
  CLOISTER_TRY(auto version, reader.u32("e_version"));
  CLOISTER_TRY(auto entry, reader.u64("e_entry"));
  CLOISTER_TRY(auto phoff, reader.u64("e_phoff"));
  CLOISTER_CHECK_OK(reader.skip(8 + 4 + 2, "e_shoff, e_flags, e_ehsize"));
  CLOISTER_TRY(auto phentsize, reader.u16("e_phentsize"));
  CLOISTER_TRY(auto phnum, reader.u16("e_phnum"));
  if (type != kEtExec)
    return Error("ELF e_type: expected 2 (ET_EXEC), found " + std::to_string(type));
  if (machine != kEmX86_64)
    return Error("ELF e_machine: expected 62 (EM_X86_64), found " + std::to_string(machine));
  if (version != 1) return Error("ELF e_version: expected 1, found " + std::to_string(version));
  if (phentsize != kPhdrSize)
    return Error("ELF e_phentsize: expected 56, found " + std::to_string(phentsize));
  if (phnum == 0 || phnum > kMaxPhdrs)
    return Error("ELF e_phnum: expected 1.." + std::to_string(kMaxPhdrs) + ", found " +
                 std::to_string(phnum));
  if (phoff > file.size() || std::uint64_t{phnum} * kPhdrSize > file.size() - phoff)
    return Error("ELF e_phoff: program headers at " + hex_number(phoff) + " (" +
                 std::to_string(phnum) + " x 56 bytes) run past the " +
                 std::to_string(file.size()) + "-byte file");

  ElfImage image{entry, {}};
  for (std::uint16_t i = 0; i < phnum; ++i) {
    ByteReader ph(file.subspan(phoff + std::uint64_t{i} * kPhdrSize, kPhdrSize));
    const std::string where = "ELF program header " + std::to_string(i);
    CLOISTER_TRY(auto p_type, ph.u32("p_type"));
    CLOISTER_CHECK_OK(ph.skip(4, "p_flags"));
    CLOISTER_TRY(auto p_offset, ph.u64("p_offset"));
    CLOISTER_CHECK_OK(ph.skip(8, "p_vaddr"));
    CLOISTER_TRY(auto p_paddr, ph.u64("p_paddr"));
    CLOISTER_TRY(auto p_filesz, ph.u64("p_filesz"));
    CLOISTER_TRY(auto p_memsz, ph.u64("p_memsz"));
    if (p_type != kPtLoad) continue;
    if (p_offset > file.size() || p_filesz > file.size() - p_offset)
      return Error(where + " p_offset/p_filesz: " + hex_number(p_offset) + " + " +
                   hex_number(p_filesz) + " runs past the " + std::to_string(file.size()) +
                   "-byte file");
    if (p_filesz > p_memsz)
      return Error(where + " p_memsz: expected >= p_filesz " + hex_number(p_filesz) + ", found " +
                   hex_number(p_memsz));
    if (p_paddr + p_memsz < p_paddr)
      return Error(where + " p_paddr: " + hex_number(p_paddr) + " + " + hex_number(p_memsz) +
                   " wraps around");
    if (p_memsz == 0) continue;
    image.segments.push_back({p_offset, p_filesz, p_paddr, p_memsz});
  }
  if (image.segments.empty()) return Error("ELF: no PT_LOAD segment with contents");
  return image;
}

}  // namespace cloister::fw
