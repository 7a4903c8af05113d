#include "cloister/attestation/tpm/event_log.h"

#include <algorithm>
#include <cstring>

#include "cloister/attestation/tdx/event_log.h"
#include "cloister/attestation/tpm/attest.h"
#include "cloister/common/hex.h"
#include "cloister/common/sha.h"

namespace cloister::attestation::tpm {
namespace {

namespace event_type = tdx::event_type;

constexpr char kSpecIdSignature[16] = "Spec ID Event03";  // NUL-terminated, 16 bytes
constexpr char kStartupLocality[16] = "StartupLocality";  // NUL-terminated, 16 bytes
constexpr std::size_t kSha1DigestSize = 20;

bool is_fill(ByteView rest) {
  if (rest.empty()) return true;
  const std::uint8_t fill = rest[0];
  if (fill != 0xFF && fill != 0x00) return false;
  return std::all_of(rest.begin(), rest.end(), [&](std::uint8_t b) { return b == fill; });
}

Status parse_header(ByteReader& r, TpmEventLog& out) {
  CLOISTER_TRY(std::uint32_t pcr, r.u32("header PCR index"));
  CLOISTER_TRY(std::uint32_t type, r.u32("header event type"));
  if (pcr != 0 || type != event_type::kNoAction)
    return Error("the log must start with an EV_NO_ACTION Spec ID event on PCR 0, found " +
                 tdx::event_type_name(type) + " on PCR " + std::to_string(pcr) +
                 " (a SHA-1-only log is not a crypto-agile log)");
  CLOISTER_TRY(ByteView digest, r.bytes(kSha1DigestSize, "header digest"));
  if (!is_all_zero(digest)) return Error("Spec ID event: digest must be zero");
  CLOISTER_TRY(std::uint32_t size, r.u32("header event size"));
  CLOISTER_TRY(ByteView body, r.bytes(size, "Spec ID event data"));
  ByteReader b(body);
  CLOISTER_TRY(ByteView signature, b.bytes(16, "Spec ID signature"));
  out.spec_id_signature = std::memcmp(signature.data(), kSpecIdSignature, 16) == 0;
  if (!out.spec_id_signature && !is_all_zero(signature))
    return Error("Spec ID event: signature is neither \"Spec ID Event03\" nor zero");
  CLOISTER_CHECK_OK(b.skip(4, "Spec ID platformClass"));
  CLOISTER_TRY(out.spec_version_minor, b.u8("Spec ID specVersionMinor"));
  CLOISTER_TRY(out.spec_version_major, b.u8("Spec ID specVersionMajor"));
  CLOISTER_CHECK_OK(b.skip(2, "Spec ID specErrata and uintnSize"));
  CLOISTER_TRY(std::uint32_t count, b.u32("Spec ID numberOfAlgorithms"));
  if (count == 0 || count > 16)
    return Error("Spec ID event: numberOfAlgorithms must be 1..16, found " + std::to_string(count));
  for (std::uint32_t i = 0; i < count; ++i) {
    EventLogAlgorithm a;
    CLOISTER_TRY(a.id, b.u16("Spec ID algorithmId"));
    CLOISTER_TRY(a.digest_size, b.u16("Spec ID digestSize"));
    const std::size_t known = alg_digest_size(a.id);
    if (a.digest_size == 0 || a.digest_size > 64 || (known != 0 && known != a.digest_size))
      return Error("Spec ID event: digest size " + std::to_string(a.digest_size) + " for " +
                   alg_name(a.id) + " is wrong");
    for (const auto& prev : out.algorithms)
      if (prev.id == a.id)
        return Error("Spec ID event: algorithm " + alg_name(a.id) + " listed twice");
    out.algorithms.push_back(a);
  }
  CLOISTER_TRY(std::uint8_t vendor_size, b.u8("Spec ID vendorInfoSize"));
  CLOISTER_CHECK_OK(b.skip(vendor_size, "Spec ID vendorInfo"));
  if (!b.at_end())
    return Error("Spec ID event: " + std::to_string(b.remaining()) +
                 " bytes after vendorInfo inside the event data");
  return {};
}

Result<TpmEvent> parse_event(ByteReader& r, const TpmEventLog& log) {
  TpmEvent e;
  e.offset = r.offset();
  CLOISTER_TRY(e.pcr, r.u32("PCR index"));
  CLOISTER_TRY(e.type, r.u32("event type"));
  if (e.pcr >= kPcrCount)
    return Error("PCR index " + std::to_string(e.pcr) + " is not a PCR (0.." +
                 std::to_string(kPcrCount - 1) + ")");
  CLOISTER_TRY(std::uint32_t count, r.u32("digest count"));
  if (count == 0 || count > log.algorithms.size())
    return Error("digest count " + std::to_string(count) + " is not 1.." +
                 std::to_string(log.algorithms.size()) + " (the header's algorithms)");
  for (std::uint32_t i = 0; i < count; ++i) {
    CLOISTER_TRY(std::uint16_t alg, r.u16("digest algorithm"));
    auto a = std::find_if(log.algorithms.begin(), log.algorithms.end(),
                          [&](const EventLogAlgorithm& x) { return x.id == alg; });
    if (a == log.algorithms.end())
      return Error("digest algorithm " + alg_name(alg) + " is not in the Spec ID header");
    for (const auto& [prev, unused] : e.digests)
      if (prev == alg) return Error("digest algorithm " + alg_name(alg) + " appears twice");
    CLOISTER_TRY(ByteView digest, r.bytes(a->digest_size, "digest"));
    e.digests.emplace_back(alg, Bytes(digest.begin(), digest.end()));
  }
  CLOISTER_TRY(std::uint32_t size, r.u32("event size"));
  CLOISTER_TRY(ByteView data, r.bytes(size, "event data"));
  e.data.assign(data.begin(), data.end());
  if (e.type != event_type::kNoAction && e.sha256() == nullptr)
    return Error("a " + tdx::event_type_name(e.type) + " event on PCR " + std::to_string(e.pcr) +
                 " has no SHA-256 digest to replay");
  return e;
}

}  // namespace

const Bytes* TpmEvent::sha256() const {
  for (const auto& [alg, digest] : digests)
    if (alg == kAlgSha256) return &digest;
  return nullptr;
}

Result<TpmEventLog> parse_tpm_event_log(ByteView log) {
  TpmEventLog out;
  ByteReader r(log);
  if (auto header = parse_header(r, out); !header)
    return header.error().with_context("event log header");
  while (!is_fill(log.subspan(r.offset()))) {
    const std::size_t index = out.events.size() + 1;
    const std::size_t offset = r.offset();
    auto at = [&](const Error& e) {
      return Error("event " + std::to_string(index) + " (offset " + std::to_string(offset) +
                   "): " + e.message());
    };
    if (out.events.size() == kMaxTpmEvents)
      return at(Error("a log holds at most " + std::to_string(kMaxTpmEvents) + " events"));
    auto e = parse_event(r, out);
    if (!e) return at(e.error());
    if (e->type == event_type::kNoAction && e->pcr == 0 && e->data.size() == 17 &&
        std::memcmp(e->data.data(), kStartupLocality, 16) == 0) {
      if (out.startup_locality)
        return at(Error("a second StartupLocality event (the TPM starts once)"));
      out.startup_locality = e->data[16];
    }
    out.events.push_back(std::move(e).value());
  }
  out.bytes_used = r.offset();
  return out;
}

PcrReplay replay_sha256_pcrs(const TpmEventLog& log) {
  PcrReplay out;
  for (unsigned i = kFirstDrtmPcr; i <= kLastDrtmPcr; ++i) out.pcrs[i].fill(0xFF);
  if (log.startup_locality) out.pcrs[0].back() = *log.startup_locality;
  Hasher hasher(HashAlgorithm::kSha256);
  for (const auto& e : log.events) {
    if (e.type == event_type::kNoAction) continue;
    hasher.update(out.pcrs[e.pcr]);
    hasher.update(*e.sha256());
    hasher.finish_into(out.pcrs[e.pcr]);
    ++out.events[e.pcr];
  }
  return out;
}

}  // namespace cloister::attestation::tpm
