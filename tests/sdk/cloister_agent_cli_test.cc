// cloister-agent evidence as a user runs it: the files it writes, what it prints, exit codes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "cloister/attestation/snp/cert_table.h"
#include "cloister/attestation/tdx/event_log.h"
#include "cloister/common/file.h"
#include "cloister/sdk/guest_evidence_protocol.h"
#include "cloister/sdk/verifier.h"
#include "fake_guest.h"
#include "support/command.h"

namespace {

namespace fs = std::filesystem;
using cloister::Bytes;
using cloister::testing::evidence_stream;
using cloister::testing::FakeGuest;
using ::testing::HasSubstr;

const std::string kReportData = std::string(126, '0') + "ff";

class AgentCli : public ::testing::Test {
 protected:
  void SetUp() override {
    out_ = fs::temp_directory_path() / ("cloister-agent-test-" + std::to_string(::getpid()));
    fs::remove_all(out_);
  }
  void TearDown() override { fs::remove_all(out_); }

  cloister::testing::CommandResult run(const std::string& args) {
    return cloister::testing::run_command(std::string(CLOISTER_AGENT) + " " + args);
  }
  std::string evidence_args(const fs::path& vsock) const {
    return "evidence --vsock " + vsock.string() + " --port 9000 --report-data " + kReportData +
           " --out " + out_.string();
  }

  fs::path out_;
};

FakeGuest::Behavior sends(std::vector<std::pair<std::uint32_t, Bytes>> frames) {
  frames.push_back({CLOISTER_EVIDENCE_END, {}});
  FakeGuest::Behavior b;
  b.stream = [frames](const std::array<std::uint8_t, 64>&) { return evidence_stream(frames); };
  return b;
}

TEST_F(AgentCli, WritesTheSnpReportAndCertificateTable) {
  FakeGuest guest(sends({{CLOISTER_EVIDENCE_SNP_REPORT, Bytes(1184, 7)},
                         {CLOISTER_EVIDENCE_SNP_CERT_TABLE, Bytes(4096, 8)}}));
  const auto r = run(evidence_args(guest.path()));
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, "wrote " + (out_ / "report.bin").string() + " (snp-report, 1184 bytes)\n" +
                       "wrote " + (out_ / "cert-table.bin").string() +
                       " (snp-cert-table, 4096 bytes)\n");
  EXPECT_EQ(*cloister::read_file(out_ / "report.bin", cloister::sdk::kEvidenceFileLimit),
            Bytes(1184, 7));
  EXPECT_EQ(*cloister::read_file(out_ / "cert-table.bin",
                                 cloister::attestation::snp::kCertTableFileLimit),
            Bytes(4096, 8));
  std::array<std::uint8_t, 64> expected{};
  expected[63] = 0xff;
  EXPECT_EQ(guest.report_data(), expected);
}

TEST_F(AgentCli, WritesTheTdxQuoteAndEventLog) {
  FakeGuest guest(sends({{CLOISTER_EVIDENCE_TDX_QUOTE, Bytes(5000, 1)},
                         {CLOISTER_EVIDENCE_CC_EVENT_LOG, Bytes(145, 2)}}));
  const auto r = run(evidence_args(guest.path()));
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(*cloister::read_file(out_ / "quote.bin", cloister::sdk::kEvidenceFileLimit),
            Bytes(5000, 1));
  EXPECT_EQ(
      *cloister::read_file(out_ / "event-log.bin", cloister::attestation::tdx::kEventLogFileLimit),
      Bytes(145, 2));
  EXPECT_FALSE(fs::exists(out_ / "report.bin"));
}

TEST_F(AgentCli, ExitCodesSayWhoFailed) {
  const std::string text = "TDG.MR.REPORT failed: RAX 0x4";
  FakeGuest failing(sends({{CLOISTER_EVIDENCE_ERROR, Bytes(text.begin(), text.end())}}));
  const auto guest_failed = run(evidence_args(failing.path()));
  EXPECT_EQ(guest_failed.status, 1);
  EXPECT_EQ(guest_failed.out,
            "cloister-agent: guest-failed: guest evidence stream: the guest reported no evidence: "
            "\"TDG.MR.REPORT failed: RAX 0x4\"\n");
  EXPECT_FALSE(fs::exists(out_));

  const auto unreachable = run(evidence_args(out_ / "no-such.vsock"));
  EXPECT_EQ(unreachable.status, 3);
  EXPECT_THAT(unreachable.out, HasSubstr("cloister-agent: unavailable: cannot connect"));

  const auto short_data = run("evidence --vsock x --report-data abcd --out " + out_.string());
  EXPECT_EQ(short_data.status, 2);
  EXPECT_THAT(short_data.out, HasSubstr("--report-data: expected 64 bytes"));
  EXPECT_EQ(run("evidence --vsock x --out y").status, 2);
  // An init-data path that is no regular file is refused before anything is sent.
  const auto init_data =
      run("get-resource tenant/key/disk --kbs https://127.0.0.1:9 --init-data /dev/zero");
  EXPECT_EQ(init_data.status, 2);
  EXPECT_THAT(
      init_data.out,
      HasSubstr("cloister-agent: --init-data: /dev/zero: a character device, not a regular file"));
  EXPECT_EQ(run("").status, 2);
}

}  // namespace
