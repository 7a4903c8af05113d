// EAR, the EAT Attestation Result (draft-ietf-rats-ear), with the AR4SI trustworthiness vector
// (draft-ietf-rats-ar4si), as a JWT signed ES384 and verified against a JWKS (research/service.md
// §b.1, §b.2). The JSON claim names are those of veraison/ear and Trustee.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"
#include "cloister/common/time.h"
#include "cloister/sdk/verifier.h"

namespace cloister::service::ear {

inline constexpr std::string_view kProfile = "tag:github.com,2023:veraison/ear";

// AR4SI tiers (ear.status, and the tier of each trust claim).
enum class Tier { kNone, kAffirming, kWarning, kContraindicated };
std::string_view to_string(Tier tier);  // "none", "affirming", "warning", "contraindicated"
Result<Tier> parse_tier(std::string_view text);
// The tier a claim value falls in: none [-1, 1], affirming [-32, -2] ∪ [2, 31],
// warning [-96, -33] ∪ [32, 95], contraindicated [-128, -97] ∪ [96, 127].
Tier tier_of(int claim);

// The eight AR4SI trustworthiness claims, in their CBOR key order (0-7).
enum class TrustClaim {
  kInstanceIdentity,
  kConfiguration,
  kExecutables,
  kFileSystem,
  kHardware,
  kRuntimeOpaque,
  kStorageOpaque,
  kSourcedData,
};
inline constexpr std::size_t kTrustClaimCount = 8;
std::string_view to_string(TrustClaim claim);  // "instance-identity", …

// Unset claims are absent from the JSON ("no claim").
using TrustVector = std::array<std::optional<std::int8_t>, kTrustClaimCount>;

// One submodule's appraisal.
struct Appraisal {
  Tier status = Tier::kNone;
  TrustVector trust_vector{};
  std::optional<std::string> policy_id;  // ear.appraisal-policy-id
  // ear.veraison.key-attestation {"akpub": b64url SPKI}, checked to be a public key.
  std::optional<std::string> key_attestation_akpub;
  // Every other member ("ear.veraison.annotated-evidence", "ear.trustee.*", …), kept verbatim.
  nlohmann::json extensions = nlohmann::json::object();
  bool operator==(const Appraisal&) const = default;
};

struct Claims {
  std::string profile{kProfile};   // eat_profile
  UnixTime issued_at = 0;          // iat
  std::string verifier_developer;  // ear.verifier-id.developer
  std::string verifier_build;      // ear.verifier-id.build
  std::map<std::string, Appraisal> submods;
  std::optional<std::string> nonce;         // eat_nonce
  std::optional<std::string> raw_evidence;  // ear.raw-evidence (base64url text)
  std::optional<UnixTime> expires_at;       // exp (a Trustee extension)
  std::optional<std::string> issuer;        // iss (a Trustee extension)
  // Other top-level members, kept verbatim.
  nlohmann::json extensions = nlohmann::json::object();
  bool operator==(const Claims&) const = default;
};

// Parses an EAR claims set. Errors name the claim: a missing eat_profile, iat, ear.verifier-id
// or submods, an empty submods, a submod without ear.status, an unknown tier, a trust claim
// outside int8 or with an unknown name, a malformed key attestation.
Result<Claims> parse_claims(const nlohmann::json& claims);
nlohmann::json to_json(const Claims& claims);

// The appraisal of one verdict (docs/service.md tabulates the mapping): every check the
// verifier ran contributes to one trust claim: signatures and endorsement chains to
// instance-identity, platform TCB, collateral and revocation to hardware, launch measurements
// and the event log to executables, guest policy bits and bound data to configuration; memory
// encryption to runtime-opaque. A claim takes the worst value its checks give; ear.status is
// the worst claim's tier, so no status is better than a failed check allows.
Appraisal appraise(const sdk::Verdict& verdict, std::string policy_id);

// An ES384 (ECDSA P-384, SHA-384) signing key for attestation results. The private key stays
// inside; the public half is published in a JWKS under kid().
class Signer {
 public:
  static Result<Signer> generate();
  // A PEM "PRIVATE KEY" or "EC PRIVATE KEY" on P-384.
  static Result<Signer> from_pem(std::string_view pem);

  Signer(Signer&&) noexcept;
  Signer& operator=(Signer&&) noexcept;
  ~Signer();

  // The RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key.
  const std::string& kid() const { return kid_; }
  // {"kty":"EC","crv":"P-384","x","y","alg":"ES384","use":"sig","kid"}
  nlohmann::json public_jwk() const;

  // A compact JWS: header {"alg":"ES384","kid","typ":"JWT"}, the claims' JSON as payload, the
  // 96-byte r‖s signature. Fails for claims without expires_at (every token we issue expires).
  Result<std::string> sign(const Claims& claims) const;

  // The CWT form: a tagged COSE_Sign1 (RFC 9052 §4.2) with protected header {1: -35} (ES384),
  // unprotected {4: kid}, the claims in CBOR (EAR keys: 265 profile, 6 iat, 1004 verifier-id,
  // 266 submods with 1000 status as 0/2/32/96, 1001 trust vector, 1003 policy id; 1 iss, 4 exp,
  // 10 nonce as text, 1002 raw evidence as bytes; JSON extension members, such as the
  // annotated evidence, as text keys with their values in CBOR), deterministically encoded.
  // Fails for claims without expires_at and for key attestations, which the CBOR form does not
  // carry.
  Result<Bytes> sign_cwt(const Claims& claims) const;

 private:
  struct Key;
  Signer(std::unique_ptr<Key> key, std::string kid);
  static Result<Signer> adopt(std::unique_ptr<Key> key);
  std::unique_ptr<Key> key_;
  std::string kid_;
};

// {"keys": [public_jwk…]}
nlohmann::json jwks(std::initializer_list<const Signer*> signers);

// The time checks of verify(): exp present and `now` before exp + leeway, iat not after
// now + leeway.
Status check_times(const Claims& claims, UnixTime now, std::int64_t leeway_seconds = 60);

// A JWKS with its keys imported once: importing a P-384 public key (point validation included)
// costs about as much as verifying a signature, so a verifier of many tokens keeps a KeySet.
// Keys are looked up by kid (the last key with that kid wins); a key that is not EC P-384 or
// whose coordinates do not decode is refused when a token names it, not here.
class KeySet {
 public:
  explicit KeySet(const nlohmann::json& jwks);
  KeySet(const KeySet&) = default;
  KeySet& operator=(const KeySet&) = default;
  ~KeySet();

 private:
  struct Impl;
  friend struct KeySetAccess;
  std::shared_ptr<const Impl> impl_;
};

// Verifies a token from a signer in `keys`: the header's alg must be ES384 (nothing else is
// accepted, "none" included), its kid must name a P-384 key of the set, the signature must
// verify, exp must be present and `now` before exp + leeway, iat not after now + leeway.
Result<Claims> verify(std::string_view token, const KeySet& keys, UnixTime now,
                      std::int64_t leeway_seconds = 60);
// The same against a JWKS document, imported for this one token.
Result<Claims> verify(std::string_view token, const nlohmann::json& jwks, UnixTime now,
                      std::int64_t leeway_seconds = 60);

// The same checks for the CWT form: tag 18, protected header exactly {1: -35}, kid in the
// unprotected header naming a P-384 key of the set, the signature over Sig_structure, then the
// claims (unknown integer keys refused, text keys read as extensions) and their times.
Result<Claims> verify_cwt(ByteView token, const KeySet& keys, UnixTime now,
                          std::int64_t leeway_seconds = 60);
Result<Claims> verify_cwt(ByteView token, const nlohmann::json& jwks, UnixTime now,
                          std::int64_t leeway_seconds = 60);

}  // namespace cloister::service::ear
