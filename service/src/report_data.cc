#include "cloister/service/report_data.h"

#include <algorithm>

#include "cloister/service/jcs.h"

namespace cloister::service::kbs {

Result<std::string> binding_object(const TeePubKey& key, std::string_view nonce,
                                   std::optional<std::string_view> additional_evidence) {
  nlohmann::json object = {{"tee-pubkey", to_json(key)}, {"nonce", std::string(nonce)}};
  if (additional_evidence) object["additional-evidence"] = std::string(*additional_evidence);
  auto text = canonical_json(object);
  if (!text) return text.error().with_context("REPORT_DATA binding");
  return text;
}

Result<Bytes> binding_digest(const TeePubKey& key, std::string_view nonce,
                             std::optional<std::string_view> additional_evidence,
                             HashAlgorithm hash) {
  CLOISTER_TRY(const std::string text, binding_object(key, nonce, additional_evidence));
  return digest(hash, as_bytes(text));
}

Result<ReportData> expected_report_data(const TeePubKey& key, std::string_view nonce,
                                        std::optional<std::string_view> additional_evidence,
                                        HashAlgorithm hash) {
  CLOISTER_TRY(const Bytes digest, binding_digest(key, nonce, additional_evidence, hash));
  ReportData out{};
  std::copy(digest.begin(), digest.end(), out.begin());
  return out;
}

}  // namespace cloister::service::kbs
