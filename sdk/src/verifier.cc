#include "cloister/sdk/verifier.h"

#include <map>
#include <mutex>

#include "cloister/attestation/snp/cert_table.h"
#include "cloister/attestation/snp/report_json.h"
#include "cloister/policy/snp.h"

namespace cloister::sdk {
namespace {

namespace snp = attestation::snp;
using attestation::Certificate;
using attestation::Checks;
using attestation::CheckStatus;
using attestation::Crl;

// Certificates (and a CRL) from a certificate table; a malformed table is a failed check.
void add_table(ByteView table, const std::string& where, snp::SnpEvidence& evidence,
               Checks& checks) {
  auto entries = snp::parse_cert_table(table);
  if (!entries) {
    checks.fail("snp.cert_table", "a GHCB certificate table", where, entries.error().message());
    return;
  }
  std::string roles;
  for (const auto& e : *entries) {
    std::string name = where + " " + std::string(snp::to_string(e.role));
    if (e.role == snp::CertTableRole::kCrl) {
      auto crl = Crl::parse(e.data);
      if (!crl) {
        checks.fail("snp.cert_table", "a CRL", name, crl.error().message());
        return;
      }
      evidence.crls.push_back({std::move(crl).value(), name});
    } else if (e.role != snp::CertTableRole::kExtraPlatformInfo &&
               e.role != snp::CertTableRole::kUnknown) {
      auto cert = Certificate::from_der(e.data);
      if (!cert) {
        checks.fail("snp.cert_table", "a DER certificate", name, cert.error().message());
        return;
      }
      evidence.certificates.push_back({std::move(cert).value(), name});
    }
    roles += (roles.empty() ? "" : ", ") + std::string(snp::to_string(e.role));
  }
  checks.pass("snp.cert_table", "a GHCB certificate table",
              std::to_string(entries->size()) + " entries (" + roles + ") from " + where);
}

}  // namespace

struct Verifier::Impl {
  explicit Impl(VerifierOptions o) : options(std::move(o)), verifier(config(options)) {}

  static snp::SnpVerifierConfig config(const VerifierOptions& o) {
    snp::SnpVerifierConfig c;
    if (o.cache_dir || o.online) {
      snp::KdsOptions k;
      k.base_url = o.kds_url;
      k.cache_dir = o.cache_dir;
      k.online = o.online;
      c.kds = std::make_shared<snp::KdsClient>(k);
    }
    c.trusted_cas = o.trusted_cas;
    return c;
  }

  // Certificate files parse once: a service sees the same VCEK and CA bundles on every call.
  Result<std::vector<Certificate>> certificates(const Bytes& input) const {
    std::lock_guard lock(mutex);
    if (auto it = parsed.find(input); it != parsed.end()) return it->second;
    auto certs = attestation::parse_certificates(input);
    if (!certs) return certs;
    constexpr std::size_t kMaxParsed = 1024;
    if (parsed.size() >= kMaxParsed) parsed.clear();
    parsed.emplace(input, *certs);
    return certs;
  }

  VerifierOptions options;
  snp::SnpVerifier verifier;
  mutable std::mutex mutex;
  mutable std::map<Bytes, std::vector<Certificate>> parsed;
};

Verifier::Verifier(VerifierOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Verifier::~Verifier() = default;
Verifier::Verifier(Verifier&&) noexcept = default;
Verifier& Verifier::operator=(Verifier&&) noexcept = default;

Result<Verdict> Verifier::verify(const VerifyRequest& request) const {
  snp::SnpVerifyOptions options;
  options.time = request.time.value_or(unix_now());
  if (request.product) {
    CLOISTER_TRY(options.product, snp::product_from_name(*request.product));
  }
  const policy::SnpPolicy snp_policy = request.policy.snp.value_or(policy::default_snp_policy());
  policy::apply_snp_policy_options(snp_policy, options);

  snp::SnpEvidence evidence;
  for (std::size_t i = 0; i < request.certificates.size(); ++i) {
    auto certs = impl_->certificates(request.certificates[i]);
    if (!certs) return certs.error().with_context("certificate input " + std::to_string(i + 1));
    for (auto& c : *certs) {
      evidence.certificates.push_back({c, "certificate input " + std::to_string(i + 1)});
    }
  }
  for (std::size_t i = 0; i < request.crls.size(); ++i) {
    auto crl = Crl::parse(request.crls[i]);
    if (!crl) return crl.error().with_context("CRL input " + std::to_string(i + 1));
    evidence.crls.push_back({std::move(crl).value(), "CRL input " + std::to_string(i + 1)});
  }

  Checks table_checks;
  ByteView bytes(request.evidence);
  if (bytes.size() > snp::kReportSize) {
    add_table(bytes.subspan(snp::kReportSize), "the certificate table after the report", evidence,
              table_checks);
    bytes = bytes.first(snp::kReportSize);
  }
  if (request.cert_table)
    add_table(*request.cert_table, "the certificate table", evidence, table_checks);
  evidence.report.assign(bytes.begin(), bytes.end());

  snp::SnpVerification v = impl_->verifier.verify(evidence, options);
  Verdict verdict;
  verdict.tee = "snp";
  for (const auto& c : table_checks.all()) verdict.checks.add(c);
  for (const auto& c : v.checks.all()) verdict.checks.add(c);
  policy::evaluate_snp_policy(snp_policy, v, verdict.checks);
  verdict.report = v.report ? snp::snp_report_to_json(*v.report, v.product) : nlohmann::json();
  return verdict;
}

nlohmann::json Verdict::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& c : checks.all()) {
    list.push_back({{"name", c.name},
                    {"status", std::string(attestation::to_string(c.status))},
                    {"expected", c.expected},
                    {"found", c.found},
                    {"detail", c.detail}});
  }
  return {
      {"verdict", passed() ? "pass" : "fail"}, {"tee", tee}, {"checks", list}, {"report", report}};
}

std::string Verdict::to_text() const {
  std::size_t width = 0;
  for (const auto& c : checks.all()) width = std::max(width, c.name.size());
  std::string out;
  int failed = 0;
  for (const auto& c : checks.all()) {
    const char* tag = c.status == CheckStatus::kPass   ? "PASS"
                      : c.status == CheckStatus::kFail ? "FAIL"
                                                       : "SKIP";
    failed += c.status == CheckStatus::kFail;
    out += "  " + std::string(tag) + "  " + c.name + std::string(width - c.name.size() + 2, ' ');
    if (c.status == CheckStatus::kSkip) {
      out += c.detail;
    } else {
      out += c.found;
      if (c.status == CheckStatus::kFail)
        out += "\n" + std::string(width + 10, ' ') + "expected: " + c.expected;
      if (!c.detail.empty()) out += "\n" + std::string(width + 10, ' ') + c.detail;
    }
    out += "\n";
  }
  if (!report.is_null()) {
    out += "\n  measurement  " + report.value("measurement", "") + "\n";
    out += "  report_data  " + report.value("report_data", "") + "\n";
    out += "  chip_id      " + report.value("chip_id", "") + "\n";
  }
  out += "\nverdict: ";
  if (passed()) {
    out += "PASS (" + std::to_string(checks.all().size()) + " checks)\n";
  } else {
    out += "FAIL (" + std::to_string(failed) + " of " + std::to_string(checks.all().size()) +
           " checks failed:";
    for (const auto& n : checks.failures()) out += " " + n;
    out += ")\n";
  }
  return out;
}

}  // namespace cloister::sdk
