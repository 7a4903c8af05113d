#include "cloister/attestation/sim/intel.h"

#include <openssl/obj_mac.h>

#include <cctype>

#include "cloister/attestation/simulated.h"
#include "cloister/common/hex.h"
#include "cloister/common/sha.h"
#include "tdx/der.h"

namespace cloister::attestation::sim {
namespace {

namespace fs = std::filesystem;
namespace der = tdx::der;
using json = nlohmann::json;

// Every simulated CA is valid over one fixed window (Intel's Root CA, too, runs 2018-2049), so
// evidence verifies at any time a test or a tenant picks inside it.
constexpr UnixTime kCaNotBefore = 1577836800;  // 2020-01-01
constexpr UnixTime kCaNotAfter = 2524608000;   // 2050-01-01
constexpr UnixTime kPckValidity = 7 * 365 * 86400;

Bytes member(const std::string& oid, ByteView value) {
  return der::encode_sequence({der::encode_oid(oid), value});
}

Bytes octets(ByteView value) {
  return der::encode(der::kOctetString, value);
}

Bytes boolean(bool value) {
  const std::uint8_t b = value ? 0xff : 0x00;
  return der::encode(der::kBoolean, ByteView(&b, 1));
}

// The SGX extension's value (Intel "SGX PCK Certificate and CRL Profile"; tdx/pck.h oid::).
Bytes sgx_extension(const PckSpec& spec) {
  namespace oid = tdx::oid;
  const std::string tcb_oid = oid::kTcb;
  Bytes tcb;
  for (std::size_t i = 0; i < 16; ++i) {
    const Bytes m = member(tcb_oid + "." + std::to_string(i + 1),
                           der::encode_unsigned(der::kInteger, spec.cpu_svn[i]));
    tcb.insert(tcb.end(), m.begin(), m.end());
  }
  for (const Bytes& m : {member(tcb_oid + ".17", der::encode_unsigned(der::kInteger, spec.pce_svn)),
                         member(tcb_oid + ".18", octets(spec.cpu_svn))})
    tcb.insert(tcb.end(), m.begin(), m.end());
  const std::string config = oid::kConfiguration;
  const tdx::PckConfiguration& c = spec.configuration;
  return der::encode_sequence(
      {member(oid::kPpid, octets(spec.ppid)), member(oid::kTcb, der::encode(der::kSequence, tcb)),
       member(oid::kPceId, octets(spec.pce_id)), member(oid::kFmspc, octets(spec.fmspc)),
       member(oid::kSgxType,
              der::encode_unsigned(der::kEnumerated, static_cast<std::uint8_t>(spec.sgx_type))),
       member(oid::kPlatformInstanceId, octets(spec.platform_instance_id)),
       member(config, der::encode_sequence(
                          {member(config + ".1", boolean(c.dynamic_platform.value_or(false))),
                           member(config + ".2", boolean(c.cached_keys.value_or(false))),
                           member(config + ".3", boolean(c.smt_enabled.value_or(false)))}))});
}

Result<CertifiedKey> issue_intel_cert(const std::string& cn, std::uint64_t serial, bool ca,
                                      std::optional<int> path_length, const PrivateKey& key,
                                      const CertifiedKey* issuer) {
  CertificateSpec spec;
  spec.subject = intel_name(cn);
  spec.serial = serial;
  spec.not_before = kCaNotBefore;
  spec.not_after = kCaNotAfter;
  spec.ca = ca;
  spec.path_length = path_length;
  const Certificate* issuer_cert = issuer ? &issuer->cert : nullptr;
  const PrivateKey& signer = issuer ? issuer->key : key;
  CLOISTER_TRY(Certificate cert, issue_certificate(spec, key.public_key(), issuer_cert, signer,
                                                   SignatureScheme::kEcdsaSha256));
  return CertifiedKey{std::move(cert), key};
}

Status generate_hierarchy(const fs::path& dir) {
  std::vector<PrivateKey> keys;
  for (int i = 0; i < 4; ++i) {
    CLOISTER_TRY(PrivateKey key, PrivateKey::generate_ec(NID_X9_62_prime256v1));
    keys.push_back(std::move(key));
  }
  CLOISTER_TRY(CertifiedKey root,
               issue_intel_cert(tdx::kRootCaCn, 0x10, true, 1, keys[0], nullptr));
  CLOISTER_TRY(CertifiedKey platform_ca,
               issue_intel_cert(tdx::kPlatformCaCn, 0x20, true, 0, keys[1], &root));
  CLOISTER_TRY(CertifiedKey tcb_signing,
               issue_intel_cert(tdx::kTcbSigningCn, 0x30, false, std::nullopt, keys[2], &root));
  CLOISTER_CHECK_OK(StateDir::write_key(dir, "root", root));
  CLOISTER_CHECK_OK(StateDir::write_key(dir, "platform_ca", platform_ca));
  CLOISTER_CHECK_OK(StateDir::write_key(dir, "tcb_signing", tcb_signing));
  CLOISTER_CHECK_OK(StateDir::write_private_key(dir, "qe_attestation", keys[3]));
  CLOISTER_CHECK_OK(StateDir::write_hex(dir, "ppid", random_bytes(16), false));
  CLOISTER_CHECK_OK(StateDir::write_hex(dir, "platform_instance_id", random_bytes(16), false));
  return StateDir::write_hex(dir, "tdx_report_mac_key", random_bytes(32), true);
}

std::string upper_hex(ByteView bytes) {
  std::string h = to_hex(bytes);
  for (char& c : h) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return h;
}

template <std::size_t N>
std::array<std::uint8_t, N> to_array(const Bytes& b) {
  std::array<std::uint8_t, N> out{};
  std::copy_n(b.begin(), N, out.begin());
  return out;
}

json level(const TdxPlatformConfig& c, std::uint16_t pce_svn, const char* status, UnixTime date) {
  json sgx = json::array(), tdx = json::array();
  for (auto svn : c.cpu_svn) sgx.push_back({{"svn", svn}});
  for (auto svn : c.tee_tcb_svn) tdx.push_back({{"svn", svn}});
  return {{"tcb", {{"sgxtcbcomponents", sgx}, {"pcesvn", pce_svn}, {"tdxtcbcomponents", tdx}}},
          {"tcbDate", format_rfc3339(date)},
          {"tcbStatus", status}};
}

}  // namespace

X509Name intel_name(const std::string& cn) {
  return {{"CN", cn},
          {"OU", kSimulatedOrganizationalUnit},
          {"O", "Intel Corporation"},
          {"L", "Santa Clara"},
          {"ST", "CA"},
          {"C", "US"}};
}

Result<CertifiedKey> issue_pck(const PckSpec& spec, const CertifiedKey& issuer) {
  CLOISTER_TRY(PrivateKey key, PrivateKey::generate_ec(NID_X9_62_prime256v1));
  CertificateSpec cert;
  cert.subject = intel_name(tdx::kPckLeafCn);
  cert.serial = spec.serial;
  cert.not_before = spec.not_before;
  cert.not_after = spec.not_after;
  cert.extensions = {{tdx::oid::kSgxExtension, sgx_extension(spec)}};
  CLOISTER_TRY(Certificate issued, issue_certificate(cert, key.public_key(), &issuer.cert,
                                                     issuer.key, SignatureScheme::kEcdsaSha256));
  return CertifiedKey{std::move(issued), std::move(key)};
}

SimulatedIntel::SimulatedIntel(StateDir state, CertifiedKey root, CertifiedKey platform_ca,
                               CertifiedKey tcb_signing, PrivateKey qe_attestation_key)
    : state_(std::move(state)),
      root_(std::move(root)),
      platform_ca_(std::move(platform_ca)),
      tcb_signing_(std::move(tcb_signing)),
      qe_attestation_key_(std::move(qe_attestation_key)) {}

Result<SimulatedIntel> SimulatedIntel::open(const StateDir& state) {
  CLOISTER_TRY(StateDir::Lock lock, state.lock());
  CLOISTER_TRY(fs::path dir, state.ensure_directory(lock, "intel", generate_hierarchy));
  CLOISTER_TRY(CertifiedKey root, StateDir::read_key(dir, "root"));
  CLOISTER_TRY(CertifiedKey platform_ca, StateDir::read_key(dir, "platform_ca"));
  CLOISTER_TRY(CertifiedKey tcb_signing, StateDir::read_key(dir, "tcb_signing"));
  CLOISTER_TRY(PrivateKey qe_key, StateDir::read_private_key(dir, "qe_attestation"));
  SimulatedIntel intel(state, std::move(root), std::move(platform_ca), std::move(tcb_signing),
                       std::move(qe_key));
  CLOISTER_TRY(Bytes ppid, StateDir::read_hex(dir, "ppid", 16, false));
  CLOISTER_TRY(Bytes instance_id, StateDir::read_hex(dir, "platform_instance_id", 16, false));
  CLOISTER_TRY(intel.report_mac_key_, StateDir::read_hex(dir, "tdx_report_mac_key", 32, true));
  intel.ppid_ = to_array<16>(ppid);
  intel.instance_id_ = to_array<16>(instance_id);
  return intel;
}

Result<CertifiedKey> SimulatedIntel::pck(const std::array<std::uint8_t, 6>& fmspc,
                                         const std::array<std::uint8_t, 16>& cpu_svn,
                                         std::uint16_t pce_svn) const {
  std::array<std::uint8_t, 2> pce{};
  store_le16(pce, 0, pce_svn);
  const fs::path relative =
      fs::path("intel") / "pck" / (to_hex(fmspc) + "-" + to_hex(cpu_svn) + "-" + to_hex(pce));
  CLOISTER_TRY(StateDir::Lock lock, state_.lock());
  CLOISTER_TRY(fs::path dir,
               state_.ensure_directory(lock, relative, [&](const fs::path& d) -> Status {
                 PckSpec spec;
                 spec.ppid = ppid_;
                 spec.cpu_svn = cpu_svn;
                 spec.pce_svn = pce_svn;
                 spec.fmspc = fmspc;
                 spec.platform_instance_id = instance_id_;
                 spec.serial = load_le64(random_bytes(8), 0) >> 1;
                 spec.not_before = unix_now();
                 spec.not_after = spec.not_before + kPckValidity;
                 CLOISTER_TRY(CertifiedKey pck, issue_pck(spec, platform_ca_));
                 return StateDir::write_key(d, "pck", pck);
               }));
  return StateDir::read_key(dir, "pck");
}

Result<Crl> SimulatedIntel::root_crl(const CrlSpec& spec) const {
  return issue_crl(spec, root_.cert, root_.key, SignatureScheme::kEcdsaSha256);
}

Result<Crl> SimulatedIntel::pck_crl(const CrlSpec& spec) const {
  return issue_crl(spec, platform_ca_.cert, platform_ca_.key, SignatureScheme::kEcdsaSha256);
}

Result<std::string> SimulatedIntel::sign_collateral(std::string_view body) const {
  CLOISTER_TRY(EcdsaSignature sig,
               tcb_signing_.key.sign_ecdsa(HashAlgorithm::kSha256, as_bytes(body)));
  return to_hex(sig.raw());
}

Result<std::string> SimulatedIntel::collateral_bundle(const json& tcb_info, const json& qe_identity,
                                                      UnixTime issue_date,
                                                      UnixTime next_update) const {
  const std::string tcb_info_text = tcb_info.dump();
  const std::string qe_identity_text = qe_identity.dump();
  CLOISTER_TRY(std::string tcb_info_signature, sign_collateral(tcb_info_text));
  CLOISTER_TRY(std::string qe_identity_signature, sign_collateral(qe_identity_text));
  const CrlSpec crl_spec{{}, issue_date, next_update, 1};
  CLOISTER_TRY(Crl root, root_crl(crl_spec));
  CLOISTER_TRY(Crl pck, pck_crl(crl_spec));
  const std::string signing_chain =
      certificate_pem(tcb_signing_.cert) + certificate_pem(root_.cert);
  const json bundle = {
      {"tcb_info", tcb_info_text},
      {"tcb_info_signature", tcb_info_signature},
      {"tcb_info_issuer_chain", signing_chain},
      {"qe_identity", qe_identity_text},
      {"qe_identity_signature", qe_identity_signature},
      {"qe_identity_issuer_chain", signing_chain},
      {"pck_crl", to_hex(pck.der())},
      {"pck_crl_issuer_chain", certificate_pem(platform_ca_.cert) + certificate_pem(root_.cert)},
      {"root_ca_crl", to_hex(root.der())}};
  return bundle.dump(2) + "\n";
}

const QeIdentityValues& simulated_qe() {
  static const QeIdentityValues values = [] {
    QeIdentityValues v;
    v.mr_signer =
        sha256(as_bytes("Cloister Simulated Secure Processor: TD Quoting Enclave signer"));
    v.mr_enclave = sha256(as_bytes("Cloister Simulated Secure Processor: TD Quoting Enclave"));
    v.attributes = {0x15, 0, 0, 0, 0, 0, 0, 0, 0xe7, 0, 0, 0, 0, 0, 0, 0};
    return v;
  }();
  return values;
}

json tdx_tcb_info_json(const TdxPlatformConfig& c, UnixTime issue_date, UnixTime next_update) {
  const std::string zero8(16, '0');
  const std::string all_ones8(16, 'F');
  const std::string mrsigner = upper_hex(c.mr_signer_seam);
  json levels = json::array();
  if (c.vulnerable) {
    levels.push_back(level(c, static_cast<std::uint16_t>(c.pce_svn + 1), "UpToDate", issue_date));
    levels.push_back(level(c, c.pce_svn, "OutOfDate", issue_date - 365 * 86400));
  } else {
    levels.push_back(level(c, c.pce_svn, "UpToDate", issue_date));
  }
  json info = {{"id", "TDX"},
               {"version", 3},
               {"issueDate", format_rfc3339(issue_date)},
               {"nextUpdate", format_rfc3339(next_update)},
               {"fmspc", upper_hex(c.fmspc)},
               {"pceId", "0000"},
               {"tcbType", 0},
               {"tcbEvaluationDataNumber", 1},
               {"tdxModule",
                {{"mrsigner", mrsigner}, {"attributes", zero8}, {"attributesMask", all_ones8}}}};
  json identities = json::array();
  if (c.tee_tcb_svn[1] > 0) {
    char id[8];
    std::snprintf(id, sizeof id, "TDX_%02X", c.tee_tcb_svn[1]);
    identities.push_back({{"id", id},
                          {"mrsigner", mrsigner},
                          {"attributes", zero8},
                          {"attributesMask", all_ones8},
                          {"tcbLevels", json::array({{{"tcb", {{"isvsvn", c.tee_tcb_svn[0]}}},
                                                      {"tcbDate", format_rfc3339(issue_date)},
                                                      {"tcbStatus", "UpToDate"}}})}});
  }
  info["tdxModuleIdentities"] = identities;
  info["tcbLevels"] = levels;
  return info;
}

json td_qe_identity_json(std::uint16_t qe_svn, UnixTime issue_date, UnixTime next_update) {
  const QeIdentityValues& qe = simulated_qe();
  return {{"id", "TD_QE"},
          {"version", 2},
          {"issueDate", format_rfc3339(issue_date)},
          {"nextUpdate", format_rfc3339(next_update)},
          {"tcbEvaluationDataNumber", 1},
          {"miscselect", "00000000"},
          {"miscselectMask", "FFFFFFFF"},
          {"attributes", "11000000000000000000000000000000"},
          {"attributesMask", "FBFFFFFFFFFFFFFF0000000000000000"},
          {"mrsigner", upper_hex(qe.mr_signer)},
          {"isvprodid", qe.isv_prod_id},
          {"tcbLevels", json::array({{{"tcb", {{"isvsvn", qe_svn}}},
                                      {"tcbDate", format_rfc3339(issue_date)},
                                      {"tcbStatus", "UpToDate"}}})}};
}

}  // namespace cloister::attestation::sim
