#include "cloister/firmware_loader/ovmf.h"

#include <algorithm>

#include "cloister/common/hex.h"
#include "edk2_defs.h"
#include "ranges.h"

namespace cloister::fw {
namespace {

// "section 0 [0x800000, 0x809000) overlaps section 1 [0x808000, 0x809000)".
std::string describe_overlap(const std::pair<IndexedRange, IndexedRange>& o) {
  const auto& [a, b] = o;
  return "section " + std::to_string(a.index) + " [" + hex_number(a.begin) + ", " +
         hex_number(a.end) + ") overlaps section " + std::to_string(b.index) + " [" +
         hex_number(b.begin) + ", " + hex_number(b.end) + ")";
}

Status require_entry_size(const FooterEntry& entry, std::size_t need, std::string_view what) {
  if (entry.data.size() < need) {
    return Error("OVMF footer table: " + std::string(what) + " entry (" + entry.guid.to_string() +
                 ") at offset " + hex_number(entry.offset) + " has " +
                 std::to_string(entry.data.size()) + " data bytes, expected at least " +
                 std::to_string(need));
  }
  return {};
}

// The metadata offsets in the footer count back from the end of the image.
Result<std::size_t> metadata_start(const OvmfImage& image, const Guid& guid, std::string_view what,
                                   std::size_t header_size) {
  const FooterEntry* entry = image.find_entry(guid);
  if (entry == nullptr) {
    return Error("the firmware has no " + std::string(what) + " metadata (footer table entry " +
                 guid.to_string() + " is missing)");
  }
  const std::uint32_t offset = load_le32(entry->data, 0);
  if (offset < header_size || offset > image.size()) {
    return Error(std::string(what) + " metadata offset " + hex_number(offset) +
                 " (counted back from the end of the " + hex_number(image.size()) +
                 "-byte image, footer entry at offset " + hex_number(entry->offset) +
                 ") does not leave room for the " + std::to_string(header_size) +
                 "-byte header inside the image");
  }
  return image.size() - offset;
}

// The checks the "ASEV" and "TDVF" headers share: {char[4] signature, u32 length,
// u32 version = 1, u32 count} followed by `count` entries of `entry_size` bytes. Returns count.
Result<std::uint32_t> metadata_entry_count(ByteView b, std::size_t start, const std::string& where,
                                           std::uint32_t signature, std::string_view name,
                                           std::string_view length_field, std::size_t entry_size) {
  if (load_le32(b, start) != signature) {
    return Error(where + ": expected signature \"" + std::string(name) + "\", found 0x" +
                 to_hex(b.subspan(start, 4)) + " (hex)");
  }
  const std::uint32_t length = load_le32(b, start + 4);
  const std::uint32_t version = load_le32(b, start + 8);
  const std::uint32_t count = load_le32(b, start + 12);
  if (version != edk2::kMetadataVersion)
    return Error(where + ": expected version 1, found " + std::to_string(version));
  if (count == 0) return Error(where + ": the section list is empty");
  if (count > kMaxMetadataSections) {
    return Error(where + ": " + std::to_string(count) + " sections, more than the " +
                 std::to_string(kMaxMetadataSections) + " a metadata list may have");
  }
  const std::uint64_t needed = edk2::kMetadataHeaderSize + std::uint64_t{count} * entry_size;
  if (length < needed) {
    return Error(where + ": " + std::string(length_field) + " " + std::to_string(length) +
                 " is too small for " + std::to_string(count) + " sections (" +
                 std::to_string(needed) + " bytes)");
  }
  if (needed > b.size() - start) {
    return Error(where + ": " + std::to_string(count) + " sections (" + std::to_string(needed) +
                 " bytes) run past the end of the " + hex_number(b.size()) + "-byte image");
  }
  return count;
}

}  // namespace

std::string_view to_string(SevSectionType type) {
  switch (type) {
    case SevSectionType::kSnpSecMem:
      return "SNP_SEC_MEM";
    case SevSectionType::kSnpSecrets:
      return "SNP_SECRETS";
    case SevSectionType::kCpuid:
      return "CPUID";
    case SevSectionType::kSvsmCaa:
      return "SVSM_CAA";
    case SevSectionType::kSnpKernelHashes:
      return "SNP_KERNEL_HASHES";
  }
  return "unknown";
}

std::string_view to_string(TdvfSectionType type) {
  switch (type) {
    case TdvfSectionType::kBfv:
      return "BFV";
    case TdvfSectionType::kCfv:
      return "CFV";
    case TdvfSectionType::kTdHob:
      return "TD_HOB";
    case TdvfSectionType::kTempMem:
      return "TempMem";
    case TdvfSectionType::kPermMem:
      return "PermMem";
    case TdvfSectionType::kPayload:
      return "Payload";
    case TdvfSectionType::kPayloadParam:
      return "PayloadParam";
  }
  return "unknown";
}

Result<OvmfImage> OvmfImage::parse(std::shared_ptr<const Bytes> image) {
  const ByteView bytes = *image;
  const std::size_t n = bytes.size();
  constexpr std::size_t kFooterArea = edk2::kFooterGap + edk2::kEntryTrailerSize;
  if (n < kFooterArea) {
    return Error("OVMF image is " + std::to_string(n) + " bytes, smaller than the " +
                 std::to_string(kFooterArea) + "-byte footer area: not an OVMF image");
  }
  const std::size_t footer_guid_at = n - edk2::kFooterGap - Guid::kSize;
  const Guid footer = Guid::from_stored(bytes.subspan(footer_guid_at, Guid::kSize));
  if (footer != edk2::kFooterTableGuid) {
    return Error("OVMF image has no footer table: expected GUID " +
                 edk2::kFooterTableGuid.to_string() + " at offset " + hex_number(footer_guid_at) +
                 " (end - 0x30), found " + footer.to_string());
  }
  const std::size_t footer_size_at = footer_guid_at - 2;
  const std::size_t table_size = load_le16(bytes, footer_size_at);
  if (table_size < edk2::kEntryTrailerSize) {
    return Error("OVMF footer table at offset " + hex_number(footer_size_at) + ": total size " +
                 std::to_string(table_size) + " is smaller than its own 18-byte footer");
  }
  if (table_size > n - edk2::kFooterGap) {
    return Error("OVMF footer table at offset " + hex_number(footer_size_at) + ": total size " +
                 std::to_string(table_size) + " reaches before the start of the " +
                 std::to_string(n) + "-byte image");
  }

  OvmfImage out;
  out.image_ = std::move(image);
  const std::size_t table_start = n - edk2::kFooterGap - table_size;
  std::size_t cursor = footer_size_at;  // one past the last byte of the current entry
  while (cursor > table_start) {
    const std::size_t left = cursor - table_start;
    if (left < edk2::kEntryTrailerSize) {
      return Error("OVMF footer table: truncated entry ending at offset " + hex_number(cursor) +
                   ": only " + std::to_string(left) +
                   " bytes remain before the start of the table at offset " +
                   hex_number(table_start) + ", an entry needs at least 18");
    }
    const std::size_t guid_at = cursor - Guid::kSize;
    const std::size_t size_at = guid_at - 2;
    const std::size_t entry_size = load_le16(bytes, size_at);
    if (entry_size < edk2::kEntryTrailerSize) {
      return Error("OVMF footer table: entry ending at offset " + hex_number(cursor) +
                   " declares size " + std::to_string(entry_size) + " (at offset " +
                   hex_number(size_at) + "), smaller than the 18-byte entry trailer");
    }
    if (entry_size > left) {
      return Error("OVMF footer table: entry ending at offset " + hex_number(cursor) +
                   " declares size " + std::to_string(entry_size) + " (at offset " +
                   hex_number(size_at) + "), running past the start of the table at offset " +
                   hex_number(table_start));
    }
    FooterEntry entry;
    entry.guid = Guid::from_stored(bytes.subspan(guid_at, Guid::kSize));
    entry.offset = cursor - entry_size;
    entry.data = bytes.subspan(entry.offset, entry_size - edk2::kEntryTrailerSize);
    if (out.find_entry(entry.guid) != nullptr) {
      return Error("OVMF footer table: entry " + entry.guid.to_string() + " at offset " +
                   hex_number(entry.offset) + " appears twice");
    }
    out.entries_.push_back(entry);
    cursor = entry.offset;
  }
  std::reverse(out.entries_.begin(), out.entries_.end());

  for (const FooterEntry& entry : out.entries_) {
    if (entry.guid == edk2::kSevEsResetBlockGuid) {
      CLOISTER_CHECK_OK(require_entry_size(entry, 4, "SEV-ES reset block"));
      out.reset_eip_ = load_le32(entry.data, 0);
    } else if (entry.guid == edk2::kSevHashTableGuid) {
      CLOISTER_CHECK_OK(require_entry_size(entry, 8, "SEV hash table"));
      out.hash_table_ = SevHashTableLocation{load_le32(entry.data, 0), load_le32(entry.data, 4)};
    } else if (entry.guid == edk2::kSevSecretBlockGuid) {
      CLOISTER_CHECK_OK(require_entry_size(entry, 8, "SEV secret block"));
    } else if (entry.guid == edk2::kSevMetadataOffsetGuid) {
      CLOISTER_CHECK_OK(require_entry_size(entry, 4, "SEV metadata offset"));
    } else if (entry.guid == edk2::kTdxMetadataOffsetGuid) {
      CLOISTER_CHECK_OK(require_entry_size(entry, 4, "TDX metadata offset"));
    } else if (entry.guid == edk2::kSvsmInfoGuid) {
      CLOISTER_CHECK_OK(require_entry_size(entry, 4, "SVSM info"));
      out.svsm_entry_ = load_le32(entry.data, 0);
    }
  }
  return out;
}

const FooterEntry* OvmfImage::find_entry(const Guid& guid) const {
  for (const FooterEntry& entry : entries_)
    if (entry.guid == guid) return &entry;
  return nullptr;
}

bool OvmfImage::has_sev_metadata() const {
  return find_entry(edk2::kSevMetadataOffsetGuid) != nullptr;
}

bool OvmfImage::has_tdx_metadata() const {
  return find_entry(edk2::kTdxMetadataOffsetGuid) != nullptr;
}

Result<std::vector<SevMetadataSection>> OvmfImage::sev_metadata() const {
  CLOISTER_TRY(const std::size_t start, metadata_start(*this, edk2::kSevMetadataOffsetGuid, "SEV",
                                                       edk2::kMetadataHeaderSize));
  const ByteView b = bytes();
  const std::string where = "SEV metadata at offset " + hex_number(start);
  CLOISTER_TRY(const std::uint32_t count,
               metadata_entry_count(b, start, where, edk2::kSevMetadataSignature, "ASEV",
                                    "declared size", edk2::kSevMetadataSectionSize));

  std::vector<SevMetadataSection> sections;
  std::vector<IndexedRange> ranges;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::size_t at = start + edk2::kMetadataHeaderSize + i * edk2::kSevMetadataSectionSize;
    const std::uint32_t gpa = load_le32(b, at);
    const std::uint32_t sz = load_le32(b, at + 4);
    const std::uint32_t type = load_le32(b, at + 8);
    const std::string sec =
        "SEV metadata section " + std::to_string(i) + " at offset " + hex_number(at);
    switch (static_cast<SevSectionType>(type)) {
      case SevSectionType::kSnpSecMem:
      case SevSectionType::kSnpSecrets:
      case SevSectionType::kCpuid:
      case SevSectionType::kSvsmCaa:
      case SevSectionType::kSnpKernelHashes:
        break;
      default:
        return Error(sec + ": unknown section type " + hex_number(type) +
                     " (known: 1 SNP_SEC_MEM, 2 SNP_SECRETS, 3 CPUID, 4 SVSM_CAA, "
                     "0x10 SNP_KERNEL_HASHES)");
    }
    const auto stype = static_cast<SevSectionType>(type);
    const std::string named = sec + " (" + std::string(to_string(stype)) + ", GPA " +
                              hex_number(gpa) + ", size " + hex_number(sz) + ")";
    if (sz == 0) return Error(named + ": the section is empty");
    if (gpa % 0x1000 != 0 || sz % 0x1000 != 0)
      return Error(named + ": GPA and size must be 4 KiB aligned");
    if (std::uint64_t{gpa} + sz > 0x1'0000'0000ull)
      return Error(named + ": the range ends beyond 4 GiB");
    if ((stype == SevSectionType::kSnpSecrets || stype == SevSectionType::kCpuid) && sz != 0x1000) {
      return Error(named + ": expected exactly one 4 KiB page");
    }
    sections.push_back({gpa, sz, stype});
    ranges.push_back({gpa, std::uint64_t{gpa} + sz, i});
  }
  if (auto overlap = first_overlap(ranges)) return Error(where + ": " + describe_overlap(*overlap));
  return sections;
}

Result<std::vector<TdvfSection>> OvmfImage::tdx_metadata() const {
  CLOISTER_TRY(const std::size_t start, metadata_start(*this, edk2::kTdxMetadataOffsetGuid, "TDX",
                                                       edk2::kMetadataHeaderSize));
  const ByteView b = bytes();
  const std::string where = "TDVF descriptor at offset " + hex_number(start);
  if (start < Guid::kSize) {
    return Error(where + ": no room for the TDX metadata GUID before the descriptor");
  }
  const Guid guid = Guid::from_stored(b.subspan(start - Guid::kSize, Guid::kSize));
  if (guid != edk2::kTdxMetadataGuid) {
    return Error(where + ": expected the TDX metadata GUID " + edk2::kTdxMetadataGuid.to_string() +
                 " at offset " + hex_number(start - Guid::kSize) + ", found " + guid.to_string());
  }
  CLOISTER_TRY(const std::uint32_t count,
               metadata_entry_count(b, start, where, edk2::kTdvfSignature, "TDVF", "Length",
                                    edk2::kTdvfSectionSize));

  std::vector<TdvfSection> sections;
  std::vector<IndexedRange> ranges;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::size_t at = start + edk2::kMetadataHeaderSize + i * edk2::kTdvfSectionSize;
    TdvfSection s;
    s.data_offset = load_le32(b, at);
    s.raw_data_size = load_le32(b, at + 4);
    s.memory_address = load_le64(b, at + 8);
    s.memory_data_size = load_le64(b, at + 16);
    const std::uint32_t type = load_le32(b, at + 24);
    s.attributes = load_le32(b, at + 28);
    std::string sec = "TDVF section " + std::to_string(i) + " at offset " + hex_number(at);
    if (type > static_cast<std::uint32_t>(TdvfSectionType::kPayloadParam)) {
      return Error(sec + ": unknown section type " + std::to_string(type) +
                   " (known: 0 BFV, 1 CFV, 2 TD_HOB, 3 TempMem, 4 PermMem, 5 Payload, "
                   "6 PayloadParam)");
    }
    s.type = static_cast<TdvfSectionType>(type);
    sec += " (" + std::string(to_string(s.type)) + ")";
    const std::uint32_t known = edk2::kTdvfAttributeMrExtend | edk2::kTdvfAttributePageAug;
    if ((s.attributes & ~known) != 0) {
      return Error(sec + ": unknown attribute bits " + hex_number(s.attributes & ~known) +
                   " (known: 0x1 MR.EXTEND, 0x2 PAGE.AUG)");
    }
    if (s.mr_extend() && s.page_aug()) {
      return Error(sec + ": attributes " + hex_number(s.attributes) +
                   " combine MR.EXTEND with PAGE.AUG; pages added after launch cannot be "
                   "extended into MRTD");
    }
    if (s.type == TdvfSectionType::kPermMem && !s.page_aug()) {
      return Error(sec + ": attributes " + hex_number(s.attributes) +
                   ": expected PAGE.AUG (0x2); permanent memory is added after launch, never "
                   "measured into MRTD (QEMU loads no PermMem section at launch)");
    }
    if (s.memory_data_size == 0) return Error(sec + ": MemoryDataSize is 0");
    if (s.memory_address % 0x1000 != 0 || s.memory_data_size % 0x1000 != 0) {
      return Error(sec + ": MemoryAddress " + hex_number(s.memory_address) +
                   " and MemoryDataSize " + hex_number(s.memory_data_size) +
                   " must be 4 KiB aligned");
    }
    if (s.memory_address + s.memory_data_size < s.memory_address ||
        s.memory_address + s.memory_data_size > (1ull << 52)) {
      return Error(sec + ": memory range [" + hex_number(s.memory_address) + ", +" +
                   hex_number(s.memory_data_size) + ") exceeds the 52-bit guest-physical space");
    }
    if (s.raw_data_size > s.memory_data_size) {
      return Error(sec + ": RawDataSize " + hex_number(s.raw_data_size) +
                   " exceeds MemoryDataSize " + hex_number(s.memory_data_size));
    }
    const bool carries_data = s.type == TdvfSectionType::kBfv || s.type == TdvfSectionType::kCfv;
    if (carries_data && s.raw_data_size == 0) {
      return Error(sec + ": a firmware volume section needs RawDataSize > 0");
    }
    if (!carries_data && s.type != TdvfSectionType::kPayload && s.raw_data_size != 0) {
      return Error(sec + ": RawDataSize " + hex_number(s.raw_data_size) +
                   " must be 0 (this section's contents come from the VMM or are zero)");
    }
    if (std::uint64_t{s.data_offset} + s.raw_data_size > size()) {
      return Error(sec + ": DataOffset " + hex_number(s.data_offset) + " + RawDataSize " +
                   hex_number(s.raw_data_size) + " exceeds the " + hex_number(size()) +
                   "-byte image (TDVF data offsets are relative to the whole unified image; "
                   "was OVMF_CODE given without OVMF_VARS?)");
    }
    ranges.push_back({s.memory_address, s.memory_address + s.memory_data_size, i});
    sections.push_back(s);
  }
  if (auto overlap = first_overlap(ranges)) return Error(where + ": " + describe_overlap(*overlap));
  return sections;
}

}  // namespace cloister::fw
