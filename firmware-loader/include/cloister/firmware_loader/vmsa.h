// The SEV-ES/SNP VMSA (the vCPU save area page, AMD64 APM vol. 2 Table B-4) as a typed value.
//
// VmsaRegisters holds the fields a VMM sets before launch. encode_vmsa() lays them out in the
// 4 KiB page that SNP measures; decode_vmsa() is the inverse and refuses pages with state
// outside these fields, so a backend that sets exactly these registers through KVM reproduces
// the measured page.
#pragma once

#include <array>
#include <cstdint>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"

namespace cloister::fw {

struct VmcbSegment {
  std::uint16_t selector = 0;
  std::uint16_t attrib = 0;
  std::uint32_t limit = 0;
  std::uint64_t base = 0;

  friend bool operator==(const VmcbSegment&, const VmcbSegment&) = default;
};

struct VmsaRegisters {
  VmcbSegment es, cs, ss, ds, fs, gs, gdtr, ldtr, idtr, tr;
  std::uint64_t efer = 0;
  std::uint64_t cr0 = 0, cr3 = 0, cr4 = 0;
  std::uint64_t dr6 = 0, dr7 = 0;
  std::uint64_t rflags = 0, rip = 0, rsp = 0;
  std::uint64_t rax = 0, rbx = 0, rcx = 0, rdx = 0, rsi = 0, rdi = 0, rbp = 0;
  std::array<std::uint64_t, 8> r8_r15{};
  std::uint64_t g_pat = 0;
  std::uint64_t sev_features = 0;
  std::uint64_t xcr0 = 0;
  std::uint32_t mxcsr = 0;
  std::uint16_t x87_fcw = 0;

  friend bool operator==(const VmsaRegisters&, const VmsaRegisters&) = default;
};

using VmsaPage = std::array<std::uint8_t, 4096>;

// All bytes outside the fields above are zero.
VmsaPage encode_vmsa(const VmsaRegisters& registers);

// Fails, naming the offset, when `page` is not 4096 bytes or has a non-zero byte outside the
// fields of VmsaRegisters.
Result<VmsaRegisters> decode_vmsa(ByteView page);

}  // namespace cloister::fw
