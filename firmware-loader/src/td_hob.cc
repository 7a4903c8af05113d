#include "td_hob.h"

#include <algorithm>

#include "cloister/common/hex.h"
#include "cloister/firmware_loader/tdx.h"

namespace cloister::fw {
namespace {

// UEFI PI spec vol. 3, ch. 5 "HOB Code Definitions" (edk2 MdePkg/Include/Pi/PiHob.h). Every
// HOB starts with EFI_HOB_GENERIC_HEADER {u16 HobType, u16 HobLength, u32 Reserved = 0} and
// is a multiple of 8 bytes long.
constexpr std::uint16_t kHobTypeHandoff = 0x0001;
constexpr std::uint16_t kHobTypeResourceDescriptor = 0x0003;
constexpr std::uint16_t kHobTypeGuidExtension = 0x0004;
constexpr std::uint16_t kHobTypeEndOfHobList = 0xffff;
constexpr std::uint32_t kHandoffTableVersion = 0x0009;  // EFI_HOB_HANDOFF_TABLE_VERSION

constexpr std::size_t kGenericHeaderSize = 8;
constexpr std::size_t kHandoffSize = 56;  // header, Version, BootMode, 5 x EFI_PHYSICAL_ADDRESS
constexpr std::size_t kResourceDescriptorSize =
    48;                                       // header, Owner, Type, Attribute, Start, Length
constexpr std::size_t kGuidHobSize = 24 + 8;  // header, Name, {u32 vCPUs, u32 zero}

// EFI_RESOURCE_TYPE and the attributes QEMU gives TDX RAM (hw/i386/tdvf-hob.h
// EFI_RESOURCE_ATTRIBUTE_TDVF_PRIVATE / _UNACCEPTED): PRESENT | INITIALIZED | TESTED.
constexpr std::uint32_t kResourceSystemMemory = 0x0;
constexpr std::uint32_t kResourceMemoryUnaccepted = 0x7;
constexpr std::uint32_t kResourceAttributes = 0x1 | 0x2 | 0x4;

void put_header(Bytes& out, std::uint16_t type, std::size_t length) {
  const std::size_t at = out.size();
  out.resize(at + length, 0);
  store_le16(out, at, type);
  store_le16(out, at + 2, static_cast<std::uint16_t>(length));
}

void put_resource(Bytes& out, const GpaRange& range, bool accepted) {
  const std::size_t at = out.size();
  put_header(out, kHobTypeResourceDescriptor, kResourceDescriptorSize);
  store_le32(out, at + 24, accepted ? kResourceSystemMemory : kResourceMemoryUnaccepted);
  store_le32(out, at + 28, kResourceAttributes);
  store_le64(out, at + 32, range.gpa);
  store_le64(out, at + 40, range.size);
}

}  // namespace

Result<Bytes> build_td_hob(const TdHobInputs& in) {
  Bytes out;
  put_header(out, kHobTypeHandoff, kHandoffSize);
  store_le32(out, 8, kHandoffTableVersion);  // BootMode 0: BOOT_WITH_FULL_CONFIGURATION
  for (const GpaRange& r : in.ram) {
    std::uint64_t at = r.gpa;
    for (const GpaRange& a : in.accepted) {
      if (a.gpa < r.gpa || a.gpa >= r.gpa + r.size) continue;
      if (a.gpa > at) put_resource(out, {at, a.gpa - at}, false);
      put_resource(out, a, true);
      at = a.gpa + a.size;
    }
    if (at < r.gpa + r.size) put_resource(out, {at, r.gpa + r.size - at}, false);
  }
  const std::size_t guid_at = out.size();
  put_header(out, kHobTypeGuidExtension, kGuidHobSize);
  const auto& name = kCloisterVcpuCountHobGuid.stored();
  std::copy(name.begin(), name.end(), out.begin() + static_cast<std::ptrdiff_t>(guid_at + 8));
  store_le32(out, guid_at + 24, in.vcpus);
  put_header(out, kHobTypeEndOfHobList, kGenericHeaderSize);
  // QEMU's tdvf_hob_create: EfiEndOfHobList is the address just past the end-of-list HOB.
  store_le64(out, 48, in.gpa + out.size());

  if (out.size() > in.capacity) {
    return Error("the TD HOB for this memory map is " + hex_number(out.size()) +
                 " bytes, more than the " + hex_number(in.capacity) +
                 "-byte TD_HOB section at GPA " + hex_number(in.gpa) + " holds");
  }
  return out;
}

}  // namespace cloister::fw
