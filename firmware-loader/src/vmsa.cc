#include "cloister/firmware_loader/vmsa.h"

#include "cloister/common/hex.h"
#include "vmsa_layout.h"

namespace cloister::fw {
namespace {

// The 64-bit VmsaRegisters fields and their offsets.
struct Field {
  std::size_t offset;
  std::uint64_t VmsaRegisters::*member;
};

constexpr Field kScalarFields[] = {
    {vmsa::kEfer, &VmsaRegisters::efer},     {vmsa::kCr4, &VmsaRegisters::cr4},
    {vmsa::kCr3, &VmsaRegisters::cr3},       {vmsa::kCr0, &VmsaRegisters::cr0},
    {vmsa::kDr7, &VmsaRegisters::dr7},       {vmsa::kDr6, &VmsaRegisters::dr6},
    {vmsa::kRflags, &VmsaRegisters::rflags}, {vmsa::kRip, &VmsaRegisters::rip},
    {vmsa::kRsp, &VmsaRegisters::rsp},       {vmsa::kRax, &VmsaRegisters::rax},
    {vmsa::kGPat, &VmsaRegisters::g_pat},    {vmsa::kRcx, &VmsaRegisters::rcx},
    {vmsa::kRdx, &VmsaRegisters::rdx},       {vmsa::kRbx, &VmsaRegisters::rbx},
    {vmsa::kRbp, &VmsaRegisters::rbp},       {vmsa::kRsi, &VmsaRegisters::rsi},
    {vmsa::kRdi, &VmsaRegisters::rdi},       {vmsa::kSevFeatures, &VmsaRegisters::sev_features},
    {vmsa::kXcr0, &VmsaRegisters::xcr0},
};

struct SegmentField {
  std::size_t offset;
  VmcbSegment VmsaRegisters::*member;
};

constexpr SegmentField kSegmentFields[] = {
    {vmsa::kEs, &VmsaRegisters::es},     {vmsa::kCs, &VmsaRegisters::cs},
    {vmsa::kSs, &VmsaRegisters::ss},     {vmsa::kDs, &VmsaRegisters::ds},
    {vmsa::kFs, &VmsaRegisters::fs},     {vmsa::kGs, &VmsaRegisters::gs},
    {vmsa::kGdtr, &VmsaRegisters::gdtr}, {vmsa::kLdtr, &VmsaRegisters::ldtr},
    {vmsa::kIdtr, &VmsaRegisters::idtr}, {vmsa::kTr, &VmsaRegisters::tr}};

}  // namespace

VmsaPage encode_vmsa(const VmsaRegisters& r) {
  VmsaPage page{};
  for (const auto& [offset, member] : kSegmentFields) {
    const VmcbSegment& s = r.*member;
    store_le16(page, offset, s.selector);
    store_le16(page, offset + 2, s.attrib);
    store_le32(page, offset + 4, s.limit);
    store_le64(page, offset + 8, s.base);
  }
  for (const Field& f : kScalarFields) store_le64(page, f.offset, r.*(f.member));
  for (std::size_t i = 0; i < r.r8_r15.size(); ++i)
    store_le64(page, vmsa::kR8 + 8 * i, r.r8_r15[i]);
  store_le32(page, vmsa::kMxcsr, r.mxcsr);
  store_le16(page, vmsa::kX87Fcw, r.x87_fcw);
  return page;
}

Result<VmsaRegisters> decode_vmsa(ByteView page) {
  if (page.size() != vmsa::kSize) {
    return Error("VMSA: expected 4096 bytes, found " + std::to_string(page.size()));
  }
  VmsaRegisters r;
  std::array<bool, vmsa::kSize> covered{};
  auto cover = [&](std::size_t offset, std::size_t width) {
    for (std::size_t i = 0; i < width; ++i) covered[offset + i] = true;
  };
  for (const auto& [offset, member] : kSegmentFields) {
    VmcbSegment& s = r.*member;
    s.selector = load_le16(page, offset);
    s.attrib = load_le16(page, offset + 2);
    s.limit = load_le32(page, offset + 4);
    s.base = load_le64(page, offset + 8);
    cover(offset, vmsa::kSegmentSize);
  }
  for (const Field& f : kScalarFields) {
    r.*(f.member) = load_le64(page, f.offset);
    cover(f.offset, 8);
  }
  for (std::size_t i = 0; i < r.r8_r15.size(); ++i) {
    r.r8_r15[i] = load_le64(page, vmsa::kR8 + 8 * i);
    cover(vmsa::kR8 + 8 * i, 8);
  }
  r.mxcsr = load_le32(page, vmsa::kMxcsr);
  cover(vmsa::kMxcsr, 4);
  r.x87_fcw = load_le16(page, vmsa::kX87Fcw);
  cover(vmsa::kX87Fcw, 2);
  for (std::size_t i = 0; i < vmsa::kSize; ++i) {
    if (!covered[i] && page[i] != 0) {
      return Error("VMSA: byte at offset " + hex_number(i) + " is " + hex_number(page[i]) +
                   ", outside the registers a VMM sets (expected 0)");
    }
  }
  return r;
}

}  // namespace cloister::fw
