// Parsing of OVMF-style firmware images: the GUIDed footer table and the SEV and TDX metadata
// it points to.
//
// OvmfImage::parse is the one parser of these structures. It takes untrusted bytes and either
// returns a fully validated, typed description or an Error naming the file offset and the
// reason ("footer table entry 2 ending at offset 0x1fff9e: size 12 is smaller than the
// 18-byte entry trailer"). Everything downstream (the LaunchPlan builders) only sees the typed
// value. Formats: edk2 OvmfPkg/ResetVector (footer table, "ASEV", "TDVF"), and the same footer
// table in COCONUT-SVSM images.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"
#include "cloister/firmware_loader/guid.h"

namespace cloister::fw {

// One entry of the footer table. `data` is a view into the image.
struct FooterEntry {
  Guid guid;
  std::size_t offset = 0;  // file offset of the first data byte
  ByteView data;
};

// SEV metadata ("ASEV") section types, OvmfPkg/ResetVector/X64/OvmfSevMetadata.nasm.inc.
enum class SevSectionType : std::uint32_t {
  kSnpSecMem = 1,          // memory the firmware expects pre-validated (SNP ZERO pages)
  kSnpSecrets = 2,         // the SNP secrets page
  kCpuid = 3,              // the SNP CPUID page
  kSvsmCaa = 4,            // SVSM calling area (zero)
  kSnpKernelHashes = 0x10  // the page holding the SEV hashes table (measured direct boot)
};

// "SNP_SEC_MEM", "SNP_SECRETS", "CPUID", "SVSM_CAA", "SNP_KERNEL_HASHES".
std::string_view to_string(SevSectionType type);

struct SevMetadataSection {
  std::uint32_t gpa = 0;
  std::uint32_t size = 0;
  SevSectionType type = SevSectionType::kSnpSecMem;
};

// TDVF section types (TDVF design guide, Table 1.2-5; td-shim adds 7 and 8, not accepted).
enum class TdvfSectionType : std::uint32_t {
  kBfv = 0,
  kCfv = 1,
  kTdHob = 2,
  kTempMem = 3,
  kPermMem = 4,
  kPayload = 5,
  kPayloadParam = 6,
};

// "BFV", "CFV", "TD_HOB", "TempMem", "PermMem", "Payload", "PayloadParam".
std::string_view to_string(TdvfSectionType type);

struct TdvfSection {
  std::uint32_t data_offset = 0;  // file offset of the section's bytes in the whole image
  std::uint32_t raw_data_size = 0;
  std::uint64_t memory_address = 0;    // GPA, 4 KiB aligned
  std::uint64_t memory_data_size = 0;  // 4 KiB multiple, >= raw_data_size
  TdvfSectionType type = TdvfSectionType::kBfv;
  std::uint32_t attributes = 0;  // bit 0 MR.EXTEND, bit 1 PAGE.AUG; other bits rejected

  bool mr_extend() const { return (attributes & 1u) != 0; }
  bool page_aug() const { return (attributes & 2u) != 0; }
};

// The SEV hash table location from the footer (u32 gpa, u32 size); gpa 0 means "none".
struct SevHashTableLocation {
  std::uint32_t gpa = 0;
  std::uint32_t size = 0;
};

// The most sections an "ASEV" or "TDVF" metadata list may declare. edk2's OVMF and TDVF images
// declare fewer than a dozen; each is a range the plan populates and checks for overlaps.
inline constexpr std::uint32_t kMaxMetadataSections = 64;

// A parsed firmware image. Holds the image bytes (shared, never copied) and views into them.
// Immutable after parse; cheap to copy.
//
// parse() validates the footer table and the small fixed-size entries. The SEV and TDX
// metadata are validated when asked for (sev_metadata(), tdx_metadata()), because each TEE
// only reads its own: the 4 KiB image suffixes sev-snp-measure ships carry a TDVF descriptor
// whose data offsets point into the full image, which is malformed for TDX but irrelevant to
// SNP.
class OvmfImage {
 public:
  // Parses an image. Rejected, with offset and reason: images shorter than the 48-byte footer
  // area, images without the footer table GUID, table sizes larger than the bytes before the
  // footer, entries smaller than their 18-byte trailer or running past the start of the table,
  // duplicate entries, and known entries too short for their fields.
  static Result<OvmfImage> parse(std::shared_ptr<const Bytes> image);

  ByteView bytes() const { return *image_; }
  const std::shared_ptr<const Bytes>& shared_bytes() const { return image_; }
  std::size_t size() const { return image_->size(); }

  // Footer table entries in file order.
  std::span<const FooterEntry> footer_entries() const { return entries_; }
  const FooterEntry* find_entry(const Guid& guid) const;

  // SEV-ES reset block: the AP reset EIP (bits 31:16 CS base >> 16, bits 15:0 IP).
  std::optional<std::uint32_t> sev_es_reset_eip() const { return reset_eip_; }
  // SEV hash table block, when present.
  std::optional<SevHashTableLocation> sev_hash_table() const { return hash_table_; }
  // COCONUT-SVSM info block: entry point offset from the start of the image.
  std::optional<std::uint32_t> svsm_entry_offset() const { return svsm_entry_; }

  bool has_sev_metadata() const;
  bool has_tdx_metadata() const;

  // The "ASEV" sections in metadata order. Fails when the image has no SEV metadata entry, or
  // when the metadata is malformed: offset outside the image, bad signature or version, a
  // section list that is empty, longer than kMaxMetadataSections or runs past its declared size
  // or the image, sections that are empty, not 4 KiB aligned, beyond 4 GiB, of unknown type,
  // overlapping each other, or secrets/CPUID sections that are not exactly one page.
  Result<std::vector<SevMetadataSection>> sev_metadata() const;

  // The "TDVF" sections in metadata order. Fails when the image has no TDX metadata entry, or
  // when the metadata is malformed: offset outside the image, missing TDX metadata GUID before
  // the descriptor, bad signature or version, truncated, empty or too long (kMaxMetadataSections)
  // section list, unknown types or attribute bits, unaligned or empty memory ranges, RawDataSize
  // > MemoryDataSize, data ranges outside the image, BFV/CFV without data or HOB/memory sections
  // with data, PAGE.AUG combined with MR.EXTEND, a PermMem section without PAGE.AUG (memory
  // added after launch, never measured), and overlapping memory ranges.
  Result<std::vector<TdvfSection>> tdx_metadata() const;

 private:
  std::shared_ptr<const Bytes> image_;
  std::vector<FooterEntry> entries_;
  std::optional<std::uint32_t> reset_eip_;
  std::optional<SevHashTableLocation> hash_table_;
  std::optional<std::uint32_t> svsm_entry_;
};

}  // namespace cloister::fw
