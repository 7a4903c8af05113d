#include "cloister/attestation/tdx/verify.h"

#include <openssl/objects.h>

#include <algorithm>
#include <cstdio>

#include "cloister/common/hex.h"
#include "cloister/common/sha.h"

namespace cloister::attestation::tdx {
namespace {

constexpr std::size_t kMaxCached = 4096;

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

std::string window(UnixTime from, std::optional<UnixTime> to) {
  return format_rfc3339(from) + ".." + (to ? format_rfc3339(*to) : std::string("(no nextUpdate)"));
}

std::string short_hex(ByteView bytes) {
  std::string h = to_hex(bytes);
  return h.size() > 16 ? h.substr(0, 16) + "…" : h;
}

// Freshness of a dated collateral item: "" when current, else why not (stale or not yet valid).
struct Freshness {
  bool not_yet_valid = false;
  bool stale = false;
  std::string why;
};

Freshness freshness(const std::string& what, UnixTime issued, std::optional<UnixTime> next,
                    UnixTime time) {
  Freshness f;
  if (time < issued) {
    f.not_yet_valid = true;
    f.why = what + " was issued " + format_rfc3339(issued) + ", after the verification time " +
            format_rfc3339(time);
  } else if (!next || time >= *next) {
    f.stale = true;
    f.why = what + " is stale: nextUpdate " +
            (next ? format_rfc3339(*next) : std::string("absent")) +
            " is not after the verification time " + format_rfc3339(time);
  }
  return f;
}

// Adds a freshness verdict to a check that otherwise passed.
void dated_check(Checks& out, const std::string& name, const std::string& expected,
                 const std::string& found, const Freshness& f, bool allow_stale) {
  if (f.not_yet_valid || (f.stale && !allow_stale)) {
    out.fail(name, expected, found, f.why);
  } else {
    out.pass(name, expected, found,
             f.stale ? f.why + "; accepted because stale collateral is allowed" : "");
  }
}

std::vector<const Sourced<Crl>*> crls_of(const TdxCollateral& c, const Certificate& issuer) {
  std::vector<const Sourced<Crl>*> out;
  for (const auto& crl : c.crls) {
    if (crl.value.issuer_cn() == issuer.subject_cn() &&
        crl.value.issuer_attribute("O") == issuer.subject_attribute("O"))
      out.push_back(&crl);
  }
  return out;
}

std::vector<const Sourced<Crl>*> crls_by_cn(const TdxCollateral& c, const std::string& cn) {
  std::vector<const Sourced<Crl>*> out;
  for (const auto& crl : c.crls)
    if (crl.value.issuer_cn() == cn) out.push_back(&crl);
  return out;
}

// The item to appraise among several for one role (the host may offer an older one beside the
// current): the newest of those `verifies` accepts, or the first when none does (its check then
// fails and says why).
template <typename T, typename Verifies, typename Newer>
const T* newest_verified(const std::vector<const T*>& candidates, Verifies verifies, Newer newer) {
  const T* best = nullptr;
  for (const T* c : candidates)
    if (verifies(*c) && (best == nullptr || newer(*c, *best))) best = c;
  return best != nullptr ? best : (candidates.empty() ? nullptr : candidates.front());
}

bool crl_newer(const Sourced<Crl>& a, const Sourced<Crl>& b) {
  const auto na = a.value.crl_number(), nb = b.value.crl_number();
  if (na && nb && *na != *nb) return *na > *nb;
  return a.value.this_update() > b.value.this_update();
}

// CRLs of one issuer: the newest whose signature verifies decides currency; revocation is looked
// up in every one that verifies, so an older CRL offered beside the current one hides nothing.
struct IssuerCrls {
  const Sourced<Crl>* newest = nullptr;
  bool usable = false;
  std::vector<const Sourced<Crl>*> verified;

  std::optional<RevokedCertificate> find_revoked(ByteView serial) const {
    for (const auto* c : verified)
      if (auto entry = c->value.find_revoked(serial)) return entry;
    return std::nullopt;
  }
  std::size_t revoked_count() const {
    std::size_t n = 0;
    for (const auto* c : verified) n += c->value.revoked().size();
    return n;
  }
};

// `newest` is the first candidate when none verifies (its check then fails and says why).
template <typename Verifies>
IssuerCrls issuer_crls(const std::vector<const Sourced<Crl>*>& candidates, Verifies verifies) {
  IssuerCrls out;
  for (const auto* c : candidates) {
    if (!verifies(*c)) continue;
    out.verified.push_back(c);
    if (out.newest == nullptr || crl_newer(*c, *out.newest)) out.newest = c;
  }
  out.usable = out.newest != nullptr;
  if (!out.usable && !candidates.empty()) out.newest = candidates.front();
  return out;
}

std::string crl_found(const Sourced<Crl>& crl) {
  const Crl& c = crl.value;
  return "CRL #" + (c.crl_number() ? std::to_string(*c.crl_number()) : std::string("?")) +
         " from " + crl.source + ", " + window(c.this_update(), c.next_update());
}

template <std::size_t N>
bool masked_equal(const std::array<std::uint8_t, N>& value, const std::array<std::uint8_t, N>& mask,
                  const std::array<std::uint8_t, N>& expected) {
  for (std::size_t i = 0; i < N; ++i)
    if ((value[i] & mask[i]) != expected[i]) return false;
  return true;
}

std::string level_summary(const TcbEvaluation& e, const TcbInfo& info) {
  std::vector<std::string> parts;
  auto status = [](std::optional<TcbStatus> s) {
    return s ? std::string(to_string(*s)) : std::string("none");
  };
  parts.push_back("SGX level " + (e.sgx_level
                                      ? format_rfc3339(info.tcb_levels[*e.sgx_level].tcb_date) +
                                            " " + status(e.sgx_status)
                                      : std::string("none")));
  parts.push_back("TDX level " + (e.tdx_level
                                      ? format_rfc3339(info.tcb_levels[*e.tdx_level].tcb_date) +
                                            " " + status(e.tdx_level_status)
                                      : std::string("none")));
  if (e.module_identity) {
    parts.push_back("module " + *e.module_identity + " " + status(e.module_status) +
                    (e.tdx_status ? " -> TDX " + status(e.tdx_status) : std::string()));
  }
  if (e.relaunch_checked) parts.push_back("relaunch check " + status(e.relaunch_status));
  if (e.qe_status) parts.push_back("QE " + status(e.qe_status));
  return join(parts, "; ");
}

// "tdx.qe_report.binding": the QE report data is SHA-256(attestation key || QE auth data)
// followed by 32 zero bytes (QVL checks only the first half).
void check_qe_binding(const TdxQuote& q, Checks& checks) {
  Bytes bound(q.attestation_key.begin(), q.attestation_key.end());
  bound.insert(bound.end(), q.qe_auth_data.begin(), q.qe_auth_data.end());
  const auto digest = sha256(bound);
  Bytes want(digest.begin(), digest.end());
  want.resize(64, 0);
  const std::string expected =
      "REPORTDATA = SHA-256(attestation key || QE auth data) || 32 zero bytes";
  if (std::equal(want.begin(), want.end(), q.qe_report.report_data.begin())) {
    checks.pass("tdx.qe_report.binding", expected, to_hex(q.qe_report.report_data).substr(0, 64));
  } else {
    const bool hash_ok =
        std::equal(want.begin(), want.begin() + 32, q.qe_report.report_data.begin());
    checks.fail("tdx.qe_report.binding", expected + " (" + to_hex(ByteView(want).first(32)) + ")",
                to_hex(q.qe_report.report_data),
                hash_ok ? "the upper 32 bytes of the QE report data are not zero"
                        : "the QE report does not bind the attestation key");
  }
}

// "tdx.signature": the attestation key's ECDSA P-256 signature over header and TD report.
void check_quote_signature(const TdxQuote& q, Checks& checks) {
  const std::string expected = "ECDSA P-256/SHA-256 over quote bytes 0.." +
                               std::to_string(q.signed_size - 1) + " by the attestation key";
  auto key = PublicKey::from_ec_point(NID_X9_62_prime256v1, q.attestation_key);
  if (!key) {
    checks.fail("tdx.signature", expected, "invalid attestation key", key.error().message());
  } else if (verify_p256_signature(*key, q.signed_bytes(), q.signature)) {
    checks.pass("tdx.signature", expected,
                "verifies with attestation key " + short_hex(q.attestation_key));
  } else {
    checks.fail("tdx.signature", expected, "does not verify",
                "the quote signature does not verify with the attestation key (the quote "
                "header or TD report was altered)");
  }
}

// "tdx.tcb_info.match" and "tdx.module.identity": the TCB Info is this PCE's, and MRSIGNERSEAM
// and SEAM_ATTRIBUTES match the module identity for TEE_TCB_SVN[1] (or tdxModule when it is 0).
// Attributes must be zero and equal; QVL does not apply the mask (QuoteVerifier.cpp 4.1.2.4.11).
void check_against_tcb_info(const TdxQuote& q, const PckExtensions& pck, const TcbInfo& info,
                            Checks& checks) {
  const std::string expected = "FMSPC " + to_hex(info.fmspc) + ", PCE-ID " + to_hex(info.pce_id);
  const std::string found = "FMSPC " + to_hex(pck.fmspc) + ", PCE-ID " + to_hex(pck.pce_id);
  if (info.pce_id == pck.pce_id) {
    checks.pass("tdx.tcb_info.match", expected, found);
  } else {
    checks.fail("tdx.tcb_info.match", expected, found,
                "the TCB Info is for another PCE than the PCK certificate's");
  }

  const std::uint8_t version = q.td_report.tee_tcb_svn[1];
  const TdxModule* module = info.tdx_module ? &*info.tdx_module : nullptr;
  std::string source = "tdxModule";
  if (version > 0) {
    const TdxModuleIdentity* identity = find_tdx_module_identity(info, version);
    module = identity ? &identity->module : nullptr;
    char id[8];
    std::snprintf(id, sizeof id, "TDX_%02X", version);
    source = identity ? identity->id : std::string(id);
  }
  const std::string found_module = "MRSIGNERSEAM " + short_hex(q.td_report.mr_signer_seam) +
                                   ", SEAM_ATTRIBUTES " + to_hex(q.td_report.seam_attributes);
  if (!module) {
    checks.fail("tdx.module.identity", "TDX module identity " + source, found_module,
                "TEE_TCB_SVN[1] = " + std::to_string(version) + " names module identity " + source +
                    ", which the TCB Info lacks");
  } else {
    const std::string module_expected = source + ": MRSIGNER " + short_hex(module->mrsigner) +
                                        ", attributes " + to_hex(module->attributes) +
                                        " (SEAM_ATTRIBUTES zero)";
    if (q.td_report.mr_signer_seam != module->mrsigner) {
      checks.fail("tdx.module.identity", module_expected, found_module,
                  "MRSIGNERSEAM is not the TDX module signer the TCB Info names");
    } else if (!is_all_zero(q.td_report.seam_attributes) ||
               q.td_report.seam_attributes != module->attributes) {
      checks.fail("tdx.module.identity", module_expected, found_module,
                  "SEAM_ATTRIBUTES must be zero and equal the identity's attributes");
    } else {
      checks.pass("tdx.module.identity", module_expected, found_module);
    }
  }
}

// "tdx.qe_identity.match": the QE report is Intel's TD Quoting Enclave.
void check_qe_identity_match(const QeReport& r, const QeIdentity& id, Checks& checks) {
  std::array<std::uint8_t, 4> misc{};
  store_le32(misc, 0, r.misc_select);
  std::vector<std::string> problems;
  if (!masked_equal(misc, id.miscselect_mask, id.miscselect))
    problems.push_back("MISCSELECT " + to_hex(misc) + " & mask " + to_hex(id.miscselect_mask) +
                       " != " + to_hex(id.miscselect));
  if (!masked_equal(r.attributes, id.attributes_mask, id.attributes))
    problems.push_back("ATTRIBUTES " + to_hex(r.attributes) + " & mask " +
                       to_hex(id.attributes_mask) + " != " + to_hex(id.attributes));
  if (r.mr_signer != id.mrsigner)
    problems.push_back("MRSIGNER " + to_hex(r.mr_signer) + " != " + to_hex(id.mrsigner));
  if (r.isv_prod_id != id.isvprodid)
    problems.push_back("ISVPRODID " + std::to_string(r.isv_prod_id) +
                       " != " + std::to_string(id.isvprodid));
  const std::string expected = "QE MRSIGNER " + short_hex(id.mrsigner) + ", ISVPRODID " +
                               std::to_string(id.isvprodid) +
                               ", MISCSELECT and ATTRIBUTES under mask";
  const std::string found = "MRSIGNER " + short_hex(r.mr_signer) + ", ISVPRODID " +
                            std::to_string(r.isv_prod_id) + ", ISVSVN " + std::to_string(r.isv_svn);
  if (problems.empty()) {
    checks.pass("tdx.qe_identity.match", expected, found);
  } else {
    checks.fail("tdx.qe_identity.match", expected, found,
                "the QE report is not Intel's TD Quoting Enclave: " + join(problems, "; "));
  }
}

// "tdx.collateral.pck_chain": a PCK chain the collateral carries (dcap-qvl's
// pck_certificate_chain) is the quote's own, certificate by certificate.
void check_collateral_pck_chains(const TdxQuote& q, const TdxCollateral& c, Checks& checks) {
  if (c.pck_chains.empty()) return;
  const std::string expected = "the quote's embedded PCK chain, certificate by certificate";
  auto embedded = parse_pem_chain(q.pck_cert_data);
  for (const auto& chain : c.pck_chains) {
    std::vector<std::string> found;
    for (const auto& cert : chain.value) found.push_back(cert.subject_cn());
    const std::string found_text = std::to_string(chain.value.size()) + " certificates (" +
                                   join(found, ", ") + ") from " + chain.source;
    if (!embedded) {
      checks.fail("tdx.collateral.pck_chain", expected, found_text,
                  "the quote's own chain does not parse: " + embedded.error().message());
      continue;
    }
    bool equal = embedded->size() == chain.value.size();
    for (std::size_t i = 0; equal && i < embedded->size(); ++i)
      equal = (*embedded)[i].der() == chain.value[i].der();
    if (equal) {
      checks.pass("tdx.collateral.pck_chain", expected, found_text);
    } else {
      checks.fail("tdx.collateral.pck_chain", expected, found_text,
                  "the collateral's PCK chain is not the quote's (collateral fetched for another "
                  "platform or altered)");
    }
  }
}

// "tdx.eventlog.rtmr0".."rtmr3": the replayed log reproduces the quote's RTMRs (RTMR3 with no
// events but a value was extended at run time: skipped, not failed).
void check_replay(const TdxQuote& q, const RtmrReplay& replay, Checks& checks) {
  for (std::size_t i = 0; i < 4; ++i) {
    const std::string name = "tdx.eventlog.rtmr" + std::to_string(i);
    const std::string replayed = to_hex(replay.rtmr[i]);
    const std::string quoted = to_hex(q.td_report.rtmr[i]);
    const std::string found =
        "replayed " + std::to_string(replay.events[i]) + " events: " + replayed;
    if (replayed == quoted) {
      checks.pass(name, "RTMR" + std::to_string(i) + " " + quoted, found);
    } else if (i == 3 && replay.events[i] == 0) {
      checks.skip(name, "RTMR3 is " + quoted +
                            " but the log has no RTMR3 events: it was extended at run time "
                            "without CCEL entries; pin it with the policy's rtmr3");
    } else {
      checks.fail(name, "RTMR" + std::to_string(i) + " " + quoted, found,
                  "replaying the event log does not reproduce the quote's RTMR" +
                      std::to_string(i) + " (the log is incomplete or altered)");
    }
  }
}

// "tdx.eventlog.*" for dstack's JSON log: it parses, the runtime events' logged digests (where
// present) equal their recomputation, and it replays to the quote's RTMRs.
void check_dstack_event_log(const TdxQuote& q, const Bytes& event_log, TdxVerification& out) {
  Checks& checks = out.checks;
  auto log = parse_dstack_event_log(event_log);
  const std::string expected = "a dstack JSON event log (imr 0..3, hex digests and payloads)";
  if (!log) {
    checks.fail("tdx.eventlog.format", expected, std::to_string(event_log.size()) + " bytes",
                log.error().message());
    return;
  }
  std::size_t runtime = 0;
  std::vector<std::string> mismatches;
  for (std::size_t i = 0; i < log->events.size(); ++i) {
    const DstackEvent& e = log->events[i];
    runtime += e.runtime();
    if (e.digest_field_mismatch())
      mismatches.push_back("event " + std::to_string(i) + " (" + printable(e.name, 64) + ")");
  }
  checks.pass("tdx.eventlog.format", expected,
              std::to_string(log->events.size()) + " events, " + std::to_string(runtime) +
                  " dstack runtime events");
  const std::string digests_expected =
      "each runtime event's digest is SHA-384(0x08000001 LE || ':' || name || ':' || payload)";
  if (mismatches.empty()) {
    checks.pass("tdx.eventlog.digests", digests_expected,
                std::to_string(runtime) + " runtime event digests recomputed from their payloads",
                "boot events' digests are replayed as logged");
  } else {
    checks.fail("tdx.eventlog.digests", digests_expected,
                std::to_string(mismatches.size()) + " mismatches",
                "the logged digest is not the recomputed one: " + join(mismatches, ", "));
  }
  const RtmrReplay replay = replay_dstack_rtmrs(*log);
  check_replay(q, replay, checks);
  out.dstack_event_log = std::move(log).value();
  out.replay = replay;
}

// "tdx.eventlog.*": the log parses, its digests match their data, and it replays to the quote's
// RTMRs.
void check_event_log(const TdxQuote& q, const Bytes& event_log, TdxVerification& out) {
  if (looks_like_dstack_event_log(event_log)) {
    check_dstack_event_log(q, event_log, out);
    return;
  }
  Checks& checks = out.checks;
  auto log = parse_cc_event_log(event_log);
  const std::string expected = "a TCG2 crypto-agile CC event log with SHA-384 digests";
  if (!log) {
    checks.fail("tdx.eventlog.format", expected, std::to_string(event_log.size()) + " bytes",
                log.error().message());
    return;
  }
  checks.pass("tdx.eventlog.format", expected,
              std::to_string(log->events.size()) + " events in " + std::to_string(log->bytes_used) +
                  " bytes");
  std::vector<std::string> mismatches;
  std::size_t verified = 0;
  for (std::size_t i = 0; i < log->events.size(); ++i) {
    const CcEvent& e = log->events[i];
    if (e.digest_check == DigestCheck::kMatches) ++verified;
    if (e.digest_check == DigestCheck::kMismatch)
      mismatches.push_back("event " + std::to_string(i + 1) + " (" + event_type_name(e.type) +
                           ", offset " + std::to_string(e.offset) + ")");
  }
  const std::string digests_expected =
      "each event's SHA-384 digest equals the hash of its data where the type defines it";
  if (mismatches.empty()) {
    checks.pass("tdx.eventlog.digests", digests_expected,
                std::to_string(verified) + " of " + std::to_string(log->events.size()) +
                    " events checked against their data");
  } else {
    checks.fail("tdx.eventlog.digests", digests_expected,
                std::to_string(mismatches.size()) + " mismatches",
                "the logged data does not hash to the logged digest: " + join(mismatches, ", "));
  }
  RtmrReplay replay = replay_rtmrs(*log);
  check_replay(q, replay, checks);
  out.event_log = std::move(log).value();
  out.replay = replay;
}

}  // namespace

TdxVerifier::TdxVerifier(TdxVerifierConfig config)
    : pcs_(std::move(config.pcs)), configured_roots_(std::move(config.trusted_roots)) {}

const PublicKey& TdxVerifier::trusted_root(const Certificate* presented) const {
  if (configured_roots_.empty()) return intel_sgx_root_key();
  if (presented != nullptr) {
    for (const auto& root : configured_roots_)
      if (root.equals(presented->public_key())) return root;
  }
  return configured_roots_.front();
}

std::shared_ptr<const TdxVerifier::ChainResult> TdxVerifier::chain_result(
    const TdxQuote& quote) const {
  const auto digest = sha256(quote.pck_cert_data);
  const std::string key = to_hex(digest);
  {
    std::lock_guard lock(mutex_);
    if (auto it = chains_.find(key); it != chains_.end()) return it->second;
  }
  auto result = std::make_shared<ChainResult>();
  auto certs = parse_pem_chain(quote.pck_cert_data);
  if (!certs) {
    result->error = certs.error().message();
  } else if (auto chain = identify_pck_chain(*certs); !chain) {
    result->error = chain.error().message();
  } else {
    result->chain = *chain;
    Checks checks;
    check_pck_chain(*chain, trusted_root(&chain->root), checks);
    auto extensions = pck_extensions(chain->leaf);
    check_pck_extensions(*chain, extensions, checks);
    if (extensions) result->extensions = *extensions;
    result->checks = checks.all();
    result->leaf_key = chain->leaf.public_key();
  }
  std::lock_guard lock(mutex_);
  if (chains_.size() >= kMaxCached) chains_.clear();
  chains_.emplace(key, result);
  return result;
}

bool TdxVerifier::signature_ok(const PublicKey& key, const std::string& key_id, ByteView message,
                               ByteView raw_signature) const {
  const std::string cache_key = "sig" + to_hex(sha256(message)) + to_hex(raw_signature) + key_id;
  {
    std::lock_guard lock(mutex_);
    if (auto it = signatures_.find(cache_key); it != signatures_.end()) return it->second;
  }
  const bool ok = static_cast<bool>(verify_p256_signature(key, message, raw_signature));
  std::lock_guard lock(mutex_);
  if (signatures_.size() >= kMaxCached) signatures_.clear();
  signatures_.emplace(cache_key, ok);
  return ok;
}

bool TdxVerifier::crl_signature_ok(const Crl& crl, const PublicKey& key,
                                   const std::string& key_id) const {
  const std::string cache_key = "crl" + to_hex(sha256(crl.der())) + key_id;
  {
    std::lock_guard lock(mutex_);
    if (auto it = signatures_.find(cache_key); it != signatures_.end()) return it->second;
  }
  const bool ok = crl.signature_algorithm() == "ecdsa-with-SHA256" &&
                  static_cast<bool>(crl.verify_signed_by(key));
  std::lock_guard lock(mutex_);
  if (signatures_.size() >= kMaxCached) signatures_.clear();
  signatures_.emplace(cache_key, ok);
  return ok;
}

bool TdxVerifier::signed_by_root(const Certificate& cert, const PublicKey& root) const {
  const std::string cache_key =
      "cert" + to_hex(cert.fingerprint()) + to_hex(sha256(root.spki_der()));
  {
    std::lock_guard lock(mutex_);
    if (auto it = signatures_.find(cache_key); it != signatures_.end()) return it->second;
  }
  const bool ok = static_cast<bool>(cert.verify_signed_by(root));
  std::lock_guard lock(mutex_);
  if (signatures_.size() >= kMaxCached) signatures_.clear();
  signatures_.emplace(cache_key, ok);
  return ok;
}

TdxVerification TdxVerifier::verify(const TdxEvidence& evidence,
                                    const TdxVerifyOptions& options) const {
  TdxVerification out;
  Checks& checks = out.checks;
  const UnixTime t = options.time;
  out.time = t;

  // ---- The quote ------------------------------------------------------------------------
  const std::string format_expected =
      "TDX quote v4/v5 (TD report 1.0/1.5), ECDSA P-256, "
      "QE report certification data with a PEM PCK chain";
  auto decoded = decode_tdx_quote(evidence.quote);
  if (!decoded) {
    checks.fail("tdx.quote.format", format_expected,
                std::to_string(evidence.quote.size()) + " bytes", decoded.error().message());
    return out;
  }
  out.quote = std::move(decoded).value();
  const TdxQuote& q = *out.quote;
  {
    std::string found = "v" + std::to_string(q.header.version) + ", " +
                        (q.td_report.tee_tcb_svn2 ? "TD report 1.5" : "TD report 1.0") + ", " +
                        std::to_string(q.raw.size()) + " bytes";
    std::string trailing =
        q.trailing_bytes ? std::to_string(q.trailing_bytes) +
                               " bytes after the signature data are not part of the quote (ignored)"
                         : "";
    if (q.format_problems.empty()) {
      checks.pass("tdx.quote.format", format_expected, found, trailing);
    } else {
      checks.fail("tdx.quote.format", format_expected, found,
                  join(q.format_problems, "; ") + (trailing.empty() ? "" : "; " + trailing));
    }
  }
  if (q.header.qe_vendor_id == kIntelQeVendorId) {
    checks.pass("tdx.quote.qe_vendor", to_hex(kIntelQeVendorId) + " (Intel)",
                to_hex(q.header.qe_vendor_id));
  } else {
    checks.fail("tdx.quote.qe_vendor", to_hex(kIntelQeVendorId) + " (Intel)",
                to_hex(q.header.qe_vendor_id), "the quote was not produced by Intel's QE");
  }

  // ---- PCK chain ------------------------------------------------------------------------
  std::shared_ptr<const ChainResult> chain;
  if (q.pck_cert_data_type != kCertDataPckChain) {
    checks.fail("tdx.pck.chain", "the PCK chain embedded in the quote (certification data 5)",
                "certification data type " + std::to_string(q.pck_cert_data_type),
                "the quote does not carry its PCK certificate chain");
  } else {
    chain = chain_result(q);
    if (!chain->chain) {
      checks.fail("tdx.pck.chain", "PCK leaf, PCK Platform/Processor CA, Intel SGX Root CA",
                  "unusable", chain->error);
    } else {
      for (const auto& c : chain->checks) checks.add(c);
      out.pck_chain = chain->chain;
      out.pck_extensions = chain->extensions;
      std::vector<std::string> invalid;
      for (const Certificate* c :
           {&chain->chain->leaf, &chain->chain->intermediate, &chain->chain->root}) {
        if (auto ok = c->check_validity(t); !ok) invalid.push_back(ok.error().message());
      }
      const std::string expected = "every PCK chain certificate valid at " + format_rfc3339(t);
      const std::string found =
          "leaf valid " + window(chain->chain->leaf.not_before(), chain->chain->leaf.not_after());
      if (invalid.empty()) {
        checks.pass("tdx.pck.chain.validity", expected, found);
      } else {
        checks.fail("tdx.pck.chain.validity", expected, found, join(invalid, "; "));
      }
    }
  }

  // ---- QE report, binding, quote signature ----------------------------------------------
  const std::string qe_sig_expected =
      "ECDSA P-256/SHA-256 over the 384-byte QE report by the PCK key";
  if (!chain || !chain->leaf_key) {
    checks.fail("tdx.qe_report.signature", qe_sig_expected, "no PCK key",
                "the QE report cannot be verified without the PCK certificate");
  } else if (verify_p256_signature(*chain->leaf_key, q.qe_report.raw, q.qe_report_signature)) {
    checks.pass("tdx.qe_report.signature", qe_sig_expected,
                "verifies with PCK leaf " + chain->chain->leaf.serial_hex());
  } else {
    checks.fail("tdx.qe_report.signature", qe_sig_expected, "does not verify",
                "the QE report signature does not verify with the PCK leaf key (the QE report "
                "was altered, or signed by another platform)");
  }
  check_qe_binding(q, checks);
  check_quote_signature(q, checks);

  // ---- Collateral -----------------------------------------------------------------------
  const PckChain* pck = out.pck_chain ? &*out.pck_chain : nullptr;
  const PublicKey& root = trusted_root(pck ? &pck->root : nullptr);
  const PckExtensions* ext = out.pck_extensions ? &*out.pck_extensions : nullptr;
  if (ext) out.tcb_info_url = pcs_tcb_info_url(kPcsBaseUrl, ext->fmspc);

  // The cache (or PCS) is consulted even when the evidence or the caller supplied collateral:
  // the host chooses what it supplies, and may offer an older item still inside its window.
  TdxCollateral fetched;
  const TdxCollateral& supplied = evidence.collateral;
  if (pcs_ && pck) {
    std::vector<std::string> errors;
    auto note = [&](Status s) {
      if (!s) errors.push_back(s.error().message());
    };
    if (ext) note(pcs_->tcb_info(ext->fmspc, t, fetched));
    note(pcs_->qe_identity(t, fetched));
    note(pcs_->pck_crl(pck->ca, t, fetched));
    note(pcs_->root_ca_crl(t, fetched));
    if (!errors.empty()) {
      checks.fail("tdx.collateral.fetch", "collateral from the cache or Intel PCS",
                  std::to_string(errors.size()) + " failed", join(errors, "; "));
    }
  }
  check_collateral_pck_chains(q, supplied, checks);

  // Every source's items; for each role the newest that verifies is appraised.
  TdxCollateral all = supplied;
  for (auto& x : fetched.tcb_infos) all.tcb_infos.push_back(std::move(x));
  for (auto& x : fetched.qe_identities) all.qe_identities.push_back(std::move(x));
  for (auto& x : fetched.certificates) all.certificates.push_back(std::move(x));
  for (auto& x : fetched.crls) all.crls.push_back(std::move(x));

  // Root CA CRL.
  const IssuerCrls root_crls = issuer_crls(crls_by_cn(all, kRootCaCn), [&](const Sourced<Crl>& c) {
    return crl_signature_ok(c.value, root, to_hex(sha256(root.spki_der())));
  });
  const Sourced<Crl>* root_crl = root_crls.newest;
  const std::string root_crl_expected =
      "Intel SGX Root CA CRL signed by the trusted root, current at " + format_rfc3339(t);
  const bool root_crl_usable = root_crls.usable;
  if (!root_crl) {
    checks.fail("tdx.crl.root", root_crl_expected, "none",
                "no Root CA CRL supplied, cached or fetched (Intel serves it at " +
                    std::string(kIntelRootCaCrlUrl) + ")");
  } else if (!root_crl_usable) {
    checks.fail("tdx.crl.root", root_crl_expected, crl_found(*root_crl),
                "the CRL is not an ECDSA-SHA256 signature of the trusted root");
  } else {
    dated_check(checks, "tdx.crl.root", root_crl_expected, crl_found(*root_crl),
                freshness("the Root CA CRL", root_crl->value.this_update(),
                          root_crl->value.next_update(), t),
                options.allow_stale_collateral);
  }

  // PCK CRL.
  const IssuerCrls pck_crls =
      pck ? issuer_crls(crls_of(all, pck->intermediate),
                        [&](const Sourced<Crl>& c) {
                          return crl_signature_ok(c.value, pck->intermediate.public_key(),
                                                  to_hex(pck->intermediate.fingerprint()));
                        })
          : IssuerCrls{};
  const Sourced<Crl>* pck_crl = pck_crls.newest;
  const bool pck_crl_usable = pck_crls.usable;
  if (pck) {
    const std::string expected = "CRL of '" + pck->intermediate.subject_cn() +
                                 "' (the PCK leaf's issuer) signed by it, current at " +
                                 format_rfc3339(t);
    if (!pck_crl) {
      checks.fail("tdx.crl.pck", expected, "none",
                  "no PCK CRL for '" + pck->intermediate.subject_cn() +
                      "' supplied, cached or fetched (PCS serves it at " +
                      pcs_pck_crl_url(kPcsBaseUrl, pck->ca) + ")");
    } else if (!pck_crl_usable) {
      checks.fail("tdx.crl.pck", expected, crl_found(*pck_crl),
                  "the CRL is not an ECDSA-SHA256 signature of the PCK leaf's issuer");
    } else {
      dated_check(
          checks, "tdx.crl.pck", expected, crl_found(*pck_crl),
          freshness("the PCK CRL", pck_crl->value.this_update(), pck_crl->value.next_update(), t),
          options.allow_stale_collateral);
    }
  } else {
    checks.fail("tdx.crl.pck", "the PCK CRL", "unknown", "no PCK chain to check revocation for");
  }

  // Revocation.
  if (pck) {
    const std::string expected = "PCK CA not in the Root CA CRL, PCK leaf not in the PCK CRL";
    if (!root_crl_usable || !pck_crl_usable) {
      checks.fail("tdx.revocation", expected, "unknown",
                  "revocation cannot be checked without both trusted CRLs");
    } else {
      std::vector<std::string> revoked;
      if (auto entry = root_crls.find_revoked(pck->intermediate.serial()))
        revoked.push_back("'" + pck->intermediate.subject_cn() + "' " +
                          pck->intermediate.serial_hex() + " revoked " +
                          format_rfc3339(entry->revocation_date));
      if (auto entry = pck_crls.find_revoked(pck->leaf.serial()))
        revoked.push_back("PCK leaf " + pck->leaf.serial_hex() + " revoked " +
                          format_rfc3339(entry->revocation_date));
      const std::string found = "leaf " + pck->leaf.serial_hex() + " against " +
                                std::to_string(pck_crls.revoked_count()) +
                                " revoked serials, CA against " +
                                std::to_string(root_crls.revoked_count());
      if (revoked.empty()) {
        checks.pass("tdx.revocation", expected, found);
      } else {
        checks.fail("tdx.revocation", expected, join(revoked, "; "),
                    "a certificate of the PCK chain is revoked");
      }
    }
  } else {
    checks.fail("tdx.revocation", "PCK chain not revoked", "unknown", "no PCK chain");
  }

  // The TCB Signing certificate (one key signs TCB Info and QE Identity; Intel renewed the
  // certificate in 2025 with the same key and serial, so prefer one valid at `t`).
  const Certificate* signing = nullptr;
  {
    std::vector<const Sourced<Certificate>*> candidates;
    for (const auto& c : all.certificates)
      if (c.value.subject_cn() == kTcbSigningCn) candidates.push_back(&c);
    const Sourced<Certificate>* chosen = nullptr;
    for (const auto* c : candidates) {
      if (!chosen || (!chosen->value.check_validity(t) && c->value.check_validity(t))) chosen = c;
    }
    const std::string expected = "'" + std::string(kTcbSigningCn) +
                                 "' signed by the trusted root, valid at " + format_rfc3339(t) +
                                 ", not revoked";
    if (!chosen) {
      checks.fail("tdx.collateral.signing_cert", expected, "none",
                  "no TCB Signing certificate among the collateral (the TCB Info issuer chain)");
    } else {
      const Certificate& c = chosen->value;
      const std::string found = c.serial_hex() + " from " + chosen->source + ", valid " +
                                window(c.not_before(), c.not_after());
      std::vector<std::string> problems;
      if (!c.public_key().is_ec_curve(NID_X9_62_prime256v1))
        problems.push_back("key is " + c.public_key().describe() + ", expected EC P-256");
      if (c.issuer_cn() != kRootCaCn)
        problems.push_back("issuer is '" + c.issuer_cn() + "', expected '" + kRootCaCn + "'");
      if (!signed_by_root(c, root))
        problems.push_back("its signature does not verify with the trusted root key");
      for (const auto& other : all.certificates) {
        if (other.value.subject_cn() == kRootCaCn && !other.value.public_key().equals(root))
          problems.push_back("the collateral's root certificate (" + other.source +
                             ") is not the trusted root");
      }
      if (problems.empty()) {
        signing = &c;
        if (auto ok = c.check_validity(t); !ok) problems.push_back(ok.error().message());
        if (!root_crl_usable) {
          problems.push_back("its revocation cannot be checked without the Root CA CRL");
        } else if (auto entry = root_crls.find_revoked(c.serial())) {
          problems.push_back("revoked " + format_rfc3339(entry->revocation_date));
          signing = nullptr;
        }
      }
      if (problems.empty()) {
        checks.pass("tdx.collateral.signing_cert", expected, found);
      } else {
        checks.fail("tdx.collateral.signing_cert", expected, found, join(problems, "; "));
      }
    }
  }

  // TCB Info for this platform's FMSPC.
  auto signed_by_tcb_signing = [&](const auto& item) {
    return signing != nullptr && signature_ok(signing->public_key(), to_hex(signing->fingerprint()),
                                              as_bytes(item.value.body), item.value.signature);
  };
  auto newer_collateral = [](const auto& a, const auto& b) {
    const auto& x = a.value.value;
    const auto& y = b.value.value;
    if (x.tcb_evaluation_data_number != y.tcb_evaluation_data_number)
      return x.tcb_evaluation_data_number > y.tcb_evaluation_data_number;
    return x.issue_date > y.issue_date;
  };
  const Sourced<SignedTcbInfo>* tcb_info = nullptr;
  if (ext) {
    std::vector<const Sourced<SignedTcbInfo>*> candidates;
    for (const auto& i : all.tcb_infos)
      if (i.value.value.fmspc == ext->fmspc) candidates.push_back(&i);
    tcb_info = newest_verified(candidates, signed_by_tcb_signing, newer_collateral);
  }
  const std::string tcb_info_expected =
      "TDX TCB Info v3 for FMSPC " + (ext ? to_hex(ext->fmspc) : std::string("?")) +
      " signed by the TCB Signing key, current at " + format_rfc3339(t);
  if (!tcb_info) {
    std::vector<std::string> others;
    for (const auto& i : all.tcb_infos) others.push_back(to_hex(i.value.value.fmspc));
    checks.fail("tdx.collateral.tcb_info", tcb_info_expected,
                others.empty() ? "none" : "FMSPC " + join(others, ", "),
                std::string(others.empty() ? "no TCB Info supplied, cached or fetched"
                                           : "no TCB Info for this platform's FMSPC") +
                    (out.tcb_info_url ? "; PCS serves it at " + *out.tcb_info_url : ""));
  } else {
    out.tcb_info = *tcb_info;
    const TcbInfo& info = tcb_info->value.value;
    const std::string found = "TCB Info #" + std::to_string(info.tcb_evaluation_data_number) +
                              " from " + tcb_info->source + ", " +
                              window(info.issue_date, info.next_update);
    if (!signing) {
      checks.fail("tdx.collateral.tcb_info", tcb_info_expected, found,
                  "the signature cannot be checked without a trusted TCB Signing certificate");
    } else if (!signed_by_tcb_signing(*tcb_info)) {
      checks.fail("tdx.collateral.tcb_info", tcb_info_expected, found,
                  "the TCB Info signature does not verify with the TCB Signing key (the "
                  "tcbInfo bytes were altered)");
    } else {
      dated_check(checks, "tdx.collateral.tcb_info", tcb_info_expected, found,
                  freshness("the TCB Info", info.issue_date, info.next_update, t),
                  options.allow_stale_collateral);
    }
  }

  // QE Identity.
  std::vector<const Sourced<SignedQeIdentity>*> qe_candidates;
  for (const auto& i : all.qe_identities) qe_candidates.push_back(&i);
  const Sourced<SignedQeIdentity>* qe_identity =
      newest_verified(qe_candidates, signed_by_tcb_signing, newer_collateral);
  const std::string qe_expected =
      "TD_QE Identity v2 signed by the TCB Signing key, current at " + format_rfc3339(t);
  if (!qe_identity) {
    checks.fail("tdx.collateral.qe_identity", qe_expected, "none",
                "no QE Identity supplied, cached or fetched (PCS serves it at " +
                    pcs_qe_identity_url(kPcsBaseUrl) + ")");
  } else {
    out.qe_identity = *qe_identity;
    const QeIdentity& id = qe_identity->value.value;
    const std::string found = "QE Identity #" + std::to_string(id.tcb_evaluation_data_number) +
                              " from " + qe_identity->source + ", " +
                              window(id.issue_date, id.next_update);
    if (!signing) {
      checks.fail("tdx.collateral.qe_identity", qe_expected, found,
                  "the signature cannot be checked without a trusted TCB Signing certificate");
    } else if (!signed_by_tcb_signing(*qe_identity)) {
      checks.fail("tdx.collateral.qe_identity", qe_expected, found,
                  "the QE Identity signature does not verify with the TCB Signing key (the "
                  "enclaveIdentity bytes were altered)");
    } else {
      dated_check(checks, "tdx.collateral.qe_identity", qe_expected, found,
                  freshness("the QE Identity", id.issue_date, id.next_update, t),
                  options.allow_stale_collateral);
    }
  }

  // The quote against the collateral.
  if (tcb_info && ext) check_against_tcb_info(q, *ext, tcb_info->value.value, checks);
  if (qe_identity) check_qe_identity_match(q.qe_report, qe_identity->value.value, checks);

  const std::string status_expected = "a TCB status from TCB Info (any but Revoked)";
  if (tcb_info && ext) {
    const TcbInfo& info = tcb_info->value.value;
    TcbEvaluation e =
        evaluate_tdx_tcb(info, qe_identity ? &qe_identity->value.value : nullptr, *ext, q);
    std::string found = std::string(to_string(e.status));
    if (e.tcb_date) found += " (tcbDate " + format_rfc3339(*e.tcb_date) + ")";
    if (!e.advisory_ids.empty()) found += " advisories " + join(e.advisory_ids, ", ");
    std::string detail = level_summary(e, info);
    if (!e.notes.empty()) detail += "; " + join(e.notes, "; ");
    if (e.status == TcbStatus::kNotSupported || e.status == TcbStatus::kTdxModuleMismatch ||
        e.status == TcbStatus::kRevoked) {
      checks.fail("tdx.tcb.status", status_expected, found, detail);
    } else {
      checks.pass("tdx.tcb.status", status_expected, found, detail);
    }
    out.tcb = std::move(e);
  } else {
    checks.fail("tdx.tcb.status", status_expected, "unknown",
                ext ? "the TCB status cannot be determined without the platform's TCB Info"
                    : "the TCB status cannot be determined without the PCK certificate");
  }

  // ---- Event log ------------------------------------------------------------------------
  if (evidence.event_log) check_event_log(q, *evidence.event_log, out);
  return out;
}

}  // namespace cloister::attestation::tdx
