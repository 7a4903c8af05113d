// The simulated secure processor's VMM side: a sim-snp / sim-tdx launch over the recording ioctl
// layer, then the doorbells driven the way a guest — well-behaved or hostile — drives them, with
// the guest's memory inspected afterwards. Every hostile request must get the status hardware
// gives and leave the VMM serving the next one.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "cloister/attestation/sim/snp_firmware.h"
#include "cloister/attestation/snp/report.h"
#include "cloister/attestation/tdx/quote.h"
#include "cloister/attestation/tdx/tdreport.h"
#include "cloister/common/hex.h"
#include "cloister/firmware_loader/launch.h"
#include "cloister/vmm/hypervisor/kvm.h"
#include "cloister/vmm/tee/sim_abi.h"
#include "cloister/vmm/tee/tee.h"
#include "kvm_recorder.h"
#include "ovmf_builder.h"
#include "recorded_vm.h"
#include "support/sim_state.h"

namespace cloister::vmm {
namespace {

namespace sim = attestation::sim;

constexpr std::uint64_t kGhcb = 0x100000, kRequest = 0x101000, kResponse = 0x102000,
                        kCerts = 0x103000;
constexpr std::uint64_t kRam = 16ull << 20;

struct SimLaunch {
  SimLaunch(TeeKind kind, const Bytes& image, const std::string& platform = "null")
      : kvm(recorder), vm(kvm.vm) {
    fw::LaunchInputs in;
    in.tee = kind == TeeKind::kSimSnp ? fw::Tee::kSevSnp : fw::Tee::kTdx;
    in.firmware = fw::LaunchFile{"image", std::make_shared<const Bytes>(image)};
    in.vcpus = 1;
    if (kind == TeeKind::kSimSnp) in.vcpu_signature.type = "EPYC-v4";
    if (kind == TeeKind::kSimTdx) in.memory_bytes = kRam;
    auto plan = fw::plan_launch(in);
    EXPECT_TRUE(plan.ok()) << plan.error().message();
    TeeConfig config;
    config.kind = kind;
    config.sim_state_dir = testing::shared_sim_state().root().string();
    config.sim_platform = nlohmann::json::parse(platform);
    auto made = make_tee_backend(config, std::move(*plan));
    EXPECT_TRUE(made.ok()) << made.error().message();
    tee = std::move(*made);
    const RegionSpec specs[] = {{"ram", 0, kRam, false},
                                {"firmware", (1ull << 32) - image.size(), image.size(), false}};
    memory = *GuestMemory::create(specs, false);
    auto vcpu = vm->create_vcpu(0);
    EXPECT_TRUE(vcpu.ok());
    vcpu0 = std::move(*vcpu);
    Vcpu* vcpus[] = {vcpu0.get()};
    LaunchContext ctx{*vm, vcpus, memory, log, false};
    auto launched = tee->launch(ctx);
    EXPECT_TRUE(launched.ok()) << launched.error().message();
    doorbell = tee->devices(memory, log).at(0).device;
  }

  void ring(std::uint32_t port_offset, std::uint64_t gpa) {
    Bytes pfn(4);
    store_le32(pfn, 0, static_cast<std::uint32_t>(gpa >> 12));
    doorbell->write(port_offset, pfn);
  }
  void put64(std::uint64_t gpa, std::uint64_t value) {
    Bytes b(8);
    store_le64(b, 0, value);
    ASSERT_TRUE(memory.write(gpa, b, "test").ok());
  }
  std::uint64_t get64(std::uint64_t gpa) {
    Bytes b(8);
    EXPECT_TRUE(memory.read(gpa, b, "test").ok());
    return load_le64(b, 0);
  }
  Bytes get(std::uint64_t gpa, std::size_t size) {
    Bytes b(size);
    EXPECT_TRUE(memory.read(gpa, b, "test").ok());
    return b;
  }

  testing::KvmRecorder recorder;
  Logger log{LogFormat::kText, LogLevel::kError};
  testing::RecordedVm kvm;
  std::unique_ptr<Vm>& vm;
  std::unique_ptr<Vcpu> vcpu0;
  std::unique_ptr<TeeBackend> tee;
  GuestMemory memory;
  std::shared_ptr<BusDevice> doorbell;
};

// ---- SEV-SNP ----------------------------------------------------------------------------------

// The AmdSev-like image's SNP_SECRETS page.
constexpr std::uint64_t kSecrets = 0x80d000;

struct SnpGuestSide {
  explicit SnpGuestSide(SimLaunch& launch) : l(launch) {
    const Bytes key = l.get(kSecrets + CLOISTER_SNP_SECRETS_VMPCK0, 32);
    std::copy(key.begin(), key.end(), vmpck.begin());
  }

  // Writes a MSG_REPORT_REQ with `seqno` and rings an extended guest request offering `pages`
  // certificate pages; returns SW_EXITINFO2.
  std::uint64_t request(std::uint64_t seqno, std::uint8_t marker, std::uint64_t pages = 4,
                        std::uint64_t code = CLOISTER_SVM_VMGEXIT_EXT_GUEST_REQUEST) {
    sim::GuestMessageHeader header;
    header.seqno = seqno;
    header.msg_type = CLOISTER_SNP_MSG_REPORT_REQ;
    Bytes payload(CLOISTER_SNP_REPORT_REQ_SIZE, 0);
    std::fill_n(payload.begin(), 64, marker);
    auto sealed = sim::seal_guest_message(header, payload, vmpck);
    EXPECT_TRUE(sealed.ok());
    Bytes page(4096, 0);
    std::copy(sealed->begin(), sealed->end(), page.begin());
    EXPECT_TRUE(l.memory.write(kRequest, page, "test").ok());
    ghcb(code, kRequest, kResponse, pages);
    l.ring(0, kGhcb);
    return l.get64(kGhcb + CLOISTER_GHCB_SW_EXIT_INFO_2);
  }

  void ghcb(std::uint64_t code, std::uint64_t request, std::uint64_t response,
            std::uint64_t pages) {
    EXPECT_TRUE(l.memory.write(kGhcb, Bytes(4096, 0), "test").ok());
    l.put64(kGhcb + CLOISTER_GHCB_SW_EXIT_CODE, code);
    l.put64(kGhcb + CLOISTER_GHCB_SW_EXIT_INFO_1, request);
    l.put64(kGhcb + CLOISTER_GHCB_SW_EXIT_INFO_2, response);
    l.put64(kGhcb + CLOISTER_GHCB_RAX, kCerts);
    l.put64(kGhcb + CLOISTER_GHCB_RBX, pages);
  }

  // The report in the response page, decrypted and authenticated.
  Result<attestation::snp::SnpReport> report() {
    auto message = sim::parse_guest_message(l.get(kResponse, 4096));
    if (!message) return message.error();
    CLOISTER_TRY(Bytes payload, sim::open_guest_message(*message, vmpck));
    if (load_le32(payload, 0) != 0) return Error("status " + hex_number(load_le32(payload, 0)));
    return attestation::snp::parse_snp_report(ByteView(payload).subspan(0x20, 1184));
  }

  SimLaunch& l;
  sim::Vmpck vmpck{};
};

TEST(SimSnpTest, GuestRequestsGetReportsOfThisLaunchInSequence) {
  SimLaunch l(TeeKind::kSimSnp, testing::amdsev_like_image(0x8000).build());
  SnpGuestSide guest(l);
  EXPECT_NE(guest.vmpck, sim::Vmpck{});  // fresh VMPCK0 in the secrets page
  ASSERT_EQ(guest.request(1, 0xa1), 0u);
  EXPECT_EQ(l.get64(kGhcb + CLOISTER_GHCB_SW_EXIT_INFO_1), 0u);
  auto report = guest.report();
  ASSERT_TRUE(report.ok()) << report.error().message();
  EXPECT_EQ(to_hex(report->measurement), to_hex(l.tee->measurement()->digest));
  EXPECT_EQ(report->report_data[0], 0xa1);
  EXPECT_EQ(report->policy, 0x30000u);
  // The certificate table (VCEK, ASK, ARK) in the guest's buffer.
  EXPECT_EQ(l.get(kCerts + 24 * 3, 24), Bytes(24, 0));  // the terminator after three entries
  // The next request uses the next sequence number (the response consumed 2).
  ASSERT_EQ(guest.request(3, 0xa2), 0u);
  ASSERT_TRUE(guest.report().ok());
  EXPECT_EQ(guest.report()->report_data[0], 0xa2);
  // The launch's description names it simulated and where its trust root is.
  const auto launch = l.tee->describe();
  EXPECT_EQ(launch["simulated"], true);
  EXPECT_NE(launch["trust_root"].get<std::string>().find("amd/Genoa/ark.crt.pem"),
            std::string::npos);
}

// A guest can ring the doorbell with a refused request as often as it likes: the first ten are
// logged, then one in 1000, each with the count so far, so the host's log does not fill.
TEST(SimSnpTest, RefusalsAGuestRepeatsAtWillAreLoggedWithinABudget) {
  SimLaunch l(TeeKind::kSimSnp, testing::amdsev_like_image(0x8000).build());
  const std::string path = ::testing::TempDir() + "sim-snp-refusals.log";
  std::remove(path.c_str());
  {
    auto log = Logger::to_file(path, LogFormat::kJson, LogLevel::kWarn);
    ASSERT_TRUE(log.ok()) << log.error().message();
    auto doorbell = l.tee->devices(l.memory, *log).at(0).device;
    Bytes outside(4);
    store_le32(outside, 0, 0x7fffff);  // a GHCB page past guest memory (32 GiB)
    for (int i = 0; i < 3000; ++i) doorbell->write(0, outside);
  }
  std::ifstream in(path);
  std::vector<std::uint64_t> counts;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j.at("event"), "sim_snp.bad_ghcb");
    counts.push_back(j.at("refused_so_far").get<std::uint64_t>());
  }
  EXPECT_EQ(counts, (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1000, 2000, 3000}));
}

TEST(SimSnpTest, HostileRequestsGetTheFirmwaresAnswerAndTheNextOneIsServed) {
  SimLaunch l(TeeKind::kSimSnp, testing::amdsev_like_image(0x8000).build());
  SnpGuestSide guest(l);
  ASSERT_EQ(guest.request(1, 1), 0u);
  // A replayed sequence number: AEAD_OFLOW, and no response written over the old one.
  EXPECT_EQ(guest.request(1, 2), CLOISTER_SNP_FW_AEAD_OFLOW);
  // A skipped one.
  EXPECT_EQ(guest.request(7, 3), CLOISTER_SNP_FW_AEAD_OFLOW);
  // A corrupted message (flipped ciphertext byte): INVALID_PARAM.
  guest.request(3, 4);  // consumes 3 and 4
  sim::GuestMessageHeader header;
  header.seqno = 5;
  header.msg_type = CLOISTER_SNP_MSG_REPORT_REQ;
  auto sealed = *sim::seal_guest_message(header, Bytes(96, 0), guest.vmpck);
  sealed[0x70] ^= 1;
  ASSERT_TRUE(l.memory.write(kRequest, sealed, "test").ok());
  guest.ghcb(CLOISTER_SVM_VMGEXIT_GUEST_REQUEST, kRequest, kResponse, 0);
  l.ring(0, kGhcb);
  EXPECT_EQ(l.get64(kGhcb + CLOISTER_GHCB_SW_EXIT_INFO_2), CLOISTER_SNP_FW_INVALID_PARAM);
  // Garbage as a message.
  ASSERT_TRUE(l.memory.write(kRequest, Bytes(4096, 0xff), "test").ok());
  l.ring(0, kGhcb);
  EXPECT_EQ(l.get64(kGhcb + CLOISTER_GHCB_SW_EXIT_INFO_2), CLOISTER_SNP_FW_INVALID_PARAM);
  // Pages outside guest memory.
  guest.ghcb(CLOISTER_SVM_VMGEXIT_GUEST_REQUEST, 0x7ff000000000, kResponse, 0);
  l.ring(0, kGhcb);
  EXPECT_EQ(l.get64(kGhcb + CLOISTER_GHCB_SW_EXIT_INFO_2), CLOISTER_SNP_FW_INVALID_PARAM);
  // A certificate buffer too small, or absurdly large: INVALID_LEN with the pages needed, the
  // message not consumed.
  const std::uint64_t too_small = guest.request(5, 5, 1);
  EXPECT_EQ(too_small, std::uint64_t{CLOISTER_SNP_VMM_ERR_INVALID_LEN} << 32);
  EXPECT_EQ(l.get64(kGhcb + CLOISTER_GHCB_RBX), 2u);
  EXPECT_EQ(guest.request(5, 5, 1ull << 40), std::uint64_t{CLOISTER_SNP_VMM_ERR_INVALID_LEN} << 32);
  // An exit code the simulator does not serve: SW_EXITINFO1 says not handled.
  guest.ghcb(0x80000010 /* PSC */, kRequest, kResponse, 0);
  l.ring(0, kGhcb);
  EXPECT_EQ(l.get64(kGhcb + CLOISTER_GHCB_SW_EXIT_INFO_1), 1u);
  // A GHCB outside guest memory and accesses the ABI does not define change nothing.
  l.ring(0, 0xfff0000000);
  l.doorbell->write(2, Bytes(2, 0));
  // Requests in a loop: every one answered, in order, and the channel still works after.
  for (std::uint64_t seqno = 5; seqno < 5 + 2 * 50; seqno += 2) {
    ASSERT_EQ(guest.request(seqno, 6), 0u) << seqno;
    EXPECT_EQ(guest.request(seqno, 6), CLOISTER_SNP_FW_AEAD_OFLOW);  // and its replay
  }
  ASSERT_TRUE(guest.report().ok());
}

TEST(SimSnpTest, SimulatedPlatformSettingsReachTheReport) {
  SimLaunch l(TeeKind::kSimSnp, testing::amdsev_like_image(0x8000).build(),
              R"({"product": "Milan", "tcb": {"bl": 3, "tee": 0, "snp": 8, "ucode": 115}})");
  SnpGuestSide guest(l);
  ASSERT_EQ(guest.request(1, 0), 0u);
  auto report = guest.report();
  ASSERT_TRUE(report.ok());
  const auto tcb = report->reported_tcb.parts(attestation::snp::Product::kMilan);
  EXPECT_EQ(tcb.snp, 8);
  EXPECT_EQ(tcb.ucode, 115);
  EXPECT_EQ(l.tee->describe()["product"], "Milan");
}

TEST(SimSnpTest, BadPlatformDescriptionsAreRefusedBeforeLaunch) {
  fw::LaunchInputs in;
  in.firmware = fw::LaunchFile{
      "image", std::make_shared<const Bytes>(testing::amdsev_like_image(0x8000).build())};
  in.vcpus = 1;
  in.vcpu_signature.type = "EPYC-v4";
  TeeConfig config;
  config.kind = TeeKind::kSimSnp;
  config.sim_state_dir = testing::shared_sim_state().root().string();
  config.sim_platform = {{"tcb", {{"snp", 300}}}};
  auto tee = make_tee_backend(config, *fw::plan_launch(in));
  ASSERT_FALSE(tee.ok());
  EXPECT_NE(tee.error().message().find("tee.sim_platform.tcb.snp: expected a number up to 255"),
            std::string::npos)
      << tee.error().message();
  config.sim_platform = {{"chipid", "00"}};
  tee = make_tee_backend(config, *fw::plan_launch(in));
  ASSERT_FALSE(tee.ok());
  EXPECT_NE(tee.error().message().find("unknown key \"chipid\""), std::string::npos);
}

// ---- TDX --------------------------------------------------------------------------------------

constexpr std::uint64_t kBlock = 0x200000, kReport = 0x201000, kReportData = 0x202000,
                        kDigest = 0x203000, kQuoteBuffer = 0x204000;

Bytes tdvf_image() {
  testing::OvmfImageBuilder builder(0x8000);
  builder.tdx_metadata({{0, 0x6000, 0xffff8000, 0x6000, 0, 1},
                        {0, 0, 0x809000, 0x2000, 2, 0},
                        {0, 0, 0x80b000, 0x3000, 3, 0}});
  return builder.build();
}

struct TdxGuestSide {
  explicit TdxGuestSide(SimLaunch& launch) : l(launch) {}
  cloister_sim_tdcall call(cloister_sim_tdcall in) {
    Bytes bytes(sizeof in);
    std::memcpy(bytes.data(), &in, sizeof in);
    EXPECT_TRUE(l.memory.write(kBlock, bytes, "test").ok());
    l.ring(0, kBlock);
    bytes = l.get(kBlock, sizeof in);
    std::memcpy(&in, bytes.data(), sizeof in);
    return in;
  }
  SimLaunch& l;
};

TEST(SimTdxTest, ReportExtendAndQuoteFollowTheTdcallAbi) {
  SimLaunch l(TeeKind::kSimTdx, tdvf_image());
  TdxGuestSide guest(l);
  ASSERT_TRUE(l.memory.write(kReportData, Bytes(64, 0x5e), "test").ok());
  ASSERT_TRUE(l.memory.write(kDigest, Bytes(48, 0x11), "test").ok());
  auto out = guest.call({CLOISTER_TDCALL_MR_RTMR_EXTEND, kDigest, 2, 0, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(out.rax, CLOISTER_TDX_SUCCESS);
  out = guest.call({CLOISTER_TDCALL_MR_REPORT, kReport, kReportData, 0, 0, 0, 0, 0, 0, 0, 0});
  ASSERT_EQ(out.rax, CLOISTER_TDX_SUCCESS);
  auto tdreport = attestation::tdx::parse_tdreport(l.get(kReport, 1024));
  ASSERT_TRUE(tdreport.ok()) << tdreport.error().message();
  EXPECT_EQ(to_hex(tdreport->td_info.mr_td), to_hex(l.tee->measurement()->digest));
  EXPECT_EQ(tdreport->mac.report_data[0], 0x5e);
  // RTMR2 = SHA-384(0^48 || 0x11^48).
  Bytes chain(48, 0);
  chain.insert(chain.end(), 48, 0x11);
  EXPECT_EQ(to_hex(tdreport->td_info.rtmr[2]), to_hex(sha384(chain)));

  // GetQuote in the GHCI buffer: version 1, in_len 1024, the TDREPORT.
  Bytes buffer(0x2000, 0);
  store_le64(buffer, 0, 1);
  store_le32(buffer, 16, 1024);
  const Bytes report_bytes = l.get(kReport, 1024);
  std::copy(report_bytes.begin(), report_bytes.end(), buffer.begin() + 24);
  ASSERT_TRUE(l.memory.write(kQuoteBuffer, buffer, "test").ok());
  out = guest.call({CLOISTER_TDCALL_VP_VMCALL, 0, 0, 0, 0, 0, CLOISTER_TDVMCALL_GET_QUOTE,
                    kQuoteBuffer, 0x2000, 0, 0});
  EXPECT_EQ(out.rax, CLOISTER_TDX_SUCCESS);
  EXPECT_EQ(out.r10, CLOISTER_TDVMCALL_SUCCESS);
  EXPECT_EQ(l.get64(kQuoteBuffer + 8), CLOISTER_GET_QUOTE_SUCCESS);
  const std::uint32_t out_len = load_le32(l.get(kQuoteBuffer + 20, 4), 0);
  auto quote = attestation::tdx::parse_tdx_quote(l.get(kQuoteBuffer + 24, out_len));
  ASSERT_TRUE(quote.ok()) << quote.error().message();
  EXPECT_EQ(to_hex(quote->td_report.mr_td), to_hex(l.tee->measurement()->digest));
  EXPECT_EQ(quote->td_report.td_attributes, 0x10000000u);
  EXPECT_EQ(quote->td_report.report_data[63], 0x5e);
}

TEST(SimTdxTest, HostileTdcallsAreRefusedAndTheNextOneIsServed) {
  SimLaunch l(TeeKind::kSimTdx, tdvf_image());
  const std::string path = ::testing::TempDir() + "sim-tdx-refusals.log";
  std::remove(path.c_str());
  auto log = Logger::to_file(path, LogFormat::kJson, LogLevel::kWarn);
  ASSERT_TRUE(log.ok()) << log.error().message();
  l.doorbell = l.tee->devices(l.memory, *log).at(0).device;
  TdxGuestSide guest(l);
  // Misaligned report buffer, subtype 1, RTMR index 4, a digest outside memory, unknown leaf.
  EXPECT_EQ(
      guest.call({CLOISTER_TDCALL_MR_REPORT, kReport + 8, kReportData, 0, 0, 0, 0, 0, 0, 0, 0}).rax,
      CLOISTER_TDX_OPERAND_INVALID);
  EXPECT_EQ(
      guest.call({CLOISTER_TDCALL_MR_REPORT, kReport, kReportData, 1, 0, 0, 0, 0, 0, 0, 0}).rax,
      CLOISTER_TDX_OPERAND_INVALID);
  EXPECT_EQ(guest.call({CLOISTER_TDCALL_MR_RTMR_EXTEND, kDigest, 4, 0, 0, 0, 0, 0, 0, 0, 0}).rax,
            CLOISTER_TDX_OPERAND_INVALID);
  EXPECT_EQ(
      guest.call({CLOISTER_TDCALL_MR_RTMR_EXTEND, 0xfff0000000, 2, 0, 0, 0, 0, 0, 0, 0, 0}).rax,
      CLOISTER_TDX_OPERAND_INVALID);
  EXPECT_EQ(guest.call({77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}).rax, CLOISTER_TDX_OPERAND_INVALID);
  // GetQuote with a bad buffer (version 2), a huge one, a forged TDREPORT.
  Bytes buffer(0x1000, 0);
  store_le64(buffer, 0, 2);
  store_le32(buffer, 16, 1024);
  ASSERT_TRUE(l.memory.write(kQuoteBuffer, buffer, "test").ok());
  EXPECT_EQ(guest
                .call({CLOISTER_TDCALL_VP_VMCALL, 0, 0, 0, 0, 0, CLOISTER_TDVMCALL_GET_QUOTE,
                       kQuoteBuffer, 0x1000, 0, 0})
                .r10,
            CLOISTER_TDVMCALL_INVALID_OPERAND);
  EXPECT_EQ(guest
                .call({CLOISTER_TDCALL_VP_VMCALL, 0, 0, 0, 0, 0, CLOISTER_TDVMCALL_GET_QUOTE,
                       kQuoteBuffer, 1ull << 40, 0, 0})
                .r10,
            CLOISTER_TDVMCALL_INVALID_OPERAND);
  store_le64(buffer, 0, 1);
  std::fill(buffer.begin() + 24, buffer.begin() + 24 + 1024, 0x42);
  ASSERT_TRUE(l.memory.write(kQuoteBuffer, buffer, "test").ok());
  EXPECT_EQ(guest
                .call({CLOISTER_TDCALL_VP_VMCALL, 0, 0, 0, 0, 0, CLOISTER_TDVMCALL_GET_QUOTE,
                       kQuoteBuffer, 0x1000, 0, 0})
                .r10,
            CLOISTER_TDVMCALL_SUCCESS);
  EXPECT_EQ(l.get64(kQuoteBuffer + 8), CLOISTER_GET_QUOTE_ERROR);  // the QE refused it
  // And a well-formed report still works afterwards.
  EXPECT_EQ(
      guest.call({CLOISTER_TDCALL_MR_REPORT, kReport, kReportData, 0, 0, 0, 0, 0, 0, 0, 0}).rax,
      CLOISTER_TDX_SUCCESS);
  l.doorbell.reset();
  // Each register refusal names the register, what it must hold and what it held.
  std::ifstream in(path);
  std::vector<std::string> refused;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.at("event") == "sim_tdx.refused") refused.push_back(j.at("msg"));
  }
  ASSERT_GE(refused.size(), 4u);
  EXPECT_EQ(refused[0],
            "TDG.MR.REPORT: RCX (TDREPORT_STRUCT): expected 1024-byte alignment, found 0x201008");
  EXPECT_EQ(refused[1], "TDG.MR.REPORT: R8 (subtype): expected 0, found 0x1");
  EXPECT_EQ(refused[2], "TDG.MR.RTMR.EXTEND: RDX (RTMR index): expected 0 to 3, found 4");
  EXPECT_EQ(refused.back(), "TDCALL leaf 0x4d is not simulated");
}

}  // namespace
}  // namespace cloister::vmm
