// The attestation service behind cloister-attestd: the KBS protocol endpoints (auth → attest →
// resource), the admin API, the token keys and the metrics, as one request handler over a Store.
// The HTTP transport (TLS, connections, deadlines) is common/http_server.h's; this handler keeps
// no per-connection or per-session state, so any number of replicas sharing one Store answer
// any request:
//
// - the kbs-session-id cookie set by /auth is the challenge itself, MACed with the session key
//   (HMAC-SHA-256) and time-limited: {"nonce", "tee", "hash", "exp"} in base64url, ".", MAC;
// - /attest checks that cookie, consumes the nonce in the Store (single use across replicas),
//   appraises the evidence with the verifier library against the reference values in the Store,
//   and answers {"token": EAR JWT}; the same JWT is set as the new kbs-session-id cookie;
// - /resource takes the token from "Authorization: Bearer" or that cookie, verifies it with the
//   service's own key, evaluates the resource's policy on its claims and answers the resource
//   as a JWE to the TEE key the token carries.
//
// docs/service.md documents every endpoint, body and status.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/common/http.h"
#include "cloister/common/result.h"
#include "cloister/common/time.h"
#include "cloister/sdk/verifier.h"
#include "cloister/service/ear.h"
#include "cloister/service/kbs.h"
#include "cloister/service/store.h"

namespace cloister::service {

// A request's header section may be this large (cloister-attestd's server limit). A token comes
// back in it (the bearer token or the session cookie), so no token is issued over
// kMaxTokenBytes: the attestation is refused, naming the size, rather than leaving the guest a
// token the resource endpoint then refuses with 431.
inline constexpr std::size_t kMaxRequestHeaderBytes = 64 * 1024;
inline constexpr std::size_t kMaxTokenBytes = kMaxRequestHeaderBytes - 4 * 1024;

// The secrets a replica needs; every replica of one deployment holds the same ones.
struct ServiceKeys {
  ear::Signer token_signer;  // ES384; its public key is served at /.well-known/jwks.json
  Bytes session_key;         // 32 bytes: HMAC key of the session cookies
  Bytes kek;                 // 32 bytes: AES-256-GCM key sealing resources at rest
  Bytes admin_key_digest;    // SHA-256 of the admin bearer key
};

// The files of a state directory (kept mode 0600): token-key.pem, session.key, kek.key,
// admin-key.sha256. Loads them, or on first start creates them and returns the new admin key
// in `new_admin_key` (it is stored only as its digest, so it is shown once).
struct LoadedKeys {
  ServiceKeys keys;
  std::optional<std::string> new_admin_key;
};
Result<LoadedKeys> load_or_create_keys(const std::filesystem::path& state_dir);

// Every process serving from one store must hold the same keys: the first records check values
// in the store (Store::claim_setting) — an HMAC of a fixed label under the KEK and under the
// session key, and the token key's kid — and each later start compares its own. A mismatch fails
// with ErrorCode::kFailedPrecondition naming the key and the file to copy, before the process
// serves (it would seal resources the others cannot open, or issue sessions and tokens they
// refuse). The admin key is not checked: each replica may have its own.
Status check_keys_against_store(Store& store, const ServiceKeys& keys);

struct ServiceOptions {
  kbs::VersionPolicy versions;
  std::chrono::seconds session_lifetime{300};  // how long an /auth challenge can be answered
  std::chrono::seconds token_lifetime{300};    // the EAR token's exp − iat
  sdk::VerifierOptions verifier;
  // Collateral files' contents added to every TDX appraisal (an offline PCCS bundle, or the
  // simulated secure processor's).
  std::vector<Bytes> tdx_collateral;
  std::string issuer = "cloister-attestd";
  // Requests per second each client address may make to /kbs/v0/, /ear/v0/ and /admin/ (token
  // buckets holding as many, so short bursts pass); 0: unlimited. Over the limit: 429 with
  // Retry-After. Behind a TCP load balancer every client has the balancer's address: limit there
  // instead.
  double rate_limit = 0;
  // The clock (tests move it); unset: the system clock.
  std::function<UnixTime()> clock;
};

// A resource policy: which attestation results may receive a resource. JSON, strictly parsed:
//   {"accept_status": ["affirming"],   // ear.status values accepted (default: affirming only)
//    "tees": ["snp", "tdx"],           // optional allowlist of TEEs
//    "reference_values": ["default"]}  // optional allowlist of ear.appraisal-policy-id
// A key given with an empty list is refused: it would admit no guest (a key left out takes
// its default).
struct ResourcePolicy {
  std::vector<ear::Tier> accept_status{ear::Tier::kAffirming};
  std::vector<std::string> tees;
  std::vector<std::string> reference_values;
};
Result<ResourcePolicy> parse_resource_policy(std::string_view json_text);
nlohmann::json to_json(const ResourcePolicy& policy);
// Ok when `claims` (a verified token's) satisfy `policy`; otherwise the reason, naming the
// rule, what it accepts and what the token has.
Status evaluate(const ResourcePolicy& policy, const ear::Claims& claims);

class AttestationService {
 public:
  AttestationService(std::shared_ptr<Store> store, ServiceKeys keys, ServiceOptions options);
  ~AttestationService();

  // Answers one request. Thread-safe: the HTTP server's workers call it concurrently.
  // `client` names the peer in the audit log (its address, or what a proxy reported).
  http::Response handle(const http::Request& request, const std::string& client) const;

  // The Prometheus text exposition served at /metrics.
  std::string metrics_text() const;

  // The JWKS served at /.well-known/jwks.json.
  nlohmann::json jwks() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cloister::service
