// The KBS attestation protocol ("RCAR", Trustee's kbs-types, protocol version 0.4.0): the
// bodies of POST /kbs/v0/auth (Request → Challenge) and POST /kbs/v0/attest (Attestation),
// parsed into typed values with the exact member names of the wire (research/service.md §a.3).
//
// Parsing follows kbs-types' serde definitions: members are matched by exact name (kebab case
// outside, snake case inside "tee-evidence"), their JSON types are checked without coercion,
// duplicate member names are refused, and unknown members are ignored as serde ignores them,
// so every body Trustee accepts is accepted here.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"

namespace cloister::service::kbs {

// The protocol version Trustee v0.14 … v0.21 and guest-components speak.
inline constexpr std::string_view kProtocolVersion = "0.4.0";

// The largest request body a KBS endpoint reads (the server framework's default limit, answered
// with 413).
inline constexpr std::size_t kMaxRequestBodySize = std::size_t{2} << 20;

// kbs-types `Tee`: the attester kinds a Request may name.
enum class Tee {
  kAzSnpVtpm,
  kAzTdxVtpm,
  kNvidia,
  kSgx,
  kSnp,
  kTdx,
  kCca,
  kCsv,
  kSe,
  kHygonDcu,
  kTpm,
  kSample,
  kSampleDevice,
};
std::string_view to_string(Tee tee);           // the wire spelling: "az-snp-vtpm", "snp", …
Result<Tee> parse_tee(std::string_view text);  // the inverse; errors list the accepted names

// The versions a server accepts in Request.version. Trustee accepts exactly 0.4.0 (a semver
// "=0.4.0" requirement); older clients (0.1.x, 0.2.0) can be let in by adding their versions.
struct VersionPolicy {
  std::set<std::string, std::less<>> accepted{std::string(kProtocolVersion)};
};

// POST /kbs/v0/auth body: {"version", "tee", "extra-params": any JSON}.
struct Request {
  std::string version;
  Tee tee = Tee::kSnp;
  nlohmann::json extra_params;  // guest-components sends {"supported-hash-algorithms": [...]}
};

// Parses a Request and applies the version gate. Errors: "Request: …" for a malformed body,
// "KBS client protocol version mismatch: expected 0.4.0, found 0.1.0" for a refused version.
Result<Request> parse_request(std::string_view body, const VersionPolicy& versions = {});
nlohmann::json to_json(const Request& request);

// The hash a client applies to the REPORT_DATA object (kbs-types HashAlgorithm).
enum class HashAlgorithm { kSha256, kSha384, kSha512 };
std::string_view to_string(HashAlgorithm algorithm);  // "sha256", "sha384", "sha512"
Result<HashAlgorithm> parse_hash_algorithm(std::string_view text);
// `hash` over `data`: 32, 48 or 64 bytes.
Bytes digest(HashAlgorithm hash, ByteView data);
// SHA-384: what clients use when the challenge selects nothing.
inline constexpr HashAlgorithm kDefaultHash = HashAlgorithm::kSha384;

// POST /kbs/v0/auth response: {"nonce", "extra-params"}. Trustee sends the JSON string "" as
// extra-params for every TEE but IBM SE.
struct Challenge {
  std::string nonce;
  nlohmann::json extra_params = "";

  // extra-params["selected-hash-algorithm"] when extra-params is an object that has it, else
  // kDefaultHash. Fails for a selected algorithm this library does not implement (sm3).
  Result<HashAlgorithm> hash_algorithm() const;
};
Result<Challenge> parse_challenge(std::string_view body);
nlohmann::json to_json(const Challenge& challenge);

// A fresh nonce: 32 random bytes from OpenSSL's CSPRNG, base64 standard with padding (44
// characters), as Trustee makes it. Fails only when the CSPRNG does.
Result<std::string> make_nonce();

// runtime-data.tee-pubkey, kbs-types `TeePubKey` (tagged by "kty"). Only these typed members
// exist: any other JWK member ("use", "kid", …) is dropped while parsing, exactly as the
// server's serde round trip drops it before hashing, so REPORT_DATA is computed over the same
// object on both sides. Values are kept as the wire's strings (base64url, unchecked here; the
// JWE code decodes and validates them).
struct EcTeeKey {
  std::string crv;  // "P-256", "P-521"
  std::string alg;  // "ECDH-ES+A256KW"
  std::string x;
  std::string y;
  bool operator==(const EcTeeKey&) const = default;
};
struct RsaTeeKey {
  std::string alg;  // "RSA-OAEP-256"
  std::string n;
  std::string e;
  bool operator==(const RsaTeeKey&) const = default;
};
using TeePubKey = std::variant<EcTeeKey, RsaTeeKey>;

Result<TeePubKey> parse_tee_pubkey(const nlohmann::json& jwk);
// The JWK rebuilt from the typed members: {"kty":"EC","crv","alg","x","y"} or
// {"kty":"RSA","alg","n","e"}.
nlohmann::json to_json(const TeePubKey& key);

// Attestation.init-data: null on the wire when absent.
struct InitData {
  std::string format;  // guest-components sends "toml"
  std::string body;    // the document as text; its digest is over these bytes as sent
  bool operator==(const InitData&) const = default;
};

// POST /kbs/v0/attest body.
struct Attestation {
  std::optional<InitData> init_data;
  // runtime-data
  std::string nonce;  // the Challenge nonce, verbatim
  TeePubKey tee_pubkey;
  // tee-evidence
  nlohmann::json primary_evidence;  // TEE-specific JSON (see evidence.h)
  std::string additional_evidence;  // a JSON text {"<tee>": evidence, …}, or "" without devices
};
Result<Attestation> parse_attestation(std::string_view body);
nlohmann::json to_json(const Attestation& attestation);

// POST /kbs/v0/attest response: {"token": "<JWT>"}.
nlohmann::json attest_response(std::string_view token);

}  // namespace cloister::service::kbs
