#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cloister/attestation/sim/snp_firmware.h"
#include "cloister/attestation/simulated.h"
#include "cloister/attestation/snp/cert_table.h"
#include "cloister/attestation/snp/verify.h"
#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "support/command.h"
#include "support/sim_state.h"
#include "support/vectors.h"

namespace cloister::attestation::sim {
namespace {

namespace fs = std::filesystem;
namespace msg = snp::guest_msg;
using cloister::testing::ScratchSimPath;
using cloister::testing::shared_sim_state;
using snp::Product;
using ::testing::HasSubstr;

const SimulatedSnp& genoa() {
  static const SimulatedSnp platform = SimulatedSnp::open(shared_sim_state(), {}).value();
  return platform;
}

SnpLaunch sample_launch() {
  SnpLaunch launch;
  launch.measurement.fill(0x4d);
  launch.policy = 0x30000;
  launch.host_data.fill(0x48);
  SnpIdBlock id;
  id.family_id.fill(0xf1);
  id.image_id.fill(0x11);
  id.guest_svn = 7;
  id.id_key_digest.fill(0x1d);
  id.author_key_digest = std::array<std::uint8_t, 48>{};
  id.author_key_digest->fill(0xad);
  launch.id_block = id;
  return launch;
}

std::array<std::uint8_t, 64> sample_report_data() {
  std::array<std::uint8_t, 64> data{};
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i);
  return data;
}

// A request page as a guest writes it: MSG_REPORT_REQ under `key` (by default VMPCK `vmpck`).
Bytes report_request(const SnpGuest& guest, unsigned vmpck, std::uint64_t seqno, std::uint32_t vmpl,
                     std::uint32_t key_sel = 0, const Vmpck* key = nullptr) {
  Bytes payload(msg::kReportReqSize, 0);
  const auto data = sample_report_data();
  std::copy(data.begin(), data.end(), payload.begin());
  store_le32(payload, msg::kReportReqVmpl, vmpl);
  store_le32(payload, msg::kReportReqKeySel, key_sel);
  GuestMessageHeader h;
  h.seqno = seqno;
  h.msg_type = msg::kTypeReportReq;
  h.vmpck = static_cast<std::uint8_t>(vmpck);
  Bytes page = seal_guest_message(h, payload, key ? *key : guest.vmpck(vmpck)).value();
  page.resize(msg::kPageSize, 0);
  return page;
}

struct Response {
  GuestMessageHeader header;
  std::uint32_t status = 0;
  std::uint32_t report_size = 0;
  Bytes report;
};

Response open_response(const SnpGuest& guest, unsigned vmpck, const GuestRequestResult& result) {
  EXPECT_EQ(result.firmware_status, snp::kStatusSuccess) << result.error;
  auto m = parse_guest_message(result.response);
  EXPECT_TRUE(m) << m.error().message();
  if (!m) return {};
  auto payload = open_guest_message(*m, guest.vmpck(vmpck));
  EXPECT_TRUE(payload) << payload.error().message();
  if (!payload) return {};
  EXPECT_EQ(payload->size(), msg::kReportRspSize);
  Response r{m->header, load_le32(*payload, 0), load_le32(*payload, 4),
             Bytes(payload->begin() + msg::kReportRspReport, payload->end())};
  return r;
}

snp::SnpEvidence evidence_of(const SimulatedSnp& platform, const Bytes& report) {
  snp::SnpEvidence e;
  e.report = report;
  for (const auto& entry : snp::parse_cert_table(platform.certificate_table()).value()) {
    e.certificates.push_back({Certificate::from_der(entry.data).value(), "certificate table"});
  }
  e.crls.push_back({platform.amd().crl(unix_now()).value(), "simulated KDS"});
  return e;
}

snp::SnpVerification verify(const SimulatedSnp& platform, const Bytes& report) {
  snp::SnpVerifyOptions options;
  options.time = unix_now();
  options.require_crl = true;
  return snp::SnpVerifier({nullptr, {platform.amd().ca()}, {}})
      .verify(evidence_of(platform, report), options);
}

std::string dump(const Checks& checks) {
  std::string out;
  for (const auto& c : checks.all())
    out += c.name + " " + std::string(to_string(c.status)) + " " + c.detail + "\n";
  return out;
}

TEST(SimSnp, OpensslVerifiesTheChainAndRejectsAWrongIntermediate) {
  ScratchSimPath scratch("openssl-amd");
  fs::create_directories(scratch.path());
  const SimulatedAmd& amd = genoa().amd();
  auto write = [&](const char* name, const Certificate& cert) {
    const fs::path file = scratch.path() / name;
    EXPECT_TRUE(write_file_atomic(file, as_bytes(certificate_pem(cert))));
    return file.string();
  };
  const std::string ark = write("ark.pem", amd.ark().cert);
  const std::string ask = write("ask.pem", amd.ask().cert);
  const std::string asvk = write("asvk.pem", amd.asvk().cert);
  const std::string vcek = write("vcek.pem", genoa().vcek().cert);
  auto ok = cloister::testing::run_command("openssl verify -CAfile " + ark + " -untrusted " + ask +
                                           " " + vcek);
  EXPECT_EQ(ok.status, 0) << ok.out;
  EXPECT_EQ(ok.out, vcek + ": OK\n");
  auto wrong = cloister::testing::run_command("openssl verify -CAfile " + ark + " -untrusted " +
                                              asvk + " " + vcek);
  EXPECT_NE(wrong.status, 0) << wrong.out;
  EXPECT_THAT(wrong.out, HasSubstr("unable to get local issuer certificate"));
}

TEST(SimSnp, VcekExtensionsCarryTheConfiguredTcbAndChipId) {
  const SimulatedSnp& g = genoa();
  auto ext = snp::parse_vek_extensions(g.vcek().cert);
  ASSERT_TRUE(ext) << ext.error().message();
  EXPECT_EQ(ext->tcb(), g.config().reported_tcb);
  EXPECT_EQ(ext->tcb().to_string(), "bl 10, tee 0, snp 25, ucode 84");
  EXPECT_EQ(ext->product_name, "Genoa");
  EXPECT_EQ(ext->struct_version, 0);
  ASSERT_TRUE(ext->hw_id.has_value());
  EXPECT_EQ(*ext->hw_id, g.config().chip_id);
  EXPECT_EQ(g.config().chip_id, g.amd().chip_id());
  EXPECT_EQ(ext->spl_4_7[0], 0);
  EXPECT_EQ(g.vcek().cert.serial_hex(), "0x0");
  EXPECT_EQ(g.vcek().cert.subject_cn(), "SEV-VCEK");
  EXPECT_EQ(g.vcek().cert.issuer_cn(), "SEV-Genoa");
  EXPECT_EQ(g.amd().ask().cert.serial_hex(), "0x20002");

  auto turin =
      SimulatedSnp::open(shared_sim_state(), SnpPlatformConfig::for_product(Product::kTurin));
  ASSERT_TRUE(turin) << turin.error().message();
  auto t = snp::parse_vek_extensions(turin->vcek().cert);
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->tcb().to_string(), "fmc 0, bl 1, tee 0, snp 2, ucode 71");
  EXPECT_EQ(t->product_name, "Turin");
  EXPECT_EQ(t->struct_version, 1);
  EXPECT_FALSE(t->spl_4_7[0].has_value());  // no spl_4 on Turin
  EXPECT_EQ(*t->hw_id, Bytes(turin->config().chip_id.begin(), turin->config().chip_id.begin() + 8));
  EXPECT_TRUE(is_all_zero(ByteView(turin->config().chip_id).subspan(8)));
  EXPECT_EQ(turin->vcek().cert.issuer_cn(), "SEV-Turin");

  auto milan = SimulatedAmd::open(shared_sim_state(), Product::kMilan);
  ASSERT_TRUE(milan);
  auto vcek =
      milan->vcek(milan->chip_id(), SnpPlatformConfig::for_product(Product::kMilan).reported_tcb);
  ASSERT_TRUE(vcek);
  EXPECT_EQ(snp::parse_vek_extensions(vcek->cert)->product_name, "Milan-B0");  // as KDS names it
}

TEST(SimSnp, EverySimulatedCertificateSaysSo) {
  const SimulatedSnp& g = genoa();
  for (const Certificate* cert :
       {&g.amd().ark().cert, &g.amd().ask().cert, &g.amd().asvk().cert, &g.vcek().cert}) {
    EXPECT_TRUE(is_simulated(*cert)) << cert->subject_string();
    EXPECT_EQ(cert->subject_attribute("O"), "Advanced Micro Devices");
  }
  EXPECT_FALSE(is_simulated(*snp::builtin_amd_ark(Product::kGenoa)));
  EXPECT_EQ(snp::identify_amd_cert(g.amd().ark().cert).role, snp::AmdCertRole::kArk);
}

TEST(SimSnp, AReportFromAGuestRequestVerifiesAgainstTheSimulatedRoot) {
  const SimulatedSnp& g = genoa();
  SnpGuest guest(g, sample_launch());
  const Response rsp = open_response(guest, 0, guest.guest_request(report_request(guest, 0, 1, 0)));
  EXPECT_EQ(rsp.header.seqno, 2u);
  EXPECT_EQ(rsp.header.msg_type, msg::kTypeReportRsp);
  EXPECT_EQ(rsp.status, snp::kStatusSuccess);
  EXPECT_EQ(rsp.report_size, snp::kReportSize);
  auto r = snp::parse_snp_report(rsp.report);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->version, 5u);
  EXPECT_EQ(r->report_data, sample_report_data());
  EXPECT_EQ(r->measurement, sample_launch().measurement);
  EXPECT_EQ(r->host_data, sample_launch().host_data);
  EXPECT_EQ(r->policy, 0x30000u);
  EXPECT_EQ(r->vmpl, 0u);
  EXPECT_EQ(r->guest_svn, 7u);
  EXPECT_EQ(r->family_id, sample_launch().id_block->family_id);
  EXPECT_EQ(r->image_id, sample_launch().id_block->image_id);
  EXPECT_EQ(r->id_key_digest, sample_launch().id_block->id_key_digest);
  EXPECT_EQ(r->author_key_digest, *sample_launch().id_block->author_key_digest);
  EXPECT_TRUE(r->signer().author_key_en);
  EXPECT_EQ(r->signer().signing_key, snp::SigningKey::kVcek);
  EXPECT_EQ(r->report_id, guest.report_id());
  EXPECT_EQ(to_hex(r->report_id_ma), std::string(64, 'f'));
  EXPECT_EQ(Bytes(r->chip_id.begin(), r->chip_id.end()), g.config().chip_id);
  EXPECT_EQ(r->cpuid_product(), Product::kGenoa);
  EXPECT_EQ(r->reported_tcb.to_hex(), "0a00000000001954");
  EXPECT_EQ(r->current_tcb, r->launch_tcb);
  EXPECT_EQ(r->current_version.to_string(), "1.55.43");
  EXPECT_EQ(r->platform_info, 0x25u);
  EXPECT_EQ(r->current_mit_vector, 0u);

  const auto v = verify(g, rsp.report);
  EXPECT_TRUE(v.checks.passed()) << dump(v.checks);
  EXPECT_EQ(v.checks.find("snp.vek.identity")->status, CheckStatus::kPass);
  EXPECT_EQ(v.checks.find("snp.crl")->status, CheckStatus::kPass);
  // AMD's own roots do not trust it.
  snp::SnpVerifyOptions options;
  options.time = unix_now();
  const auto real = snp::SnpVerifier().verify(evidence_of(g, rsp.report), options);
  EXPECT_EQ(real.checks.find("snp.chain.ark")->status, CheckStatus::kFail);
  EXPECT_EQ(real.checks.find("snp.chain.ark")->detail,
            "public key is not AMD's pinned ARK-Genoa key");
}

// Each product's report carries CPUID fields that make the verifier pick its TCB layout.
TEST(SimSnp, EveryProductsReportsVerify) {
  for (Product product : {Product::kMilan, Product::kGenoa, Product::kTurin}) {
    SCOPED_TRACE(snp::product_name(product));
    auto platform = SimulatedSnp::open(shared_sim_state(), SnpPlatformConfig::for_product(product));
    ASSERT_TRUE(platform) << platform.error().message();
    SnpGuest guest(*platform, sample_launch());
    const Bytes report =
        open_response(guest, 0, guest.guest_request(report_request(guest, 0, 1, 0))).report;
    const auto v = verify(*platform, report);
    EXPECT_TRUE(v.checks.passed()) << dump(v.checks);
    EXPECT_EQ(v.product, product);
    EXPECT_EQ(v.checks.find("snp.vek.tcb")->found, platform->config().reported_tcb.to_string());
  }
}

TEST(SimSnp, AFlippedByteFailsTheSignature) {
  SnpGuest guest(genoa(), sample_launch());
  Bytes report =
      open_response(guest, 0, guest.guest_request(report_request(guest, 0, 1, 0))).report;
  ASSERT_EQ(report.size(), snp::kReportSize);
  for (std::size_t offset : {snp::offset::kMeasurement + 5, snp::offset::kReportData,
                             snp::offset::kHostData + 31, snp::offset::kChipId + 63}) {
    SCOPED_TRACE(offset);
    Bytes flipped = report;
    flipped[offset] ^= 0x01;
    const auto v = verify(genoa(), flipped);
    std::vector<std::string> want = {"snp.signature"};
    if (offset == snp::offset::kChipId + 63) want.push_back("snp.vek.identity");
    EXPECT_EQ(v.checks.failures(), want) << dump(v.checks);
    EXPECT_EQ(v.checks.find("snp.signature")->found, "does not verify");
  }
}

// A platform below a policy's minimum: the report and the VCEK state the TCB it runs.
TEST(SimSnp, AVulnerablePlatformReportsTheTcbItRuns) {
  SnpPlatformConfig config;
  config.current_tcb = {.fmc = std::nullopt, .bl = 7, .tee = 0, .snp = 14, .ucode = 72};
  config.reported_tcb = config.committed_tcb = config.launch_tcb = config.current_tcb;
  auto old = SimulatedSnp::open(shared_sim_state(), config);
  ASSERT_TRUE(old) << old.error().message();
  SnpGuest guest(*old, sample_launch());
  const Bytes report =
      open_response(guest, 0, guest.guest_request(report_request(guest, 0, 1, 0))).report;
  auto r = snp::parse_snp_report(report);
  ASSERT_TRUE(r);
  for (const snp::TcbVersion& tcb :
       {r->current_tcb, r->reported_tcb, r->committed_tcb, r->launch_tcb})
    EXPECT_EQ(tcb.parts(Product::kGenoa).to_string(), "bl 7, tee 0, snp 14, ucode 72");
  EXPECT_EQ(snp::parse_vek_extensions(old->vcek().cert)->tcb().to_string(),
            "bl 7, tee 0, snp 14, ucode 72");
  const auto v = verify(*old, report);
  EXPECT_TRUE(v.checks.passed()) << dump(v.checks);
  EXPECT_EQ(v.checks.find("snp.vek.tcb")->found, "bl 7, tee 0, snp 14, ucode 72");
  EXPECT_NE(old->vcek().cert.der(), genoa().vcek().cert.der());
}

TEST(SimSnp, SequenceNumbersAreEnforcedPerVmpck) {
  SnpGuest guest(genoa(), sample_launch());
  const Bytes first = report_request(guest, 0, 1, 0);
  EXPECT_EQ(open_response(guest, 0, guest.guest_request(first)).header.seqno, 2u);
  const auto replayed = guest.guest_request(first);
  EXPECT_EQ(replayed.firmware_status, snp::kStatusAeadOflow);
  EXPECT_EQ(replayed.error, "MSG_SEQNO 1 under VMPCK0: expected 3 (a replayed request)");
  EXPECT_TRUE(replayed.response.empty());
  const auto skipped = guest.guest_request(report_request(guest, 0, 5, 0));
  EXPECT_EQ(skipped.firmware_status, snp::kStatusAeadOflow);
  EXPECT_EQ(skipped.error, "MSG_SEQNO 5 under VMPCK0: expected 3 (a skipped number)");
  EXPECT_EQ(
      open_response(guest, 0, guest.guest_request(report_request(guest, 0, 3, 0))).header.seqno,
      4u);
  // Each VMPCK counts on its own.
  EXPECT_EQ(open_response(guest, 2, guest.guest_request(report_request(guest, 2, 1, 2))).status,
            snp::kStatusSuccess);
}

TEST(SimSnp, TamperedOrMisaddressedMessagesAreRefused) {
  SnpGuest guest(genoa(), sample_launch());
  Bytes tampered = report_request(guest, 0, 1, 0);
  tampered[msg::kHeaderSize + 3] ^= 0x80;
  const auto bad_tag = guest.guest_request(tampered);
  EXPECT_EQ(bad_tag.firmware_status, snp::kStatusInvalidParam);
  EXPECT_EQ(bad_tag.error,
            "guest message: the authentication tag does not verify under VMPCK0 (wrong key, or "
            "the message was altered)");
  // Encrypted with VMPCK1 but naming VMPCK0.
  const auto wrong_key = guest.guest_request(report_request(guest, 0, 1, 0, 0, &guest.vmpck(1)));
  EXPECT_EQ(wrong_key.firmware_status, snp::kStatusInvalidParam);
  Bytes bad_algo = report_request(guest, 0, 1, 0);
  bad_algo[msg::kAlgo] = 2;
  EXPECT_EQ(guest.guest_request(bad_algo).error,
            "guest message ALGO: expected 1 (AES-256-GCM), found 2");
  EXPECT_EQ(guest.guest_request(Bytes(0x5f, 0)).firmware_status, snp::kStatusInvalidParam);
  // Refusals consume no sequence number.
  EXPECT_EQ(open_response(guest, 0, guest.guest_request(report_request(guest, 0, 1, 0))).status,
            snp::kStatusSuccess);
  // Accepted messages the firmware cannot serve answer with STATUS INVALID_PARAM, no report.
  const auto low = guest.guest_request(report_request(guest, 1, 1, 0));
  const Response low_rsp = open_response(guest, 1, low);
  EXPECT_EQ(low_rsp.status, snp::kStatusInvalidParam);
  EXPECT_EQ(low_rsp.report_size, 0u);
  EXPECT_TRUE(is_all_zero(low_rsp.report));
  EXPECT_EQ(low.error, "VMPL 0: a request under VMPCK1 may ask for VMPL 1-3");
  const auto vlek = guest.guest_request(report_request(guest, 0, 3, 0, 2));
  EXPECT_EQ(open_response(guest, 0, vlek).status, snp::kStatusInvalidParam);
}

TEST(SimSnp, ExtendedRequestsCarryTheCertificateTable) {
  const SimulatedSnp& g = genoa();
  SnpGuest guest(g, sample_launch());
  const Bytes request = report_request(guest, 0, 1, 0);
  const auto small = guest.ext_guest_request(request, 1);
  EXPECT_EQ(small.vmm_error, kVmmErrorInvalidLen);
  EXPECT_EQ(small.pages_needed, g.certificate_table().size() / 4096);
  EXPECT_EQ(small.pages_needed, 2u);
  EXPECT_TRUE(small.request.response.empty());
  // The request was not processed: its sequence number is still the next one.
  const auto ok = guest.ext_guest_request(request, 2);
  EXPECT_EQ(ok.vmm_error, 0u);
  EXPECT_EQ(open_response(guest, 0, ok.request).status, snp::kStatusSuccess);
  auto entries = snp::parse_cert_table(ok.certificates);
  ASSERT_TRUE(entries) << entries.error().message();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].role, snp::CertTableRole::kVcek);
  EXPECT_EQ((*entries)[0].data, g.vcek().cert.der());
  EXPECT_EQ((*entries)[1].role, snp::CertTableRole::kAskOrAsvk);
  EXPECT_EQ((*entries)[1].data, g.amd().ask().cert.der());
  EXPECT_EQ((*entries)[2].role, snp::CertTableRole::kArk);
  EXPECT_EQ((*entries)[2].data, g.amd().ark().cert.der());
}

TEST(SimSnp, TheSecretsPageHoldsFreshVmpcks) {
  SnpGuest guest(genoa(), sample_launch());
  SnpGuest other(genoa(), sample_launch());
  const Bytes page = guest.secrets_page();
  ASSERT_EQ(page.size(), 4096u);
  EXPECT_EQ(load_le32(page, snp::secrets::kVersion), 3u);
  EXPECT_EQ(load_le32(page, snp::secrets::kFms), 0x00a10f11u);  // family 19h model 11h stepping 1
  Bytes rest = page;
  for (unsigned i = 0; i < 4; ++i) {
    const std::size_t at = snp::secrets::kVmpck0 + 32 * i;
    EXPECT_EQ(Bytes(page.begin() + at, page.begin() + at + 32),
              Bytes(guest.vmpck(i).begin(), guest.vmpck(i).end()));
    EXPECT_NE(guest.vmpck(i), other.vmpck(i));
    std::fill_n(rest.begin() + at, 32, 0);
  }
  store_le32(rest, snp::secrets::kVersion, 0);
  store_le32(rest, snp::secrets::kFms, 0);
  EXPECT_TRUE(is_all_zero(rest));
  EXPECT_NE(guest.report_id(), other.report_id());
}

// The in-tree fuzz seed was sealed by Python's `cryptography` (AES-256-GCM, all-zero VMPCK,
// IV = sequence number 1 and four zero bytes, AAD = header bytes 0x30-0x5F): the simulated
// firmware reads it, and seals the same bytes.
TEST(SimSnp, MessagesMatchAnIndependentAesGcm) {
  const auto page = read_file(fs::path(CLOISTER_SOURCE_DIR) /
                                  "tests/attestation/corpus/sim_guest_message/report_req_seq1.bin",
                              testing::kTestFileLimit);
  ASSERT_TRUE(page);
  auto m = parse_guest_message(*page);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->header.seqno, 1u);
  EXPECT_EQ(m->header.msg_type, msg::kTypeReportReq);
  auto payload = open_guest_message(*m, Vmpck{});
  ASSERT_TRUE(payload) << payload.error().message();
  ASSERT_EQ(payload->size(), msg::kReportReqSize);
  for (std::size_t i = 0; i < 64; ++i) EXPECT_EQ((*payload)[i], i);
  EXPECT_TRUE(is_all_zero(ByteView(*payload).subspan(64)));
  const Bytes sealed = seal_guest_message(m->header, *payload, Vmpck{}).value();
  EXPECT_EQ(sealed,
            Bytes(page->begin(), page->begin() + static_cast<std::ptrdiff_t>(sealed.size())));
}

TEST(SimSnp, ConfigurationsTheFirmwareCannotHaveAreRejected) {
  auto error_of = [](const SnpPlatformConfig& c) {
    auto ok = c.validate();
    return ok ? std::string("valid") : ok.error().message();
  };
  EXPECT_EQ(error_of(SnpPlatformConfig{}), "valid");
  SnpPlatformConfig c;
  c.chip_id = Bytes(63, 1);
  EXPECT_EQ(error_of(c), "chip_id: expected 64 bytes, found 63");
  c = SnpPlatformConfig::for_product(Product::kTurin);
  c.chip_id = Bytes(64, 1);
  EXPECT_EQ(error_of(c), "chip_id: a Turin CHIP_ID has 8 bytes followed by 56 zero bytes");
  c = SnpPlatformConfig{};
  c.launch_tcb.fmc = 1;
  EXPECT_EQ(error_of(c),
            "launch_tcb: TCB for Genoa: an FMC SPL was given, but this product's TCB_VERSION has "
            "none");
  c = SnpPlatformConfig{};
  c.reported_tcb.ucode = 85;
  EXPECT_EQ(error_of(c),
            "reported_tcb (bl 10, tee 0, snp 25, ucode 85) exceeds current_tcb (bl 10, tee 0, snp "
            "25, ucode 84) in UCODE; the firmware reports at most the TCB it runs");
  c = SnpPlatformConfig{};
  c.committed_firmware = {1, 56, 0};
  EXPECT_EQ(error_of(c), "committed_firmware 1.56.0 is newer than current_firmware 1.55.43");
  c = SnpPlatformConfig{};
  c.platform_info = 0x100;
  EXPECT_EQ(error_of(c), "platform_info: bits above 7 are reserved, found 0x100");
  EXPECT_EQ(error_of(SnpPlatformConfig::for_product(Product::kVenice)),
            "product: Venice has no published AMD hierarchy to simulate (Milan, Genoa, Turin)");
  auto opened = SimulatedSnp::open(shared_sim_state(), c);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().message(),
            "simulated SEV-SNP platform: platform_info: bits above 7 are reserved, found 0x100");
}

}  // namespace
}  // namespace cloister::attestation::sim
