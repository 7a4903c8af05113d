#include "cloister/attestation/tdx/dstack_event_log.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cloister/common/hex.h"
#include "cloister/common/sha.h"
#include "raw_json.h"

namespace cloister::attestation::tdx {
namespace {

using json = nlohmann::json;

Result<DstackEvent> parse_event(const json& e, std::size_t index) {
  const std::string where = "dstack event " + std::to_string(index);
  if (!e.is_object()) return Error(where + ": expected an object");
  for (const auto& [key, unused] : e.items()) {
    if (key == "version" || key == "preimage")
      return Error(where + ": '" + key +
                   "' marks a V2 runtime event (JCS digest), which is not supported yet");
    if (key != "imr" && key != "event_type" && key != "digest" && key != "event" &&
        key != "event_payload")
      return Error(where + ": unknown member '" + printable(key, 64) +
                   "' (expected imr, event_type, digest, event, event_payload)");
  }
  auto number = [&](const char* key) -> Result<std::uint32_t> {
    auto it = e.find(key);
    if (it == e.end() || !it->is_number_unsigned() || it->get<std::uint64_t>() > 0xffffffffu)
      return Error(where + " " + key + ": expected an unsigned 32-bit integer");
    return static_cast<std::uint32_t>(it->get<std::uint64_t>());
  };
  auto text = [&](const char* key) -> Result<std::string> {
    auto it = e.find(key);
    if (it == e.end() || !it->is_string()) return Error(where + " " + key + ": expected a string");
    return it->get<std::string>();
  };
  auto hex = [&](const char* key) -> Result<Bytes> {
    CLOISTER_TRY(std::string s, text(key));
    auto bytes = from_hex(s);
    if (!bytes) return Error(where + " " + key + ": " + bytes.error().message());
    return bytes;
  };
  DstackEvent out;
  CLOISTER_TRY(out.imr, number("imr"));
  if (out.imr > 3)
    return Error(where + " imr: expected 0..3 (RTMR0..3), found " + std::to_string(out.imr));
  CLOISTER_TRY(out.event_type, number("event_type"));
  CLOISTER_TRY(out.digest_field, hex("digest"));
  CLOISTER_TRY(out.name, text("event"));
  CLOISTER_TRY(out.payload, hex("event_payload"));
  if (out.runtime()) {
    if (!out.digest_field.empty() && out.digest_field.size() != 48)
      return Error(where + " digest: expected 48 bytes or \"\", found " +
                   std::to_string(out.digest_field.size()) + " bytes");
    out.digest = dstack_runtime_event_digest(out.name, out.payload);
  } else {
    if (out.digest_field.size() != 48)
      return Error(where + " digest: a boot event's SHA-384 digest must be 48 bytes, found " +
                   std::to_string(out.digest_field.size()));
    std::copy(out.digest_field.begin(), out.digest_field.end(), out.digest.begin());
  }
  return out;
}

}  // namespace

bool DstackEvent::digest_field_mismatch() const {
  return runtime() && !digest_field.empty() &&
         !std::equal(digest.begin(), digest.end(), digest_field.begin(), digest_field.end());
}

bool looks_like_dstack_event_log(ByteView bytes) {
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  const std::size_t first = text.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && text[first] == '[';
}

Bytes48 dstack_runtime_event_digest(std::string_view name, ByteView payload) {
  std::array<std::uint8_t, 4> type{};
  store_le32(type, 0, kDstackRuntimeEventType);
  Hasher hasher(HashAlgorithm::kSha384);
  hasher.update(type);
  hasher.update(as_bytes(":"));
  hasher.update(as_bytes(name));
  hasher.update(as_bytes(":"));
  hasher.update(payload);
  Bytes48 out{};
  hasher.finish_into(out);
  return out;
}

Result<DstackEventLog> parse_dstack_event_log(ByteView bytes) {
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  CLOISTER_TRY(json doc, parse_json_strict(text, "dstack event log"));
  if (!doc.is_array()) return Error("dstack event log: expected a JSON array of events");
  if (doc.size() > kMaxDstackEvents)
    return Error("dstack event log: " + std::to_string(doc.size()) + " events, at most " +
                 std::to_string(kMaxDstackEvents));
  DstackEventLog out;
  for (std::size_t i = 0; i < doc.size(); ++i) {
    CLOISTER_TRY(DstackEvent e, parse_event(doc[i], i));
    out.events.push_back(std::move(e));
  }
  return out;
}

RtmrReplay replay_dstack_rtmrs(const DstackEventLog& log) {
  RtmrReplay out;
  Hasher hasher(HashAlgorithm::kSha384);
  for (const auto& e : log.events) {
    hasher.update(out.rtmr[e.imr]);
    hasher.update(e.digest);
    hasher.finish_into(out.rtmr[e.imr]);
    ++out.events[e.imr];
  }
  return out;
}

}  // namespace cloister::attestation::tdx
