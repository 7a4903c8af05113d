#include "cloister/attestation/sim/tdx_module.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cloister/common/hex.h"
#include "cloister/common/sha.h"

namespace cloister::attestation::sim {
namespace {

namespace fs = std::filesystem;
namespace off = tdx::tdreport_offset;

constexpr UnixTime kCollateralValidity = 30 * 86400;

std::array<std::uint8_t, 32> report_mac(const Bytes& key, ByteView mac_struct) {
  std::array<std::uint8_t, 32> out{};
  unsigned len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), mac_struct.data(), off::kMac,
       out.data(), &len);
  return out;
}

template <std::size_t N>
Result<std::array<std::uint8_t, N>> exactly(const Bytes& bytes, const char* what) {
  if (bytes.size() != N) {
    return Error(std::string(what) + ": expected " + std::to_string(N) + " bytes, found " +
                 std::to_string(bytes.size()));
  }
  std::array<std::uint8_t, N> out{};
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

// ECDSA P-256/SHA-256 as raw r||s.
Result<std::array<std::uint8_t, 64>> sign_raw(const PrivateKey& key, ByteView message) {
  CLOISTER_TRY(EcdsaSignature sig, key.sign_ecdsa(HashAlgorithm::kSha256, message));
  return exactly<64>(sig.raw(), "ECDSA P-256 signature");
}

// A name for the configuration the collateral was made for, so that hosts (and tests) with
// different configurations sharing a state directory do not overwrite each other's.
std::string collateral_name(const TdxPlatformConfig& c) {
  std::array<std::uint8_t, 2> pce{}, qe{};
  store_le16(pce, 0, c.pce_svn);
  store_le16(qe, 0, c.qe_svn);
  const std::string description = to_hex(c.tee_tcb_svn) + to_hex(c.cpu_svn) + to_hex(pce) +
                                  to_hex(qe) + to_hex(c.mr_signer_seam) +
                                  (c.vulnerable ? "vulnerable" : "current");
  return to_hex(c.fmspc) + "-" + to_hex(ByteView(sha256(as_bytes(description))).first(8)) + ".json";
}

}  // namespace

Status rtmr_extend(tdx::TdInfo& td, unsigned index, ByteView digest) {
  if (index > 3) return Error("RTMR index: expected 0-3, found " + std::to_string(index));
  if (digest.size() != 48)
    return Error("RTMR extend digest: expected 48 bytes, found " + std::to_string(digest.size()));
  Hasher hasher(HashAlgorithm::kSha384);
  hasher.update(td.rtmr[index]);
  hasher.update(digest);
  hasher.finish_into(td.rtmr[index]);
  return {};
}

const Bytes& simulated_qe_auth_data() {
  static const Bytes data = [] {
    Bytes d(32);
    for (std::size_t i = 0; i < d.size(); ++i) d[i] = static_cast<std::uint8_t>(i);
    return d;
  }();
  return data;
}

SimulatedTdx::SimulatedTdx(TdxPlatformConfig config, SimulatedIntel intel, CertifiedKey pck)
    : config_(std::move(config)), intel_(std::move(intel)), pck_(std::move(pck)) {}

Result<SimulatedTdx> SimulatedTdx::open(const StateDir& state, TdxPlatformConfig config) {
  if (auto ok = config.validate(); !ok) return ok.error().with_context("simulated TDX platform");
  CLOISTER_TRY(SimulatedIntel intel, SimulatedIntel::open(state));
  CLOISTER_TRY(CertifiedKey pck, intel.pck(config.fmspc, config.cpu_svn, config.pce_svn));
  SimulatedTdx t(std::move(config), std::move(intel), std::move(pck));

  CLOISTER_TRY(t.attestation_key_,
               exactly<64>(t.intel_.qe_attestation_key().public_key().ec_point(),
                           "QE attestation key (P-256 point x||y)"));
  const QeIdentityValues& qe = simulated_qe();
  tdx::QeReport& r = t.qe_report_;
  r.cpu_svn = t.config_.cpu_svn;
  r.attributes = qe.attributes;
  r.mr_enclave = qe.mr_enclave;
  r.mr_signer = qe.mr_signer;
  r.isv_prod_id = qe.isv_prod_id;
  r.isv_svn = t.config_.qe_svn;
  Bytes bound(t.attestation_key_.begin(), t.attestation_key_.end());
  bound.insert(bound.end(), simulated_qe_auth_data().begin(), simulated_qe_auth_data().end());
  const Sha256Digest binding = sha256(bound);
  std::copy(binding.begin(), binding.end(), r.report_data.begin());
  r.raw = tdx::encode_qe_report(r);
  CLOISTER_TRY(t.qe_report_signature_, sign_raw(t.pck_.key, r.raw));
  t.pck_chain_pem_ = certificate_pem(t.pck_.cert) + certificate_pem(t.intel_.platform_ca().cert) +
                     certificate_pem(t.intel_.root().cert);

  const UnixTime now = unix_now();
  CLOISTER_TRY(t.collateral_,
               t.intel_.collateral_bundle(
                   tdx_tcb_info_json(t.config_, now, now + kCollateralValidity),
                   td_qe_identity_json(t.config_.qe_svn, now, now + kCollateralValidity), now,
                   now + kCollateralValidity));
  CLOISTER_TRY(StateDir::Lock lock, state.lock());
  CLOISTER_TRY(
      t.collateral_path_,
      state.replace_file(lock, fs::path("intel") / "collateral" / collateral_name(t.config_),
                         as_bytes(t.collateral_)));
  return t;
}

std::array<std::uint8_t, tdx::kTdReportStructSize> SimulatedTdx::report(
    const tdx::TdInfo& td, const std::array<std::uint8_t, 64>& report_data) const {
  tdx::TdReportStruct r;
  r.td_info = td;
  tdx::TeeTcbInfo& tcb = r.tee_tcb_info;
  tcb.valid = {0xff, 0xff};  // the 8-byte words 0-15: VALID through ATTRIBUTES
  tcb.tee_tcb_svn = config_.tee_tcb_svn;
  tcb.mr_seam = config_.effective_mr_seam();
  tcb.mr_signer_seam = config_.mr_signer_seam;
  r.mac.cpu_svn = config_.cpu_svn;
  r.mac.tee_tcb_info_hash = sha384(tdx::encode_tee_tcb_info(tcb));
  r.mac.tee_info_hash = sha384(tdx::encode_td_info(td));
  r.mac.report_data = report_data;
  auto bytes = tdx::encode_tdreport(r);
  const auto mac = report_mac(intel_.report_mac_key(), bytes);
  std::copy(mac.begin(), mac.end(), bytes.begin() + off::kMac);
  return bytes;
}

Result<Bytes> SimulatedTdx::quote(ByteView tdreport) const {
  CLOISTER_TRY(tdx::TdReportStruct r, tdx::parse_tdreport(tdreport));
  const auto mac = report_mac(intel_.report_mac_key(), tdreport);
  if (CRYPTO_memcmp(mac.data(), r.mac.mac.data(), mac.size()) != 0)
    return Error(
        "TDREPORT MAC does not verify: the report was not made by this host's TDX "
        "module, or it was altered");
  if (sha384(tdx::encode_tee_tcb_info(r.tee_tcb_info)) != r.mac.tee_tcb_info_hash)
    return Error("TDREPORT TEE_TCB_INFO_HASH is not the SHA-384 of TEE_TCB_INFO");
  if (sha384(tdx::encode_td_info(r.td_info)) != r.mac.tee_info_hash)
    return Error("TDREPORT TEE_INFO_HASH is not the SHA-384 of TDINFO_STRUCT");

  tdx::TdxQuote q;
  q.header.version = tdx::kQuoteVersion4;
  q.header.att_key_type = tdx::kAttKeyTypeEcdsaP256;
  q.header.tee_type = tdx::kTeeTypeTdx;
  q.header.qe_vendor_id = tdx::kIntelQeVendorId;
  const Sha256Digest platform_id = sha256(intel_.ppid());
  std::copy_n(platform_id.begin(), 16, q.header.user_data.begin());
  tdx::TdReport& body = q.td_report;
  const tdx::TeeTcbInfo& tcb = r.tee_tcb_info;
  body.tee_tcb_svn = tcb.tee_tcb_svn;
  body.mr_seam = tcb.mr_seam;
  body.mr_signer_seam = tcb.mr_signer_seam;
  body.seam_attributes = tcb.attributes;
  body.td_attributes = r.td_info.attributes;
  body.xfam = r.td_info.xfam;
  body.mr_td = r.td_info.mr_td;
  body.mr_config_id = r.td_info.mr_config_id;
  body.mr_owner = r.td_info.mr_owner;
  body.mr_owner_config = r.td_info.mr_owner_config;
  body.rtmr = r.td_info.rtmr;
  body.report_data = r.mac.report_data;
  q.attestation_key = attestation_key_;
  q.cert_data_type = tdx::kCertDataQeReport;
  q.qe_report = qe_report_;
  q.qe_report_signature = qe_report_signature_;
  q.qe_auth_data = simulated_qe_auth_data();
  q.pck_cert_data_type = tdx::kCertDataPckChain;
  q.pck_cert_data.assign(pck_chain_pem_.begin(), pck_chain_pem_.end());

  CLOISTER_TRY(Bytes unsigned_quote, tdx::encode_tdx_quote(q));
  CLOISTER_TRY(q.signature,
               sign_raw(intel_.qe_attestation_key(),
                        ByteView(unsigned_quote).first(tdx::kHeaderSize + tdx::kTdReport10Size)));
  return tdx::encode_tdx_quote(q);
}

}  // namespace cloister::attestation::sim
