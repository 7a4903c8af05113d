// The TCG event log of a TPM's measured boot (TCG PC Client Platform Firmware Profile §10.2, the
// crypto-agile format: a TCG_PCClientPCREvent carrying the TCG_EfiSpecIDEvent header, then
// TCG_PCR_EVENT2 records), replayed into the SHA-256 PCR bank. Azure confidential VMs keep their
// boot measurements in vTPM PCRs, so this is how their event log is checked against a quote.
// The CC event log of TDX (tdx/event_log.h) is the same record format over RTMRs and SHA-384.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "cloister/attestation/tpm/abi.h"
#include "cloister/common/bytes.h"

namespace cloister::attestation::tpm {

struct EventLogAlgorithm {
  std::uint16_t id = 0;
  std::uint16_t digest_size = 0;
};

struct TpmEvent {
  std::size_t offset = 0;  // of the record in the log
  std::uint32_t pcr = 0;
  std::uint32_t type = 0;
  std::vector<std::pair<std::uint16_t, Bytes>> digests;  // in record order
  Bytes data;

  // The SHA-256 digest, or nullptr when the record has none.
  const Bytes* sha256() const;
};

struct TpmEventLog {
  // The header's specVersion and algorithm list.
  std::uint8_t spec_version_major = 0;
  std::uint8_t spec_version_minor = 0;
  std::vector<EventLogAlgorithm> algorithms;
  // Whether the header's signature is "Spec ID Event03" (false: 16 zero bytes).
  bool spec_id_signature = true;
  // The locality the TPM was started from (a "StartupLocality" EV_NO_ACTION event, Platform
  // Firmware Profile §10.4.5.3); it is PCR 0's initial value.
  std::optional<std::uint8_t> startup_locality;
  std::vector<TpmEvent> events;  // after the header
  std::size_t bytes_used = 0;    // header + events; the rest is 0xFF or 0x00 fill
};

// The most events a log may hold after its header: each costs a replay step.
inline constexpr std::size_t kMaxTpmEvents = 65536;

// Parses a log. Every length is checked before it is read; rejected, naming the event number and
// offset: a missing or malformed header (an EV_NO_ACTION event on PCR 0 with a zero SHA-1 digest
// whose TCG_EfiSpecIDEvent has the signature "Spec ID Event03" — or 16 zero bytes, as the
// Confidential Containers attestation agent writes it — 1..16 distinct algorithms and
// vendorInfo ending the event), an event on a PCR above 23, an event whose digests are not a
// non-empty subset of the header's algorithms (each once, of the header's size), an extended
// (not EV_NO_ACTION) event without a SHA-256 digest, a truncated event, more than
// kMaxTpmEvents events, and anything but 0xFF or 0x00 fill after the last event.
Result<TpmEventLog> parse_tpm_event_log(ByteView log);

// The SHA-256 PCR bank the log replays to: PCR = SHA-256(PCR || digest) for every event but
// EV_NO_ACTION, from the reset value (all 0xFF for PCRs 17..22, zero otherwise, PCR 0's last byte
// the startup locality).
struct PcrReplay {
  std::array<std::array<std::uint8_t, 32>, kPcrCount> pcrs{};
  std::array<std::size_t, kPcrCount> events{};  // extended events per PCR
};
PcrReplay replay_sha256_pcrs(const TpmEventLog& log);

}  // namespace cloister::attestation::tpm
