#include "cloister/service/kbs.h"

#include "cloister/common/base64.h"
#include "cloister/common/json.h"
#include "cloister/common/sha.h"
#include "json_input.h"
#include "openssl_util.h"

namespace cloister::service::kbs {
namespace {

using detail::json_type_name;
using detail::object_member;
using detail::required_member;
using detail::string_member;

constexpr std::pair<Tee, std::string_view> kTeeNames[] = {
    {Tee::kAzSnpVtpm, "az-snp-vtpm"},
    {Tee::kAzTdxVtpm, "az-tdx-vtpm"},
    {Tee::kNvidia, "nvidia"},
    {Tee::kSgx, "sgx"},
    {Tee::kSnp, "snp"},
    {Tee::kTdx, "tdx"},
    {Tee::kCca, "cca"},
    {Tee::kCsv, "csv"},
    {Tee::kSe, "se"},
    {Tee::kHygonDcu, "hygondcu"},
    {Tee::kTpm, "tpm"},
    {Tee::kSample, "sample"},
    {Tee::kSampleDevice, "sampledevice"},
};

std::string joined(const std::set<std::string, std::less<>>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

std::string_view to_string(Tee tee) {
  for (const auto& [value, name] : kTeeNames)
    if (value == tee) return name;
  return "unknown";
}

Result<Tee> parse_tee(std::string_view text) {
  std::string names;
  for (const auto& [value, name] : kTeeNames) {
    if (name == text) return value;
    names += (names.empty() ? "" : ", ") + std::string(name);
  }
  return Error("tee: expected one of " + names + ", found \"" + std::string(text) + "\"");
}

Result<Request> parse_request(std::string_view body, const VersionPolicy& versions) {
  CLOISTER_TRY(const nlohmann::json doc, parse_json_strict(body, "Request"));
  Request request;
  CLOISTER_TRY(request.version, string_member(doc, "version", "Request"));
  CLOISTER_TRY(const std::string tee, string_member(doc, "tee", "Request"));
  auto parsed_tee = parse_tee(tee);
  if (!parsed_tee) return parsed_tee.error().with_context("Request");
  request.tee = *parsed_tee;
  CLOISTER_TRY(const nlohmann::json* extra, required_member(doc, "extra-params", "Request"));
  request.extra_params = *extra;
  if (!versions.accepted.contains(request.version)) {
    return Error("KBS client protocol version mismatch: expected " +
                 std::string(versions.accepted.size() == 1 ? "" : "one of ") +
                 joined(versions.accepted) + ", found " + request.version);
  }
  return request;
}

nlohmann::json to_json(const Request& request) {
  return {{"version", request.version},
          {"tee", std::string(to_string(request.tee))},
          {"extra-params", request.extra_params}};
}

std::string_view to_string(HashAlgorithm algorithm) {
  switch (algorithm) {
    case HashAlgorithm::kSha256:
      return "sha256";
    case HashAlgorithm::kSha384:
      return "sha384";
    case HashAlgorithm::kSha512:
      return "sha512";
  }
  return "unknown";
}

Result<HashAlgorithm> parse_hash_algorithm(std::string_view text) {
  for (auto a : {HashAlgorithm::kSha256, HashAlgorithm::kSha384, HashAlgorithm::kSha512})
    if (to_string(a) == text) return a;
  return Error("hash algorithm: expected sha256, sha384 or sha512, found \"" + std::string(text) +
               "\"");
}

Bytes digest(HashAlgorithm hash, ByteView data) {
  Hasher hasher(hash == HashAlgorithm::kSha256   ? cloister::HashAlgorithm::kSha256
                : hash == HashAlgorithm::kSha384 ? cloister::HashAlgorithm::kSha384
                                                 : cloister::HashAlgorithm::kSha512);
  hasher.update(data);
  return hasher.finish();
}

Result<HashAlgorithm> Challenge::hash_algorithm() const {
  if (!extra_params.is_object()) return kDefaultHash;
  const auto it = extra_params.find("selected-hash-algorithm");
  if (it == extra_params.end()) return kDefaultHash;
  if (!it->is_string()) {
    return Error("Challenge.extra-params.selected-hash-algorithm: expected a string, found " +
                 json_type_name(*it));
  }
  auto algorithm = parse_hash_algorithm(it->get<std::string>());
  if (!algorithm) return algorithm.error().with_context("Challenge.extra-params");
  return *algorithm;
}

Result<Challenge> parse_challenge(std::string_view body) {
  CLOISTER_TRY(const nlohmann::json doc, parse_json_strict(body, "Challenge"));
  Challenge challenge;
  CLOISTER_TRY(challenge.nonce, string_member(doc, "nonce", "Challenge"));
  CLOISTER_TRY(const nlohmann::json* extra, required_member(doc, "extra-params", "Challenge"));
  challenge.extra_params = *extra;
  return challenge;
}

nlohmann::json to_json(const Challenge& challenge) {
  return {{"nonce", challenge.nonce}, {"extra-params", challenge.extra_params}};
}

Result<std::string> make_nonce() {
  auto random = detail::random_bytes(32);
  if (!random) return random.error().with_context("nonce");
  return to_base64(*random);
}

Result<TeePubKey> parse_tee_pubkey(const nlohmann::json& jwk) {
  constexpr std::string_view where = "tee-pubkey";
  CLOISTER_TRY(const std::string kty, string_member(jwk, "kty", where));
  if (kty == "EC") {
    EcTeeKey key;
    CLOISTER_TRY(key.crv, string_member(jwk, "crv", where));
    CLOISTER_TRY(key.alg, string_member(jwk, "alg", where));
    CLOISTER_TRY(key.x, string_member(jwk, "x", where));
    CLOISTER_TRY(key.y, string_member(jwk, "y", where));
    return TeePubKey(std::move(key));
  }
  if (kty == "RSA") {
    RsaTeeKey key;
    CLOISTER_TRY(key.alg, string_member(jwk, "alg", where));
    CLOISTER_TRY(key.n, string_member(jwk, "n", where));
    CLOISTER_TRY(key.e, string_member(jwk, "e", where));
    return TeePubKey(std::move(key));
  }
  return Error("tee-pubkey.kty: expected \"EC\" or \"RSA\", found \"" + kty + "\"");
}

nlohmann::json to_json(const TeePubKey& key) {
  if (const auto* ec = std::get_if<EcTeeKey>(&key)) {
    return {{"kty", "EC"}, {"crv", ec->crv}, {"alg", ec->alg}, {"x", ec->x}, {"y", ec->y}};
  }
  const auto& rsa = std::get<RsaTeeKey>(key);
  return {{"kty", "RSA"}, {"alg", rsa.alg}, {"n", rsa.n}, {"e", rsa.e}};
}

Result<Attestation> parse_attestation(std::string_view body) {
  CLOISTER_TRY(nlohmann::json doc, parse_json_strict(body, "Attestation"));
  Attestation a;
  // kbs-types: Option<InitData>; serde reads a missing member and null alike as None.
  CLOISTER_CHECK_OK(detail::expect_object(doc, "Attestation"));
  if (const auto it = doc.find("init-data"); it != doc.end() && !it->is_null()) {
    CLOISTER_CHECK_OK(detail::expect_object(*it, "Attestation.init-data"));
    InitData init;
    CLOISTER_TRY(init.format, string_member(*it, "format", "Attestation.init-data"));
    CLOISTER_TRY(init.body, string_member(*it, "body", "Attestation.init-data"));
    a.init_data = std::move(init);
  }
  CLOISTER_TRY(const nlohmann::json* runtime, object_member(doc, "runtime-data", "Attestation"));
  CLOISTER_TRY(a.nonce, string_member(*runtime, "nonce", "Attestation.runtime-data"));
  CLOISTER_TRY(const nlohmann::json* jwk,
               object_member(*runtime, "tee-pubkey", "Attestation.runtime-data"));
  auto key = parse_tee_pubkey(*jwk);
  if (!key) return key.error().with_context("Attestation.runtime-data");
  a.tee_pubkey = std::move(key).value();
  CLOISTER_TRY(const nlohmann::json* evidence, object_member(doc, "tee-evidence", "Attestation"));
  if (auto primary = required_member(*evidence, "primary_evidence", "Attestation.tee-evidence");
      !primary) {
    return primary.error();
  }
  CLOISTER_TRY(a.additional_evidence,
               string_member(*evidence, "additional_evidence", "Attestation.tee-evidence"));
  // Moved, not copied: an SNP report is an array of 1184 numbers.
  a.primary_evidence = std::move(doc["tee-evidence"]["primary_evidence"]);
  return a;
}

nlohmann::json to_json(const Attestation& a) {
  nlohmann::json init = nullptr;
  if (a.init_data) init = {{"format", a.init_data->format}, {"body", a.init_data->body}};
  return {
      {"init-data", init},
      {"runtime-data", {{"nonce", a.nonce}, {"tee-pubkey", to_json(a.tee_pubkey)}}},
      {"tee-evidence",
       {{"primary_evidence", a.primary_evidence}, {"additional_evidence", a.additional_evidence}}}};
}

nlohmann::json attest_response(std::string_view token) {
  return {{"token", std::string(token)}};
}

}  // namespace cloister::service::kbs
