// The extended-report certificate table returned with SNP_GET_EXT_REPORT / configfs-tsm
// `auxblob` (GHCB specification, AMD pub. 56421, §4.1.8.1): 24-byte entries {GUID, u32 offset,
// u32 length} terminated by an all-zero entry, offsets from the start of the table, followed by
// the data. GUIDs are in RFC 4122 byte order, as go-sev-guest and virtee/sev write them.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/common/file.h"

namespace cloister::attestation::snp {

using Guid = std::array<std::uint8_t, 16>;

// "c0b406a4-a803-4952-9743-3fb6014cd0ae" <-> bytes in RFC 4122 order.
std::string guid_to_string(const Guid& guid);
Result<Guid> guid_from_string(std::string_view text);

enum class CertTableRole {
  kArk,                // c0b406a4-a803-4952-9743-3fb6014cd0ae
  kAskOrAsvk,          // 4ab7b379-bbac-4fe4-a02f-05aef327c782 (the ASVK uses the ASK GUID)
  kVcek,               // 63da758d-e664-4564-adc5-f4b93be8accd
  kVlek,               // a8074bc2-a25a-483e-aae6-39c045a0b8a1
  kCrl,                // 92f81bc3-5811-4d3d-97ff-d19f88dc67ea (virtee/sev)
  kExtraPlatformInfo,  // ecae0c0f-9502-43b1-afa2-0ae2e0d565b6 (go-sev-guest)
  kUnknown,
};
std::string_view to_string(CertTableRole role);
Guid guid_for(CertTableRole role);  // not for kUnknown

struct CertTableEntry {
  Guid guid{};
  CertTableRole role = CertTableRole::kUnknown;
  std::uint32_t offset = 0;
  std::uint32_t length = 0;
  Bytes data;
};

// A certificate table file (verify-report --cert-table).
inline constexpr FileLimit kCertTableFileLimit{
    1u << 20,
    "an extended-report certificate table can be (VCEK, ASK and ARK take about 5 KiB; Linux "
    "hands a guest at most 16 KiB)"};

// The most entries a table may have: one per GUID, and six GUIDs are defined (a VCEK or VLEK,
// the ASK, the ARK, a CRL, extra platform info); the rest is room for GUIDs yet to come.
inline constexpr std::size_t kMaxCertTableEntries = 64;

// Parses a table. Rejected, with the entry index and reason: more than kMaxCertTableEntries
// entries, no terminator, an entry whose data lies inside the header or past the end,
// zero-length entries, overlapping data, duplicate GUIDs. Unknown GUIDs are kept (role
// kUnknown). Bytes after the last entry's data (page padding) are allowed.
Result<std::vector<CertTableEntry>> parse_cert_table(ByteView table);

// Builds a table in the same layout (what a host puts in the extended report), padded with
// zeros to a multiple of 4096 bytes.
Bytes encode_cert_table(const std::vector<std::pair<Guid, Bytes>>& entries);

}  // namespace cloister::attestation::snp
