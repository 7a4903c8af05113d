#include "cloister/attestation/tdx/event_log.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "cloister/common/sha.h"

namespace cloister::attestation::tdx {
namespace {

constexpr char kSpecIdSignature[16] = "Spec ID Event03";  // NUL-terminated, 16 bytes
constexpr std::size_t kSha1DigestSize = 20;

// The rest of the log area is fill: empty, or every byte 0xFF (CCEL) or 0x00.
bool is_fill(ByteView rest) {
  if (rest.empty()) return true;
  const std::uint8_t fill = rest[0];
  if (fill != 0xFF && fill != 0x00) return false;
  return std::all_of(rest.begin(), rest.end(), [&](std::uint8_t b) { return b == fill; });
}

template <typename T>
Result<T> at_event(Result<T> r, std::size_t index, std::size_t offset) {
  if (!r) {
    return Error("event " + std::to_string(index) + " (offset " + std::to_string(offset) +
                 "): " + r.error().message());
  }
  return r;
}

bool digest_equals(const Bytes& digest, ByteView data) {
  const auto h = sha384(data);
  return std::equal(h.begin(), h.end(), digest.begin(), digest.end());
}

// UEFI_VARIABLE_DATA: GUID VariableName, UINT64 UnicodeNameLength, UINT64 VariableDataLength,
// CHAR16 UnicodeName[], INT8 VariableData[]. The VariableData, when the lengths add up.
std::optional<ByteView> variable_data(ByteView data) {
  ByteReader r(data);
  if (!r.skip(16, "VariableName")) return std::nullopt;
  auto name_length = r.u64("UnicodeNameLength");
  auto data_length = r.u64("VariableDataLength");
  if (!name_length || !data_length || *name_length > data.size() || *data_length > data.size())
    return std::nullopt;
  if (!r.skip(2 * *name_length, "UnicodeName")) return std::nullopt;
  if (r.remaining() != *data_length) return std::nullopt;
  return data.subspan(r.offset());
}

DigestCheck check_digest(const CcEvent& e) {
  switch (e.type) {
    case event_type::kSeparator:
    case event_type::kEfiAction:
    case event_type::kEfiGptEvent:
    case event_type::kEfiVariableDriverConfig:
    case event_type::kEfiVariableAuthority:
    case event_type::kEfiVariableBoot2:
      return digest_equals(e.sha384, e.data) ? DigestCheck::kMatches : DigestCheck::kMismatch;
    case event_type::kEfiVariableBoot: {
      auto value = variable_data(e.data);
      return value && digest_equals(e.sha384, *value) ? DigestCheck::kMatches
                                                      : DigestCheck::kMismatch;
    }
    default:
      return DigestCheck::kNotApplicable;
  }
}

Result<SpecIdEvent> parse_spec_id(ByteReader& r) {
  SpecIdEvent s;
  CLOISTER_TRY(s.mr_index, r.u32("Spec ID event MR index"));
  CLOISTER_TRY(std::uint32_t type, r.u32("Spec ID event type"));
  if (type != event_type::kNoAction) {
    return Error(
        "the log must start with the EV_NO_ACTION \"Spec ID Event03\" header, found event "
        "type " +
        event_type_name(type) + " (a SHA-1-only log is not a crypto-agile CC log)");
  }
  CLOISTER_TRY(ByteView digest, r.bytes(kSha1DigestSize, "Spec ID event digest"));
  if (!is_all_zero(digest)) return Error("Spec ID event: digest must be zero");
  CLOISTER_TRY(std::uint32_t size, r.u32("Spec ID event size"));
  CLOISTER_TRY(ByteView body, r.bytes(size, "Spec ID event data"));
  ByteReader b(body);
  CLOISTER_TRY(ByteView signature, b.bytes(16, "Spec ID signature"));
  if (std::memcmp(signature.data(), kSpecIdSignature, 16) != 0)
    return Error("Spec ID event: signature is not \"Spec ID Event03\"");
  CLOISTER_TRY(s.platform_class, b.u32("Spec ID platformClass"));
  CLOISTER_TRY(s.spec_version_minor, b.u8("Spec ID specVersionMinor"));
  CLOISTER_TRY(s.spec_version_major, b.u8("Spec ID specVersionMajor"));
  CLOISTER_TRY(s.spec_errata, b.u8("Spec ID specErrata"));
  CLOISTER_TRY(s.uintn_size, b.u8("Spec ID uintnSize"));
  CLOISTER_TRY(std::uint32_t count, b.u32("Spec ID numberOfAlgorithms"));
  if (count == 0 || count > 16)
    return Error("Spec ID event: numberOfAlgorithms must be 1..16, found " + std::to_string(count));
  for (std::uint32_t i = 0; i < count; ++i) {
    SpecIdAlgorithm a;
    CLOISTER_TRY(a.id, b.u16("Spec ID algorithmId"));
    CLOISTER_TRY(a.digest_size, b.u16("Spec ID digestSize"));
    if (a.digest_size == 0 || a.digest_size > 64)
      return Error("Spec ID event: digest size " + std::to_string(a.digest_size) +
                   " for algorithm " + std::to_string(a.id) + " is not 1..64");
    for (const auto& prev : s.algorithms)
      if (prev.id == a.id)
        return Error("Spec ID event: algorithm " + std::to_string(a.id) + " listed twice");
    if (a.id == kTpmAlgSha384 && a.digest_size != 48)
      return Error("Spec ID event: SHA-384 digest size must be 48, found " +
                   std::to_string(a.digest_size));
    s.algorithms.push_back(a);
  }
  CLOISTER_TRY(std::uint8_t vendor_size, b.u8("Spec ID vendorInfoSize"));
  CLOISTER_CHECK_OK(b.skip(vendor_size, "Spec ID vendorInfo"));
  if (!b.at_end())
    return Error("Spec ID event: " + std::to_string(b.remaining()) +
                 " bytes after vendorInfo inside the event data");
  if (std::none_of(s.algorithms.begin(), s.algorithms.end(),
                   [](const SpecIdAlgorithm& a) { return a.id == kTpmAlgSha384; })) {
    return Error(
        "Spec ID event: the log has no SHA-384 digests (algorithm 0x000C), so it cannot "
        "be replayed into TDX RTMRs");
  }
  return s;
}

Result<CcEvent> parse_event(ByteReader& r, const SpecIdEvent& spec) {
  CcEvent e;
  e.offset = r.offset();
  CLOISTER_TRY(e.mr_index, r.u32("MR index"));
  CLOISTER_TRY(e.type, r.u32("event type"));
  CLOISTER_TRY(std::uint32_t count, r.u32("digest count"));
  if (count != spec.algorithms.size()) {
    return Error("digest count " + std::to_string(count) + " differs from the " +
                 std::to_string(spec.algorithms.size()) + " algorithms of the Spec ID header");
  }
  for (std::uint32_t i = 0; i < count; ++i) {
    CLOISTER_TRY(std::uint16_t alg, r.u16("digest algorithm"));
    auto a = std::find_if(spec.algorithms.begin(), spec.algorithms.end(),
                          [&](const SpecIdAlgorithm& x) { return x.id == alg; });
    if (a == spec.algorithms.end())
      return Error("digest algorithm " + std::to_string(alg) + " is not in the Spec ID header");
    for (const auto& [prev, unused] : e.digests)
      if (prev == alg) return Error("digest algorithm " + std::to_string(alg) + " appears twice");
    CLOISTER_TRY(ByteView digest, r.bytes(a->digest_size, "digest"));
    e.digests.emplace_back(alg, Bytes(digest.begin(), digest.end()));
    if (alg == kTpmAlgSha384) e.sha384.assign(digest.begin(), digest.end());
  }
  CLOISTER_TRY(std::uint32_t size, r.u32("event size"));
  CLOISTER_TRY(ByteView data, r.bytes(size, "event data"));
  e.data.assign(data.begin(), data.end());
  if (e.type != event_type::kNoAction && (e.mr_index < 1 || e.mr_index > 4)) {
    return Error("MR index " + std::to_string(e.mr_index) + " of a " + event_type_name(e.type) +
                 " event is not an RTMR (1..4 = RTMR0..3)");
  }
  e.digest_check = check_digest(e);
  return e;
}

}  // namespace

std::string event_type_name(std::uint32_t type) {
  switch (type) {
    case event_type::kPostCode:
      return "EV_POST_CODE";
    case event_type::kNoAction:
      return "EV_NO_ACTION";
    case event_type::kSeparator:
      return "EV_SEPARATOR";
    case event_type::kAction:
      return "EV_ACTION";
    case event_type::kEventTag:
      return "EV_EVENT_TAG";
    case event_type::kSCrtmContents:
      return "EV_S_CRTM_CONTENTS";
    case event_type::kSCrtmVersion:
      return "EV_S_CRTM_VERSION";
    case event_type::kCpuMicrocode:
      return "EV_CPU_MICROCODE";
    case event_type::kPlatformConfigFlags:
      return "EV_PLATFORM_CONFIG_FLAGS";
    case event_type::kTableOfDevices:
      return "EV_TABLE_OF_DEVICES";
    case event_type::kCompactHash:
      return "EV_COMPACT_HASH";
    case event_type::kIpl:
      return "EV_IPL";
    case event_type::kIplPartitionData:
      return "EV_IPL_PARTITION_DATA";
    case event_type::kNonhostCode:
      return "EV_NONHOST_CODE";
    case event_type::kNonhostConfig:
      return "EV_NONHOST_CONFIG";
    case event_type::kNonhostInfo:
      return "EV_NONHOST_INFO";
    case event_type::kOmitBootDeviceEvents:
      return "EV_OMIT_BOOT_DEVICE_EVENTS";
    case event_type::kEfiVariableDriverConfig:
      return "EV_EFI_VARIABLE_DRIVER_CONFIG";
    case event_type::kEfiVariableBoot:
      return "EV_EFI_VARIABLE_BOOT";
    case event_type::kEfiBootServicesApplication:
      return "EV_EFI_BOOT_SERVICES_APPLICATION";
    case event_type::kEfiBootServicesDriver:
      return "EV_EFI_BOOT_SERVICES_DRIVER";
    case event_type::kEfiRuntimeServicesDriver:
      return "EV_EFI_RUNTIME_SERVICES_DRIVER";
    case event_type::kEfiGptEvent:
      return "EV_EFI_GPT_EVENT";
    case event_type::kEfiAction:
      return "EV_EFI_ACTION";
    case event_type::kEfiPlatformFirmwareBlob:
      return "EV_EFI_PLATFORM_FIRMWARE_BLOB";
    case event_type::kEfiHandoffTables:
      return "EV_EFI_HANDOFF_TABLES";
    case event_type::kEfiPlatformFirmwareBlob2:
      return "EV_EFI_PLATFORM_FIRMWARE_BLOB2";
    case event_type::kEfiHandoffTables2:
      return "EV_EFI_HANDOFF_TABLES2";
    case event_type::kEfiVariableBoot2:
      return "EV_EFI_VARIABLE_BOOT2";
    case event_type::kEfiHcrtmEvent:
      return "EV_EFI_HCRTM_EVENT";
    case event_type::kEfiVariableAuthority:
      return "EV_EFI_VARIABLE_AUTHORITY";
    case event_type::kEfiSpdmFirmwareBlob:
      return "EV_EFI_SPDM_FIRMWARE_BLOB";
    case event_type::kEfiSpdmFirmwareConfig:
      return "EV_EFI_SPDM_FIRMWARE_CONFIG";
    default: {
      char buf[16];
      std::snprintf(buf, sizeof buf, "0x%08x", type);
      return buf;
    }
  }
}

std::string_view to_string(DigestCheck check) {
  switch (check) {
    case DigestCheck::kNotApplicable:
      return "not applicable";
    case DigestCheck::kMatches:
      return "matches";
    case DigestCheck::kMismatch:
      return "mismatch";
  }
  return "mismatch";
}

std::optional<std::size_t> CcEvent::rtmr() const {
  if (type == event_type::kNoAction || mr_index < 1 || mr_index > 4) return std::nullopt;
  return mr_index - 1;
}

Result<CcEventLog> parse_cc_event_log(ByteView log) {
  CcEventLog out;
  ByteReader r(log);
  auto spec = parse_spec_id(r);
  if (!spec) return spec.error().with_context("event log header");
  out.spec_id = std::move(spec).value();
  while (!is_fill(log.subspan(r.offset()))) {
    const std::size_t index = out.events.size() + 1;
    const std::size_t offset = r.offset();
    if (out.events.size() == kMaxEvents) {
      return Error("event " + std::to_string(index) + " (offset " + std::to_string(offset) +
                   "): a log holds at most " + std::to_string(kMaxEvents) +
                   " events after its header");
    }
    CLOISTER_TRY(CcEvent e, at_event(parse_event(r, out.spec_id), index, offset));
    out.events.push_back(std::move(e));
  }
  out.bytes_used = r.offset();
  return out;
}

RtmrReplay replay_rtmrs(const CcEventLog& log) {
  RtmrReplay out;
  Hasher hasher(HashAlgorithm::kSha384);
  for (const auto& e : log.events) {
    auto index = e.rtmr();
    if (!index) continue;
    hasher.update(out.rtmr[*index]);
    hasher.update(e.sha384);
    hasher.finish_into(out.rtmr[*index]);
    ++out.events[*index];
  }
  return out;
}

Result<CcelTable> parse_ccel_table(ByteView table) {
  constexpr std::size_t kCcelSize = 56;
  if (table.size() < 4 || std::memcmp(table.data(), "CCEL", 4) != 0)
    return Error("CCEL table: signature is not \"CCEL\"");
  if (table.size() != kCcelSize)
    return Error("CCEL table: expected 56 bytes, found " + std::to_string(table.size()));
  CcelTable t;
  t.length = load_le32(table, 4);
  if (t.length != kCcelSize)
    return Error("CCEL table: Length field is " + std::to_string(t.length) + ", expected 56");
  t.revision = table[8];
  std::uint8_t sum = 0;
  for (auto b : table) sum = static_cast<std::uint8_t>(sum + b);
  if (sum != 0) return Error("CCEL table: checksum does not sum to zero");
  t.oem_id.assign(reinterpret_cast<const char*>(table.data()) + 10, 6);
  t.oem_table_id.assign(reinterpret_cast<const char*>(table.data()) + 16, 8);
  t.cc_type = table[36];
  t.cc_subtype = table[37];
  t.log_area_minimum_length = load_le64(table, 40);
  t.log_area_start_address = load_le64(table, 48);
  return t;
}

}  // namespace cloister::attestation::tdx
