// verify-report: verify an SEV-SNP report, a TDX quote or Azure vTPM evidence against the
// vendors' roots and a policy. Exit status: 0 every check passed, 1 verification or policy
// failed, 2 usage or unreadable input.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "cloister/attestation/azure/evidence.h"
#include "cloister/attestation/snp/cert_table.h"
#include "cloister/attestation/tdx/collateral.h"
#include "cloister/attestation/tdx/event_log.h"
#include "cloister/attestation/x509.h"
#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "cloister/common/json.h"
#include "cloister/common/utf8.h"
#include "cloister/sdk/ci_report.h"
#include "cloister/sdk/verifier.h"

namespace {

constexpr int kExitFail = 1;
constexpr int kExitUsage = 2;

int usage_error(const std::string& message) {
  std::fprintf(stderr, "verify-report: %s\n", cloister::without_controls(message).c_str());
  return kExitUsage;
}

const char* tee_title(const std::string& tee) {
  if (tee == "tdx") return "Intel TDX";
  if (tee == "az-snp-vtpm") return "Azure vTPM, SEV-SNP";
  if (tee == "az-tdx-vtpm") return "Azure vTPM, Intel TDX";
  return "SEV-SNP";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Verify an AMD SEV-SNP attestation report, an Intel TDX quote or Azure vTPM evidence: "
      "signatures, certificate chain to the vendor's pinned root, revocation, TCB (SNP: VCEK "
      "binding; TDX: collateral and Intel's TCB status), an optional event log (TDX CCEL or "
      "dstack JSON; Azure: the TCG log), Azure's runtime-data binding and vTPM quote, and an "
      "appraisal policy.\n"
      "Exit status: 0 all checks passed, 1 verification or policy failed, 2 usage or "
      "unreadable input.",
      "verify-report"};
  std::string report_path;
  std::vector<std::string> cert_paths, crl_paths, measurements, collateral_paths, root_paths;
  std::string cert_table_path, cache_dir, product, policy_path, report_data, host_data, at;
  std::string tee, event_log_path, nonce, format = "text";
  std::vector<std::string> tpm_quote_paths;
  std::string kds_url = cloister::attestation::snp::kKdsBaseUrl;
  std::string pcs_url = cloister::attestation::tdx::kPcsBaseUrl;
  bool online = false, json = false;

  app.add_option("REPORT", report_path,
                 "SEV-SNP report (1184 bytes, optionally followed by the extended-report "
                 "certificate table), TDX quote (v4/v5), or Azure vTPM evidence (Trustee's "
                 "az-snp-vtpm/az-tdx-vtpm JSON, or an HCL report)")
      ->required();
  app.add_option("--tee", tee,
                 "snp, tdx, az-snp-vtpm or az-tdx-vtpm (default: detected from the evidence)")
      ->check(CLI::IsMember({"snp", "tdx", "az-snp-vtpm", "az-tdx-vtpm"}));
  app.add_option("--collateral", collateral_paths,
                 "TDX collateral: PCS TCB Info / QE Identity JSON, a collateral bundle JSON, PEM "
                 "issuer chains, CRLs (each recognised by content)");
  app.add_option("--event-log", event_log_path,
                 "Event log, recognised by content: TDX CC event log (CCEL log area) or dstack's "
                 "JSON log, replayed into RTMR0-3; for Azure vTPM evidence the TCG log "
                 "(binary_bios_measurements), replayed into PCRs");
  app.add_option("--tpm-quote", tpm_quote_paths,
                 "Azure, with a bare HCL report: the vTPM quote (Trustee's tpm-quote JSON, or "
                 "az-cvm-vtpm's bincode), or its TPMS_ATTEST message and signature as two files")
      ->expected(1, 2);
  app.add_option("--nonce", nonce,
                 "Azure: the nonce the vTPM quote must carry (hex; with evidence v2 also the "
                 "runtime data's user-data)");
  app.add_option("--certs", cert_paths,
                 "Certificate files (DER or PEM, bundles allowed): VCEK/VLEK, ASK/ASVK, ARK");
  app.add_option("--cert-table", cert_table_path,
                 "Extended-report certificate table (GHCB GUID table)");
  app.add_option("--trust-root", root_paths,
                 "Also trust this self-signed root (PEM or DER), beside AMD's and Intel's pinned "
                 "ones: an ARK-<product> anchors SEV-SNP chains, any other TDX PCK chains. For "
                 "the simulated secure processor: <state>/amd/<product>/ark.crt.pem or "
                 "<state>/intel/root.crt.pem (docs/simulated-tee.md); verdicts then say "
                 "simulated");
  app.add_option("--crl", crl_paths, "CRL files (DER or PEM): AMD's, or Intel's root and PCK CRLs");
  app.add_option("--cache-dir", cache_dir,
                 "Certificate/CRL/collateral cache directory (KDS and PCS layouts, see "
                 "docs/tenant.md)");
  app.add_flag("--online", online,
               "Fetch missing certificates, CRLs and collateral from AMD KDS or Intel PCS (and "
               "cache them)");
  app.add_option("--kds-url", kds_url, "KDS base URL (a mirror)")->capture_default_str();
  app.add_option("--pcs-url", pcs_url, "Intel PCS base URL (or a PCCS)")->capture_default_str();
  app.add_option("--product", product,
                 "Milan, Genoa, Bergamo, Siena, Turin: for v2 reports without CPUID fields");
  app.add_option("--policy", policy_path,
                 "Appraisal policy (JSON, see docs/policy.md); default: secure defaults");
  app.add_option("--measurement", measurements,
                 "Accepted MEASUREMENT (SNP) or MRTD (TDX) values (96 hex digits); overrides the "
                 "policy's");
  app.add_option("--report-data", report_data,
                 "Required REPORT_DATA (128 hex digits); overrides the policy's");
  app.add_option("--host-data", host_data,
                 "SNP: required HOST_DATA (64 hex digits); overrides the policy's");
  app.add_option("--at", at, "Verification time, RFC 3339 (default: now)");
  app.add_option("--format", format,
                 "Output: text, json, junit (JUnit XML), sarif (SARIF 2.1.0) or github (GitHub "
                 "Actions annotations)")
      ->check(CLI::IsMember({"text", "json", "junit", "sarif", "github"}))
      ->capture_default_str();
  app.add_flag("--json", json, "Print the verdict as JSON (--format json)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage_error(std::string(e.what()) + " (see --help)");
  }

  cloister::sdk::VerifyRequest request;
  auto evidence = cloister::read_file(report_path, cloister::sdk::kEvidenceFileLimit);
  if (!evidence) return usage_error(evidence.error().message());
  request.evidence = std::move(evidence).value();
  for (const auto& path : cert_paths) {
    auto bytes = cloister::read_file(path, cloister::attestation::kCertificateFileLimit);
    if (!bytes) return usage_error(bytes.error().message());
    request.certificates.push_back(std::move(bytes).value());
  }
  for (const auto& path : crl_paths) {
    auto bytes = cloister::read_file(path, cloister::attestation::kCrlFileLimit);
    if (!bytes) return usage_error(bytes.error().message());
    request.crls.push_back(std::move(bytes).value());
  }
  if (!cert_table_path.empty()) {
    auto bytes =
        cloister::read_file(cert_table_path, cloister::attestation::snp::kCertTableFileLimit);
    if (!bytes) return usage_error(bytes.error().message());
    request.cert_table = std::move(bytes).value();
  }
  if (!policy_path.empty()) {
    auto policy = cloister::policy::load_policy(policy_path);
    if (!policy) return usage_error(policy.error().message());
    request.policy = std::move(policy).value();
  }
  if (json) {
    if (format != "text" && format != "json")
      return usage_error("--json and --format " + format + " contradict each other");
    format = "json";
  }
  if (tee.empty()) {
    auto detected = cloister::sdk::detect_tee(request.evidence);
    if (!detected) return usage_error(report_path + ": " + cloister::sdk::kUnrecognisedEvidence);
    tee = *detected;
  }
  request.tee = tee;
  const bool is_tdx = tee == "tdx" || tee == "az-tdx-vtpm";
  for (const auto& path : tpm_quote_paths) {
    auto bytes = cloister::read_file(path, cloister::attestation::azure::kTpmQuoteFileLimit);
    if (!bytes) return usage_error(bytes.error().message());
    request.tpm_quote.push_back(std::move(bytes).value());
  }
  if (!nonce.empty()) {
    auto bytes = cloister::from_hex(nonce);
    if (!bytes || bytes->empty())
      return usage_error("--nonce: expected hex digits" +
                         (bytes ? std::string() : ": " + bytes.error().message()));
    request.nonce = std::move(bytes).value();
  }
  for (const auto& path : collateral_paths) {
    auto bytes = cloister::read_file(path, cloister::attestation::tdx::kCollateralFileLimit);
    if (!bytes) return usage_error(bytes.error().message());
    request.collateral.push_back(std::move(bytes).value());
  }
  if (!event_log_path.empty()) {
    auto bytes =
        cloister::read_file(event_log_path, cloister::attestation::tdx::kEventLogFileLimit);
    if (!bytes) return usage_error(bytes.error().message());
    request.event_log = std::move(bytes).value();
  }
  std::vector<cloister::Bytes> measurement_values;
  for (const auto& m : measurements) {
    auto bytes = cloister::from_hex_exact(m, 48);
    if (!bytes) return usage_error("--measurement " + m + ": " + bytes.error().message());
    measurement_values.push_back(std::move(bytes).value());
  }
  std::optional<cloister::Bytes> report_data_value;
  if (!report_data.empty()) {
    auto bytes = cloister::from_hex_exact(report_data, 64);
    if (!bytes) return usage_error("--report-data: " + bytes.error().message());
    report_data_value = std::move(bytes).value();
  }
  std::optional<cloister::Bytes> host_data_value;
  if (!host_data.empty()) {
    auto bytes = cloister::from_hex_exact(host_data, 32);
    if (!bytes) return usage_error("--host-data: " + bytes.error().message());
    host_data_value = std::move(bytes).value();
  }
  // An override tightens a section the policy has. It creates one only when the policy has none
  // at all: created for the detected kind, it would let evidence of a kind the tenant's policy
  // does not appraise pass check policy.tee, which then fails instead.
  const auto& sections = request.policy;
  const bool sectionless = !sections.snp && !sections.tdx && !sections.azure;
  if (is_tdx) {
    if (host_data_value) return usage_error("--host-data applies to SEV-SNP reports only");
    if ((!measurement_values.empty() || report_data_value) && (sections.tdx || sectionless)) {
      auto tdx = request.policy.tdx.value_or(cloister::policy::default_tdx_policy());
      if (!measurement_values.empty()) tdx.mr_td = measurement_values;
      if (report_data_value) tdx.report_data = report_data_value;
      request.policy.tdx = std::move(tdx);
    }
  } else if ((!measurement_values.empty() || report_data_value || host_data_value) &&
             (sections.snp || sectionless)) {
    auto snp = request.policy.snp.value_or(cloister::policy::default_snp_policy());
    if (!measurement_values.empty()) snp.measurements = measurement_values;
    if (report_data_value) snp.report_data = report_data_value;
    if (host_data_value) snp.host_data = host_data_value;
    request.policy.snp = std::move(snp);
  }
  if (!at.empty()) {
    auto time = cloister::parse_rfc3339(at);
    if (!time) return usage_error("--at: " + time.error().message());
    request.time = *time;
  }
  if (!product.empty()) request.product = product;

  cloister::sdk::VerifierOptions options;
  for (const auto& path : root_paths) {
    auto bytes = cloister::read_file(path, cloister::attestation::kCertificateFileLimit);
    if (!bytes) return usage_error(bytes.error().message());
    auto roots = cloister::attestation::parse_certificates(*bytes);
    if (!roots) return usage_error("--trust-root " + path + ": " + roots.error().message());
    for (auto& root : *roots) {
      if (auto ok = cloister::sdk::check_trust_root(root); !ok)
        return usage_error("--trust-root " + path + ": " + ok.error().message());
      options.trust_roots.push_back(std::move(root));
    }
  }
  if (!cache_dir.empty()) options.cache_dir = cache_dir;
  options.online = online;
  options.kds_url = kds_url;
  options.pcs_url = pcs_url;
  cloister::sdk::Verifier verifier(std::move(options));
  auto verdict = verifier.verify(request);
  if (!verdict) return usage_error(verdict.error().message());

  cloister::sdk::ReportContext context{report_path, std::nullopt};
  if (!policy_path.empty()) context.policy = policy_path;
  if (format == "json") {
    std::cout << cloister::dump_json(verdict->to_json(), 2) << "\n";
  } else if (format == "junit") {
    std::cout << cloister::sdk::to_junit_xml(*verdict, context);
  } else if (format == "sarif") {
    std::cout << cloister::dump_json(cloister::sdk::to_sarif(*verdict, context), 2) << "\n";
  } else if (format == "github") {
    std::cout << cloister::sdk::to_github_annotations(*verdict, context);
  } else {
    std::cout << "verify-report: " << report_path << " (" << tee_title(verdict->tee) << ")\n"
              << verdict->to_text();
  }
  return verdict->passed() ? 0 : kExitFail;
}
