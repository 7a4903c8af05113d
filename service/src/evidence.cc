#include "cloister/service/evidence.h"

#include "cloister/attestation/snp/report.h"
#include "cloister/common/base64.h"
#include "json_input.h"

namespace cloister::service::evidence {
namespace {

namespace snp = attestation::snp;
using detail::json_type_name;
using detail::required_member;

std::string path(std::string_view where, std::string_view name) {
  return std::string(where) + "." + std::string(name);
}

// Non-negative integers only (nlohmann keeps parsed ones unsigned, constructed ones signed).
bool is_uint_up_to(const nlohmann::json& value, std::uint64_t max) {
  return value.is_number_integer() &&
         (value.is_number_unsigned() || value.get<std::int64_t>() >= 0) &&
         value.get<std::uint64_t>() <= max;
}

Error not_uint_up_to(const nlohmann::json& value, const std::string& where, std::uint64_t max) {
  std::string found = value.is_number() ? value.dump() : json_type_name(value);
  return Error(where + ": expected an integer 0.." + std::to_string(max) + ", found " + found);
}

Result<std::uint64_t> to_uint(const nlohmann::json& value, const std::string& where,
                              std::uint64_t max) {
  if (!is_uint_up_to(value, max)) return not_uint_up_to(value, where, max);
  return value.get<std::uint64_t>();
}

Result<std::uint64_t> uint_member(const nlohmann::json& object, std::string_view name,
                                  std::string_view where, std::uint64_t max) {
  CLOISTER_TRY(const nlohmann::json* value, required_member(object, name, where));
  return to_uint(*value, path(where, name), max);
}

// A member that is an integer, or null / absent (serde's Option).
Result<std::optional<std::uint64_t>> optional_uint_member(const nlohmann::json& object,
                                                          std::string_view name,
                                                          std::string_view where,
                                                          std::uint64_t max) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return std::optional<std::uint64_t>();
  CLOISTER_TRY(const std::uint64_t value, to_uint(*it, path(where, name), max));
  return std::optional<std::uint64_t>(value);
}

Result<Bytes> to_byte_vector(const nlohmann::json& value, const std::string& where) {
  if (!value.is_array()) {
    return Error(where + ": expected an array of bytes, found " + json_type_name(value));
  }
  Bytes out;
  out.reserve(value.size());
  // The element's path is written only for the error: a certificate is over a thousand bytes.
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (!is_uint_up_to(value[i], 0xff)) {
      return not_uint_up_to(value[i], where + "[" + std::to_string(i) + "]", 0xff);
    }
    out.push_back(static_cast<std::uint8_t>(value[i].get<std::uint64_t>()));
  }
  return out;
}

template <std::size_t N>
Result<std::array<std::uint8_t, N>> byte_array_member(const nlohmann::json& object,
                                                      std::string_view name,
                                                      std::string_view where) {
  CLOISTER_TRY(const nlohmann::json* value, required_member(object, name, where));
  if (value->is_array() && value->size() != N) {
    return Error(path(where, name) + ": expected " + std::to_string(N) + " bytes, found " +
                 std::to_string(value->size()));
  }
  CLOISTER_TRY(const Bytes bytes, to_byte_vector(*value, path(where, name)));
  std::array<std::uint8_t, N> out{};
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

Result<snp::TcbParts> tcb_parts_member(const nlohmann::json& object, std::string_view name,
                                       std::string_view where) {
  CLOISTER_TRY(const nlohmann::json* tcb, required_member(object, name, where));
  const std::string at = path(where, name);
  CLOISTER_CHECK_OK(detail::expect_object(*tcb, at));
  snp::TcbParts parts;
  CLOISTER_TRY(const auto fmc, optional_uint_member(*tcb, "fmc", at, 0xff));
  if (fmc) parts.fmc = static_cast<std::uint8_t>(*fmc);
  CLOISTER_TRY(const auto bl, uint_member(*tcb, "bootloader", at, 0xff));
  CLOISTER_TRY(const auto tee, uint_member(*tcb, "tee", at, 0xff));
  CLOISTER_TRY(const auto snp_spl, uint_member(*tcb, "snp", at, 0xff));
  CLOISTER_TRY(const auto ucode, uint_member(*tcb, "microcode", at, 0xff));
  parts.bl = static_cast<std::uint8_t>(bl);
  parts.tee = static_cast<std::uint8_t>(tee);
  parts.snp = static_cast<std::uint8_t>(snp_spl);
  parts.ucode = static_cast<std::uint8_t>(ucode);
  return parts;
}

Result<snp::FirmwareVersion> version_member(const nlohmann::json& object, std::string_view name,
                                            std::string_view where) {
  CLOISTER_TRY(const nlohmann::json* v, required_member(object, name, where));
  const std::string at = path(where, name);
  CLOISTER_CHECK_OK(detail::expect_object(*v, at));
  CLOISTER_TRY(const auto major, uint_member(*v, "major", at, 0xff));
  CLOISTER_TRY(const auto minor, uint_member(*v, "minor", at, 0xff));
  CLOISTER_TRY(const auto build, uint_member(*v, "build", at, 0xff));
  return snp::FirmwareVersion{static_cast<std::uint8_t>(major), static_cast<std::uint8_t>(minor),
                              static_cast<std::uint8_t>(build)};
}

// The product whose TCB_VERSION layout the serde TCB objects use: the CPUID's when known,
// otherwise Turin's layout when the TCB names an FMC SPL and Milan's (= Genoa's) when not.
snp::Product layout_product(const std::optional<snp::CpuidInfo>& cpuid, const snp::TcbParts& tcb) {
  if (cpuid) {
    if (auto product = snp::product_from_cpuid(cpuid->family, cpuid->model)) return *product;
  }
  return tcb.fmc ? snp::Product::kTurin : snp::Product::kMilan;
}

Result<Bytes> report_from_json(const nlohmann::json& r) {
  constexpr std::string_view at = "attestation_report";
  CLOISTER_CHECK_OK(detail::expect_object(r, at));
  snp::SnpReport report;
  CLOISTER_TRY(const auto version, uint_member(r, "version", at, 0xffffffff));
  report.version = static_cast<std::uint32_t>(version);
  CLOISTER_TRY(const auto guest_svn, uint_member(r, "guest_svn", at, 0xffffffff));
  report.guest_svn = static_cast<std::uint32_t>(guest_svn);
  CLOISTER_TRY(report.policy, uint_member(r, "policy", at, UINT64_MAX));
  CLOISTER_TRY(report.family_id, byte_array_member<16>(r, "family_id", at));
  CLOISTER_TRY(report.image_id, byte_array_member<16>(r, "image_id", at));
  CLOISTER_TRY(const auto vmpl, uint_member(r, "vmpl", at, 0xffffffff));
  report.vmpl = static_cast<std::uint32_t>(vmpl);
  CLOISTER_TRY(const auto sig_algo, uint_member(r, "sig_algo", at, 0xffffffff));
  report.signature_algo = static_cast<std::uint32_t>(sig_algo);
  CLOISTER_TRY(const auto current_tcb, tcb_parts_member(r, "current_tcb", at));
  CLOISTER_TRY(report.platform_info, uint_member(r, "plat_info", at, UINT64_MAX));
  CLOISTER_TRY(const auto key_info, uint_member(r, "key_info", at, 0xffffffff));
  report.signer_info = static_cast<std::uint32_t>(key_info);
  CLOISTER_TRY(report.report_data, byte_array_member<64>(r, "report_data", at));
  CLOISTER_TRY(report.measurement, byte_array_member<48>(r, "measurement", at));
  CLOISTER_TRY(report.host_data, byte_array_member<32>(r, "host_data", at));
  CLOISTER_TRY(report.id_key_digest, byte_array_member<48>(r, "id_key_digest", at));
  CLOISTER_TRY(report.author_key_digest, byte_array_member<48>(r, "author_key_digest", at));
  CLOISTER_TRY(report.report_id, byte_array_member<32>(r, "report_id", at));
  CLOISTER_TRY(report.report_id_ma, byte_array_member<32>(r, "report_id_ma", at));
  CLOISTER_TRY(const auto reported_tcb, tcb_parts_member(r, "reported_tcb", at));
  CLOISTER_TRY(const auto fam, optional_uint_member(r, "cpuid_fam_id", at, 0xff));
  CLOISTER_TRY(const auto mod, optional_uint_member(r, "cpuid_mod_id", at, 0xff));
  CLOISTER_TRY(const auto step, optional_uint_member(r, "cpuid_step", at, 0xff));
  if (fam && mod && step) {
    report.cpuid = snp::CpuidInfo{static_cast<std::uint8_t>(*fam), static_cast<std::uint8_t>(*mod),
                                  static_cast<std::uint8_t>(*step)};
  } else if (fam || mod || step) {
    return Error(std::string(at) +
                 ": cpuid_fam_id, cpuid_mod_id and cpuid_step must be all set or all null");
  }
  CLOISTER_TRY(report.chip_id, byte_array_member<64>(r, "chip_id", at));
  CLOISTER_TRY(const auto committed_tcb, tcb_parts_member(r, "committed_tcb", at));
  CLOISTER_TRY(report.current_version, version_member(r, "current", at));
  CLOISTER_TRY(report.committed_version, version_member(r, "committed", at));
  CLOISTER_TRY(const auto launch_tcb, tcb_parts_member(r, "launch_tcb", at));
  CLOISTER_TRY(report.launch_mit_vector,
               optional_uint_member(r, "launch_mit_vector", at, UINT64_MAX));
  CLOISTER_TRY(report.current_mit_vector,
               optional_uint_member(r, "current_mit_vector", at, UINT64_MAX));
  CLOISTER_TRY(const nlohmann::json* signature, required_member(r, "signature", at));
  const std::string sig_at = path(at, "signature");
  CLOISTER_CHECK_OK(detail::expect_object(*signature, sig_at));
  CLOISTER_TRY(report.signature_r, byte_array_member<72>(*signature, "r", sig_at));
  CLOISTER_TRY(report.signature_s, byte_array_member<72>(*signature, "s", sig_at));

  const snp::Product product = layout_product(report.cpuid, reported_tcb);
  const std::pair<const snp::TcbParts*, snp::TcbVersion*> tcbs[] = {
      {&current_tcb, &report.current_tcb},
      {&reported_tcb, &report.reported_tcb},
      {&committed_tcb, &report.committed_tcb},
      {&launch_tcb, &report.launch_tcb},
  };
  static constexpr const char* kTcbNames[] = {"current_tcb", "reported_tcb", "committed_tcb",
                                              "launch_tcb"};
  for (std::size_t i = 0; i < std::size(tcbs); ++i) {
    auto tcb = snp::TcbVersion::from_parts(product, *tcbs[i].first);
    if (!tcb) return tcb.error().with_context(path(at, kTcbNames[i]));
    *tcbs[i].second = *tcb;
  }
  auto bytes = snp::encode_snp_report(report);
  if (!bytes) return bytes.error().with_context(std::string(at));
  return bytes;
}

Result<SnpCertificate> certificate_from_json(const nlohmann::json& entry, const std::string& at) {
  CLOISTER_CHECK_OK(detail::expect_object(entry, at));
  SnpCertificate cert;
  CLOISTER_TRY(const nlohmann::json* type, required_member(entry, "cert_type", at));
  if (type->is_string()) {
    static constexpr std::string_view kUnitTypes[] = {"Empty", "ARK", "ASK", "VCEK", "VLEK", "CRL"};
    cert.type = type->get<std::string>();
    if (std::find(std::begin(kUnitTypes), std::end(kUnitTypes), cert.type) ==
        std::end(kUnitTypes)) {
      return Error(at +
                   ".cert_type: expected one of Empty, ARK, ASK, VCEK, VLEK, CRL or "
                   "{\"OTHER\": guid}, found \"" +
                   cert.type + "\"");
    }
  } else if (type->is_object() && type->size() == 1 && type->contains("OTHER") &&
             (*type)["OTHER"].is_string()) {
    cert.type = "OTHER";
    cert.other_guid = (*type)["OTHER"].get<std::string>();
  } else {
    return Error(at + ".cert_type: expected a string or {\"OTHER\": guid}, found " +
                 json_type_name(*type));
  }
  CLOISTER_TRY(const nlohmann::json* data, required_member(entry, "data", at));
  CLOISTER_TRY(cert.data, to_byte_vector(*data, at + ".data"));
  return cert;
}

nlohmann::json tcb_to_json(const snp::TcbVersion& tcb, snp::Product product) {
  const auto parts = tcb.parts(product);
  return {{"fmc", parts.fmc ? nlohmann::json(*parts.fmc) : nlohmann::json(nullptr)},
          {"bootloader", parts.bl},
          {"tee", parts.tee},
          {"snp", parts.snp},
          {"microcode", parts.ucode}};
}

template <std::size_t N>
nlohmann::json bytes_json(const std::array<std::uint8_t, N>& bytes) {
  return nlohmann::json(std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
}

nlohmann::json version_json(const snp::FirmwareVersion& v) {
  return {{"major", v.major}, {"minor", v.minor}, {"build", v.build}};
}

}  // namespace

Result<SnpEvidence> parse_snp_evidence(const nlohmann::json& primary) {
  constexpr std::string_view at = "snp evidence";
  CLOISTER_TRY(const nlohmann::json* report, required_member(primary, "attestation_report", at));
  SnpEvidence evidence;
  CLOISTER_TRY(evidence.report, report_from_json(*report));
  CLOISTER_TRY(const nlohmann::json* chain, required_member(primary, "cert_chain", at));
  if (!chain->is_null()) {
    if (!chain->is_array()) {
      return Error("cert_chain: expected an array or null, found " + json_type_name(*chain));
    }
    std::vector<SnpCertificate> certs;
    for (std::size_t i = 0; i < chain->size(); ++i) {
      CLOISTER_TRY(auto cert,
                   certificate_from_json((*chain)[i], "cert_chain[" + std::to_string(i) + "]"));
      certs.push_back(std::move(cert));
    }
    evidence.cert_chain = std::move(certs);
  }
  return evidence;
}

Result<nlohmann::json> snp_evidence_to_json(const SnpEvidence& evidence) {
  CLOISTER_TRY(const snp::SnpReport r, snp::decode_snp_report(evidence.report));
  const snp::Product product = r.cpuid_product().value_or(snp::Product::kMilan);
  nlohmann::json report = {
      {"version", r.version},
      {"guest_svn", r.guest_svn},
      {"policy", r.policy},
      {"family_id", bytes_json(r.family_id)},
      {"image_id", bytes_json(r.image_id)},
      {"vmpl", r.vmpl},
      {"sig_algo", r.signature_algo},
      {"current_tcb", tcb_to_json(r.current_tcb, product)},
      {"plat_info", r.platform_info},
      {"key_info", r.signer_info},
      {"report_data", bytes_json(r.report_data)},
      {"measurement", bytes_json(r.measurement)},
      {"host_data", bytes_json(r.host_data)},
      {"id_key_digest", bytes_json(r.id_key_digest)},
      {"author_key_digest", bytes_json(r.author_key_digest)},
      {"report_id", bytes_json(r.report_id)},
      {"report_id_ma", bytes_json(r.report_id_ma)},
      {"reported_tcb", tcb_to_json(r.reported_tcb, product)},
      {"cpuid_fam_id", r.cpuid ? nlohmann::json(r.cpuid->family) : nlohmann::json(nullptr)},
      {"cpuid_mod_id", r.cpuid ? nlohmann::json(r.cpuid->model) : nlohmann::json(nullptr)},
      {"cpuid_step", r.cpuid ? nlohmann::json(r.cpuid->stepping) : nlohmann::json(nullptr)},
      {"chip_id", bytes_json(r.chip_id)},
      {"committed_tcb", tcb_to_json(r.committed_tcb, product)},
      {"current", version_json(r.current_version)},
      {"committed", version_json(r.committed_version)},
      {"launch_tcb", tcb_to_json(r.launch_tcb, product)},
      {"signature", {{"r", bytes_json(r.signature_r)}, {"s", bytes_json(r.signature_s)}}},
  };
  if (r.launch_mit_vector) report["launch_mit_vector"] = *r.launch_mit_vector;
  if (r.current_mit_vector) report["current_mit_vector"] = *r.current_mit_vector;
  nlohmann::json chain = nullptr;
  if (evidence.cert_chain) {
    chain = nlohmann::json::array();
    for (const auto& cert : *evidence.cert_chain) {
      nlohmann::json type = cert.type;
      if (cert.other_guid) type = {{"OTHER", *cert.other_guid}};
      chain.push_back({{"cert_type", type}, {"data", cert.data}});
    }
  }
  return nlohmann::json{{"attestation_report", report}, {"cert_chain", chain}};
}

Result<TdxEvidence> parse_tdx_evidence(const nlohmann::json& primary) {
  constexpr std::string_view at = "tdx evidence";
  TdxEvidence evidence;
  CLOISTER_TRY(const std::string quote, detail::string_member(primary, "quote", at));
  auto quote_bytes = from_base64(quote);
  if (!quote_bytes) return quote_bytes.error().with_context("tdx evidence.quote");
  evidence.quote = std::move(quote_bytes).value();
  // serde's Option: the member may be null or absent.
  if (const auto it = primary.find("cc_eventlog"); it != primary.end() && !it->is_null()) {
    if (!it->is_string()) {
      return Error("tdx evidence.cc_eventlog: expected a string or null, found " +
                   json_type_name(*it));
    }
    auto log = from_base64(it->get<std::string>());
    if (!log) return log.error().with_context("tdx evidence.cc_eventlog");
    evidence.cc_eventlog = std::move(log).value();
  }
  return evidence;
}

nlohmann::json to_json(const TdxEvidence& evidence) {
  return {{"cc_eventlog", evidence.cc_eventlog ? nlohmann::json(to_base64(*evidence.cc_eventlog))
                                               : nlohmann::json(nullptr)},
          {"quote", to_base64(evidence.quote)}};
}

}  // namespace cloister::service::evidence
