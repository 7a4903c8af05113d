#include "cloister/attestation/tdx/collateral.h"

#include <algorithm>
#include <span>

#include "cloister/attestation/tdx/pck.h"
#include "cloister/common/hex.h"
#include "raw_json.h"

namespace cloister::attestation::tdx {
namespace {

using json = nlohmann::json;

// Reads fields of one JSON object; errors carry the document name and the field path.
class Fields {
 public:
  Fields(const json& object, std::string doc, std::string path)
      : object_(object), doc_(std::move(doc)), path_(std::move(path)) {}

  Error fail(const std::string& key, const std::string& why) const {
    return Error(doc_ + ": " + at(key) + ": " + why);
  }
  std::string at(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  const json* find(const std::string& key) const {
    auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }

  Result<const json*> required(const std::string& key) const {
    const json* v = find(key);
    if (v == nullptr) return fail(key, "missing");
    return v;
  }

  Result<std::string> string(const std::string& key) const {
    CLOISTER_TRY(const json* v, required(key));
    if (!v->is_string()) return fail(key, "expected a string");
    return v->get<std::string>();
  }

  // An optional string; empty when absent.
  Result<std::string> optional_string(const std::string& key) const {
    const json* v = find(key);
    if (v == nullptr) return std::string();
    if (!v->is_string()) return fail(key, "expected a string");
    return v->get<std::string>();
  }

  Result<std::uint64_t> integer(const std::string& key, std::uint64_t max) const {
    CLOISTER_TRY(const json* v, required(key));
    if (!v->is_number_unsigned()) return fail(key, "expected a non-negative integer");
    auto n = v->get<std::uint64_t>();
    if (n > max)
      return fail(key, "expected 0.." + std::to_string(max) + ", found " + std::to_string(n));
    return n;
  }

  template <std::size_t N>
  Result<std::array<std::uint8_t, N>> hex(const std::string& key) const {
    CLOISTER_TRY(std::string s, string(key));
    auto bytes = from_hex_exact(s, N);
    if (!bytes) return fail(key, bytes.error().message());
    std::array<std::uint8_t, N> out{};
    std::copy(bytes->begin(), bytes->end(), out.begin());
    return out;
  }

  Result<UnixTime> date(const std::string& key) const {
    CLOISTER_TRY(std::string s, string(key));
    auto t = parse_rfc3339(s);
    if (!t) return fail(key, t.error().message());
    return *t;
  }

  Result<const json*> array(const std::string& key, bool non_empty) const {
    CLOISTER_TRY(const json* v, required(key));
    if (!v->is_array()) return fail(key, "expected an array");
    if (non_empty && v->empty()) return fail(key, "expected a non-empty array");
    return v;
  }

  Result<const json*> object(const std::string& key) const {
    CLOISTER_TRY(const json* v, required(key));
    if (!v->is_object()) return fail(key, "expected an object");
    return v;
  }

  Result<std::vector<std::string>> advisory_ids() const {
    std::vector<std::string> out;
    const json* v = find("advisoryIDs");
    if (v == nullptr) return out;
    if (!v->is_array()) return fail("advisoryIDs", "expected an array of strings");
    for (const auto& id : *v) {
      if (!id.is_string()) return fail("advisoryIDs", "expected an array of strings");
      out.push_back(id.get<std::string>());
    }
    return out;
  }

  Result<TcbStatus> status(const std::string& key, std::span<const TcbStatus> allowed) const {
    CLOISTER_TRY(std::string s, string(key));
    auto st = tcb_status_from_string(s);
    if (!st || std::find(allowed.begin(), allowed.end(), *st) == allowed.end()) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(to_string(a));
      return fail(key, "expected one of " + list + ", found '" + printable(s, 64) + "'");
    }
    return *st;
  }

  Fields child(const json& value, const std::string& key) const {
    return Fields(value, doc_, at(key));
  }

  const json& object() const { return object_; }

 private:
  const json& object_;
  std::string doc_;
  std::string path_;
};

constexpr TcbStatus kPlatformStatuses[] = {TcbStatus::kUpToDate,
                                           TcbStatus::kSwHardeningNeeded,
                                           TcbStatus::kConfigurationNeeded,
                                           TcbStatus::kConfigurationAndSwHardeningNeeded,
                                           TcbStatus::kOutOfDate,
                                           TcbStatus::kOutOfDateConfigurationNeeded,
                                           TcbStatus::kRevoked};
// QVL TcbStatus.h VALID_MODULE_TCB_STATUSES.
constexpr TcbStatus kModuleStatuses[] = {TcbStatus::kUpToDate, TcbStatus::kOutOfDate,
                                         TcbStatus::kRevoked};
// QVL EnclaveIdentityV2 parseStringToTcbStatus.
constexpr TcbStatus kQeStatuses[] = {TcbStatus::kUpToDate, TcbStatus::kConfigurationNeeded,
                                     TcbStatus::kOutOfDate,
                                     TcbStatus::kOutOfDateConfigurationNeeded, TcbStatus::kRevoked};

Result<std::array<TcbComponent, 16>> components(const Fields& tcb, const std::string& key) {
  CLOISTER_TRY(const json* list, tcb.array(key, false));
  if (list->size() != 16)
    return tcb.fail(key, "expected 16 components, found " + std::to_string(list->size()));
  std::array<TcbComponent, 16> out;
  for (std::size_t i = 0; i < 16; ++i) {
    const json& c = (*list)[i];
    const std::string name = key + "[" + std::to_string(i) + "]";
    if (!c.is_object()) return tcb.fail(name, "expected an object");
    Fields f = tcb.child(c, name);
    CLOISTER_TRY(std::uint64_t svn, f.integer("svn", 255));
    out[i].svn = static_cast<std::uint8_t>(svn);
    CLOISTER_TRY(out[i].category, f.optional_string("category"));
    CLOISTER_TRY(out[i].type, f.optional_string("type"));
  }
  return out;
}

Result<TdxModule> tdx_module(const Fields& f) {
  TdxModule m;
  CLOISTER_TRY(m.mrsigner, f.hex<48>("mrsigner"));
  CLOISTER_TRY(m.attributes, f.hex<8>("attributes"));
  CLOISTER_TRY(m.attributes_mask, f.hex<8>("attributesMask"));
  return m;
}

Result<TcbInfo> tcb_info_from_json(const json& doc);
Result<QeIdentity> qe_identity_from_json(const json& doc);

template <typename T>
Result<SignedCollateral<T>> parse_response(std::string_view json_text, const char* member,
                                           const char* doc, Result<T> (*from_json)(const json&)) {
  CLOISTER_TRY(RawObject object, parse_raw_object(json_text, doc));
  auto raw = object.raw_members.find(member);
  if (raw == object.raw_members.end() || !object.value[member].is_object())
    return Error(std::string(doc) + ": expected an object member '" + member + "'");
  Fields top(object.value, doc, "");
  CLOISTER_TRY(auto signature, top.hex<64>("signature"));
  for (const auto& [key, unused] : object.raw_members) {
    if (key != member && key != "signature")
      return Error(std::string(doc) + ": unexpected member '" + printable(key, 64) + "'");
  }
  SignedCollateral<T> out;
  out.body = std::string(raw->second);
  out.signature = signature;
  // The member's value as parsed from exactly the raw text the signature covers (duplicate keys
  // are rejected, so the document holds one parse of that text).
  CLOISTER_TRY(out.value, from_json(object.value[member]));
  return out;
}

template <typename T>
Result<SignedCollateral<T>> parse_bundle_item(const Fields& bundle, const std::string& body_key,
                                              const std::string& signature_key,
                                              Result<T> (*from_json)(const json&)) {
  CLOISTER_TRY(std::string body, bundle.string(body_key));
  CLOISTER_TRY(auto signature, bundle.hex<64>(signature_key));
  SignedCollateral<T> out;
  out.body = std::move(body);
  out.signature = signature;
  auto doc = parse_json_strict(out.body, body_key);
  if (!doc) return doc.error().with_context("bundle");
  auto value = from_json(*doc);
  if (!value) return value.error().with_context("bundle " + body_key);
  out.value = std::move(value).value();
  return out;
}

Status add_certificates(ByteView pem, const std::string& source, TdxCollateral& out) {
  CLOISTER_TRY(std::vector<Certificate> certs, parse_pem_chain(pem, "PEM certificates"));
  for (auto& c : certs) out.certificates.push_back({std::move(c), source});
  return {};
}

Status add_bundle(const json& doc, const std::string& source, TdxCollateral& out) {
  static const char* kKeys[] = {"tcb_info",
                                "tcb_info_signature",
                                "tcb_info_issuer_chain",
                                "qe_identity",
                                "qe_identity_signature",
                                "qe_identity_issuer_chain",
                                "pck_crl",
                                "pck_crl_issuer_chain",
                                "root_ca_crl",
                                "pck_certificate_chain"};
  for (const auto& [key, unused] : doc.items()) {
    if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys)) {
      std::string list;
      for (const char* k : kKeys) list += (list.empty() ? "" : ", ") + std::string(k);
      return Error(source + ": collateral bundle: unknown key '" + printable(key, 64) +
                   "' (expected " + list + ")");
    }
  }
  Fields bundle(doc, source + ": collateral bundle", "");
  if (bundle.find("tcb_info") || bundle.find("tcb_info_signature")) {
    CLOISTER_TRY(auto item, parse_bundle_item<TcbInfo>(bundle, "tcb_info", "tcb_info_signature",
                                                       &tcb_info_from_json));
    out.tcb_infos.push_back({std::move(item), source + " tcb_info"});
  }
  if (bundle.find("qe_identity") || bundle.find("qe_identity_signature")) {
    CLOISTER_TRY(auto item,
                 parse_bundle_item<QeIdentity>(bundle, "qe_identity", "qe_identity_signature",
                                               &qe_identity_from_json));
    out.qe_identities.push_back({std::move(item), source + " qe_identity"});
  }
  for (const char* key :
       {"tcb_info_issuer_chain", "qe_identity_issuer_chain", "pck_crl_issuer_chain"}) {
    if (!bundle.find(key)) continue;
    CLOISTER_TRY(std::string pem, bundle.string(key));
    auto added = add_certificates(as_bytes(pem), source + " " + key, out);
    if (!added) return bundle.fail(key, added.error().message());
  }
  if (bundle.find("pck_certificate_chain")) {
    CLOISTER_TRY(std::string pem, bundle.string("pck_certificate_chain"));
    auto chain = parse_pem_chain(as_bytes(pem), "pck_certificate_chain");
    if (!chain) return bundle.fail("pck_certificate_chain", chain.error().message());
    out.pck_chains.push_back({std::move(chain).value(), source + " pck_certificate_chain"});
  }
  for (const char* key : {"pck_crl", "root_ca_crl"}) {
    if (!bundle.find(key)) continue;
    CLOISTER_TRY(std::string hex, bundle.string(key));
    auto der = from_hex(hex);
    if (!der) return bundle.fail(key, der.error().message());
    auto crl = Crl::parse(*der);
    if (!crl) return bundle.fail(key, crl.error().message());
    out.crls.push_back({std::move(crl).value(), source + " " + key});
  }
  return {};
}

Result<TcbInfo> tcb_info_from_json(const json& doc) {
  if (!doc.is_object()) return Error("TCB Info: expected a JSON object");
  Fields f(doc, "TCB Info", "");
  TcbInfo t;
  CLOISTER_TRY(t.id, f.string("id"));
  CLOISTER_TRY(std::uint64_t version, f.integer("version", 0xffffffffu));
  t.version = static_cast<std::uint32_t>(version);
  if (t.id != "TDX" || t.version != 3) {
    return Error("TCB Info: expected id \"TDX\" version 3 (TDX TCB Info), found id \"" + t.id +
                 "\" version " + std::to_string(t.version));
  }
  CLOISTER_TRY(t.issue_date, f.date("issueDate"));
  CLOISTER_TRY(t.next_update, f.date("nextUpdate"));
  CLOISTER_TRY(t.fmspc, f.hex<6>("fmspc"));
  CLOISTER_TRY(t.pce_id, f.hex<2>("pceId"));
  CLOISTER_TRY(std::uint64_t tcb_type, f.integer("tcbType", 0xffffffffu));
  t.tcb_type = static_cast<std::uint32_t>(tcb_type);
  CLOISTER_TRY(std::uint64_t number, f.integer("tcbEvaluationDataNumber", 0xffffffffu));
  t.tcb_evaluation_data_number = static_cast<std::uint32_t>(number);
  CLOISTER_TRY(const json* module, f.object("tdxModule"));
  CLOISTER_TRY(t.tdx_module, tdx_module(f.child(*module, "tdxModule")));
  if (f.find("tdxModuleIdentities")) {
    CLOISTER_TRY(const json* ids, f.array("tdxModuleIdentities", false));
    for (std::size_t i = 0; i < ids->size(); ++i) {
      const std::string key = "tdxModuleIdentities[" + std::to_string(i) + "]";
      if (!(*ids)[i].is_object()) return f.fail(key, "expected an object");
      Fields m = f.child((*ids)[i], key);
      TdxModuleIdentity id;
      CLOISTER_TRY(id.id, m.string("id"));
      CLOISTER_TRY(id.module, tdx_module(m));
      CLOISTER_TRY(const json* levels, m.array("tcbLevels", true));
      for (std::size_t j = 0; j < levels->size(); ++j) {
        const std::string lkey = "tcbLevels[" + std::to_string(j) + "]";
        if (!(*levels)[j].is_object()) return m.fail(lkey, "expected an object");
        Fields l = m.child((*levels)[j], lkey);
        ModuleTcbLevel level;
        CLOISTER_TRY(const json* tcb, l.object("tcb"));
        CLOISTER_TRY(std::uint64_t isvsvn, l.child(*tcb, "tcb").integer("isvsvn", 255));
        level.isvsvn = static_cast<std::uint8_t>(isvsvn);
        CLOISTER_TRY(level.tcb_date, l.date("tcbDate"));
        CLOISTER_TRY(level.status, l.status("tcbStatus", kModuleStatuses));
        CLOISTER_TRY(level.advisory_ids, l.advisory_ids());
        id.tcb_levels.push_back(std::move(level));
      }
      t.tdx_module_identities.push_back(std::move(id));
    }
  }
  CLOISTER_TRY(const json* levels, f.array("tcbLevels", true));
  for (std::size_t i = 0; i < levels->size(); ++i) {
    const std::string key = "tcbLevels[" + std::to_string(i) + "]";
    if (!(*levels)[i].is_object()) return f.fail(key, "expected an object");
    Fields l = f.child((*levels)[i], key);
    TcbLevel level;
    CLOISTER_TRY(const json* tcb_json, l.object("tcb"));
    Fields tcb = l.child(*tcb_json, "tcb");
    CLOISTER_TRY(level.sgx_components, components(tcb, "sgxtcbcomponents"));
    CLOISTER_TRY(std::uint64_t pcesvn, tcb.integer("pcesvn", 65535));
    level.pcesvn = static_cast<std::uint16_t>(pcesvn);
    CLOISTER_TRY(level.tdx_components, components(tcb, "tdxtcbcomponents"));
    CLOISTER_TRY(level.tcb_date, l.date("tcbDate"));
    CLOISTER_TRY(level.status, l.status("tcbStatus", kPlatformStatuses));
    CLOISTER_TRY(level.advisory_ids, l.advisory_ids());
    t.tcb_levels.push_back(std::move(level));
  }
  return t;
}

Result<QeIdentity> qe_identity_from_json(const json& doc) {
  if (!doc.is_object()) return Error("QE Identity: expected a JSON object");
  Fields f(doc, "QE Identity", "");
  QeIdentity q;
  CLOISTER_TRY(q.id, f.string("id"));
  CLOISTER_TRY(std::uint64_t version, f.integer("version", 0xffffffffu));
  q.version = static_cast<std::uint32_t>(version);
  if (q.id != "TD_QE" || q.version != 2) {
    return Error(
        "QE Identity: expected id \"TD_QE\" version 2 (the TDX Quoting Enclave), found id "
        "\"" +
        q.id + "\" version " + std::to_string(q.version));
  }
  CLOISTER_TRY(q.issue_date, f.date("issueDate"));
  CLOISTER_TRY(q.next_update, f.date("nextUpdate"));
  CLOISTER_TRY(std::uint64_t number, f.integer("tcbEvaluationDataNumber", 0xffffffffu));
  q.tcb_evaluation_data_number = static_cast<std::uint32_t>(number);
  CLOISTER_TRY(q.miscselect, f.hex<4>("miscselect"));
  CLOISTER_TRY(q.miscselect_mask, f.hex<4>("miscselectMask"));
  CLOISTER_TRY(q.attributes, f.hex<16>("attributes"));
  CLOISTER_TRY(q.attributes_mask, f.hex<16>("attributesMask"));
  CLOISTER_TRY(q.mrsigner, f.hex<32>("mrsigner"));
  CLOISTER_TRY(std::uint64_t prod, f.integer("isvprodid", 65535));
  q.isvprodid = static_cast<std::uint16_t>(prod);
  CLOISTER_TRY(const json* levels, f.array("tcbLevels", true));
  for (std::size_t i = 0; i < levels->size(); ++i) {
    const std::string key = "tcbLevels[" + std::to_string(i) + "]";
    if (!(*levels)[i].is_object()) return f.fail(key, "expected an object");
    Fields l = f.child((*levels)[i], key);
    QeTcbLevel level;
    CLOISTER_TRY(const json* tcb, l.object("tcb"));
    CLOISTER_TRY(std::uint64_t isvsvn, l.child(*tcb, "tcb").integer("isvsvn", 65535));
    level.isvsvn = static_cast<std::uint16_t>(isvsvn);
    CLOISTER_TRY(level.tcb_date, l.date("tcbDate"));
    CLOISTER_TRY(level.status, l.status("tcbStatus", kQeStatuses));
    CLOISTER_TRY(level.advisory_ids, l.advisory_ids());
    q.tcb_levels.push_back(std::move(level));
  }
  return q;
}

}  // namespace

std::string_view to_string(TcbStatus status) {
  switch (status) {
    case TcbStatus::kUpToDate:
      return "UpToDate";
    case TcbStatus::kSwHardeningNeeded:
      return "SWHardeningNeeded";
    case TcbStatus::kConfigurationNeeded:
      return "ConfigurationNeeded";
    case TcbStatus::kConfigurationAndSwHardeningNeeded:
      return "ConfigurationAndSWHardeningNeeded";
    case TcbStatus::kOutOfDate:
      return "OutOfDate";
    case TcbStatus::kOutOfDateConfigurationNeeded:
      return "OutOfDateConfigurationNeeded";
    case TcbStatus::kRevoked:
      return "Revoked";
    case TcbStatus::kTdRelaunchAdvised:
      return "TDRelaunchAdvised";
    case TcbStatus::kTdRelaunchAdvisedConfigurationNeeded:
      return "TDRelaunchAdvisedConfigurationNeeded";
    case TcbStatus::kNotSupported:
      return "NotSupported";
    case TcbStatus::kTdxModuleMismatch:
      return "TdxModuleMismatch";
  }
  return "NotSupported";
}

std::optional<TcbStatus> tcb_status_from_string(std::string_view text) {
  for (int i = 0; i <= static_cast<int>(TcbStatus::kTdxModuleMismatch); ++i) {
    auto status = static_cast<TcbStatus>(i);
    if (to_string(status) == text) return status;
  }
  return std::nullopt;
}

std::array<std::uint8_t, 16> TcbLevel::sgx_svns() const {
  std::array<std::uint8_t, 16> out{};
  for (std::size_t i = 0; i < 16; ++i) out[i] = sgx_components[i].svn;
  return out;
}

std::array<std::uint8_t, 16> TcbLevel::tdx_svns() const {
  std::array<std::uint8_t, 16> out{};
  for (std::size_t i = 0; i < 16; ++i) out[i] = tdx_components[i].svn;
  return out;
}

Result<TcbInfo> parse_tcb_info(std::string_view body) {
  CLOISTER_TRY(json doc, parse_json_strict(body, "TCB Info"));
  return tcb_info_from_json(doc);
}

Result<QeIdentity> parse_qe_identity(std::string_view body) {
  CLOISTER_TRY(json doc, parse_json_strict(body, "QE Identity"));
  return qe_identity_from_json(doc);
}

Result<SignedTcbInfo> parse_tcb_info_response(std::string_view json_text) {
  return parse_response<TcbInfo>(json_text, "tcbInfo", "TCB Info response", &tcb_info_from_json);
}

Result<SignedQeIdentity> parse_qe_identity_response(std::string_view json_text) {
  return parse_response<QeIdentity>(json_text, "enclaveIdentity", "QE Identity response",
                                    &qe_identity_from_json);
}

Status verify_p256_signature(const PublicKey& key, ByteView message, ByteView raw_signature) {
  if (raw_signature.size() != 64)
    return Error("ECDSA P-256 signature must be 64 bytes (r||s), found " +
                 std::to_string(raw_signature.size()));
  return key.verify_ecdsa(HashAlgorithm::kSha256, message,
                          ecdsa_signature_der(raw_signature.first(32), raw_signature.subspan(32),
                                              ByteOrder::kBigEndian));
}

Status add_collateral(ByteView data, const std::string& source, TdxCollateral& out) {
  CLOISTER_CHECK_OK(kCollateralFileLimit.check(source, data.size()));
  std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
  const std::size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') {
    CLOISTER_TRY(RawObject object, parse_raw_object(text, source));
    const json& doc = object.value;
    if (doc.contains("tcbInfo")) {
      auto item = parse_tcb_info_response(text);
      if (!item) return item.error().with_context(source);
      out.tcb_infos.push_back({std::move(item).value(), source});
    } else if (doc.contains("enclaveIdentity")) {
      auto item = parse_qe_identity_response(text);
      if (!item) return item.error().with_context(source);
      out.qe_identities.push_back({std::move(item).value(), source});
    } else if (doc.contains("tcb_info") || doc.contains("qe_identity") || doc.contains("pck_crl") ||
               doc.contains("root_ca_crl")) {
      CLOISTER_CHECK_OK(add_bundle(doc, source, out));
    } else {
      return Error(source +
                   ": JSON collateral must be an Intel PCS TCB Info response (\"tcbInfo\"), a QE "
                   "Identity response (\"enclaveIdentity\") or a collateral bundle (\"tcb_info\", "
                   "\"qe_identity\", \"pck_crl\", \"root_ca_crl\", …)");
    }
    return {};
  }
  if (first != std::string_view::npos && text.substr(first).starts_with("-----BEGIN CERTIFICATE")) {
    auto added = add_certificates(data, source, out);
    if (!added) return added.error().with_context(source);
    return {};
  }
  if (auto crl = Crl::parse(data)) {
    out.crls.push_back({std::move(crl).value(), source});
    return {};
  }
  if (auto cert = Certificate::from_der(data)) {
    out.certificates.push_back({std::move(cert).value(), source});
    return {};
  }
  return Error(source +
               ": not TDX collateral (expected TCB Info or QE Identity JSON, a collateral bundle, "
               "PEM certificates, or a CRL in DER or PEM)");
}

}  // namespace cloister::attestation::tdx
