#include "tdx_facts.h"

#include "cloister/common/file.h"

namespace cloister::testing {

const nlohmann::json& tdx_facts() {
  static const nlohmann::json facts = [] {
    auto path = vector_path("tdx/expected.json");
    if (!path) return nlohmann::json();
    auto text = read_text_file(*path, kTestFileLimit);
    if (!text) return nlohmann::json();
    return nlohmann::json::parse(*text);
  }();
  return facts;
}

Bytes tdx_vector(const std::string& relative) {
  auto path = vector_path("tdx/" + relative);
  if (!path) {
    ADD_FAILURE() << vectors_missing_message("tdx/" + relative);
    return {};
  }
  return read_vector(*path);
}

attestation::tdx::TdxCollateral tdx_collateral_set(const nlohmann::json& collateral_set) {
  attestation::tdx::TdxCollateral out;
  for (const auto& [role, file] : collateral_set.items()) {
    auto added = attestation::tdx::add_collateral(tdx_vector(file.get<std::string>()),
                                                  file.get<std::string>(), out);
    EXPECT_TRUE(added) << role << ": " << added.error().message();
  }
  return out;
}

UnixTime tdx_pinned_time(const nlohmann::json& against) {
  const nlohmann::json& w = against["all_valid_window"].is_null()
                                ? against["validity_items"]["tcbInfo"]
                                : against["all_valid_window"];
  const UnixTime from = *parse_rfc3339(w[0].get<std::string>());
  const UnixTime to = *parse_rfc3339(w[1].get<std::string>());
  return from + (to - from) / 2;
}

attestation::tdx::TdxVerification verify_fact_pair(const nlohmann::json& quote,
                                                   const nlohmann::json& against) {
  static const attestation::tdx::TdxVerifier verifier;
  attestation::tdx::TdxEvidence evidence;
  evidence.quote = tdx_vector(quote["file"]);
  evidence.collateral = tdx_collateral_set(against["collateral_set"]);
  attestation::tdx::TdxVerifyOptions options;
  options.time = tdx_pinned_time(against);
  return verifier.verify(evidence, options);
}

bool tdx_item_valid_at(const nlohmann::json& against, const std::string& item, UnixTime t) {
  const nlohmann::json& w = against["validity_items"][item];
  return *parse_rfc3339(w[0].get<std::string>()) <= t &&
         t < *parse_rfc3339(w[1].get<std::string>());
}

}  // namespace cloister::testing
