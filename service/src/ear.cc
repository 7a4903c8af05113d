#include "cloister/service/ear.h"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>

#include "cloister/common/base64.h"
#include "cloister/common/json.h"
#include "cloister/common/sha.h"
#include "cloister/service/jcs.h"
#include "ear_cbor.h"
#include "json_input.h"
#include "openssl_util.h"

namespace cloister::service::ear {
namespace {

using namespace cloister::service::detail;

constexpr std::string_view kAlg = "ES384";
constexpr std::size_t kScalarSize = 48;
constexpr std::string_view kTrustClaimNames[kTrustClaimCount] = {
    "instance-identity", "configuration",  "executables",    "file-system",
    "hardware",          "runtime-opaque", "storage-opaque", "sourced-data"};

Result<std::int64_t> integer_member(const nlohmann::json& object, std::string_view name,
                                    std::string_view where) {
  CLOISTER_TRY(const nlohmann::json* value, required_member(object, name, where));
  if (!value->is_number_integer()) {
    return Error(std::string(where) + "." + std::string(name) + ": expected an integer, found " +
                 json_type_name(*value));
  }
  return value->get<std::int64_t>();
}

Result<TrustVector> parse_trust_vector(const nlohmann::json& value, const std::string& where) {
  CLOISTER_CHECK_OK(expect_object(value, where));
  TrustVector vector{};
  for (const auto& [name, claim] : value.items()) {
    const auto* it = std::find(std::begin(kTrustClaimNames), std::end(kTrustClaimNames), name);
    if (it == std::end(kTrustClaimNames)) {
      return Error(where + ": unknown trust claim \"" + name + "\"");
    }
    if (!claim.is_number_integer() || claim.get<std::int64_t>() < -128 ||
        claim.get<std::int64_t>() > 127) {
      return Error(where + "." + name + ": expected an integer -128..127, found " +
                   (claim.is_number() ? claim.dump() : json_type_name(claim)));
    }
    vector[static_cast<std::size_t>(it - std::begin(kTrustClaimNames))] =
        static_cast<std::int8_t>(claim.get<std::int64_t>());
  }
  return vector;
}

Result<Appraisal> parse_appraisal(const nlohmann::json& value, const std::string& where) {
  CLOISTER_CHECK_OK(expect_object(value, where));
  Appraisal a;
  for (const auto& [name, member] : value.items()) {
    const std::string at = where + "." + name;
    if (name == "ear.status") {
      if (!member.is_string())
        return Error(at + ": expected a string, found " + json_type_name(member));
      auto tier = parse_tier(member.get<std::string>());
      if (!tier) return tier.error().with_context(at);
      a.status = *tier;
    } else if (name == "ear.trustworthiness-vector") {
      CLOISTER_TRY(a.trust_vector, parse_trust_vector(member, at));
    } else if (name == "ear.appraisal-policy-id") {
      if (!member.is_string())
        return Error(at + ": expected a string, found " + json_type_name(member));
      a.policy_id = member.get<std::string>();
    } else if (name == "ear.veraison.key-attestation") {
      CLOISTER_TRY(const std::string akpub, string_member(member, "akpub", at));
      auto der = from_base64url(akpub);
      if (!der) return der.error().with_context(at + ".akpub");
      const unsigned char* p = der->data();
      PkeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der->size())));
      if (!key || p != der->data() + der->size()) {
        return Error(at + ".akpub: not a DER SubjectPublicKeyInfo");
      }
      a.key_attestation_akpub = akpub;
    } else {
      a.extensions[name] = member;
    }
  }
  if (!value.contains("ear.status")) return Error(where + ": missing member \"ear.status\"");
  return a;
}

nlohmann::json appraisal_json(const Appraisal& a) {
  nlohmann::json out = a.extensions;
  out["ear.status"] = std::string(to_string(a.status));
  nlohmann::json vector = nlohmann::json::object();
  for (std::size_t i = 0; i < kTrustClaimCount; ++i)
    if (a.trust_vector[i]) vector[std::string(kTrustClaimNames[i])] = *a.trust_vector[i];
  if (!vector.empty()) out["ear.trustworthiness-vector"] = vector;
  if (a.policy_id) out["ear.appraisal-policy-id"] = *a.policy_id;
  if (a.key_attestation_akpub) {
    out["ear.veraison.key-attestation"] = {{"akpub", *a.key_attestation_akpub}};
  }
  return out;
}

// AR4SI values this verifier assigns (draft-ietf-rats-ar4si §2.3).
namespace value {
constexpr std::int8_t kAffirming = 2;         // every claim: recognized / approved / genuine
constexpr std::int8_t kApprovedBoot = 3;      // executables: approved boot-time executables
constexpr std::int8_t kUnsafe = 32;           // configuration, hardware: known vulnerabilities
constexpr std::int8_t kUnrecognizedRt = 33;   // executables: unrecognized measurement
constexpr std::int8_t kContraindicated = 96;  // hardware revoked, configuration unsupportable,
                                              // runtime visible (debug)
constexpr std::int8_t kUnrecognized = 97;     // instance-identity: endorsement not recognized
constexpr std::int8_t kCryptoFailed = 99;     // any claim: cryptographic validation failed
}  // namespace value

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.rfind(prefix, 0) == 0;
}

bool is_one_of(std::string_view name, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

struct Contribution {
  TrustClaim claim;
  std::int8_t pass;
  std::int8_t fail;
};

// Which trust claim a check speaks to, and the values for its pass and its failure.
Contribution classify(std::string_view name) {
  using enum TrustClaim;
  if (is_one_of(name, {"snp.signature", "tdx.signature", "tdx.qe_report.signature"})) {
    return {kInstanceIdentity, value::kAffirming, value::kCryptoFailed};
  }
  if (starts_with(name, "snp.chain") || starts_with(name, "snp.vek") ||
      starts_with(name, "tdx.pck") || starts_with(name, "tdx.qe_report") ||
      is_one_of(name, {"snp.cert_table", "tdx.quote.qe_vendor", "policy.signing_key",
                       "policy.chip_id"})) {
    if (name == "snp.vek.tcb") return {kHardware, value::kAffirming, value::kUnsafe};
    return {kInstanceIdentity, value::kAffirming, value::kUnrecognized};
  }
  if (is_one_of(name, {"snp.revocation", "tdx.revocation"})) {
    return {kHardware, value::kAffirming, value::kContraindicated};
  }
  if (is_one_of(name,
                {"policy.measurement", "policy.tdx.mr_td", "policy.id_key", "policy.author_key",
                 "policy.family_id", "policy.image_id", "policy.guest_svn"}) ||
      starts_with(name, "policy.tdx.rtmr") || starts_with(name, "policy.tdx.runtime_event.") ||
      starts_with(name, "policy.azure.pcr") || starts_with(name, "tdx.eventlog")) {
    return {kExecutables, value::kApprovedBoot, value::kUnrecognizedRt};
  }
  if (is_one_of(name, {"policy.guest.debug", "policy.tdx.debug"})) {
    return {kConfiguration, value::kAffirming, value::kContraindicated};
  }
  if (starts_with(name, "policy.tcb") || starts_with(name, "policy.firmware") ||
      starts_with(name, "policy.mit_vector") ||
      is_one_of(name,
                {"policy.product", "policy.platform_info", "policy.tdx.tcb_status",
                 "policy.tdx.tee_tcb_svn", "policy.tdx.advisories", "policy.tdx.collateral_age",
                 "policy.tdx.mr_seam", "policy.tdx.mr_signer_seam"}) ||
      starts_with(name, "snp.") || starts_with(name, "tdx.")) {
    return {kHardware, value::kAffirming, value::kUnsafe};
  }
  return {kConfiguration, value::kAffirming, value::kUnsafe};
}

// Worse = a higher tier; within a tier, the larger magnitude.
bool worse(std::int8_t a, std::int8_t b) {
  const auto ta = tier_of(a);
  const auto tb = tier_of(b);
  if (ta != tb) return ta > tb;
  return std::abs(a) > std::abs(b);
}

void merge(std::optional<std::int8_t>& slot, std::int8_t v) {
  if (!slot || worse(v, *slot)) slot = v;
}

// ECDSA signature conversions: JWS uses r‖s (RFC 7518 §3.4), OpenSSL DER.
Result<Bytes> der_to_raw(ByteView der) {
  const unsigned char* p = der.data();
  std::unique_ptr<ECDSA_SIG, OpensslDeleter<ECDSA_SIG, ECDSA_SIG_free>> sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig) return openssl_error("ES384 signature");
  Bytes out(2 * kScalarSize);
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out.data(), kScalarSize) < 0 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out.data() + kScalarSize, kScalarSize) < 0) {
    return openssl_error("ES384 signature");
  }
  return out;
}

Result<Bytes> raw_to_der(ByteView raw) {
  std::unique_ptr<ECDSA_SIG, OpensslDeleter<ECDSA_SIG, ECDSA_SIG_free>> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(raw.data(), kScalarSize, nullptr);
  BIGNUM* s = BN_bin2bn(raw.data() + kScalarSize, kScalarSize, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return openssl_error("ES384 signature");
  }
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) return openssl_error("ES384 signature");
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

nlohmann::json ec_jwk(const Bytes& x, const Bytes& y) {
  return {{"kty", "EC"}, {"crv", "P-384"}, {"x", to_base64url(x)}, {"y", to_base64url(y)}};
}

// ES384 over `message`, as the 96-byte r‖s JOSE and COSE both use.
Result<Bytes> es384_sign(EVP_PKEY* key, ByteView message) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  std::size_t size = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha384(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size, message.data(), message.size()) != 1) {
    return openssl_error("ES384 signing");
  }
  Bytes der(size);
  if (EVP_DigestSign(ctx.get(), der.data(), &size, message.data(), message.size()) != 1) {
    return openssl_error("ES384 signing");
  }
  der.resize(size);
  return der_to_raw(der);
}

// The P-384 key of one JWK.
Result<PkeyPtr> import_jwk(const nlohmann::json& jwk, const std::string& kid) {
  CLOISTER_TRY(const std::string crv, string_member(jwk, "crv", "JWKS key " + kid));
  if (jwk.value("kty", "") != "EC" || crv != "P-384") {
    return Error("JWKS key " + kid + ": expected an EC P-384 key");
  }
  CLOISTER_TRY(const std::string x64, string_member(jwk, "x", "JWKS key " + kid));
  CLOISTER_TRY(const std::string y64, string_member(jwk, "y", "JWKS key " + kid));
  auto x = from_base64url(x64);
  auto y = from_base64url(y64);
  if (!x || !y) return Error("JWKS key " + kid + ": coordinates are not base64url");
  CLOISTER_TRY(const Curve curve, curve_by_name("P-384", "JWKS key"));
  return ec_public_key(curve, *x, *y);
}

Status es384_verify(EVP_PKEY* key, ByteView message, ByteView raw_signature,
                    const std::string& where, const std::string& kid) {
  if (raw_signature.size() != 2 * kScalarSize) {
    return Error(where + ": expected 96 bytes (r‖s), found " +
                 std::to_string(raw_signature.size()));
  }
  CLOISTER_TRY(const Bytes der, raw_to_der(raw_signature));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha384(), nullptr, key) != 1) {
    return openssl_error("ES384 verification");
  }
  if (EVP_DigestVerify(ctx.get(), der.data(), der.size(), message.data(), message.size()) != 1) {
    ERR_clear_error();
    return Error(where + ": does not verify with key " + kid);
  }
  return {};
}

std::string text_of(ByteView bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

}  // namespace

Status check_times(const Claims& claims, UnixTime now, std::int64_t leeway) {
  if (!claims.expires_at) return Error("EAR.exp: missing; tokens without expiry are refused");
  if (now >= *claims.expires_at + leeway) {
    return Error("EAR.exp: expired at " + format_rfc3339(*claims.expires_at) + ", now " +
                 format_rfc3339(now));
  }
  if (claims.issued_at > now + leeway) {
    return Error("EAR.iat: issued in the future (" + format_rfc3339(claims.issued_at) + ", now " +
                 format_rfc3339(now) + ")");
  }
  return {};
}

std::string_view to_string(Tier tier) {
  switch (tier) {
    case Tier::kNone:
      return "none";
    case Tier::kAffirming:
      return "affirming";
    case Tier::kWarning:
      return "warning";
    case Tier::kContraindicated:
      return "contraindicated";
  }
  return "unknown";
}

Result<Tier> parse_tier(std::string_view text) {
  for (auto t : {Tier::kNone, Tier::kAffirming, Tier::kWarning, Tier::kContraindicated})
    if (to_string(t) == text) return t;
  return Error("expected none, affirming, warning or contraindicated, found \"" +
               std::string(text) + "\"");
}

Tier tier_of(int claim) {
  const int magnitude = std::abs(claim);
  if (magnitude <= 1) return Tier::kNone;
  if (claim >= 2 && claim <= 31) return Tier::kAffirming;
  if (claim >= -32 && claim <= -2) return Tier::kAffirming;
  if ((claim >= 32 && claim <= 95) || (claim >= -96 && claim <= -33)) return Tier::kWarning;
  return Tier::kContraindicated;
}

std::string_view to_string(TrustClaim claim) {
  return kTrustClaimNames[static_cast<std::size_t>(claim)];
}

Result<Claims> parse_claims(const nlohmann::json& doc) {
  constexpr std::string_view at = "EAR";
  CLOISTER_CHECK_OK(expect_object(doc, at));
  Claims c;
  CLOISTER_TRY(c.profile, string_member(doc, "eat_profile", at));
  CLOISTER_TRY(c.issued_at, integer_member(doc, "iat", at));
  CLOISTER_TRY(const nlohmann::json* verifier, object_member(doc, "ear.verifier-id", at));
  CLOISTER_TRY(c.verifier_developer, string_member(*verifier, "developer", "EAR.ear.verifier-id"));
  CLOISTER_TRY(c.verifier_build, string_member(*verifier, "build", "EAR.ear.verifier-id"));
  CLOISTER_TRY(const nlohmann::json* submods, object_member(doc, "submods", at));
  if (submods->empty()) return Error("EAR.submods: expected at least one appraisal, found none");
  for (const auto& [name, appraisal] : submods->items()) {
    CLOISTER_TRY(c.submods[name], parse_appraisal(appraisal, "EAR.submods." + name));
  }
  for (const auto& [name, member] : doc.items()) {
    if (is_one_of(name, {"eat_profile", "iat", "ear.verifier-id", "submods"})) continue;
    const std::string where = "EAR." + name;
    if (name == "eat_nonce" || name == "ear.raw-evidence" || name == "iss") {
      if (!member.is_string()) {
        return Error(where + ": expected a string, found " + json_type_name(member));
      }
      if (name == "ear.raw-evidence") {
        if (auto raw = from_base64url(member.get<std::string>()); !raw) {
          return raw.error().with_context(where);
        }
        c.raw_evidence = member.get<std::string>();
      } else if (name == "eat_nonce") {
        c.nonce = member.get<std::string>();
      } else {
        c.issuer = member.get<std::string>();
      }
    } else if (name == "exp") {
      CLOISTER_TRY(c.expires_at, integer_member(doc, "exp", at));
    } else {
      c.extensions[name] = member;
    }
  }
  return c;
}

nlohmann::json to_json(const Claims& c) {
  nlohmann::json out = c.extensions;
  out["eat_profile"] = c.profile;
  out["iat"] = c.issued_at;
  out["ear.verifier-id"] = {{"developer", c.verifier_developer}, {"build", c.verifier_build}};
  nlohmann::json submods = nlohmann::json::object();
  for (const auto& [name, appraisal] : c.submods) submods[name] = appraisal_json(appraisal);
  out["submods"] = submods;
  if (c.nonce) out["eat_nonce"] = *c.nonce;
  if (c.raw_evidence) out["ear.raw-evidence"] = *c.raw_evidence;
  if (c.expires_at) out["exp"] = *c.expires_at;
  if (c.issuer) out["iss"] = *c.issuer;
  return out;
}

Appraisal appraise(const sdk::Verdict& verdict, std::string policy_id) {
  Appraisal a;
  a.policy_id = std::move(policy_id);
  auto& v = a.trust_vector;
  bool identity_failed = false;
  bool debug_failed = false;
  for (const auto& check : verdict.checks.all()) {
    if (check.status == attestation::CheckStatus::kSkip) continue;
    const Contribution c = classify(check.name);
    const bool passed = check.status == attestation::CheckStatus::kPass;
    merge(v[static_cast<std::size_t>(c.claim)], passed ? c.pass : c.fail);
    if (!passed && c.claim == TrustClaim::kInstanceIdentity) identity_failed = true;
    if (!passed && is_one_of(check.name, {"policy.guest.debug", "policy.tdx.debug"})) {
      debug_failed = true;
    }
  }
  const auto identity = static_cast<std::size_t>(TrustClaim::kInstanceIdentity);
  const auto hardware = static_cast<std::size_t>(TrustClaim::kHardware);
  // Memory encryption is what an SNP report or TDX quote proves once its signature chain
  // holds; a debuggable guest's memory is visible to the host.
  if (v[identity] && !identity_failed) {
    merge(v[static_cast<std::size_t>(TrustClaim::kRuntimeOpaque)],
          debug_failed ? value::kContraindicated : value::kAffirming);
  }
  // A simulated secure processor is no TEE hardware, however well its evidence verifies.
  if (verdict.trust_anchor && verdict.trust_anchor->simulated) merge(v[hardware], value::kUnsafe);

  a.status = Tier::kNone;
  for (const auto& claim : v)
    if (claim && tier_of(*claim) > a.status) a.status = tier_of(*claim);
  if (!verdict.passed() && a.status < Tier::kWarning) a.status = Tier::kWarning;
  return a;
}

struct Signer::Key {
  PkeyPtr pkey;
  nlohmann::json public_jwk;
};

Signer::Signer(std::unique_ptr<Key> key, std::string kid)
    : key_(std::move(key)), kid_(std::move(kid)) {}
Signer::Signer(Signer&&) noexcept = default;
Signer& Signer::operator=(Signer&&) noexcept = default;
Signer::~Signer() = default;

Result<Signer> Signer::adopt(std::unique_ptr<Key> key) {
  CLOISTER_TRY(const auto xy, ec_coordinates(key->pkey.get()));
  key->public_jwk = ec_jwk(xy.first, xy.second);
  // RFC 7638 §3.2: the thumbprint hashes the required members (crv, kty, x, y) in
  // lexicographic order without whitespace, which is their JCS form.
  CLOISTER_TRY(const std::string thumbprint_input, canonical_json(key->public_jwk));
  std::string kid = to_base64url(sha256(as_bytes(thumbprint_input)));
  return Signer(std::move(key), std::move(kid));
}

Result<Signer> Signer::generate() {
  CLOISTER_TRY(const Curve curve, curve_by_name("P-384", "EAR signing key"));
  auto key = std::make_unique<Key>();
  CLOISTER_TRY(key->pkey, ec_generate(curve));
  return adopt(std::move(key));
}

Result<Signer> Signer::from_pem(std::string_view pem) {
  std::unique_ptr<BIO, OpensslDeleter<BIO, BIO_free_all>> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr pkey(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!pkey) return openssl_error("EAR signing key: not a PEM private key");
  auto curve = curve_of(pkey.get());
  if (!curve || curve->jose_name != "P-384") {
    return Error("EAR signing key: expected an EC key on P-384");
  }
  auto key = std::make_unique<Key>();
  key->pkey = std::move(pkey);
  return adopt(std::move(key));
}

nlohmann::json Signer::public_jwk() const {
  nlohmann::json jwk = key_->public_jwk;
  jwk["alg"] = std::string(kAlg);
  jwk["use"] = "sig";
  jwk["kid"] = kid_;
  return jwk;
}

Result<std::string> Signer::sign(const Claims& claims) const {
  if (!claims.expires_at) return Error("EAR: refusing to sign claims without exp");
  const nlohmann::json header = {{"alg", std::string(kAlg)}, {"kid", kid_}, {"typ", "JWT"}};
  const std::string signing_input =
      to_base64url(as_bytes(header.dump())) + "." + to_base64url(as_bytes(to_json(claims).dump()));
  CLOISTER_TRY(const Bytes raw, es384_sign(key_->pkey.get(), as_bytes(signing_input)));
  return signing_input + "." + to_base64url(raw);
}

Result<Bytes> Signer::sign_cwt(const Claims& claims) const {
  if (!claims.expires_at) return Error("EAR: refusing to sign claims without exp");
  CLOISTER_TRY(const Bytes payload, cbor::claims_to_cbor(claims));
  const Bytes protected_header = cbor::es384_protected_header();
  CLOISTER_TRY(const Bytes to_sign, cbor::sig_structure(protected_header, payload));
  CLOISTER_TRY(const Bytes signature, es384_sign(key_->pkey.get(), to_sign));
  return cbor::cose_sign1(protected_header, kid_, payload, signature);
}

nlohmann::json jwks(std::initializer_list<const Signer*> signers) {
  nlohmann::json keys = nlohmann::json::array();
  for (const Signer* s : signers) keys.push_back(s->public_jwk());
  return {{"keys", keys}};
}

struct KeySet::Impl {
  struct Entry {
    std::string kid;
    Result<PkeyPtr> key;
  };
  std::vector<Entry> entries;
};

KeySet::KeySet(const nlohmann::json& jwks) {
  auto impl = std::make_shared<Impl>();
  if (jwks.is_object() && jwks.contains("keys") && jwks["keys"].is_array()) {
    for (const auto& k : jwks["keys"]) {
      if (!k.is_object() || !k.contains("kid") || !k["kid"].is_string()) continue;
      const std::string kid = k["kid"];
      impl->entries.push_back({kid, import_jwk(k, kid)});
    }
  }
  impl_ = std::move(impl);
}

KeySet::~KeySet() = default;

struct KeySetAccess {
  // The key `kid` names; `where` names the field that carried the kid.
  static Result<EVP_PKEY*> find(const KeySet& set, const std::string& kid, std::string_view where) {
    const auto& entries = set.impl_->entries;
    const auto it = std::find_if(entries.rbegin(), entries.rend(),
                                 [&](const KeySet::Impl::Entry& e) { return e.kid == kid; });
    if (it == entries.rend())
      return Error(std::string(where) + ": \"" + kid + "\" is not in the JWKS");
    if (!it->key) return it->key.error();
    return it->key->get();
  }
};

Result<Claims> verify(std::string_view token, const nlohmann::json& jwks, UnixTime now,
                      std::int64_t leeway) {
  return verify(token, KeySet(jwks), now, leeway);
}

Result<Claims> verify_cwt(ByteView token, const nlohmann::json& jwks, UnixTime now,
                          std::int64_t leeway) {
  return verify_cwt(token, KeySet(jwks), now, leeway);
}

Result<Claims> verify(std::string_view token, const KeySet& set, UnixTime now,
                      std::int64_t leeway) {
  const std::size_t dot1 = token.find('.');
  const std::size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Error("EAR: not a compact JWS (expected three dot-separated parts)");
  }
  auto header_bytes = from_base64url(token.substr(0, dot1));
  if (!header_bytes) return header_bytes.error().with_context("EAR header");
  CLOISTER_TRY(const nlohmann::json header,
               parse_json_strict(text_of(*header_bytes), "EAR header"));
  if (header.contains("crit"))  // RFC 7515 §4.1.11: an extension this reader does not know
    return Error("EAR header.crit: expected none, found " + dump_json(header["crit"]));
  CLOISTER_TRY(const std::string alg, string_member(header, "alg", "EAR header"));
  if (alg != kAlg) return Error("EAR header.alg: expected ES384, found \"" + alg + "\"");
  CLOISTER_TRY(const std::string kid, string_member(header, "kid", "EAR header"));
  CLOISTER_TRY(EVP_PKEY* const key, KeySetAccess::find(set, kid, "EAR header.kid"));
  auto signature = from_base64url(token.substr(dot2 + 1));
  if (!signature) return signature.error().with_context("EAR signature");
  CLOISTER_CHECK_OK(
      es384_verify(key, as_bytes(token.substr(0, dot2)), *signature, "EAR signature", kid));
  auto payload = from_base64url(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!payload) return payload.error().with_context("EAR payload");
  CLOISTER_TRY(const nlohmann::json doc, parse_json_strict(text_of(*payload), "EAR payload"));
  CLOISTER_TRY(Claims claims, parse_claims(doc));
  CLOISTER_CHECK_OK(check_times(claims, now, leeway));
  return claims;
}

Result<Claims> verify_cwt(ByteView token, const KeySet& set, UnixTime now, std::int64_t leeway) {
  CLOISTER_TRY(const cbor::CoseSign1 cose, cbor::parse_cose_sign1(token));
  CLOISTER_TRY(EVP_PKEY* const key, KeySetAccess::find(set, cose.kid, "COSE_Sign1 kid"));
  CLOISTER_TRY(const Bytes signed_bytes, cbor::sig_structure(cose.protected_header, cose.payload));
  CLOISTER_CHECK_OK(
      es384_verify(key, signed_bytes, cose.signature, "COSE_Sign1 signature", cose.kid));
  CLOISTER_TRY(Claims claims, cbor::claims_from_cbor(cose.payload));
  CLOISTER_CHECK_OK(check_times(claims, now, leeway));
  return claims;
}

}  // namespace cloister::service::ear
