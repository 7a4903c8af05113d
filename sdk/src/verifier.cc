#include "cloister/sdk/verifier.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "cloister/attestation/azure/evidence.h"
#include "cloister/attestation/azure/verify.h"
#include "cloister/attestation/simulated.h"
#include "cloister/attestation/snp/cert_table.h"
#include "cloister/attestation/snp/report_json.h"
#include "cloister/attestation/tdx/report_json.h"
#include "cloister/attestation/tdx/tdreport.h"
#include "cloister/common/hex.h"
#include "cloister/common/sha.h"
#include "cloister/common/utf8.h"
#include "cloister/policy/azure.h"
#include "cloister/policy/snp.h"
#include "cloister/policy/tdx.h"

namespace cloister::sdk {
namespace {

namespace azure = attestation::azure;
namespace snp = attestation::snp;
namespace tdx = attestation::tdx;
using attestation::Certificate;
using attestation::Checks;
using attestation::CheckStatus;
using attestation::Crl;
using attestation::Sourced;

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

nlohmann::json vtpm_json(const azure::HclReport& hcl, const azure::VtpmVerification& v) {
  using json = nlohmann::json;
  json out;
  out["hcl"] = {{"version", hcl.version},
                {"report_type", hcl.report_type == azure::HclReportType::kTdx ? "tdx" : "snp"},
                {"runtime_data_size", hcl.runtime_data.size()},
                {"runtime_data_sha256", to_hex(sha256(hcl.runtime_data))}};
  if (v.runtime_data) {
    const auto& rd = *v.runtime_data;
    json keys = json::array();
    for (const auto& k : rd.keys) {
      keys.push_back({{"kid", k.kid},
                      {"key_ops", k.key_ops},
                      {"modulus_bits", k.n.size() * 8},
                      {"modulus_sha256", to_hex(sha256(k.n))}});
    }
    const auto& vm = rd.vm_configuration;
    auto opt = [](const auto& o) { return o ? json(*o) : json(); };
    out["runtime_data"] = {{"keys", keys},
                           {"vm_configuration",
                            {{"console-enabled", opt(vm.console_enabled)},
                             {"secure-boot", opt(vm.secure_boot)},
                             {"tpm-enabled", opt(vm.tpm_enabled)},
                             {"tpm-persisted", opt(vm.tpm_persisted)},
                             {"vmUniqueId", opt(vm.vm_unique_id)},
                             {"root-cert-thumbprint", opt(vm.root_cert_thumbprint)},
                             {"current-time", opt(vm.current_time)}}},
                           {"user_data", rd.user_data ? json(to_hex(*rd.user_data)) : json()}};
  }
  if (v.attest) {
    const auto& a = *v.attest;
    json selection = json::array();
    for (const auto& sel : a.pcr_select)
      selection.push_back({{"hash", attestation::tpm::alg_name(sel.hash)}, {"pcrs", sel.pcrs()}});
    out["tpm_quote"] = {{"qualified_signer", to_hex(a.qualified_signer)},
                        {"extra_data", to_hex(a.extra_data)},
                        {"clock", a.clock},
                        {"reset_count", a.reset_count},
                        {"restart_count", a.restart_count},
                        {"safe", a.safe},
                        {"firmware_version", hex_number(a.firmware_version)},
                        {"pcr_select", selection},
                        {"pcr_digest", to_hex(a.pcr_digest)}};
  }
  json pcrs = json::object();
  for (const auto& [index, value] : v.pcrs) pcrs[std::to_string(index)] = to_hex(value);
  out["pcrs"] = pcrs;
  out["pcrs_verified"] = v.pcrs_verified;
  if (v.event_log && v.replay) {
    json events = json::array();
    for (std::size_t i = 0; i < v.event_log->events.size(); ++i) {
      const auto& e = v.event_log->events[i];
      json event = {{"index", i + 1},
                    {"offset", e.offset},
                    {"pcr", e.pcr},
                    {"type", tdx::event_type_name(e.type)},
                    {"sha256", e.sha256() ? json(to_hex(*e.sha256())) : json()},
                    {"data_size", e.data.size()}};
      if (e.data.size() <= 256) event["data"] = to_hex(e.data);
      events.push_back(std::move(event));
    }
    json replayed = json::object();
    for (unsigned i = 0; i < attestation::tpm::kPcrCount; ++i) {
      if (v.replay->events[i] == 0) continue;
      replayed[std::to_string(i)] = {{"value", to_hex(v.replay->pcrs[i])},
                                     {"events", v.replay->events[i]}};
    }
    out["event_log"] = {{"events", events}, {"replayed", replayed}};
  }
  return out;
}

// A policy names the evidence it accepts. Once it has a section, evidence of a kind it has none
// for fails rather than being appraised by the defaults, which pin nothing (the evidence, not
// the tenant, would choose). A policy with an "azure" section accepts Azure vTPM evidence only:
// its snp or tdx section describes Azure's paravisor, which a bare report must not pass for.
// And Azure vTPM evidence is Azure's only when that section pins the paravisor: any SEV-SNP VM
// or TD can write runtime data naming its own vTPM key and bind it into REPORT_DATA.
void check_policy_scope(const policy::Policy& p, const std::string& tee, Checks& checks) {
  if (!p.snp && !p.tdx && !p.azure) return;  // no policy: the secure defaults, nothing pinned
  std::string sections;
  for (const auto& [name, present] : {std::pair{"snp", p.snp.has_value()},
                                      {"tdx", p.tdx.has_value()},
                                      {"azure", p.azure.has_value()}}) {
    if (present) sections += (sections.empty() ? "" : ", ") + std::string(name);
  }
  const bool on_azure = tee == "az-snp-vtpm" || tee == "az-tdx-vtpm";
  const std::string expected = "evidence of a kind the policy has a section for (" + sections + ")";
  const std::string found = tee + " evidence";
  if (on_azure && !p.azure) {
    checks.fail("policy.tee", expected, found,
                "the policy has no \"azure\" section, so it accepts no Azure vTPM evidence");
  } else if (!on_azure && p.azure) {
    checks.fail("policy.tee", expected, found,
                "the policy has an \"azure\" section: it accepts Azure vTPM evidence only, whose "
                "paravisor its " +
                    tee + " section describes, not a bare " + tee + " report");
  } else if ((tee == "snp" && !p.snp) || (tee == "tdx" && !p.tdx)) {
    checks.fail("policy.tee", expected, found,
                "the policy has no \"" + tee + "\" section, so it accepts no " + tee + " evidence");
  } else {
    checks.pass("policy.tee", expected, found);
  }
  if (!on_azure) return;
  const bool on_snp = tee == "az-snp-vtpm";
  const bool pinned =
      on_snp ? p.snp && (!p.snp->measurements.empty() || !p.snp->id_key_digests.empty())
             : p.tdx && !p.tdx->mr_td.empty();
  const std::string paravisor =
      on_snp ? "snp.measurements or snp.id_key_digests pinning Azure's paravisor"
             : "tdx.mr_td pinning Azure's paravisor";
  if (pinned) {
    checks.pass("policy.azure.paravisor", paravisor, "pinned");
  } else {
    checks.fail("policy.azure.paravisor", paravisor, "not pinned",
                std::string("any ") + (on_snp ? "SEV-SNP VM" : "TD") +
                    " can write runtime data naming its own vTPM key and bind it into "
                    "REPORT_DATA; the report is Azure's paravisor's only if the policy pins it");
  }
}

// Parsed inputs by the SHA-256 of their bytes, bounded in entries and in the input bytes behind
// them (a long-running caller fed ever-new collateral of up to 4 MiB each stays at kBytes), and
// emptied when a new entry would pass either bound.
template <typename V>
class ParsedMemo {
 public:
  static constexpr std::size_t kEntries = 1024;
  static constexpr std::size_t kBytes = std::size_t{64} << 20;

  const V* find(const Sha256Digest& digest) const {
    auto it = entries_.find(digest);
    return it == entries_.end() ? nullptr : &it->second;
  }
  void add(const Sha256Digest& digest, std::size_t input_size, V value) {
    if (entries_.size() >= kEntries || bytes_ + input_size > kBytes) {
      entries_.clear();
      bytes_ = 0;
    }
    if (input_size > kBytes) return;
    bytes_ += input_size;
    entries_.emplace(digest, std::move(value));
  }

 private:
  std::map<Sha256Digest, V> entries_;
  std::size_t bytes_ = 0;
};

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
    const Sha256Digest key = sha256(input);
    std::lock_guard lock(mutex);
    if (const auto* found = parsed.find(key)) return *found;
    auto certs = attestation::parse_certificates(input);
    if (!certs) return certs;
    parsed.add(key, input.size(), *certs);
    return certs;
  }

  // Collateral files parse once (JSON parsing dominates otherwise): a service or a fleet sees
  // the same TCB Info, QE Identity, chains and CRLs for every quote of a platform. Each item's
  // source is kept without the `source` it was parsed under ("collateral input 1 tcb_info"
  // keeps " tcb_info"): the caller prefixes its own, since another request may give the same
  // bytes as another input.
  Result<std::shared_ptr<const tdx::TdxCollateral>> collateral(const Bytes& input,
                                                               const std::string& source) const {
    const Sha256Digest key = sha256(input);
    {
      std::lock_guard lock(mutex);
      if (const auto* found = parsed_collateral.find(key)) return *found;
    }
    auto c = std::make_shared<tdx::TdxCollateral>();
    CLOISTER_CHECK_OK(tdx::add_collateral(input, source, *c));
    const auto unprefix = [&](auto& items) {
      for (auto& item : items)
        if (item.source.starts_with(source)) item.source.erase(0, source.size());
    };
    unprefix(c->tcb_infos);
    unprefix(c->qe_identities);
    unprefix(c->certificates);
    unprefix(c->crls);
    unprefix(c->pck_chains);
    std::lock_guard lock(mutex);
    parsed_collateral.add(key, input.size(), c);
    return std::shared_ptr<const tdx::TdxCollateral>(c);
  }

  Result<Verdict> verify_snp(const VerifyRequest& request) const;
  Result<Verdict> verify_tdx(const VerifyRequest& request) const;
  // `detected`: the evidence container when detection already parsed it.
  Result<Verdict> verify_azure(const VerifyRequest& request, const std::string& tee,
                               std::optional<Result<azure::AzureEvidence>> detected) const;
  // The SEV-SNP report's checks and appraisal, into `verdict`.
  Result<snp::SnpVerification> snp_checks(const VerifyRequest& request, ByteView report,
                                          const std::vector<Sourced<Certificate>>& carried,
                                          Verdict& verdict) const;
  // The TDX quote's checks and appraisal, into `verdict`.
  Result<tdx::TdxVerification> tdx_checks(const VerifyRequest& request, const Bytes& quote,
                                          const std::optional<Bytes>& event_log,
                                          Verdict& verdict) const;

  VerifierOptions options;
  snp::SnpVerifier verifier;
  tdx::TdxVerifier tdx_verifier;
  mutable std::mutex mutex;
  mutable ParsedMemo<std::vector<Certificate>> parsed;
  mutable ParsedMemo<std::shared_ptr<const tdx::TdxCollateral>> parsed_collateral;
};

namespace {

struct Detected {
  std::string tee;
  // Azure vTPM evidence: the container, parsed once for detection and verification.
  std::optional<Result<azure::AzureEvidence>> azure;
};

std::optional<Detected> detect(ByteView evidence) {
  if (tdx::looks_like_tdx_quote(evidence)) return Detected{"tdx", std::nullopt};
  if (auto parsed = azure::parse_if_azure_evidence(evidence)) {
    // The HCL report's type decides; a container that does not parse is still Azure evidence
    // (and fails azure.evidence.format), SEV-SNP unless it carries a TD quote.
    bool is_tdx = false;
    if (*parsed) {
      auto hcl = azure::parse_hcl_report((*parsed)->hcl_report);
      is_tdx = (*parsed)->td_quote || (hcl && hcl->report_type == azure::HclReportType::kTdx);
    }
    return Detected{is_tdx ? "az-tdx-vtpm" : "az-snp-vtpm", std::move(parsed)};
  }
  // An ATTESTATION_REPORT starts with its version (2..5); a truncated one is still a report
  // that fails snp.report.format.
  if (evidence.size() >= 4) {
    const std::uint32_t version = load_le32(evidence, 0);
    if (version >= 2 && version <= 5) return Detected{"snp", std::nullopt};
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> detect_tee(ByteView evidence) {
  auto detected = detect(evidence);
  if (!detected) return std::nullopt;
  return std::move(detected->tee);
}

Verifier::Verifier(VerifierOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Verifier::~Verifier() = default;
Verifier::Verifier(Verifier&&) noexcept = default;
Verifier& Verifier::operator=(Verifier&&) noexcept = default;

Result<Verdict> Verifier::verify(const VerifyRequest& request) const {
  CLOISTER_CHECK_OK(kEvidenceFileLimit.check("evidence", request.evidence.size()));
  std::optional<std::string> tee = request.tee;
  std::optional<Result<azure::AzureEvidence>> parsed_azure;
  if (!tee) {
    auto detected = detect(request.evidence);
    if (!detected) return Error(kUnrecognisedEvidence);
    tee = std::move(detected->tee);
    parsed_azure = std::move(detected->azure);
  }
  const bool is_azure = *tee == "az-snp-vtpm" || *tee == "az-tdx-vtpm";
  if (!is_azure && !request.tpm_quote.empty())
    return Error("a vTPM quote comes with Azure vTPM evidence, not with " + *tee + " evidence");
  if (!is_azure && request.nonce)
    return Error("a nonce is checked in Azure vTPM evidence; for " + *tee +
                 " evidence pin REPORT_DATA (--report-data or the policy)");
  if (*tee != "snp" && *tee != "tdx" && !is_azure) {
    return Error("tee: expected \"snp\", \"tdx\", \"az-snp-vtpm\" or \"az-tdx-vtpm\", found \"" +
                 *tee + "\"");
  }
  Result<Verdict> verdict = *tee == "snp" ? impl_->verify_snp(request)
                            : *tee == "tdx"
                                ? impl_->verify_tdx(request)
                                : impl_->verify_azure(request, *tee, std::move(parsed_azure));
  if (verdict) check_policy_scope(request.policy, *tee, verdict->checks);
  return verdict;
}

Result<Verdict> Verifier::Impl::verify_tdx(const VerifyRequest& request) const {
  if (request.cert_table) return Error("a certificate table is SEV-SNP evidence, not TDX");
  if (request.product)
    return Error("a product name applies to SEV-SNP reports; TDX quotes have none");
  Verdict verdict;
  verdict.tee = "tdx";
  CLOISTER_TRY(tdx::TdxVerification v,
               tdx_checks(request, request.evidence, request.event_log, verdict));
  verdict.report = tdx::tdx_report_to_json(v);
  return verdict;
}

Result<tdx::TdxVerification> Verifier::Impl::tdx_checks(const VerifyRequest& request,
                                                        const Bytes& quote,
                                                        const std::optional<Bytes>& event_log,
                                                        Verdict& verdict) const {
  tdx::TdxVerifyOptions verify_options;
  verify_options.time = request.time.value_or(unix_now());
  const policy::TdxPolicy tdx_policy = request.policy.tdx.value_or(policy::default_tdx_policy());
  policy::apply_tdx_policy_options(tdx_policy, verify_options);

  tdx::TdxEvidence evidence;
  evidence.quote = quote;
  evidence.event_log = event_log;
  // Appends `from`'s items, their sources under `source` (collateral() kept them without one).
  const auto merge = [](const auto& from, auto& out, const std::string& source) {
    for (const auto& item : from) out.push_back({item.value, source + item.source});
  };
  for (std::size_t i = 0; i < request.collateral.size(); ++i) {
    const std::string source = "collateral input " + std::to_string(i + 1);
    auto c = collateral(request.collateral[i], source);
    if (!c) return c.error();
    auto& out = evidence.collateral;
    merge((*c)->tcb_infos, out.tcb_infos, source);
    merge((*c)->qe_identities, out.qe_identities, source);
    merge((*c)->certificates, out.certificates, source);
    merge((*c)->crls, out.crls, source);
    merge((*c)->pck_chains, out.pck_chains, source);
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
  for (const auto& c : v.checks.all()) verdict.checks.add(c);
  policy::evaluate_tdx_policy(tdx_policy, v, verdict.checks);
  if (v.pck_chain)
    verdict.trust_anchor = anchor_if_passed(v.checks, "tdx.pck.chain.root", v.pck_chain->root);
  return v;
}

Result<Verdict> Verifier::Impl::verify_snp(const VerifyRequest& request) const {
  if (!request.collateral.empty())
    return Error("collateral (TCB Info, QE Identity) applies to TDX quotes, not SEV-SNP reports");
  if (request.event_log)
    return Error("an event log is replayed into TDX RTMRs; SEV-SNP reports have none");
  Verdict verdict;
  verdict.tee = "snp";
  CLOISTER_TRY(snp::SnpVerification v, snp_checks(request, request.evidence, {}, verdict));
  verdict.report = v.report ? snp::snp_report_to_json(*v.report, v.product) : nlohmann::json();
  return verdict;
}

Result<snp::SnpVerification> Verifier::Impl::snp_checks(
    const VerifyRequest& request, ByteView report, const std::vector<Sourced<Certificate>>& carried,
    Verdict& verdict) const {
  snp::SnpVerifyOptions verify_options;
  verify_options.time = request.time.value_or(unix_now());
  if (request.product) {
    CLOISTER_TRY(verify_options.product, snp::product_from_name(*request.product));
  }
  const policy::SnpPolicy snp_policy = request.policy.snp.value_or(policy::default_snp_policy());
  policy::apply_snp_policy_options(snp_policy, verify_options);

  snp::SnpEvidence evidence;
  evidence.certificates = carried;
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
  ByteView bytes = report;
  if (bytes.size() > snp::kReportSize) {
    add_table(bytes.subspan(snp::kReportSize), "the certificate table after the report", evidence,
              table_checks);
    bytes = bytes.first(snp::kReportSize);
  }
  if (request.cert_table)
    add_table(*request.cert_table, "the certificate table", evidence, table_checks);
  evidence.report.assign(bytes.begin(), bytes.end());

  snp::SnpVerification v = verifier.verify(evidence, verify_options);
  for (const auto& c : table_checks.all()) verdict.checks.add(c);
  for (const auto& c : v.checks.all()) verdict.checks.add(c);
  policy::evaluate_snp_policy(snp_policy, v, verdict.checks);
  if (v.anchor) verdict.trust_anchor = anchor_if_passed(v.checks, "snp.chain.ark", *v.anchor);
  return v;
}

Result<Verdict> Verifier::Impl::verify_azure(
    const VerifyRequest& request, const std::string& tee,
    std::optional<Result<azure::AzureEvidence>> detected) const {
  const bool is_tdx = tee == "az-tdx-vtpm";
  if (is_tdx && request.cert_table)
    return Error("a certificate table is SEV-SNP evidence, not Azure TDX");
  if (is_tdx && request.product)
    return Error("a product name applies to SEV-SNP reports; Azure TDX evidence has none");
  if (!is_tdx && !request.collateral.empty())
    return Error("collateral (TCB Info, QE Identity) applies to TDX quotes, not Azure SEV-SNP");
  std::optional<azure::VtpmQuote> supplied_quote;
  if (!request.tpm_quote.empty()) {
    std::vector<ByteView> parts(request.tpm_quote.begin(), request.tpm_quote.end());
    auto q = azure::parse_vtpm_quote(parts);
    if (!q) return q.error().with_context("vTPM quote input");
    supplied_quote = std::move(q).value();
  }

  Verdict verdict;
  verdict.tee = tee;
  Checks& checks = verdict.checks;
  const std::string container_expected =
      "Trustee's Azure vTPM evidence JSON (v0, v1 or v2) or an HCL report";
  auto evidence = detected ? std::move(*detected) : azure::parse_azure_evidence(request.evidence);
  if (!evidence) {
    checks.fail("azure.evidence.format", container_expected,
                std::to_string(request.evidence.size()) + " bytes", evidence.error().message());
    return verdict;
  }
  checks.pass("azure.evidence.format", container_expected,
              evidence->version ? "evidence v" + std::to_string(*evidence->version)
                                : std::string("HCL report"));
  if (evidence->tpm_quote && supplied_quote)
    return Error("the evidence carries its vTPM quote; a separate one is for a bare HCL report");
  const std::optional<azure::VtpmQuote>& quote =
      evidence->tpm_quote ? evidence->tpm_quote : supplied_quote;

  const std::string hcl_expected = std::string("an HCL report (\"HCLA\", v1/v2) of type ") +
                                   (is_tdx ? "TDX (4)" : "SEV-SNP (2)") +
                                   " with SHA-256-bound runtime data";
  auto hcl = azure::parse_hcl_report(evidence->hcl_report);
  if (!hcl) {
    checks.fail("azure.hcl.format", hcl_expected,
                std::to_string(evidence->hcl_report.size()) + " bytes", hcl.error().message());
    return verdict;
  }
  if ((hcl->report_type == azure::HclReportType::kTdx) != is_tdx) {
    checks.fail("azure.hcl.format", hcl_expected,
                hcl->report_type == azure::HclReportType::kTdx ? "a TDX HCL report"
                                                               : "a SEV-SNP HCL report",
                "the HCL report is not of the TEE the evidence was verified as");
    return verdict;
  }
  checks.pass("azure.hcl.format", hcl_expected,
              "HCL report v" + std::to_string(hcl->version) + ", " +
                  std::to_string(hcl->runtime_data.size()) + " bytes of runtime data");

  azure::VtpmVerifyOptions vtpm_options;
  vtpm_options.nonce = request.nonce;
  vtpm_options.user_data_carries_nonce =
      (evidence->version && *evidence->version >= 2) ||
      (request.policy.azure && request.policy.azure->user_data_nonce);
  vtpm_options.event_log = request.event_log;

  azure::VtpmVerification vtpm;
  if (is_tdx) {
    if (!evidence->td_quote) {
      checks.fail("azure.td_quote", "the TD quote of the HCL report's TDREPORT", "none",
                  "Azure TDX evidence must carry its TD quote (Trustee's td_quote)");
      return verdict;
    }
    CLOISTER_TRY(tdx::TdxVerification v,
                 tdx_checks(request, *evidence->td_quote, std::nullopt, verdict));
    verdict.report = tdx::tdx_report_to_json(v);
    auto td_report = tdx::parse_tdreport(hcl->hw_report);
    if (!td_report) {
      checks.fail("azure.td_report.match", "the TD quote's body equals the HCL report's TDREPORT",
                  "an unreadable TDREPORT", td_report.error().message());
    } else if (!v.quote) {
      checks.fail("azure.td_report.match", "the TD quote's body equals the HCL report's TDREPORT",
                  "no TD quote", "the TD quote does not parse (see tdx.quote.format)");
    } else {
      azure::check_td_report_match(*td_report, v.quote->td_report, checks);
    }
    const ByteView report_data = v.quote ? ByteView(v.quote->td_report.report_data)
                                         : ByteView(hcl->hw_report).subspan(0x80, 64);
    vtpm = azure::verify_vtpm(*hcl, report_data,
                              v.quote ? "TD quote REPORT_DATA" : "TDREPORT REPORTDATA", quote,
                              vtpm_options, checks);
  } else {
    std::vector<Sourced<Certificate>> carried;
    if (evidence->vcek) {
      auto certs = certificates(*evidence->vcek);
      if (!certs) {
        checks.fail("azure.vcek", "the VCEK the evidence carries", "unreadable",
                    certs.error().message());
      } else {
        for (auto& c : *certs) carried.push_back({c, "the Azure evidence's vcek"});
      }
    }
    CLOISTER_TRY(snp::SnpVerification v, snp_checks(request, hcl->hw_report, carried, verdict));
    verdict.report = v.report ? snp::snp_report_to_json(*v.report, v.product) : nlohmann::json();
    // REPORT_DATA at 0x50 (AMD SEV-SNP ABI table 22).
    const ByteView report_data = ByteView(hcl->hw_report).subspan(0x50, 64);
    vtpm = azure::verify_vtpm(*hcl, report_data, "SNP REPORT_DATA", quote, vtpm_options, checks);
  }
  if (request.policy.azure) policy::evaluate_azure_policy(*request.policy.azure, vtpm, checks);
  verdict.azure = vtpm_json(*hcl, vtpm);
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
  nlohmann::json out = {{"verdict", passed() ? "pass" : "fail"},
                        {"tee", tee},
                        {"simulated", trust_anchor && trust_anchor->simulated},
                        {"trust_anchor", anchor},
                        {"checks", list},
                        {"report", report}};
  if (!azure.is_null()) out["azure"] = azure;
  return out;
}

std::string Verdict::to_text() const {
  // Every outside string is shown field by field without controls (newlines included), so
  // evidence can neither drive the terminal nor forge lines of the verdict.
  const auto shown = [](std::string_view text) { return without_controls(text); };
  std::size_t width = 0;
  for (const auto& c : checks.all()) width = std::max(width, shown(c.name).size());
  std::string out;
  int failed = 0;
  for (const auto& c : checks.all()) {
    const char* tag = c.status == CheckStatus::kPass   ? "PASS"
                      : c.status == CheckStatus::kFail ? "FAIL"
                                                       : "SKIP";
    failed += c.status == CheckStatus::kFail;
    const std::string name = shown(c.name);
    out += "  " + std::string(tag) + "  " + name + std::string(width - name.size() + 2, ' ');
    if (c.status == CheckStatus::kSkip) {
      out += shown(c.detail);
    } else {
      out += shown(c.found);
      if (c.status == CheckStatus::kFail)
        out += "\n" + std::string(width + 10, ' ') + "expected: " + shown(c.expected);
      if (!c.detail.empty()) out += "\n" + std::string(width + 10, ' ') + shown(c.detail);
    }
    out += "\n";
  }
  const auto field = [&](const nlohmann::json& object, const char* key) {
    return shown(object.value(key, ""));
  };
  if (!report.is_null() && (tee == "tdx" || tee == "az-tdx-vtpm")) {
    out += "\n  mr_td        " + field(report, "mr_td") + "\n";
    for (int i = 0; i < 4; ++i) {
      const std::string key = "rtmr" + std::to_string(i);
      out += "  " + key + "        " + field(report, key.c_str()) + "\n";
    }
    out += "  report_data  " + field(report, "report_data") + "\n";
    if (report.contains("tcb")) {
      const auto& tcb = report["tcb"];
      out += "  tcb_status   " + field(tcb, "status") +
             (tcb["tcb_date"].is_string() ? " (tcbDate " + field(tcb, "tcb_date") + ")"
                                          : std::string()) +
             "\n";
    }
    if (report.contains("event_log") && report["event_log"].value("format", "") == "dstack") {
      for (const auto& e : report["event_log"]["runtime_events"])
        out += "  event        " + field(e, "name") + " = " + field(e, "payload") + "\n";
    }
  } else if (!report.is_null()) {
    out += "\n  measurement  " + field(report, "measurement") + "\n";
    out += "  report_data  " + field(report, "report_data") + "\n";
    out += "  chip_id      " + field(report, "chip_id") + "\n";
  }
  if (!azure.is_null()) {
    if (azure.contains("tpm_quote"))
      out += "  tpm nonce    " + field(azure["tpm_quote"], "extra_data") + "\n";
    if (azure.contains("runtime_data") && azure["runtime_data"]["user_data"].is_string())
      out += "  user_data    " + field(azure["runtime_data"], "user_data") + "\n";
    out += "  pcrs         " + std::to_string(azure["pcrs"].size()) + " SHA-256 values" +
           (azure.value("pcrs_verified", false) ? " (verified by the quote)" : " (not verified)") +
           " in the JSON verdict\n";
  }
  if (trust_anchor) {
    out += "  trust anchor " + shown(trust_anchor->subject) + "\n";
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
    for (const auto& n : checks.failures()) out += " " + shown(n);
    out += ")\n";
  }
  return out;
}

}  // namespace cloister::sdk
