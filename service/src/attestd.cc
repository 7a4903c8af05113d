#include "cloister/service/attestd.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>

#include "cloister/common/base64.h"
#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "cloister/common/json.h"
#include "cloister/common/sha.h"
#include "cloister/policy/policy.h"
#include "cloister/service/evidence.h"
#include "cloister/service/init_data.h"
#include "cloister/service/jwe.h"
#include "cloister/service/kbs_error.h"
#include "cloister/service/report_data.h"
#include "openssl_util.h"

namespace cloister::service {
namespace {

using detail::random_bytes;
using kbs::KbsError;

constexpr std::size_t kKeySize = 32;
constexpr std::size_t kSealIvSize = 12;
constexpr const char* kSessionCookie = "kbs-session-id";
constexpr const char* kReferenceValuesId = "default";
constexpr const char* kSubmod = "cpu0";
constexpr const char* kAnnotated = "ear.veraison.annotated-evidence";
// The hex SHA-256 of the evidence a token's appraisal is of, so that a release names in the
// audit log the attestation that earned it.
constexpr const char* kEvidenceDigest = "cloister.evidence-sha256";
// The hex SHA-256 of the reference values document the appraisal used: a release needs the
// same document still in force, so changed reference values revoke the tokens issued under
// the old ones at once, not when they expire.
constexpr const char* kReferenceValuesDigest = "cloister.reference-values-sha256";

const FileLimit kKeyFileLimit{16 * 1024, "a service key file can be (a PEM key or 32 bytes)"};

// --- keys ---------------------------------------------------------------------------------

Result<Bytes> load_or_create_secret(const std::filesystem::path& path, std::size_t size) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    CLOISTER_TRY(Bytes key, read_file(path, kKeyFileLimit));
    if (key.size() != size) {
      return Error(path.string() + ": expected " + std::to_string(size) + " bytes, found " +
                   std::to_string(key.size()));
    }
    return key;
  }
  CLOISTER_TRY(Bytes key, random_bytes(size));
  CLOISTER_CHECK_OK(write_file_atomic(path, key, 0600));
  return key;
}

Result<std::string> new_token_key_pem() {
  CLOISTER_TRY(const detail::Curve curve, detail::curve_by_name("P-384", "token signing key"));
  CLOISTER_TRY(const detail::PkeyPtr key, detail::ec_generate(curve));
  std::unique_ptr<BIO, detail::OpensslDeleter<BIO, BIO_free_all>> bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return detail::openssl_error("writing the token signing key");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

// --- session cookies ----------------------------------------------------------------------

Bytes hmac_sha256(ByteView key, std::string_view data) {
  Bytes out(32);
  std::size_t size = 0;
  if (!EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                 reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
                 out.size(), &size)) {
    return {};
  }
  out.resize(size);
  return out;
}

struct Session {
  std::string nonce;
  kbs::Tee tee = kbs::Tee::kSnp;
  kbs::HashAlgorithm hash = kbs::kDefaultHash;
  UnixTime expires_at = 0;
};

std::string seal_session(const Session& s, ByteView key) {
  const nlohmann::json body = {{"nonce", s.nonce},
                               {"tee", kbs::to_string(s.tee)},
                               {"hash", kbs::to_string(s.hash)},
                               {"exp", s.expires_at}};
  const std::string payload = to_base64url(as_bytes(body.dump()));
  return payload + "." + to_base64url(hmac_sha256(key, payload));
}

Result<Session> open_session(std::string_view cookie, ByteView key, UnixTime now) {
  const auto dot = cookie.find('.');
  if (dot == std::string_view::npos)
    return Error("kbs-session-id: expected a session of this service (PAYLOAD.MAC), found " +
                 std::to_string(cookie.size()) + " characters without a '.'");
  const std::string_view payload = cookie.substr(0, dot);
  auto mac = from_base64url(cookie.substr(dot + 1));
  const Bytes expected = hmac_sha256(key, payload);
  if (!mac || mac->size() != expected.size() || expected.empty() ||
      CRYPTO_memcmp(mac->data(), expected.data(), expected.size()) != 0) {
    return Error(
        "kbs-session-id: the session's MAC does not verify (not issued by this "
        "deployment, or altered)");
  }
  CLOISTER_TRY(const Bytes json_bytes, from_base64url(payload));
  CLOISTER_TRY(const nlohmann::json doc,
               parse_json_strict(std::string_view(reinterpret_cast<const char*>(json_bytes.data()),
                                                  json_bytes.size()),
                                 "session"));
  Session s;
  s.nonce = doc.at("nonce").get<std::string>();
  CLOISTER_TRY(s.tee, kbs::parse_tee(doc.at("tee").get<std::string>()));
  CLOISTER_TRY(s.hash, kbs::parse_hash_algorithm(doc.at("hash").get<std::string>()));
  s.expires_at = doc.at("exp").get<UnixTime>();
  if (now >= s.expires_at) {
    return Error("kbs-session-id: the session expired at " + format_rfc3339(s.expires_at) +
                 " (now " + format_rfc3339(now) + "); start again with /kbs/v0/auth");
  }
  return s;
}

std::string cookie_value(const http::Request& request, std::string_view name) {
  const auto it = request.headers.find("cookie");
  if (it == request.headers.end()) return {};
  std::string_view rest = it->second;
  while (!rest.empty()) {
    const auto end = rest.find(';');
    std::string_view pair = rest.substr(0, end);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    if (pair.size() > name.size() && pair.substr(0, name.size()) == name &&
        pair[name.size()] == '=') {
      return std::string(pair.substr(name.size() + 1));
    }
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return {};
}

// The cookie with Expires alone (an RFC 9110 IMF-fixdate), as Trustee sends it: a Secure
// attribute would keep a client's cookie jar from sending it over --insecure-http.
std::string set_cookie(std::string_view value, UnixTime expires_at) {
  const std::time_t t = static_cast<std::time_t>(expires_at);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char date[64];
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return "Set-Cookie: " + std::string(kSessionCookie) + "=" + std::string(value) +
         "; Expires=" + date + "\r\n";
}

// --- responses ----------------------------------------------------------------------------

// Error messages quote the request, which need not be UTF-8: invalid bytes become U+FFFD rather
// than a type_error thrown out of the handler.
http::Response json_response(int status, const nlohmann::json& body) {
  http::Response r;
  r.status = status;
  r.body = dump_json(body);
  return r;
}

http::Response kbs_response(const KbsError& error) {
  return json_response(error.status(), error.body());
}

std::string failed_checks(const sdk::Verdict& verdict) {
  std::string out;
  for (const auto& c : verdict.checks.all()) {
    if (c.status != attestation::CheckStatus::kFail) continue;
    if (!out.empty()) out += "; ";
    out += c.name + ": expected " + (c.expected.empty() ? "-" : c.expected) + ", found " +
           (c.found.empty() ? "-" : c.found);
  }
  return out.empty() ? "no check ran" : out;
}

// A "repo/type/tag" path: three non-empty segments of [A-Za-z0-9._-], none "." or "..".
Result<std::string> resource_path(std::string_view rest) {
  int segments = 0;
  std::size_t start = 0;
  while (true) {
    const auto end = rest.find('/', start);
    const std::string_view seg =
        rest.substr(start, end == std::string_view::npos ? end : end - start);
    const std::string which = "segment " + std::to_string(segments + 1);
    if (seg.empty() || seg == "." || seg == "..")
      return Error(which + ": expected a non-empty name other than '.' and '..', found '" +
                   std::string(seg) + "'");
    for (char ch : seg) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' && ch != '-') {
        return Error(which + ": expected characters of [A-Za-z0-9._-], found '" +
                     printable(std::string_view(&ch, 1)) + "'");
      }
    }
    ++segments;
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  if (segments != 3) {
    return Error("expected repo/type/tag, found " + std::to_string(segments) + " segments");
  }
  return std::string(rest);
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// --- metrics ------------------------------------------------------------------------------

constexpr std::array<double, 11> kLatencyBuckets{0.001, 0.002, 0.005, 0.01, 0.025, 0.05,
                                                 0.1,   0.25,  0.5,   1.0,  2.5};

enum class Denial {
  kSession,
  kReplay,
  kEvidence,
  kReferenceValues,
  kVerdict,
  kToken,
  kResourcePolicy,
  kMissingResource,
  kAdmin,
  kRateLimit,
  kAudit,  // a token or secret withheld because its audit record could not be written
  kCount
};
constexpr auto kDenialNames = std::to_array<const char*>(
    {"session", "replay", "evidence", "reference_values", "verdict", "token", "resource_policy",
     "missing_resource", "admin", "rate_limit", "audit"});
static_assert(kDenialNames.size() == static_cast<std::size_t>(Denial::kCount),
              "a name for every Denial");

struct Metrics {
  std::atomic<std::uint64_t> auth{0};
  std::atomic<std::uint64_t> attest_pass{0};
  std::atomic<std::uint64_t> attest_fail{0};
  std::atomic<std::uint64_t> releases{0};
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(Denial::kCount)> denials{};
  std::array<std::atomic<std::uint64_t>, kLatencyBuckets.size()> attest_buckets{};
  std::atomic<std::uint64_t> attest_count{0};
  std::atomic<std::uint64_t> attest_micros{0};

  void deny(Denial d) { ++denials[static_cast<std::size_t>(d)]; }
  void observe_attest(std::chrono::steady_clock::duration took) {
    const double s = std::chrono::duration<double>(took).count();
    for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i)
      if (s <= kLatencyBuckets[i]) ++attest_buckets[i];
    ++attest_count;
    attest_micros += static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(took).count());
  }
};

// Token buckets per client address: `rate` tokens a second, holding at most `rate` (at least
// one). The table is bounded: when it holds kMaxClients, buckets that have refilled completely
// (clients idle for a second or more) are forgotten first.
class RateLimiter {
 public:
  explicit RateLimiter(double rate) : rate_(rate), capacity_(std::max(1.0, rate)) {}

  bool admit(const std::string& client, std::chrono::steady_clock::time_point now) {
    std::lock_guard lock(mutex_);
    if (buckets_.size() >= kMaxClients && !buckets_.count(client)) forget_full(now);
    if (buckets_.size() >= kMaxClients) return false;
    auto [it, fresh] = buckets_.try_emplace(client, Bucket{capacity_, now});
    Bucket& b = it->second;
    if (!fresh) {
      b.tokens = std::min(capacity_,
                          b.tokens + rate_ * std::chrono::duration<double>(now - b.last).count());
      b.last = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

 private:
  static constexpr std::size_t kMaxClients = 65536;
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point last;
  };
  void forget_full(std::chrono::steady_clock::time_point now) {
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      const double refilled =
          it->second.tokens + rate_ * std::chrono::duration<double>(now - it->second.last).count();
      it = refilled >= capacity_ ? buckets_.erase(it) : std::next(it);
    }
  }
  double rate_;
  double capacity_;
  std::mutex mutex_;
  std::map<std::string, Bucket> buckets_;
};

// The tokens this replica issued, by the SHA-256 of their bytes, with their claims: a token
// presented back to the replica that signed it needs no second signature verification (the
// digest of the exact bytes identifies it as surely as the signature would). Bounded: the
// oldest go first. A token another replica issued, or one forgotten, is verified as usual.
class IssuedTokens {
 public:
  void remember(std::string_view token, const ear::Claims& claims) {
    const Sha256Digest digest = sha256(as_bytes(token));
    std::lock_guard lock(mutex_);
    if (!by_digest_.emplace(digest, claims).second) return;
    order_.push_back(digest);
    if (order_.size() > kMaxTokens) {
      by_digest_.erase(order_.front());
      order_.pop_front();
    }
  }

  std::optional<ear::Claims> find(std::string_view token) const {
    const Sha256Digest digest = sha256(as_bytes(token));
    std::lock_guard lock(mutex_);
    const auto it = by_digest_.find(digest);
    if (it == by_digest_.end()) return std::nullopt;
    return it->second;
  }

 private:
  static constexpr std::size_t kMaxTokens = 1024;
  mutable std::mutex mutex_;
  std::map<Sha256Digest, ear::Claims> by_digest_;
  std::deque<Sha256Digest> order_;
};

}  // namespace

Status check_keys_against_store(Store& store, const ServiceKeys& keys) {
  struct Check {
    const char* name;
    std::string value;
    const char* file;
  };
  const Check checks[] = {
      {"kek_check", to_hex(hmac_sha256(keys.kek, "cloister-attestd key check v1")), "kek.key"},
      {"session_key_check", to_hex(hmac_sha256(keys.session_key, "cloister-attestd key check v1")),
       "session.key"},
      {"token_kid", keys.token_signer.kid(), "token-key.pem"},
  };
  for (const Check& check : checks) {
    CLOISTER_TRY(const std::string stored, store.claim_setting(check.name, check.value));
    if (stored != check.value) {
      return Error(ErrorCode::kFailedPrecondition,
                   std::string("keys: ") + check.file + " differs from the one the store's other " +
                       "users hold (" + check.name + ": expected " + stored + ", found " +
                       check.value + "); give every replica the same " + check.file);
    }
  }
  return {};
}

Result<LoadedKeys> load_or_create_keys(const std::filesystem::path& state_dir) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec) return Error("state directory " + state_dir.string() + ": " + ec.message());
  std::filesystem::permissions(state_dir, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, ec);
  const auto token_path = state_dir / "token-key.pem";
  if (!std::filesystem::exists(token_path, ec)) {
    CLOISTER_TRY(const std::string pem, new_token_key_pem());
    CLOISTER_CHECK_OK(write_file_atomic(token_path, as_bytes(pem), 0600));
  }
  CLOISTER_TRY(const std::string pem, read_text_file(token_path, kKeyFileLimit));
  auto signer = ear::Signer::from_pem(pem);
  if (!signer) return signer.error().with_context(token_path.string());
  LoadedKeys out{ServiceKeys{std::move(*signer), {}, {}, {}}, std::nullopt};
  CLOISTER_TRY(out.keys.session_key, load_or_create_secret(state_dir / "session.key", kKeySize));
  CLOISTER_TRY(out.keys.kek, load_or_create_secret(state_dir / "kek.key", kKeySize));
  const auto admin_path = state_dir / "admin-key.sha256";
  if (!std::filesystem::exists(admin_path, ec)) {
    CLOISTER_TRY(const Bytes raw, random_bytes(kKeySize));
    const std::string key = to_base64url(raw);
    const auto digest = sha256(as_bytes(key));
    CLOISTER_CHECK_OK(write_file_atomic(admin_path, digest, 0600));
    out.new_admin_key = key;
  }
  CLOISTER_TRY(out.keys.admin_key_digest, read_file(admin_path, kKeyFileLimit));
  if (out.keys.admin_key_digest.size() != 32) {
    return Error(admin_path.string() + ": expected a 32-byte SHA-256, found " +
                 std::to_string(out.keys.admin_key_digest.size()) + " bytes");
  }
  return out;
}

Result<ResourcePolicy> parse_resource_policy(std::string_view json_text) {
  CLOISTER_TRY(const nlohmann::json doc, parse_json_strict(json_text, "resource policy"));
  if (!doc.is_object()) return Error("resource policy: expected a JSON object");
  ResourcePolicy p;
  for (const auto& [key, value] : doc.items()) {
    const std::string where = "resource policy /" + key;
    if (!value.is_array()) return Error(where + ": expected an array of strings");
    std::vector<std::string> items;
    for (const auto& item : value) {
      if (!item.is_string()) return Error(where + ": expected an array of strings");
      items.push_back(item.get<std::string>());
    }
    if (items.empty()) {
      return Error(where +
                   ": an empty list admits no guest; leave the key out for its default, or "
                   "delete the resource to release it to no one");
    }
    if (key == "accept_status") {
      p.accept_status.clear();
      for (const auto& name : items) {
        auto tier = ear::parse_tier(name);
        if (!tier) return tier.error().with_context(where);
        p.accept_status.push_back(*tier);
      }
    } else if (key == "tees") {
      for (const auto& name : items) {
        if (auto tee = kbs::parse_tee(name); !tee) return tee.error().with_context(where);
      }
      p.tees = items;
    } else if (key == "reference_values") {
      p.reference_values = items;
    } else {
      return Error("resource policy: unknown key '" + key +
                   "' (accept_status, tees, reference_values)");
    }
  }
  return p;
}

nlohmann::json to_json(const ResourcePolicy& policy) {
  nlohmann::json out = nlohmann::json::object();
  out["accept_status"] = nlohmann::json::array();
  for (auto tier : policy.accept_status) out["accept_status"].push_back(ear::to_string(tier));
  if (!policy.tees.empty()) out["tees"] = policy.tees;
  if (!policy.reference_values.empty()) out["reference_values"] = policy.reference_values;
  return out;
}

namespace {

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

// What a token this service issued says of the attestation behind it (empty where it is
// silent): its TEE, measurement, evidence digest, and the runtime data it bound.
struct TokenFacts {
  std::string tee;
  std::string measurement;
  std::string evidence_digest;
  std::string reference_values_digest;
  std::string nonce;
  nlohmann::json tee_key;
  nlohmann::json report;        // the TEE's report as the verdict gave it
  bool with_init_data = false;  // init_data_claims not null: the attestation sent init-data
};

TokenFacts facts_of(const ear::Claims& claims) {
  TokenFacts f;
  const auto it = claims.submods.find(kSubmod);
  if (it == claims.submods.end()) return f;
  const auto digest = it->second.extensions.find(kEvidenceDigest);
  if (digest != it->second.extensions.end() && digest->is_string()) {
    f.evidence_digest = digest->get<std::string>();
  }
  const auto reference = it->second.extensions.find(kReferenceValuesDigest);
  if (reference != it->second.extensions.end() && reference->is_string()) {
    f.reference_values_digest = reference->get<std::string>();
  }
  const auto annotated = it->second.extensions.find(kAnnotated);
  if (annotated == it->second.extensions.end() || !annotated->is_object()) return f;
  const auto init = annotated->find("init_data_claims");
  f.with_init_data = init != annotated->end() && !init->is_null();
  for (const auto& [key, value] : annotated->items()) {
    if (!value.is_object() || key == "init_data_claims") continue;
    if (key == "runtime_data_claims") {
      f.tee_key = value.value("tee-pubkey", nlohmann::json());
      const auto nonce = value.find("nonce");
      if (nonce != value.end() && nonce->is_string()) f.nonce = nonce->get<std::string>();
    } else {
      f.tee = key;
      f.report = value;
      for (const char* field : {"measurement", "mr_td"}) {
        const auto m = value.find(field);
        if (m != value.end() && m->is_string()) f.measurement = m->get<std::string>();
      }
    }
  }
  return f;
}

// The same attestation sent again on an attested session must carry the init-data it was
// attested with (the document whose digest the token's report holds), or none if it had none.
Status same_init_data(const kbs::Attestation& a, const TokenFacts& facts) {
  if (!a.init_data) {
    if (!facts.with_init_data) return {};
    return Error("init-data: this session was attested with init-data; found none");
  }
  if (!facts.with_init_data)
    return Error("init-data: this session was attested without init-data; found a document");
  CLOISTER_TRY(const init_data::Document document, init_data::parse(*a.init_data));
  const auto tee = kbs::parse_tee(facts.tee);
  if (!tee) return tee.error();
  return init_data::check_binding(*tee, document, facts.report);
}

}  // namespace

Status evaluate(const ResourcePolicy& policy, const ear::Claims& claims) {
  const auto it = claims.submods.find(kSubmod);
  if (it == claims.submods.end()) return Error("the token has no cpu0 appraisal");
  const ear::Appraisal& a = it->second;
  bool status_ok = false;
  std::vector<std::string> accepted;
  for (auto tier : policy.accept_status) {
    accepted.emplace_back(ear::to_string(tier));
    status_ok = status_ok || tier == a.status;
  }
  if (!status_ok) {
    return Error("accept_status: expected one of [" + joined(accepted) + "], found " +
                 std::string(ear::to_string(a.status)));
  }
  if (!policy.tees.empty()) {
    const std::string tee = facts_of(claims).tee;
    if (std::find(policy.tees.begin(), policy.tees.end(), tee) == policy.tees.end()) {
      return Error("tees: expected one of [" + joined(policy.tees) + "], found " +
                   (tee.empty() ? "none" : tee));
    }
  }
  if (!policy.reference_values.empty()) {
    const std::string id = a.policy_id.value_or("");
    if (std::find(policy.reference_values.begin(), policy.reference_values.end(), id) ==
        policy.reference_values.end()) {
      return Error("reference_values: expected one of [" + joined(policy.reference_values) +
                   "], found " + (id.empty() ? "none" : id));
    }
  }
  return {};
}

struct AttestationService::Impl {
  std::shared_ptr<Store> store;
  ServiceKeys keys;
  ServiceOptions options;
  sdk::Verifier verifier;
  nlohmann::json jwks;
  ear::KeySet token_keys;  // jwks, imported once for every token presented
  mutable IssuedTokens issued;
  mutable Metrics metrics;
  mutable std::optional<RateLimiter> limiter;

  Impl(std::shared_ptr<Store> s, ServiceKeys k, ServiceOptions o)
      : store(std::move(s)),
        keys(std::move(k)),
        options(std::move(o)),
        verifier(options.verifier),
        jwks(ear::jwks({&keys.token_signer})),
        token_keys(jwks) {
    if (options.rate_limit > 0) limiter.emplace(options.rate_limit);
  }

  UnixTime now() const { return options.clock ? options.clock() : unix_now(); }

  // Appends the audit record. A failure is logged and returned: a denial stands without its
  // record, but a token or a secret is only handed out, and an admin change only made, once its
  // record is written.
  Status audit(const std::string& client, const std::string& tee, const std::string& measurement,
               const std::string& evidence_digest, const std::string& policy_digest,
               const std::string& resource, const std::string& outcome,
               const std::string& reason) const {
    audit::Record r{now(),         client,   tee,     measurement, evidence_digest,
                    policy_digest, resource, outcome, reason};
    auto appended = store->append_audit(r);
    if (appended) return {};
    std::fprintf(stderr, "{\"level\":\"error\",\"msg\":\"audit append failed\",\"error\":%s}\n",
                 dump_json(appended.error().message()).c_str());
    return Error(appended.error().code(),
                 "the audit log could not record it: " + appended.error().message());
  }

  http::Response auth(const http::Request& req, const std::string& client) const {
    auto deny = [&](Denial d, const Error& why, const std::string& tee) {
      metrics.deny(d);
      (void)audit(client, tee, "", "", "", "", "denied", why.message());
      return kbs_response(kbs::auth_failed(why));
    };
    auto request = kbs::parse_request(req.body, options.versions);
    if (!request) return deny(Denial::kSession, request.error(), "");
    const std::string tee(kbs::to_string(request->tee));
    if (request->tee != kbs::Tee::kSnp && request->tee != kbs::Tee::kTdx) {
      return deny(Denial::kEvidence,
                  Error(ErrorCode::kUnimplemented, "tee: expected snp or tdx, found " + tee), tee);
    }
    auto nonce = kbs::make_nonce();
    if (!nonce) return kbs_response(kbs::auth_failed(nonce.error()));
    Session s{*nonce, request->tee, kbs::kDefaultHash, now() + options.session_lifetime.count()};
    ++metrics.auth;
    http::Response r = json_response(200, kbs::to_json(kbs::Challenge{*nonce, ""}));
    r.extra_headers = set_cookie(seal_session(s, keys.session_key), s.expires_at);
    return r;
  }

  struct Appraised {
    sdk::Verdict verdict;
    std::string measurement;
    std::string policy_digest;
  };

  Result<Appraised> appraise(const Session& s, const kbs::Attestation& a,
                             std::string& evidence_digest) const {
    CLOISTER_TRY(const kbs::ReportData expected,
                 kbs::expected_report_data(a.tee_pubkey, a.nonce, a.additional_evidence, s.hash));
    auto document = store->get_policy(kReferenceValuesId);
    if (!document) {
      return Error(ErrorCode::kFailedPrecondition,
                   "reference values '" + std::string(kReferenceValuesId) +
                       "': " + document.error().message() + " (upload them with the admin API)");
    }
    CLOISTER_TRY(policy::Policy policy, policy::parse_policy(*document));
    sdk::VerifyRequest request;
    const Bytes rd(expected.begin(), expected.end());
    if (s.tee == kbs::Tee::kSnp) {
      if (!policy.snp) {
        return Error(ErrorCode::kFailedPrecondition,
                     "reference values 'default' have no snp section, so no SEV-SNP guest is "
                     "accepted");
      }
      CLOISTER_TRY(evidence::SnpEvidence e, evidence::parse_snp_evidence(a.primary_evidence));
      request.evidence = std::move(e.report);
      request.tee = "snp";
      if (e.cert_chain) {
        for (auto& cert : *e.cert_chain) {
          if (cert.type == "VCEK" || cert.type == "VLEK" || cert.type == "ASK" ||
              cert.type == "ARK") {
            request.certificates.push_back(std::move(cert.data));
          }
        }
      }
      policy.snp->report_data = rd;
    } else {
      if (!policy.tdx) {
        return Error(ErrorCode::kFailedPrecondition,
                     "reference values 'default' have no tdx section, so no TDX guest is "
                     "accepted");
      }
      CLOISTER_TRY(evidence::TdxEvidence e, evidence::parse_tdx_evidence(a.primary_evidence));
      request.evidence = std::move(e.quote);
      request.tee = "tdx";
      request.event_log = std::move(e.cc_eventlog);
      request.collateral = options.tdx_collateral;
      policy.tdx->report_data = rd;
    }
    evidence_digest = to_hex(sha256(request.evidence));
    request.policy = std::move(policy);
    Appraised out;
    out.policy_digest = to_hex(sha256(as_bytes(*document)));
    CLOISTER_TRY(out.verdict, verifier.verify(request));
    const auto& report = out.verdict.report;
    for (const char* field : {"measurement", "mr_td"}) {
      if (report.is_object() && report.contains(field) && report[field].is_string()) {
        out.measurement = report[field].get<std::string>();
      }
    }
    return out;
  }

  http::Response attest(const http::Request& req, const std::string& client) const {
    const auto started = std::chrono::steady_clock::now();
    const UnixTime t = now();
    const std::string cookie = cookie_value(req, kSessionCookie);
    auto deny = [&](Denial d, const Error& why, const std::string& tee,
                    const std::string& measurement, const std::string& evidence_digest,
                    const std::string& policy_digest) {
      metrics.deny(d);
      ++metrics.attest_fail;
      (void)audit(client, tee, measurement, evidence_digest, policy_digest, "", "denied",
                  why.message());
      metrics.observe_attest(std::chrono::steady_clock::now() - started);
      return kbs_response(kbs::attest_failed(why));
    };
    if (cookie.empty()) {
      return deny(Denial::kSession, Error("no kbs-session-id cookie: call /kbs/v0/auth first"), "",
                  "", "", "");
    }
    auto session = open_session(cookie, keys.session_key, t);
    if (!session) {
      // After a pass the cookie is the token (set below). The same attestation sent again on
      // that session is answered with the same token, as Trustee answers a session already
      // attested; nothing else is.
      auto claims = token_claims(cookie);
      if (!claims) {
        const bool jwt = std::count(cookie.begin(), cookie.end(), '.') == 2;
        return deny(Denial::kSession,
                    jwt ? Error("kbs-session-id: the session's attestation token: " +
                                claims.error().message())
                        : session.error(),
                    "", "", "", "");
      }
      const TokenFacts facts = facts_of(*claims);
      auto attestation = kbs::parse_attestation(req.body);
      if (!attestation) {
        return deny(Denial::kEvidence, attestation.error(), facts.tee, facts.measurement,
                    facts.evidence_digest, "");
      }
      if (attestation->nonce != facts.nonce ||
          kbs::to_json(attestation->tee_pubkey) != facts.tee_key) {
        return deny(Denial::kReplay,
                    Error("runtime-data: this session was attested for nonce " + facts.nonce +
                          " and its tee-pubkey; found nonce " + attestation->nonce +
                          " (start again with /kbs/v0/auth)"),
                    facts.tee, facts.measurement, facts.evidence_digest, "");
      }
      if (auto same = same_init_data(*attestation, facts); !same) {
        return deny(Denial::kReplay,
                    Error(same.error().message() + " (start again with /kbs/v0/auth)"), facts.tee,
                    facts.measurement, facts.evidence_digest, "");
      }
      if (auto held = reference_values_in_force(facts); !held) {
        const Denial d = stale_token_denial(held.error());
        return deny(d,
                    d == Denial::kToken ? Error("the session's token: " + held.error().message() +
                                                " (start again with /kbs/v0/auth)")
                                        : held.error(),
                    facts.tee, facts.measurement, facts.evidence_digest, "");
      }
      if (auto recorded = audit(client, facts.tee, facts.measurement, facts.evidence_digest, "", "",
                                "attested", "ok: the session's token, answered again");
          !recorded) {
        metrics.deny(Denial::kAudit);
        return kbs_response(kbs::attest_failed(recorded.error()));
      }
      metrics.observe_attest(std::chrono::steady_clock::now() - started);
      http::Response r = json_response(200, kbs::attest_response(cookie));
      r.extra_headers = set_cookie(cookie, claims->expires_at.value_or(t));
      return r;
    }
    const std::string tee(kbs::to_string(session->tee));
    auto attestation = kbs::parse_attestation(req.body);
    if (!attestation) return deny(Denial::kEvidence, attestation.error(), tee, "", "", "");
    if (attestation->nonce != session->nonce) {
      return deny(Denial::kSession,
                  Error("runtime-data.nonce: expected the session's nonce " + session->nonce +
                        ", found " + attestation->nonce),
                  tee, "", "", "");
    }
    // A key no resource could be encrypted to (RSA1_5, P-384, e = 1, off the curve) is refused
    // now, not after the nonce is spent and a token signed.
    if (auto usable = jwe::check_recipient(attestation->tee_pubkey); !usable)
      return deny(Denial::kEvidence, usable.error().with_context("runtime-data"), tee, "", "", "");
    std::optional<init_data::Document> init;
    if (attestation->init_data) {
      auto parsed = init_data::parse(*attestation->init_data);
      if (!parsed) return deny(Denial::kEvidence, parsed.error(), tee, "", "", "");
      init = std::move(*parsed);
    }
    auto fresh = store->consume_nonce(session->nonce, session->expires_at, t);
    if (!fresh) return deny(Denial::kReplay, fresh.error(), tee, "", "", "");
    if (!*fresh) {
      return deny(Denial::kReplay,
                  Error("nonce " + session->nonce + " was already used (a replayed attestation)"),
                  tee, "", "", "");
    }
    std::string evidence_digest;
    auto appraised = appraise(*session, *attestation, evidence_digest);
    if (!appraised) {
      const bool rv = appraised.error().code() == ErrorCode::kFailedPrecondition;
      return deny(rv ? Denial::kReferenceValues : Denial::kEvidence, appraised.error(), tee, "",
                  evidence_digest, "");
    }
    if (!appraised->verdict.passed()) {
      return deny(Denial::kVerdict,
                  Error("the evidence does not satisfy the reference values: " +
                        failed_checks(appraised->verdict)),
                  tee, appraised->measurement, evidence_digest, appraised->policy_digest);
    }
    if (init) {
      if (auto bound = init_data::check_binding(session->tee, *init, appraised->verdict.report);
          !bound) {
        return deny(Denial::kVerdict, bound.error(), tee, appraised->measurement, evidence_digest,
                    appraised->policy_digest);
      }
    }
    ear::Claims claims;
    claims.issued_at = t;
    claims.expires_at = t + options.token_lifetime.count();
    claims.issuer = options.issuer;
    claims.verifier_developer = "https://github.com/cloister";
    claims.verifier_build = std::string("cloister-attestd ") + CLOISTER_VERSION;
    ear::Appraisal appraisal = ear::appraise(appraised->verdict, kReferenceValuesId);
    appraisal.extensions[kAnnotated] = {
        {tee, appraised->verdict.report},
        {"runtime_data_claims",
         {{"nonce", attestation->nonce}, {"tee-pubkey", kbs::to_json(attestation->tee_pubkey)}}},
        {"init_data_claims", init ? init->claims : nlohmann::json(nullptr)}};
    appraisal.extensions[kEvidenceDigest] = evidence_digest;
    appraisal.extensions[kReferenceValuesDigest] = appraised->policy_digest;
    claims.submods[kSubmod] = std::move(appraisal);
    auto token = keys.token_signer.sign(claims);
    if (!token) return deny(Denial::kEvidence, token.error(), tee, "", evidence_digest, "");
    if (token->size() > kMaxTokenBytes) {
      return deny(
          Denial::kEvidence,
          Error("the attestation token would be " + std::to_string(token->size()) +
                " bytes, more than the " + std::to_string(kMaxTokenBytes) +
                " a guest can send back in a request header (the init-data claims are " +
                std::to_string(init ? dump_json(init->claims).size() : 0) + " bytes of it)"),
          tee, appraised->measurement, evidence_digest, appraised->policy_digest);
    }
    if (auto recorded = audit(client, tee, appraised->measurement, evidence_digest,
                              appraised->policy_digest, "", "attested",
                              "ok: " + std::string(ear::to_string(claims.submods[kSubmod].status)));
        !recorded) {
      metrics.deny(Denial::kAudit);
      ++metrics.attest_fail;
      metrics.observe_attest(std::chrono::steady_clock::now() - started);
      return kbs_response(kbs::attest_failed(recorded.error()));
    }
    issued.remember(*token, claims);
    ++metrics.attest_pass;
    metrics.observe_attest(std::chrono::steady_clock::now() - started);
    http::Response r = json_response(200, kbs::attest_response(*token));
    r.extra_headers = set_cookie(*token, *claims.expires_at);
    return r;
  }

  // The attestation token a request presents: the bearer token, else the session cookie that
  // /kbs/v0/attest set to it.
  static std::string presented_token(const http::Request& req) {
    if (const auto it = req.headers.find("authorization");
        it != req.headers.end() && starts_with(it->second, "Bearer ")) {
      return it->second.substr(7);
    }
    return cookie_value(req, kSessionCookie);
  }

  // The claims of a presented token: remembered when this replica issued it, else verified
  // against the token keys; their times are checked either way.
  Result<ear::Claims> token_claims(const std::string& token) const {
    if (auto known = issued.find(token)) {
      CLOISTER_CHECK_OK(ear::check_times(*known, now()));
      return std::move(*known);
    }
    return ear::verify(token, token_keys, now());
  }

  // Whether the reference values a token was appraised under are still the ones in force: a
  // change or deletion revokes every token issued under the old document. Fails
  // kFailedPrecondition for such a token, kUnavailable when the store cannot say.
  Status reference_values_in_force(const TokenFacts& facts) const {
    auto in_force = store->get_policy(kReferenceValuesId);
    if (!in_force && in_force.error().code() != ErrorCode::kNotFound) {
      return Error(ErrorCode::kUnavailable, "reference values '" + std::string(kReferenceValuesId) +
                                                "': " + in_force.error().message());
    }
    const std::string digest = in_force ? to_hex(sha256(as_bytes(*in_force))) : "none";
    if (facts.reference_values_digest == digest) return {};
    return Error(ErrorCode::kFailedPrecondition,
                 std::string(kReferenceValuesDigest) +
                     ": expected the reference values in force (" + digest + "), found " +
                     (facts.reference_values_digest.empty() ? std::string("none")
                                                            : facts.reference_values_digest) +
                     ": they changed since the token was issued; attest again");
  }

  // How a refusal of reference_values_in_force() counts: a stale token is a token denial, a
  // store that cannot say is a reference-values one.
  static Denial stale_token_denial(const Error& why) {
    return why.code() == ErrorCode::kFailedPrecondition ? Denial::kToken : Denial::kReferenceValues;
  }

  // The KBS error for a token reference_values_in_force() refused.
  static KbsError stale_token_error(const Error& why) {
    return why.code() == ErrorCode::kFailedPrecondition
               ? KbsError(kbs::ErrorKind::kTokenVerifierError,
                          "Token Verifier error: " + why.message())
               : KbsError(kbs::ErrorKind::kPluginInternalError,
                          "Plugin internal error: " + why.message());
  }

  // The CWT form of the token the request presents: the same claims, verified, signed again as
  // a COSE_Sign1 with the same key, while the reference values it was appraised under hold.
  http::Response cwt(const http::Request& req, const std::string& client) const {
    const std::string token = presented_token(req);
    TokenFacts facts;
    auto deny = [&](const KbsError& e, Denial d = Denial::kToken) {
      metrics.deny(d);
      (void)audit(client, facts.tee, facts.measurement, facts.evidence_digest, "", "", "denied",
                  e.detail());
      return kbs_response(e);
    };
    if (token.empty()) return deny(kbs::token_not_found());
    auto claims = token_claims(token);
    if (!claims) {
      return deny(KbsError(kbs::ErrorKind::kTokenVerifierError,
                           "Token Verifier error: " + claims.error().message()));
    }
    facts = facts_of(*claims);
    if (auto held = reference_values_in_force(facts); !held)
      return deny(stale_token_error(held.error()), stale_token_denial(held.error()));
    auto signed_cwt = keys.token_signer.sign_cwt(*claims);
    if (!signed_cwt) {
      return deny(KbsError(kbs::ErrorKind::kTokenVerifierError,
                           "Token Verifier error: " + signed_cwt.error().message()));
    }
    if (auto recorded = audit(client, facts.tee, facts.measurement, facts.evidence_digest, "", "",
                              "cwt", "ok: the token signed again as a CWT");
        !recorded) {
      metrics.deny(Denial::kAudit);
      return kbs_response(KbsError(kbs::ErrorKind::kPluginInternalError,
                                   "Plugin internal error: " + recorded.error().message()));
    }
    http::Response r;
    r.content_type = "application/eat+cwt";
    r.body.assign(signed_cwt->begin(), signed_cwt->end());
    return r;
  }

  http::Response resource(const http::Request& req, const std::string& client,
                          const std::string& path) const {
    const std::string token = presented_token(req);
    TokenFacts facts;
    // The SHA-256 of the resource's policy text, as its admin-put record gives it, once read.
    std::string policy_digest;
    auto deny = [&](Denial d, const KbsError& e) {
      metrics.deny(d);
      (void)audit(client, facts.tee, facts.measurement, facts.evidence_digest, policy_digest, path,
                  "denied", e.detail());
      return kbs_response(e);
    };
    if (token.empty()) return deny(Denial::kToken, kbs::token_not_found());
    auto claims = token_claims(token);
    if (!claims) {
      return deny(Denial::kToken, KbsError(kbs::ErrorKind::kTokenVerifierError,
                                           "Token Verifier error: " + claims.error().message()));
    }
    facts = facts_of(*claims);
    if (auto held = reference_values_in_force(facts); !held)
      return deny(stale_token_denial(held.error()), stale_token_error(held.error()));
    auto stored = store->get_resource(path);
    if (!stored) {
      const bool missing = stored.error().code() == ErrorCode::kNotFound;
      return deny(missing ? Denial::kMissingResource : Denial::kResourcePolicy,
                  KbsError(kbs::ErrorKind::kPluginInternalError,
                           "Plugin internal error: " + stored.error().message()));
    }
    policy_digest = to_hex(sha256(as_bytes(stored->policy)));
    auto policy = parse_resource_policy(stored->policy);
    if (!policy) {
      return deny(Denial::kResourcePolicy, kbs::policy_deny(policy.error().message()));
    }
    if (auto allowed = evaluate(*policy, *claims); !allowed) {
      return deny(Denial::kResourcePolicy, kbs::policy_deny(allowed.error().message()));
    }
    auto key = kbs::parse_tee_pubkey(facts.tee_key);
    if (!key) {
      return deny(Denial::kToken,
                  KbsError(kbs::ErrorKind::kJweError,
                           "JWE error: token tee-pubkey: " + key.error().message()));
    }
    auto plaintext = unseal(path, stored->sealed);
    if (!plaintext) {
      return deny(Denial::kMissingResource,
                  KbsError(kbs::ErrorKind::kPluginInternalError,
                           "Plugin internal error: " + plaintext.error().message()));
    }
    auto jwe = jwe::encrypt(*key, *plaintext);
    OPENSSL_cleanse(plaintext->data(), plaintext->size());
    if (!jwe) {
      return deny(Denial::kToken,
                  KbsError(kbs::ErrorKind::kJweError, "JWE error: " + jwe.error().message()));
    }
    if (auto recorded = audit(client, facts.tee, facts.measurement, facts.evidence_digest,
                              policy_digest, path, "released", "ok");
        !recorded) {
      metrics.deny(Denial::kAudit);
      return kbs_response(KbsError(kbs::ErrorKind::kPluginInternalError,
                                   "Plugin internal error: " + recorded.error().message()));
    }
    ++metrics.releases;
    return json_response(200, *jwe);
  }

  Result<Bytes> seal(const std::string& path, ByteView plaintext) const {
    CLOISTER_TRY(Bytes iv, random_bytes(kSealIvSize));
    CLOISTER_TRY(const detail::Sealed s, detail::gcm_seal(keys.kek, iv, as_bytes(path), plaintext));
    iv.insert(iv.end(), s.ciphertext.begin(), s.ciphertext.end());
    iv.insert(iv.end(), s.tag.begin(), s.tag.end());
    return iv;
  }

  Result<Bytes> unseal(const std::string& path, ByteView sealed) const {
    if (sealed.size() < kSealIvSize + detail::kGcmTagSize) {
      return Error(ErrorCode::kInternal, "sealed resource " + path + " is truncated");
    }
    auto plain = detail::gcm_open(
        keys.kek, sealed.subspan(0, kSealIvSize), as_bytes(path),
        sealed.subspan(kSealIvSize, sealed.size() - kSealIvSize - detail::kGcmTagSize),
        sealed.subspan(sealed.size() - detail::kGcmTagSize));
    if (!plain) {
      return Error(ErrorCode::kInternal,
                   "sealed resource " + path + " does not open under this deployment's KEK");
    }
    return plain;
  }

  bool admin_authorized(const http::Request& req) const {
    const auto it = req.headers.find("authorization");
    if (it == req.headers.end() || !starts_with(it->second, "Bearer ")) return false;
    const auto digest = sha256(as_bytes(std::string_view(it->second).substr(7)));
    return keys.admin_key_digest.size() == digest.size() &&
           CRYPTO_memcmp(digest.data(), keys.admin_key_digest.data(), digest.size()) == 0;
  }

  static http::Response admin_error(const Error& e) {
    return json_response(http::status_for(e.code()),
                         {{"error", e.message()}, {"code", to_string(e.code())}});
  }

  static http::Response listing(const Result<std::vector<std::string>>& items) {
    if (!items) return admin_error(items.error());
    return json_response(200, *items);
  }

  // An admin change: recorded first ("requested"), then made, so that no change — not even one
  // interrupted by kill -9 — goes without its record; a change the audit log cannot record is
  // not made (503). A store failure after the record adds a second record naming it.
  http::Response audited_change(const std::string& client, const std::string& policy_digest,
                                const std::string& target, const std::string& outcome,
                                const std::function<Status()>& change,
                                const nlohmann::json& answer) const {
    if (auto recorded = audit(client, "", "", "", policy_digest, target, outcome, "requested");
        !recorded) {
      return admin_error(
          Error(ErrorCode::kUnavailable, "admin change not made: " + recorded.error().message()));
    }
    if (auto done = change(); !done) {
      (void)audit(client, "", "", "", policy_digest, target, outcome,
                  "failed: " + done.error().message());
      return admin_error(done.error());
    }
    return json_response(200, answer);
  }

  http::Response admin(const http::Request& req, const std::string& client) const {
    if (!admin_authorized(req)) {
      metrics.deny(Denial::kAdmin);
      (void)audit(client, "", "", "", "", req.path, "denied", "admin: missing or wrong bearer key");
      return kbs_response(KbsError(kbs::ErrorKind::kAdminAuthAccess,
                                   "Admin auth error: missing or wrong admin bearer key"));
    }
    const std::string_view path = req.path;
    constexpr std::string_view kRv = "/admin/v0/reference-values";
    constexpr std::string_view kRes = "/admin/v0/resources";
    if (path == kRv && req.method == "GET") return listing(store->list_policies());
    if (path == kRes && req.method == "GET") return listing(store->list_resources());
    if (path == "/admin/v0/audit" && req.method == "GET") {
      auto exported = store->export_audit();
      if (!exported) return admin_error(exported.error());
      const auto check = audit::verify_text(exported->log, exported->head);
      return json_response(200, {{"records", exported->head.records},
                                 {"head", exported->head.digest},
                                 {"intact", check.intact()},
                                 {"log", exported->log}});
    }
    if (starts_with(path, std::string(kRv) + "/")) {
      const std::string id(path.substr(kRv.size() + 1));
      if (req.method == "PUT") {
        if (auto parsed = policy::parse_policy(req.body); !parsed)
          return admin_error(parsed.error());
        return audited_change(client, to_hex(sha256(as_bytes(req.body))), "reference-values/" + id,
                              "admin-put", [&] { return store->put_policy(id, req.body); },
                              {{"id", id}});
      }
      if (req.method == "GET") {
        auto doc = store->get_policy(id);
        if (!doc) return admin_error(doc.error());
        http::Response r;
        r.body = *doc;
        return r;
      }
      if (req.method == "DELETE") {
        return audited_change(client, "", "reference-values/" + id, "admin-delete",
                              [&] { return store->delete_policy(id); }, {{"deleted", id}});
      }
    }
    if (starts_with(path, std::string(kRes) + "/")) {
      auto rpath = resource_path(path.substr(kRes.size() + 1));
      if (!rpath) return admin_error(rpath.error().with_context("resource path"));
      if (req.method == "PUT") return put_resource(req, client, *rpath);
      if (req.method == "DELETE") {
        return audited_change(client, "", *rpath, "admin-delete",
                              [&] { return store->delete_resource(*rpath); },
                              {{"deleted", *rpath}});
      }
    }
    return json_response(404, {{"error", "no admin endpoint " + req.method + " " + req.path}});
  }

  http::Response put_resource(const http::Request& req, const std::string& client,
                              const std::string& path) const {
    auto doc = parse_json_strict(req.body, "resource");
    if (!doc) return admin_error(doc.error());
    if (!doc->is_object() || !doc->contains("value") || !(*doc)["value"].is_string()) {
      return admin_error(Error("resource: expected {\"value\": base64, \"policy\": {...}}"));
    }
    for (const auto& [key, value] : doc->items()) {
      if (key != "value" && key != "policy") {
        return admin_error(Error("resource: unknown key '" + key + "' (value, policy)"));
      }
    }
    auto value = from_base64((*doc)["value"].get<std::string>());
    if (!value) return admin_error(value.error().with_context("resource.value"));
    const std::string policy_text =
        doc->contains("policy") ? (*doc)["policy"].dump() : std::string("{}");
    if (auto p = parse_resource_policy(policy_text); !p) return admin_error(p.error());
    auto sealed = seal(path, *value);
    OPENSSL_cleanse(value->data(), value->size());
    if (!sealed) return admin_error(sealed.error());
    return audited_change(client, to_hex(sha256(as_bytes(policy_text))), path, "admin-put",
                          [&] {
                            return store->put_resource(path, {*sealed, policy_text});
                          },
                          {{"path", path}});
  }
};

AttestationService::AttestationService(std::shared_ptr<Store> store, ServiceKeys keys,
                                       ServiceOptions options)
    : impl_(std::make_unique<Impl>(std::move(store), std::move(keys), std::move(options))) {}
AttestationService::~AttestationService() = default;

nlohmann::json AttestationService::jwks() const {
  return impl_->jwks;
}

http::Response AttestationService::handle(const http::Request& req,
                                          const std::string& client) const {
  constexpr std::string_view kResource = "/kbs/v0/resource/";
  if (impl_->limiter && (starts_with(req.path, "/kbs/v0/") || starts_with(req.path, "/ear/v0/") ||
                         starts_with(req.path, "/admin/"))) {
    const std::string& who = req.peer.empty() ? client : req.peer;
    if (!impl_->limiter->admit(who, std::chrono::steady_clock::now())) {
      impl_->metrics.deny(Denial::kRateLimit);
      char limit[32];
      std::snprintf(limit, sizeof limit, "%g", impl_->options.rate_limit);
      http::Response r =
          json_response(429, {{"type", std::string(kbs::kErrorTypePrefix) + "TooManyRequests"},
                              {"detail", "client " + who + ": more than " + limit +
                                             " requests per second; retry later"}});
      r.extra_headers = "Retry-After: 1\r\n";
      return r;
    }
  }
  if (req.path == "/kbs/v0/auth" && req.method == "POST") return impl_->auth(req, client);
  if (req.path == "/kbs/v0/attest" && req.method == "POST") return impl_->attest(req, client);
  if (starts_with(req.path, kResource) && req.method == "GET") {
    auto path = resource_path(std::string_view(req.path).substr(kResource.size()));
    if (!path) return kbs_response(kbs::invalid_request_path(req.path));
    return impl_->resource(req, client, *path);
  }
  if (req.path == "/ear/v0/cwt" && req.method == "GET") return impl_->cwt(req, client);
  if (starts_with(req.path, "/admin/")) return impl_->admin(req, client);
  if (req.path == "/healthz" && req.method == "GET") {
    http::Response r;
    r.content_type = "text/plain";
    r.body = "ok\n";
    return r;
  }
  if (req.path == "/.well-known/jwks.json" && req.method == "GET") {
    return json_response(200, impl_->jwks);
  }
  if (req.path == "/metrics" && req.method == "GET") {
    http::Response r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = metrics_text();
    return r;
  }
  return kbs_response(kbs::invalid_request_path(req.path));
}

std::string AttestationService::metrics_text() const {
  const Metrics& m = impl_->metrics;
  std::ostringstream out;
  out << "# HELP cloister_attestd_auth_total Challenges issued by /kbs/v0/auth.\n"
      << "# TYPE cloister_attestd_auth_total counter\n"
      << "cloister_attestd_auth_total " << m.auth.load() << "\n"
      << "# HELP cloister_attestd_attestations_total Attestations by verdict.\n"
      << "# TYPE cloister_attestd_attestations_total counter\n"
      << "cloister_attestd_attestations_total{verdict=\"pass\"} " << m.attest_pass.load() << "\n"
      << "cloister_attestd_attestations_total{verdict=\"fail\"} " << m.attest_fail.load() << "\n"
      << "# HELP cloister_attestd_releases_total Resources released.\n"
      << "# TYPE cloister_attestd_releases_total counter\n"
      << "cloister_attestd_releases_total " << m.releases.load() << "\n"
      << "# HELP cloister_attestd_denials_total Refusals by reason.\n"
      << "# TYPE cloister_attestd_denials_total counter\n";
  for (std::size_t i = 0; i < kDenialNames.size(); ++i) {
    out << "cloister_attestd_denials_total{reason=\"" << kDenialNames[i] << "\"} "
        << m.denials[i].load() << "\n";
  }
  out << "# HELP cloister_attestd_attest_seconds Time to answer /kbs/v0/attest.\n"
      << "# TYPE cloister_attestd_attest_seconds histogram\n";
  for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    out << "cloister_attestd_attest_seconds_bucket{le=\"" << kLatencyBuckets[i] << "\"} "
        << m.attest_buckets[i].load() << "\n";
  }
  out << "cloister_attestd_attest_seconds_bucket{le=\"+Inf\"} " << m.attest_count.load() << "\n"
      << "cloister_attestd_attest_seconds_sum " << static_cast<double>(m.attest_micros.load()) / 1e6
      << "\n"
      << "cloister_attestd_attest_seconds_count " << m.attest_count.load() << "\n";
  return out.str();
}

}  // namespace cloister::service
