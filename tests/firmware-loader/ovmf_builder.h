// Synthetic OVMF images for tests and fuzz seeds, laid out as edk2's reset vector does:
//
//   [0, size - 0x1000)      filler (a repeating byte pattern)
//   end - 0xC00             TDX metadata GUID (16 bytes), then the "TDVF" descriptor
//   end - 0x800             "ASEV" SEV metadata
//   ...                     footer table entries {data, u16 size, GUID}, in the order added,
//   end - 0x32              u16 total table size
//   end - 0x30              footer table GUID 96b582de-...
//   end - 0x20              32 bytes (the reset vector area)
//
// The metadata offset entries are added automatically when metadata is set. GUIDs are
// restated here from the edk2 sources rather than taken from the library, so the tests check
// the library against an independent statement of the format.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/firmware_loader/guid.h"

namespace cloister::testing {

namespace guids {
inline constexpr fw::Guid kFooter = fw::Guid::literal("96b582de-1fb2-45f7-baea-a366c55a082d");
inline constexpr fw::Guid kResetBlock = fw::Guid::literal("00f771de-1a7e-4fcb-890e-68c77e2fb44e");
inline constexpr fw::Guid kHashTable = fw::Guid::literal("7255371f-3a3b-4b04-927b-1da6efa8d454");
inline constexpr fw::Guid kSevMetadata = fw::Guid::literal("dc886566-984a-4798-a75e-5585a7bf67cc");
inline constexpr fw::Guid kTdxMetadata = fw::Guid::literal("e47a6535-984a-4798-865e-4685a7bf8ec2");
inline constexpr fw::Guid kTdvf = fw::Guid::literal("e9eaf9f3-168e-44d5-a8eb-7f4d8738f6ae");
inline constexpr fw::Guid kSvsmInfo = fw::Guid::literal("a789a612-0597-4c4b-a49f-cbb1fe9d1ddd");
}  // namespace guids

struct SevSectionSpec {
  std::uint32_t gpa, size, type;
};

struct TdvfSectionSpec {
  std::uint32_t data_offset, raw_data_size;
  std::uint64_t memory_address, memory_data_size;
  std::uint32_t type, attributes;
};

class OvmfImageBuilder {
 public:
  // `size` must be a multiple of 4 KiB and at least 8 KiB.
  explicit OvmfImageBuilder(std::size_t size = 0x4000) : size_(size) {}

  OvmfImageBuilder& entry(const fw::Guid& guid, Bytes data);
  OvmfImageBuilder& reset_eip(std::uint32_t eip);
  OvmfImageBuilder& hash_table(std::uint32_t gpa, std::uint32_t size);
  OvmfImageBuilder& svsm_entry(std::uint32_t offset);
  OvmfImageBuilder& sev_metadata(std::vector<SevSectionSpec> sections);
  OvmfImageBuilder& tdx_metadata(std::vector<TdvfSectionSpec> sections);
  // Writes nothing but the filler: an image without a footer table.
  OvmfImageBuilder& no_table();

  // File offsets of what build() writes.
  std::size_t size() const { return size_; }
  std::size_t sev_metadata_offset() const { return size_ - 0x800; }
  std::size_t tdvf_descriptor_offset() const { return size_ - 0xC00 + 16; }
  std::size_t table_size_offset() const { return size_ - 0x32; }

  Bytes build() const;
  std::shared_ptr<const Bytes> shared() const { return std::make_shared<const Bytes>(build()); }

 private:
  std::size_t size_;
  bool table_ = true;
  std::vector<std::pair<fw::Guid, Bytes>> entries_;
  std::optional<std::vector<SevSectionSpec>> sev_;
  std::optional<std::vector<TdvfSectionSpec>> tdx_;
};

// A firmware like edk2's AmdSev build: AP reset EIP 0x80b004, the SEV hash table at 0x810c00,
// and SEV metadata SNP_SEC_MEM 0x800000+0x9000, SNP_SECRETS 0x80d000, CPUID 0x80e000,
// SVSM_CAA 0x80f000, SNP_KERNEL_HASHES 0x810000.
OvmfImageBuilder amdsev_like_image(std::size_t size = 0x4000);

// A TDVF laid out as Debian 12's OVMF.fd (research/tdx.md §c): BFV (MR.EXTEND) at the end of the
// image, CFV, TempMem 0x810000+0x10000, TempMem 0x80b000+0x2000, TD_HOB 0x809000+0x2000 with
// `hob_attributes`, TempMem 0x800000+0x6000, in that metadata order.
OvmfImageBuilder tdvf_like_image(std::uint32_t hob_attributes = 0);

// The little-endian bytes of `value`.
Bytes le32(std::uint32_t value);

}  // namespace cloister::testing
