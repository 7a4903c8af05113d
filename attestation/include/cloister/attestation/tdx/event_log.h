// The confidential-computing event log a TDX guest's firmware writes (the ACPI CCEL table's log
// area): a TCG PC Client crypto-agile log (TCG PC Client Platform Firmware Profile §10.2: a
// TCG_PCClientPCREvent "Spec ID Event03" header, then TCG_PCR_EVENT2 records), whose "PCR index"
// is a CC measurement-register index: 1..4 are RTMR0..3 (UEFI CC measurement protocol; TDVF's
// TdxMeasurementMapPcrToMrIndex). research/tdx.md §c.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cloister/attestation/tdx/quote.h"
#include "cloister/common/file.h"

namespace cloister::attestation::tdx {

// TCG PC Client event types this library names (Platform Firmware Profile table 9).
namespace event_type {
inline constexpr std::uint32_t kPostCode = 0x00000001;
inline constexpr std::uint32_t kNoAction = 0x00000003;
inline constexpr std::uint32_t kSeparator = 0x00000004;
inline constexpr std::uint32_t kAction = 0x00000005;
inline constexpr std::uint32_t kEventTag = 0x00000006;
inline constexpr std::uint32_t kSCrtmContents = 0x00000007;
inline constexpr std::uint32_t kSCrtmVersion = 0x00000008;
inline constexpr std::uint32_t kCpuMicrocode = 0x00000009;
inline constexpr std::uint32_t kPlatformConfigFlags = 0x0000000A;
inline constexpr std::uint32_t kTableOfDevices = 0x0000000B;
inline constexpr std::uint32_t kCompactHash = 0x0000000C;
inline constexpr std::uint32_t kIpl = 0x0000000D;
inline constexpr std::uint32_t kIplPartitionData = 0x0000000E;
inline constexpr std::uint32_t kNonhostCode = 0x0000000F;
inline constexpr std::uint32_t kNonhostConfig = 0x00000010;
inline constexpr std::uint32_t kNonhostInfo = 0x00000011;
inline constexpr std::uint32_t kOmitBootDeviceEvents = 0x00000012;
inline constexpr std::uint32_t kEfiVariableDriverConfig = 0x80000001;
inline constexpr std::uint32_t kEfiVariableBoot = 0x80000002;
inline constexpr std::uint32_t kEfiBootServicesApplication = 0x80000003;
inline constexpr std::uint32_t kEfiBootServicesDriver = 0x80000004;
inline constexpr std::uint32_t kEfiRuntimeServicesDriver = 0x80000005;
inline constexpr std::uint32_t kEfiGptEvent = 0x80000006;
inline constexpr std::uint32_t kEfiAction = 0x80000007;
inline constexpr std::uint32_t kEfiPlatformFirmwareBlob = 0x80000008;
inline constexpr std::uint32_t kEfiHandoffTables = 0x80000009;
inline constexpr std::uint32_t kEfiPlatformFirmwareBlob2 = 0x8000000A;
inline constexpr std::uint32_t kEfiHandoffTables2 = 0x8000000B;
inline constexpr std::uint32_t kEfiVariableBoot2 = 0x8000000C;
inline constexpr std::uint32_t kEfiHcrtmEvent = 0x80000010;
inline constexpr std::uint32_t kEfiVariableAuthority = 0x800000E0;
inline constexpr std::uint32_t kEfiSpdmFirmwareBlob = 0x800000E1;
inline constexpr std::uint32_t kEfiSpdmFirmwareConfig = 0x800000E2;
}  // namespace event_type

// "EV_SEPARATOR", "EV_EFI_VARIABLE_DRIVER_CONFIG", … or "0x…" for an unnamed type.
std::string event_type_name(std::uint32_t type);

inline constexpr std::uint16_t kTpmAlgSha384 = 0x000C;

struct SpecIdAlgorithm {
  std::uint16_t id = 0;
  std::uint16_t digest_size = 0;
};

// The "Spec ID Event03" header event's content.
struct SpecIdEvent {
  std::uint32_t mr_index = 0;  // as recorded (TDVF writes 1); the event is never extended
  std::uint32_t platform_class = 0;
  std::uint8_t spec_version_major = 0;
  std::uint8_t spec_version_minor = 0;
  std::uint8_t spec_errata = 0;
  std::uint8_t uintn_size = 0;
  std::vector<SpecIdAlgorithm> algorithms;
};

// Whether an event's digest was checked against its data.
enum class DigestCheck {
  kNotApplicable,  // the type does not define the digest as a hash of the logged data
  kMatches,
  kMismatch,
};
std::string_view to_string(DigestCheck check);

struct CcEvent {
  std::size_t offset = 0;  // of the record in the log
  std::uint32_t mr_index = 0;
  std::uint32_t type = 0;
  Bytes sha384;  // the SHA-384 digest (the only one replayed)
  std::vector<std::pair<std::uint16_t, Bytes>> digests;  // every digest, in record order
  Bytes data;
  DigestCheck digest_check = DigestCheck::kNotApplicable;

  // RTMR index 0..3 for MR indexes 1..4, nullopt for EV_NO_ACTION (never extended).
  std::optional<std::size_t> rtmr() const;
};

struct CcEventLog {
  SpecIdEvent spec_id;
  std::vector<CcEvent> events;  // after the header
  std::size_t bytes_used = 0;   // header + events; the rest of the area is 0xFF (or 0x00) fill
};

// An event log file (verify-report --event-log): the CCEL log area as the guest read it.
inline constexpr FileLimit kEventLogFileLimit{
    16u << 20, "a CC event log can be (firmware boot logs take tens of KiB)"};

// The most events a log may hold after its header. A firmware's boot log has a few hundred;
// each event costs a digest check and a replay step, so a log cannot make a verifier do
// unbounded work within its size limit.
inline constexpr std::size_t kMaxEvents = 65536;

// Parses a log. Every length is checked before it is read; rejected, naming the event number
// and offset: more than kMaxEvents events, a missing or malformed Spec ID header, a log without
// SHA-384, an event whose digests do not follow the header's algorithm list, an MR index
// outside 1..4 on an extended event, a truncated event, and non-fill bytes after the last event.
// Each event's digest is checked against its data where the event type defines that relation
// (EV_SEPARATOR, EV_EFI_ACTION, EV_EFI_GPT_EVENT: the data; EV_EFI_VARIABLE_DRIVER_CONFIG /
// _AUTHORITY / _BOOT2: the whole UEFI_VARIABLE_DATA; EV_EFI_VARIABLE_BOOT: its VariableData,
// as EDK II measures Boot#### variables); a mismatch is recorded, not an error.
Result<CcEventLog> parse_cc_event_log(ByteView log);

struct RtmrReplay {
  std::array<Bytes48, 4> rtmr{};
  std::array<std::size_t, 4> events{};  // extended events per RTMR
};

// RTMR[i] = SHA-384(RTMR[i] || digest) for each event at MR index i+1, from 48 zero bytes.
RtmrReplay replay_rtmrs(const CcEventLog& log);

// The ACPI "CCEL" table (ACPI 6.5 §5.2.34): where the firmware put the log.
struct CcelTable {
  std::uint32_t length = 0;
  std::uint8_t revision = 0;
  std::string oem_id;        // 6 characters
  std::string oem_table_id;  // 8 characters
  std::uint8_t cc_type = 0;  // 2 = TDX
  std::uint8_t cc_subtype = 0;
  std::uint64_t log_area_minimum_length = 0;  // LAML
  std::uint64_t log_area_start_address = 0;   // LASA
};

// Parses the table; fails on a wrong signature, a length that is not 56 or does not match the
// bytes, or a bad checksum.
Result<CcelTable> parse_ccel_table(ByteView table);

}  // namespace cloister::attestation::tdx
