#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cloister/attestation/sim/tdx_module.h"
#include "cloister/attestation/simulated.h"
#include "cloister/attestation/tdx/verify.h"
#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "cloister/common/sha.h"
#include "support/command.h"
#include "support/sim_state.h"

namespace cloister::attestation::sim {
namespace {

namespace fs = std::filesystem;
namespace off = tdx::tdreport_offset;
using cloister::testing::ScratchSimPath;
using cloister::testing::shared_sim_state;
using ::testing::HasSubstr;

const SimulatedTdx& platform() {
  static const SimulatedTdx p = SimulatedTdx::open(shared_sim_state(), {}).value();
  return p;
}

tdx::TdInfo sample_td() {
  tdx::TdInfo td;
  td.attributes = 0x10000000;  // SEPT_VE_DISABLE
  td.xfam = 0x61ae7;
  td.mr_td.fill(0x7d);
  td.mr_config_id.fill(0xc1);
  td.mr_owner.fill(0x0e);
  td.mr_owner_config.fill(0x0c);
  return td;
}

std::array<std::uint8_t, 64> sample_report_data() {
  std::array<std::uint8_t, 64> data{};
  data.fill(0x5d);
  return data;
}

tdx::TdxVerification verify(const SimulatedTdx& p, const Bytes& quote) {
  tdx::TdxEvidence evidence;
  evidence.quote = quote;
  const auto collateral = read_file(p.collateral_path(), tdx::kCollateralFileLimit);
  EXPECT_TRUE(collateral);
  EXPECT_TRUE(tdx::add_collateral(*collateral, p.collateral_path().string(), evidence.collateral));
  tdx::TdxVerifyOptions options;
  options.time = unix_now();
  return tdx::TdxVerifier({nullptr, {p.intel().root().cert.public_key()}})
      .verify(evidence, options);
}

std::string dump(const Checks& checks) {
  std::string out;
  for (const auto& c : checks.all())
    out += c.name + " " + std::string(to_string(c.status)) + " " + c.found + " " + c.detail + "\n";
  return out;
}

TEST(SimTdx, OpensslVerifiesThePckChainAndRejectsAWrongIntermediate) {
  ScratchSimPath scratch("openssl-intel");
  fs::create_directories(scratch.path());
  const SimulatedIntel& intel = platform().intel();
  auto write = [&](const char* name, const Certificate& cert) {
    const fs::path file = scratch.path() / name;
    EXPECT_TRUE(write_file_atomic(file, as_bytes(certificate_pem(cert))));
    return file.string();
  };
  const std::string root = write("root.pem", intel.root().cert);
  const std::string ca = write("platform_ca.pem", intel.platform_ca().cert);
  const std::string signing = write("tcb_signing.pem", intel.tcb_signing().cert);
  const std::string pck = write("pck.pem", platform().pck().cert);
  auto ok = cloister::testing::run_command("openssl verify -CAfile " + root + " -untrusted " + ca +
                                           " " + pck);
  EXPECT_EQ(ok.status, 0) << ok.out;
  EXPECT_EQ(ok.out, pck + ": OK\n");
  auto wrong = cloister::testing::run_command("openssl verify -CAfile " + root + " -untrusted " +
                                              signing + " " + pck);
  EXPECT_NE(wrong.status, 0) << wrong.out;
  EXPECT_THAT(wrong.out, HasSubstr("unable to get local issuer certificate"));
}

TEST(SimTdx, PckExtensionsCarryTheConfiguredTcbAndFmspc) {
  const SimulatedTdx& p = platform();
  auto ext = tdx::pck_extensions(p.pck().cert);
  ASSERT_TRUE(ext) << ext.error().message();
  EXPECT_EQ(ext->tcb_components, p.config().cpu_svn);
  EXPECT_EQ(ext->cpusvn, p.config().cpu_svn);
  EXPECT_EQ(to_hex(ext->cpusvn), "0404191b04ff00060000000000000000");
  EXPECT_EQ(ext->pcesvn, 13);
  EXPECT_EQ(to_hex(ext->fmspc), "90c06f000000");
  EXPECT_EQ(ext->ppid, p.intel().ppid());
  EXPECT_EQ(ext->sgx_type, tdx::SgxType::kScalable);
  EXPECT_EQ(ext->platform_instance_id, p.intel().platform_instance_id());
  ASSERT_TRUE(ext->configuration.has_value());
  EXPECT_EQ(ext->configuration->smt_enabled, true);

  auto chain =
      tdx::identify_pck_chain({p.pck().cert, p.intel().platform_ca().cert, p.intel().root().cert});
  ASSERT_TRUE(chain) << chain.error().message();
  Checks checks;
  tdx::check_pck_chain(*chain, p.intel().root().cert.public_key(), checks);
  tdx::check_pck_extensions(*chain, ext, checks);
  EXPECT_TRUE(checks.passed()) << dump(checks);
  for (const Certificate* cert : {&p.pck().cert, &p.intel().platform_ca().cert,
                                  &p.intel().root().cert, &p.intel().tcb_signing().cert}) {
    EXPECT_TRUE(is_simulated(*cert)) << cert->subject_string();
    EXPECT_EQ(cert->subject_attribute("O"), "Intel Corporation");
  }
}

TEST(SimTdx, AQuoteVerifiesAgainstTheSimulatedRootWithItsCollateral) {
  tdx::TdInfo td = sample_td();
  ASSERT_TRUE(rtmr_extend(td, 3, sha384(as_bytes("an application event"))));
  auto quote = platform().quote(platform().report(td, sample_report_data()));
  ASSERT_TRUE(quote) << quote.error().message();
  auto q = tdx::parse_tdx_quote(*quote);
  ASSERT_TRUE(q) << q.error().message();
  EXPECT_EQ(q->header.version, 4);
  EXPECT_EQ(q->header.qe_vendor_id, tdx::kIntelQeVendorId);
  EXPECT_EQ(q->td_report.mr_td, td.mr_td);
  EXPECT_EQ(q->td_report.mr_config_id, td.mr_config_id);
  EXPECT_EQ(q->td_report.rtmr, td.rtmr);
  EXPECT_EQ(q->td_report.report_data, sample_report_data());
  EXPECT_EQ(q->td_report.td_attributes, td.attributes);
  EXPECT_EQ(q->td_report.xfam, td.xfam);
  EXPECT_EQ(q->td_report.tee_tcb_svn, platform().config().tee_tcb_svn);
  EXPECT_EQ(q->td_report.mr_seam, sha384(as_bytes("Cloister simulated TDX module")));
  EXPECT_EQ(q->qe_report.isv_svn, 7);
  EXPECT_EQ(q->qe_auth_data, simulated_qe_auth_data());

  const auto v = verify(platform(), *quote);
  EXPECT_TRUE(v.checks.passed()) << dump(v.checks);
  ASSERT_TRUE(v.tcb.has_value());
  EXPECT_EQ(v.tcb->status, tdx::TcbStatus::kUpToDate);
  EXPECT_EQ(v.tcb->module_identity, "TDX_01");
  // Intel's root does not trust it.
  tdx::TdxEvidence evidence;
  evidence.quote = *quote;
  tdx::TdxVerifyOptions options;
  options.time = unix_now();
  const auto real = tdx::TdxVerifier().verify(evidence, options);
  EXPECT_EQ(real.checks.find("tdx.pck.chain.root")->status, CheckStatus::kFail);
}

TEST(SimTdx, AFlippedByteFailsTheQuoteSignature) {
  const Bytes quote =
      platform().quote(platform().report(sample_td(), sample_report_data())).value();
  for (std::size_t offset : {tdx::kHeaderSize + tdx::body_offset::kMrTd,
                             tdx::kHeaderSize + tdx::body_offset::kReportData + 63,
                             tdx::kHeaderSize + tdx::body_offset::kRtmr0 + 100}) {
    SCOPED_TRACE(offset);
    Bytes flipped = quote;
    flipped[offset] ^= 0x01;
    const auto v = verify(platform(), flipped);
    EXPECT_EQ(v.checks.failures(), std::vector<std::string>{"tdx.signature"}) << dump(v.checks);
  }
}

// A platform Intel has since published a newer TCB for.
TEST(SimTdx, AVulnerablePlatformIsOutOfDate) {
  TdxPlatformConfig config;
  config.vulnerable = true;
  auto vulnerable = SimulatedTdx::open(shared_sim_state(), config);
  ASSERT_TRUE(vulnerable) << vulnerable.error().message();
  EXPECT_NE(vulnerable->collateral_path(), platform().collateral_path());
  const Bytes quote =
      vulnerable->quote(vulnerable->report(sample_td(), sample_report_data())).value();
  const auto v = verify(*vulnerable, quote);
  ASSERT_TRUE(v.tcb.has_value()) << dump(v.checks);
  EXPECT_EQ(v.tcb->status, tdx::TcbStatus::kOutOfDate);
  EXPECT_EQ(v.tcb->sgx_level, 1u);  // the newer level needs PCE SVN 14
  EXPECT_EQ(v.checks.find("tdx.tcb.status")->found.rfind("OutOfDate", 0), 0u);
  // The same quote against the healthy platform's collateral is UpToDate: only Intel's
  // collateral changed.
  EXPECT_EQ(verify(platform(), quote).tcb->status, tdx::TcbStatus::kUpToDate);

  TdxPlatformConfig top;
  top.vulnerable = true;
  top.pce_svn = 0xffff;
  EXPECT_EQ(top.validate().error().message(),
            "vulnerable: needs a newer TCB level above PCE SVN 65535, and 65535 is the highest");
}

TEST(SimTdx, TheQeRefusesReportsThisHostsModuleDidNotMake) {
  auto report = platform().report(sample_td(), sample_report_data());
  ASSERT_TRUE(platform().quote(report));
  auto data = report;
  data[off::kReportData] ^= 1;
  EXPECT_EQ(platform().quote(data).error().message(),
            "TDREPORT MAC does not verify: the report was not made by this host's TDX module, or "
            "it was altered");
  auto td = report;
  td[off::kTdInfo + off::kMrTd] ^= 1;  // outside the MAC, bound by TEE_INFO_HASH
  EXPECT_EQ(platform().quote(td).error().message(),
            "TDREPORT TEE_INFO_HASH is not the SHA-384 of TDINFO_STRUCT");
  auto tcb = report;
  tcb[off::kTeeTcbInfo + off::kMrSeam] ^= 1;
  EXPECT_EQ(platform().quote(tcb).error().message(),
            "TDREPORT TEE_TCB_INFO_HASH is not the SHA-384 of TEE_TCB_INFO");
  auto other = SimulatedTdx::open(cloister::testing::second_sim_host_state(), {});
  ASSERT_TRUE(other) << other.error().message();
  EXPECT_FALSE(platform().quote(other->report(sample_td(), sample_report_data())));
  EXPECT_EQ(platform().quote(ByteView(report).first(1000)).error().message(),
            "TDREPORT is 1000 bytes, expected 1024 (TDREPORT_STRUCT)");
}

TEST(SimTdx, RtmrExtendChainsSha384) {
  tdx::TdInfo td;
  const Sha384Digest a = sha384(as_bytes("a")), b = sha384(as_bytes("b"));
  ASSERT_TRUE(rtmr_extend(td, 2, a));
  ASSERT_TRUE(rtmr_extend(td, 2, b));
  Bytes first(48, 0);
  first.insert(first.end(), a.begin(), a.end());
  const Sha384Digest once = sha384(first);
  Bytes second(once.begin(), once.end());
  second.insert(second.end(), b.begin(), b.end());
  EXPECT_EQ(td.rtmr[2], sha384(second));
  EXPECT_TRUE(is_all_zero(td.rtmr[0]) && is_all_zero(td.rtmr[1]) && is_all_zero(td.rtmr[3]));
  EXPECT_EQ(rtmr_extend(td, 4, a).error().message(), "RTMR index: expected 0-3, found 4");
  EXPECT_EQ(rtmr_extend(td, 0, ByteView(a).first(47)).error().message(),
            "RTMR extend digest: expected 48 bytes, found 47");
}

TEST(SimTdx, TdReportsParseAndRejectMalformedBytes) {
  const auto bytes = platform().report(sample_td(), sample_report_data());
  auto r = tdx::parse_tdreport(bytes);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(tdx::encode_tdreport(*r), bytes);
  EXPECT_EQ(r->td_info, sample_td());
  EXPECT_EQ(r->mac.report_data, sample_report_data());
  EXPECT_EQ(r->mac.cpu_svn, platform().config().cpu_svn);
  EXPECT_EQ(r->mac.tee_info_hash, sha384(tdx::encode_td_info(sample_td())));
  EXPECT_EQ(r->mac.tee_tcb_info_hash, sha384(tdx::encode_tee_tcb_info(r->tee_tcb_info)));
  EXPECT_EQ(r->tee_tcb_info.tee_tcb_svn, platform().config().tee_tcb_svn);
  EXPECT_EQ(to_hex(r->tee_tcb_info.valid), "ffff000000000000");
  EXPECT_EQ(bytes[0], 0x81);

  auto error_of = [](Bytes b) {
    auto parsed = tdx::parse_tdreport(b);
    return parsed ? std::string("parsed") : parsed.error().message();
  };
  const Bytes good(bytes.begin(), bytes.end());
  Bytes b = good;
  b[0] = 0x00;
  EXPECT_EQ(error_of(b), "TDREPORT REPORTTYPE.TYPE: expected 0x81 (TDX), found 0x0");
  b = good;
  b[2] = 2;
  EXPECT_EQ(error_of(b), "TDREPORT REPORTTYPE.VERSION: expected 0 or 1, found 0x2");
  b = good;
  b[8] = 1;
  EXPECT_EQ(error_of(b), "TDREPORT reserved field (bytes 0x3-0xf) must be zero, found 0x1 at 0x8");
  b = good;
  b[off::kTdInfo + off::kTdInfoReserved + 5] = 7;
  EXPECT_EQ(error_of(b),
            "TDREPORT TDINFO reserved field (bytes 0x3c0-0x3ff) must be zero, found 0x7 at 0x3c5");
  b = good;
  b[500] = 1;
  EXPECT_EQ(error_of(b),
            "TDREPORT TEE_TCB_INFO reserved field and padding (bytes 0x190-0x1ff) must be zero, "
            "found 0x1 at 0x1f4");
}

TEST(SimTdx, TheCollateralFileIsWhatVerifyReportReads) {
  const SimulatedTdx& p = platform();
  EXPECT_EQ(p.collateral_path().parent_path(), shared_sim_state().root() / "intel" / "collateral");
  EXPECT_EQ(p.collateral_path().filename().string().rfind("90c06f000000-", 0), 0u);
  const auto text = read_file(p.collateral_path(), tdx::kCollateralFileLimit);
  ASSERT_TRUE(text);
  tdx::TdxCollateral c;
  ASSERT_TRUE(tdx::add_collateral(*text, "file", c));
  ASSERT_EQ(c.tcb_infos.size(), 1u);
  ASSERT_EQ(c.qe_identities.size(), 1u);
  EXPECT_EQ(c.crls.size(), 2u);
  const tdx::TcbInfo& info = c.tcb_infos[0].value.value;
  EXPECT_EQ(info.fmspc, p.config().fmspc);
  EXPECT_EQ(info.next_update - info.issue_date, 30 * 86400);
  ASSERT_EQ(info.tcb_levels.size(), 1u);
  EXPECT_EQ(info.tcb_levels[0].status, tdx::TcbStatus::kUpToDate);
  EXPECT_EQ(info.tcb_levels[0].pcesvn, 13);
  EXPECT_TRUE(tdx::verify_p256_signature(p.intel().tcb_signing().cert.public_key(),
                                         as_bytes(c.tcb_infos[0].value.body),
                                         c.tcb_infos[0].value.signature));
  EXPECT_EQ(c.qe_identities[0].value.value.mrsigner, simulated_qe().mr_signer);
}

}  // namespace
}  // namespace cloister::attestation::sim
