#include "cloister/sdk/verifier.h"

#include <map>
#include <mutex>

#include "cloister/attestation/simulated.h"
#include "cloister/attestation/snp/cert_table.h"
#include "cloister/attestation/snp/report_json.h"
#include "cloister/attestation/tdx/report_json.h"
#include "cloister/common/hex.h"
#include "cloister/policy/snp.h"
#include "cloister/policy/tdx.h"

namespace cloister::sdk {
namespace {

namespace snp = attestation::snp;
namespace tdx = attestation::tdx;
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

bool is_ark(const Certificate& cert) {
  return snp::identify_amd_cert(cert).role == snp::AmdCertRole::kArk;
}

// The anchor when the named root check passed.
std::optional<TrustAnchor> anchor_if_passed(const Checks& checks, const std::string& check,
                                            const Certificate& root) {
  const auto* c = checks.find(check);
  if (c == nullptr || c->status != CheckStatus::kPass) return std::nullopt;
  return TrustAnchor{root.subject_string(), to_hex(root.fingerprint()),
                     attestation::is_simulated(root)};
}

}  // namespace

Status check_trust_root(const Certificate& root) {
  if (auto ok = root.verify_signed_by(root.public_key()); !ok)
    return Error("trust root " + root.subject_string() +
                 ": expected a self-signed root certificate, found one its own key does not "
                 "sign (" +
                 ok.error().message() + ")");
  return {};
}

struct Verifier::Impl {
  explicit Impl(VerifierOptions o)
      : options(std::move(o)), verifier(config(options)), tdx_verifier(tdx_config(options)) {}

  static tdx::TdxVerifierConfig tdx_config(const VerifierOptions& o) {
    tdx::TdxVerifierConfig c;
    if (o.cache_dir || o.online) {
      tdx::PcsOptions p;
      p.base_url = o.pcs_url;
      p.cache_dir = o.cache_dir;
      p.online = o.online;
      c.pcs = std::make_shared<tdx::PcsClient>(p);
    }
    for (const auto& root : o.trust_roots) {
      if (is_ark(root)) continue;
      if (c.trusted_roots.empty()) c.trusted_roots.push_back(tdx::intel_sgx_root_key());
      c.trusted_roots.push_back(root.public_key());
    }
    return c;
  }

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
    for (const auto& root : o.trust_roots)
      if (is_ark(root)) c.trusted_arks.push_back(root);
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

  // Collateral files parse once (JSON parsing dominates otherwise): a service or a fleet sees
  // the same TCB Info, QE Identity, chains and CRLs for every quote of a platform.
  Result<std::shared_ptr<const tdx::TdxCollateral>> collateral(const Bytes& input,
                                                               const std::string& source) const {
    {
      std::lock_guard lock(mutex);
      if (auto it = parsed_collateral.find(input); it != parsed_collateral.end()) return it->second;
    }
    auto c = std::make_shared<tdx::TdxCollateral>();
    CLOISTER_CHECK_OK(tdx::add_collateral(input, source, *c));
    constexpr std::size_t kMaxParsed = 1024;
    std::lock_guard lock(mutex);
    if (parsed_collateral.size() >= kMaxParsed) parsed_collateral.clear();
    parsed_collateral.emplace(input, c);
    return std::shared_ptr<const tdx::TdxCollateral>(c);
  }

  Result<Verdict> verify_snp(const VerifyRequest& request) const;
  Result<Verdict> verify_tdx(const VerifyRequest& request) const;

  VerifierOptions options;
  snp::SnpVerifier verifier;
  tdx::TdxVerifier tdx_verifier;
  mutable std::mutex mutex;
  mutable std::map<Bytes, std::vector<Certificate>> parsed;
  mutable std::map<Bytes, std::shared_ptr<const tdx::TdxCollateral>> parsed_collateral;
};

std::string detect_tee(ByteView evidence) {
  return tdx::looks_like_tdx_quote(evidence) ? "tdx" : "snp";
}

Verifier::Verifier(VerifierOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Verifier::~Verifier() = default;
Verifier::Verifier(Verifier&&) noexcept = default;
Verifier& Verifier::operator=(Verifier&&) noexcept = default;

Result<Verdict> Verifier::verify(const VerifyRequest& request) const {
  CLOISTER_CHECK_OK(kEvidenceFileLimit.check("evidence", request.evidence.size()));
  const std::string tee = request.tee.value_or(detect_tee(request.evidence));
  if (tee == "snp") return impl_->verify_snp(request);
  if (tee == "tdx") return impl_->verify_tdx(request);
  return Error("tee: expected \"snp\" or \"tdx\", found \"" + tee + "\"");
}

Result<Verdict> Verifier::Impl::verify_tdx(const VerifyRequest& request) const {
  if (request.cert_table) return Error("a certificate table is SEV-SNP evidence, not TDX");
  if (request.product)
    return Error("a product name applies to SEV-SNP reports; TDX quotes have none");
  tdx::TdxVerifyOptions verify_options;
  verify_options.time = request.time.value_or(unix_now());
  const policy::TdxPolicy tdx_policy = request.policy.tdx.value_or(policy::default_tdx_policy());
  policy::apply_tdx_policy_options(tdx_policy, verify_options);

  tdx::TdxEvidence evidence;
  evidence.quote = request.evidence;
  evidence.event_log = request.event_log;
  auto merge = [&](const tdx::TdxCollateral& c) {
    auto& out = evidence.collateral;
    out.tcb_infos.insert(out.tcb_infos.end(), c.tcb_infos.begin(), c.tcb_infos.end());
    out.qe_identities.insert(out.qe_identities.end(), c.qe_identities.begin(),
                             c.qe_identities.end());
    out.certificates.insert(out.certificates.end(), c.certificates.begin(), c.certificates.end());
    out.crls.insert(out.crls.end(), c.crls.begin(), c.crls.end());
  };
  for (std::size_t i = 0; i < request.collateral.size(); ++i) {
    const std::string source = "collateral input " + std::to_string(i + 1);
    auto c = collateral(request.collateral[i], source);
    if (!c) return c.error();
    merge(**c);
  }
  for (std::size_t i = 0; i < request.certificates.size(); ++i) {
    auto certs = certificates(request.certificates[i]);
    if (!certs) return certs.error().with_context("certificate input " + std::to_string(i + 1));
    for (auto& c : *certs)
      evidence.collateral.certificates.push_back({c, "certificate input " + std::to_string(i + 1)});
  }
  for (std::size_t i = 0; i < request.crls.size(); ++i) {
    auto crl = Crl::parse(request.crls[i]);
    if (!crl) return crl.error().with_context("CRL input " + std::to_string(i + 1));
    evidence.collateral.crls.push_back(
        {std::move(crl).value(), "CRL input " + std::to_string(i + 1)});
  }

  tdx::TdxVerification v = tdx_verifier.verify(evidence, verify_options);
  Verdict verdict;
  verdict.tee = "tdx";
  verdict.checks = v.checks;
  policy::evaluate_tdx_policy(tdx_policy, v, verdict.checks);
  verdict.report = tdx::tdx_report_to_json(v);
  if (v.pck_chain)
    verdict.trust_anchor = anchor_if_passed(v.checks, "tdx.pck.chain.root", v.pck_chain->root);
  return verdict;
}

Result<Verdict> Verifier::Impl::verify_snp(const VerifyRequest& request) const {
  if (!request.collateral.empty())
    return Error("collateral (TCB Info, QE Identity) applies to TDX quotes, not SEV-SNP reports");
  if (request.event_log)
    return Error("an event log is replayed into TDX RTMRs; SEV-SNP reports have none");
  snp::SnpVerifyOptions verify_options;
  verify_options.time = request.time.value_or(unix_now());
  if (request.product) {
    CLOISTER_TRY(verify_options.product, snp::product_from_name(*request.product));
  }
  const policy::SnpPolicy snp_policy = request.policy.snp.value_or(policy::default_snp_policy());
  policy::apply_snp_policy_options(snp_policy, verify_options);

  snp::SnpEvidence evidence;
  for (std::size_t i = 0; i < request.certificates.size(); ++i) {
    auto certs = certificates(request.certificates[i]);
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

  snp::SnpVerification v = verifier.verify(evidence, verify_options);
  Verdict verdict;
  verdict.tee = "snp";
  for (const auto& c : table_checks.all()) verdict.checks.add(c);
  for (const auto& c : v.checks.all()) verdict.checks.add(c);
  policy::evaluate_snp_policy(snp_policy, v, verdict.checks);
  verdict.report = v.report ? snp::snp_report_to_json(*v.report, v.product) : nlohmann::json();
  if (v.anchor) verdict.trust_anchor = anchor_if_passed(v.checks, "snp.chain.ark", *v.anchor);
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
  nlohmann::json anchor;
  if (trust_anchor) {
    anchor = {{"subject", trust_anchor->subject},
              {"fingerprint", trust_anchor->fingerprint},
              {"simulated", trust_anchor->simulated}};
  }
  return {{"verdict", passed() ? "pass" : "fail"},
          {"tee", tee},
          {"simulated", trust_anchor && trust_anchor->simulated},
          {"trust_anchor", anchor},
          {"checks", list},
          {"report", report}};
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
  if (!report.is_null() && tee == "tdx") {
    out += "\n  mr_td        " + report.value("mr_td", "") + "\n";
    for (int i = 0; i < 4; ++i) {
      const std::string key = "rtmr" + std::to_string(i);
      out += "  " + key + "        " + report.value(key, "") + "\n";
    }
    out += "  report_data  " + report.value("report_data", "") + "\n";
    if (report.contains("tcb")) {
      const auto& tcb = report["tcb"];
      out += "  tcb_status   " + tcb.value("status", "") +
             (tcb["tcb_date"].is_string() ? " (tcbDate " + tcb["tcb_date"].get<std::string>() + ")"
                                          : std::string()) +
             "\n";
    }
  } else if (!report.is_null()) {
    out += "\n  measurement  " + report.value("measurement", "") + "\n";
    out += "  report_data  " + report.value("report_data", "") + "\n";
    out += "  chip_id      " + report.value("chip_id", "") + "\n";
  }
  if (trust_anchor) {
    out += "  trust anchor " + trust_anchor->subject + "\n";
    if (trust_anchor->simulated)
      out +=
          "               SIMULATED secure processor: this evidence proves nothing about "
          "hardware\n";
  }
  out += "\nverdict: ";
  if (passed()) {
    out += "PASS (" + std::to_string(checks.all().size()) + " checks" +
           (trust_anchor && trust_anchor->simulated ? ", simulated" : "") + ")\n";
  } else {
    out += "FAIL (" + std::to_string(failed) + " of " + std::to_string(checks.all().size()) +
           " checks failed:";
    for (const auto& n : checks.failures()) out += " " + n;
    out += ")\n";
  }
  return out;
}

}  // namespace cloister::sdk
