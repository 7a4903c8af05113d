#include "fake_intel.h"

#include <gtest/gtest.h>
#include <openssl/obj_mac.h>

#include "cloister/attestation/sim/tdx_module.h"
#include "cloister/attestation/tdx/abi.h"
#include "cloister/common/sha.h"
#include "support/sim_state.h"

namespace cloister::testing {
namespace {

namespace sim = attestation::sim;
namespace tdx = attestation::tdx;
using json = nlohmann::json;

// The 64 bytes of a P-256 point or signature (x||y, r||s).
std::array<std::uint8_t, 64> raw64(const Bytes& raw) {
  EXPECT_EQ(raw.size(), 64u);
  std::array<std::uint8_t, 64> out{};
  std::copy_n(raw.begin(), std::min(raw.size(), out.size()), out.begin());
  return out;
}

// ECDSA P-256/SHA-256 as raw r||s.
std::array<std::uint8_t, 64> sign_raw(const sim::PrivateKey& key, ByteView message) {
  return raw64(key.sign_ecdsa(HashAlgorithm::kSha256, message).value().raw());
}

}  // namespace

json tcb_level_json(const std::array<std::uint8_t, 16>& sgx, int pcesvn,
                    const std::array<std::uint8_t, 16>& tdx, const std::string& status,
                    const std::string& date, const std::vector<std::string>& advisories) {
  json sgx_list = json::array(), tdx_list = json::array();
  for (auto v : sgx) sgx_list.push_back({{"svn", v}});
  for (auto v : tdx) tdx_list.push_back({{"svn", v}});
  json level = {
      {"tcb", {{"sgxtcbcomponents", sgx_list}, {"pcesvn", pcesvn}, {"tdxtcbcomponents", tdx_list}}},
      {"tcbDate", date},
      {"tcbStatus", status}};
  if (!advisories.empty()) level["advisoryIDs"] = advisories;
  return level;
}

FakeIntel::FakeIntel() : intel_(sim::SimulatedIntel::open(shared_sim_state()).value()) {}

FakeIntel FakeIntel::second_host() {
  return FakeIntel(sim::SimulatedIntel::open(second_sim_host_state()).value());
}

FakePck FakeIntel::pck(const PckSpec& spec) const {
  sim::PckSpec pck;
  pck.ppid = intel_.ppid();
  pck.cpu_svn = spec.tcb_components;
  pck.pce_svn = spec.pcesvn;
  pck.fmspc = spec.fmspc;
  pck.platform_instance_id = intel_.platform_instance_id();
  pck.serial = static_cast<std::uint64_t>(spec.serial);
  pck.not_before = spec.not_before;
  pck.not_after = spec.not_after;
  return sim::issue_pck(pck, intel_.platform_ca()).value();
}

Bytes FakeIntel::quote(const FakePck& pck, const QuoteSpec& spec) const {
  const bool v5 = spec.version == 5;
  tdx::TdxQuote q;
  q.header.version = spec.version;
  q.header.att_key_type = tdx::kAttKeyTypeEcdsaP256;
  q.header.tee_type = tdx::kTeeTypeTdx;
  q.header.qe_vendor_id = tdx::kIntelQeVendorId;
  if (v5) q.body_type = tdx::kBodyTypeTdReport15;
  tdx::TdReport& body = q.td_report;
  body.tee_tcb_svn = spec.tee_tcb_svn;
  body.mr_seam.fill(0xaa);
  body.td_attributes = spec.td_attributes;
  body.xfam = 0x61ae7;
  body.mr_td.fill(0x11);
  for (std::size_t i = 0; i < 4; ++i) body.rtmr[i].fill(static_cast<std::uint8_t>(0x40 + i));
  body.report_data.fill(0x22);
  if (v5) {
    body.tee_tcb_svn2 = spec.tee_tcb_svn2;
    body.mr_service_td = tdx::Bytes48{};
  }

  const auto attestation_key = sim::PrivateKey::generate_ec(NID_X9_62_prime256v1).value();
  q.attestation_key = raw64(attestation_key.public_key().ec_point());
  const sim::QeIdentityValues& identity = sim::simulated_qe();
  tdx::QeReport& qe = q.qe_report;
  qe.attributes = identity.attributes;
  qe.mr_enclave = identity.mr_enclave;
  qe.mr_signer = identity.mr_signer;
  qe.isv_prod_id = identity.isv_prod_id;
  qe.isv_svn = spec.qe_isvsvn;
  std::array<std::uint8_t, 64> bound_key = q.attestation_key;
  if (spec.bind_other_key) bound_key[0] ^= 1;
  Hasher binding(HashAlgorithm::kSha256);
  binding.update(bound_key);
  binding.update(spec.qe_auth_data);
  binding.finish_into(std::span(qe.report_data).first(32));
  if (spec.nonzero_report_data_tail) qe.report_data[63] = 1;
  qe.raw = tdx::encode_qe_report(qe);
  q.cert_data_type = tdx::kCertDataQeReport;
  q.qe_report_signature = sign_raw(pck.key, qe.raw);
  q.qe_auth_data = spec.qe_auth_data;
  q.pck_cert_data_type = tdx::kCertDataPckChain;
  const std::string chain = sim::certificate_pem(pck.cert) + sim::certificate_pem(platform_ca()) +
                            sim::certificate_pem(root());
  q.pck_cert_data.assign(chain.begin(), chain.end());

  const Bytes unsigned_quote = tdx::encode_tdx_quote(q).value();
  const std::size_t signed_size =
      tdx::kHeaderSize +
      (v5 ? tdx::kBodyDescriptorSize + tdx::kTdReport15Size : tdx::kTdReport10Size);
  q.signature = sign_raw(attestation_key, ByteView(unsigned_quote).first(signed_size));
  return tdx::encode_tdx_quote(q).value();
}

Crl FakeIntel::root_crl(const std::vector<Bytes>& revoked, UnixTime this_update,
                        UnixTime next_update) const {
  return intel_.root_crl({revoked, this_update, next_update}).value();
}

Crl FakeIntel::pck_crl(const std::vector<Bytes>& revoked, UnixTime this_update,
                       UnixTime next_update) const {
  return intel_.pck_crl({revoked, this_update, next_update}).value();
}

tdx::TdxCollateral FakeIntel::collateral(UnixTime from, UnixTime to, const json& tcb_levels,
                                         const json& module_identities,
                                         const json& qe_levels) const {
  const std::string zero48(96, '0');
  sim::TdxPlatformConfig platform;  // FMSPC 90c06f000000, an Intel-signed module
  json tcb_info = sim::tdx_tcb_info_json(platform, from, to);
  tcb_info["tcbEvaluationDataNumber"] = 18;
  tcb_info["tcbLevels"] =
      tcb_levels.is_null()
          ? json::array(
                {tcb_level_json({3, 3, 2, 2, 4, 1, 0, 5}, 13, {5, 0, 3}, "UpToDate"),
                 tcb_level_json({2, 2, 2, 2, 3, 1, 0, 5}, 13, {5, 0, 2}, "OutOfDate",
                                "2024-03-13T00:00:00Z", {"INTEL-SA-01036", "INTEL-SA-01099"})})
          : tcb_levels;
  if (module_identities.is_null()) {
    json levels = json::array(
        {{{"tcb", {{"isvsvn", 6}}}, {"tcbDate", "2024-11-13T00:00:00Z"}, {"tcbStatus", "UpToDate"}},
         {{"tcb", {{"isvsvn", 4}}},
          {"tcbDate", "2024-03-13T00:00:00Z"},
          {"tcbStatus", "OutOfDate"},
          {"advisoryIDs", {"INTEL-SA-01099"}}}});
    tcb_info["tdxModuleIdentities"] = json::array({{{"id", "TDX_01"},
                                                    {"mrsigner", zero48},
                                                    {"attributes", "0000000000000000"},
                                                    {"attributesMask", "FFFFFFFFFFFFFFFF"},
                                                    {"tcbLevels", levels}}});
  } else {
    tcb_info["tdxModuleIdentities"] = module_identities;
  }
  json qe_identity = sim::td_qe_identity_json(4, from, to);
  qe_identity["tcbEvaluationDataNumber"] = 18;
  if (!qe_levels.is_null()) qe_identity["tcbLevels"] = qe_levels;
  const std::string bundle = intel_.collateral_bundle(tcb_info, qe_identity, from, to).value();
  tdx::TdxCollateral out;
  auto ok = tdx::add_collateral(as_bytes(bundle), "fake collateral", out);
  EXPECT_TRUE(ok) << ok.error().message();
  return out;
}

}  // namespace cloister::testing
