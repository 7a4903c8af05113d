// dstack's JSON event log (Dstack-TEE/dstack cc-eventlog TdxEvent): the TD's boot events, copied
// from its CC event log, followed by dstack's runtime events (the application's compose hash,
// instance ID, key provider, …) that dstack extends into RTMR3. Each event is
//   {"imr": u32 (0-based: 0 = RTMR0), "event_type": u32, "digest": hex (48 bytes or ""),
//    "event": name, "event_payload": hex}.
// A runtime event's digest is not trusted: it is recomputed from its name and payload (dstack
// runtime_events.rs, EventLogVersion V1). Facts checked: shared/vectors/tdx/dstack/MANIFEST.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cloister/attestation/tdx/event_log.h"
#include "cloister/common/bytes.h"

namespace cloister::attestation::tdx {

// DSTACK_RUNTIME_EVENT_TYPE (dstack cc-eventlog runtime_events.rs).
inline constexpr std::uint32_t kDstackRuntimeEventType = 0x08000001;

struct DstackEvent {
  std::uint32_t imr = 0;  // RTMR index 0..3
  std::uint32_t event_type = 0;
  Bytes digest_field;  // as logged; may be empty for runtime events
  std::string name;    // "event"
  Bytes payload;       // "event_payload"
  Bytes48 digest{};    // what is extended: recomputed for runtime events, else the field

  bool runtime() const { return event_type == kDstackRuntimeEventType; }
  // A runtime event whose logged digest is present and differs from the recomputed one.
  bool digest_field_mismatch() const;
};

struct DstackEventLog {
  std::vector<DstackEvent> events;  // in file order
};

// Whether the bytes are a JSON array (dstack's log), not a binary CC event log.
bool looks_like_dstack_event_log(ByteView bytes);

// SHA-384(u32 LE 0x08000001 || ":" || name || ":" || payload): a V1 runtime event's digest.
Bytes48 dstack_runtime_event_digest(std::string_view name, ByteView payload);

// Parses the log (a JSON array, duplicate keys refused). Rejected, naming the event index and
// field: a member other than the five above (the V2 "version"/"preimage" form is not supported
// yet), an imr above 3, digests or payloads that are not hex, a boot event's digest that is not
// 48 bytes, a runtime event's non-empty digest that is not 48 bytes, more than kMaxDstackEvents
// events.
inline constexpr std::size_t kMaxDstackEvents = 65536;
Result<DstackEventLog> parse_dstack_event_log(ByteView json);

// RTMR[imr] = SHA-384(RTMR[imr] || digest), from 48 zero bytes, in file order.
RtmrReplay replay_dstack_rtmrs(const DstackEventLog& log);

}  // namespace cloister::attestation::tdx
