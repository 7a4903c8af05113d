#include "cloister/attestation/snp/cert_table.h"

#include <algorithm>

#include "cloister/common/hex.h"

namespace cloister::attestation::snp {
namespace {

constexpr std::size_t kEntrySize = 24;

struct KnownGuid {
  CertTableRole role;
  const char* text;
};

constexpr KnownGuid kKnownGuids[] = {
    {CertTableRole::kArk, "c0b406a4-a803-4952-9743-3fb6014cd0ae"},
    {CertTableRole::kAskOrAsvk, "4ab7b379-bbac-4fe4-a02f-05aef327c782"},
    {CertTableRole::kVcek, "63da758d-e664-4564-adc5-f4b93be8accd"},
    {CertTableRole::kVlek, "a8074bc2-a25a-483e-aae6-39c045a0b8a1"},
    {CertTableRole::kCrl, "92f81bc3-5811-4d3d-97ff-d19f88dc67ea"},
    {CertTableRole::kExtraPlatformInfo, "ecae0c0f-9502-43b1-afa2-0ae2e0d565b6"},
};

CertTableRole role_of(const Guid& guid) {
  std::string text = guid_to_string(guid);
  for (const auto& known : kKnownGuids)
    if (text == known.text) return known.role;
  return CertTableRole::kUnknown;
}

}  // namespace

std::string guid_to_string(const Guid& g) {
  std::string hex = to_hex(g);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

Result<Guid> guid_from_string(std::string_view text) {
  if (text.size() != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' ||
      text[23] != '-') {
    return Error("GUID '" + std::string(text) +
                 "' is not in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx");
  }
  std::string digits;
  for (char c : text)
    if (c != '-') digits += c;
  CLOISTER_TRY(Bytes bytes, from_hex(digits));
  Guid g{};
  std::copy(bytes.begin(), bytes.end(), g.begin());
  return g;
}

std::string_view to_string(CertTableRole role) {
  switch (role) {
    case CertTableRole::kArk:
      return "ARK";
    case CertTableRole::kAskOrAsvk:
      return "ASK/ASVK";
    case CertTableRole::kVcek:
      return "VCEK";
    case CertTableRole::kVlek:
      return "VLEK";
    case CertTableRole::kCrl:
      return "CRL";
    case CertTableRole::kExtraPlatformInfo:
      return "extra platform info";
    case CertTableRole::kUnknown:
      return "unknown";
  }
  return "unknown";
}

Guid guid_for(CertTableRole role) {
  for (const auto& known : kKnownGuids)
    if (known.role == role) return *guid_from_string(known.text);
  return {};
}

Result<std::vector<CertTableEntry>> parse_cert_table(ByteView table) {
  std::vector<CertTableEntry> entries;
  ByteReader reader(table);
  for (std::size_t index = 0;; ++index) {
    std::string where = "certificate table entry " + std::to_string(index);
    auto guid = reader.array<16>(where + " GUID");
    if (!guid) return Error(guid.error().message() + " (no all-zero terminator entry)");
    CLOISTER_TRY(std::uint32_t offset, reader.u32(where + " offset"));
    CLOISTER_TRY(std::uint32_t length, reader.u32(where + " length"));
    if (is_all_zero(*guid)) {
      if (offset != 0 || length != 0)
        return Error(where + ": zero GUID with non-zero offset/length (malformed terminator)");
      break;
    }
    if (entries.size() == kMaxCertTableEntries) {
      return Error(where + ": a table has at most " + std::to_string(kMaxCertTableEntries) +
                   " entries (one per GUID) before its all-zero terminator");
    }
    CertTableEntry entry;
    entry.guid = *guid;
    entry.role = role_of(entry.guid);
    entry.offset = offset;
    entry.length = length;
    entries.push_back(std::move(entry));
  }
  const std::size_t header_end = reader.offset();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    auto& e = entries[i];
    std::string where = "certificate table entry " + std::to_string(i) + " (" +
                        guid_to_string(e.guid) + ", " + std::string(to_string(e.role)) + ")";
    if (e.length == 0) return Error(where + ": zero length");
    if (e.offset < header_end) {
      return Error(where + ": data offset " + std::to_string(e.offset) +
                   " lies inside the table header (which ends at " + std::to_string(header_end) +
                   ")");
    }
    if (static_cast<std::uint64_t>(e.offset) + e.length > table.size()) {
      return Error(where + ": data " + std::to_string(e.offset) + "+" + std::to_string(e.length) +
                   " runs past the end of the " + std::to_string(table.size()) + "-byte table");
    }
    for (std::size_t j = 0; j < i; ++j) {
      const auto& other = entries[j];
      if (other.guid == e.guid)
        return Error(where + ": duplicate GUID (also entry " + std::to_string(j) + ")");
      bool disjoint = static_cast<std::uint64_t>(e.offset) + e.length <= other.offset ||
                      static_cast<std::uint64_t>(other.offset) + other.length <= e.offset;
      if (!disjoint) return Error(where + ": data overlaps entry " + std::to_string(j));
    }
    auto data = table.subspan(e.offset, e.length);
    e.data.assign(data.begin(), data.end());
  }
  return entries;
}

Bytes encode_cert_table(const std::vector<std::pair<Guid, Bytes>>& entries) {
  std::size_t offset = (entries.size() + 1) * kEntrySize;
  std::size_t total = offset;
  for (const auto& [guid, data] : entries) total += data.size();
  Bytes out((total + 4095) / 4096 * 4096, 0);
  std::size_t header = 0;
  for (const auto& [guid, data] : entries) {
    std::copy(guid.begin(), guid.end(), out.begin() + static_cast<std::ptrdiff_t>(header));
    store_le32(out, header + 16, static_cast<std::uint32_t>(offset));
    store_le32(out, header + 20, static_cast<std::uint32_t>(data.size()));
    std::copy(data.begin(), data.end(), out.begin() + static_cast<std::ptrdiff_t>(offset));
    offset += data.size();
    header += kEntrySize;
  }
  return out;
}

}  // namespace cloister::attestation::snp
