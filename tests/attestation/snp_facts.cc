#include "snp_facts.h"

#include "cloister/common/file.h"

namespace cloister::testing {

const nlohmann::json& snp_facts() {
  static const nlohmann::json facts = [] {
    auto path = vector_path("snp/expected_facts.json");
    if (!path) return nlohmann::json();
    auto text = read_text_file(*path, kTestFileLimit);
    if (!text) return nlohmann::json();
    return nlohmann::json::parse(*text);
  }();
  return facts;
}

Bytes snp_report_bytes(const std::string& file) {
  auto path = vector_path("snp/" + file);
  if (!path) return {};
  Bytes bytes = read_vector(*path);
  if (bytes.size() > attestation::snp::kReportSize) bytes.resize(attestation::snp::kReportSize);
  return bytes;
}

}  // namespace cloister::testing
