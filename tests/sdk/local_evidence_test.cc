// configfs-tsm as the agent uses it, against a directory laid out as the kernel lays out a
// report entry (Documentation/ABI/testing/configfs-tsm): the REPORT_DATA must land in inblob and
// the evidence come from outblob and auxblob as `provider` says, within the blob limit.
#include "cloister/sdk/local_evidence.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "cloister/common/file.h"

namespace cloister::sdk {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class ConfigfsTsmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("cloister-tsm-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    entry_ = root_ / ("cloister-agent-" + std::to_string(::getpid()));
    fs::create_directories(entry_);
    write("inblob", "");
    write("generation", "1\n");
  }
  void TearDown() override { fs::remove_all(root_); }
  void write(const std::string& name, const std::string& content) {
    std::ofstream(entry_ / name, std::ios::binary) << content;
  }
  fs::path root_, entry_;
  ReportData rd_{};
};

// An outblob that carries `rd` where the provider's format puts REPORT_DATA.
std::string outblob_with(std::size_t size, std::size_t at, const ReportData& rd) {
  std::string blob(size, 'r');
  std::copy(rd.begin(), rd.end(), blob.begin() + static_cast<std::ptrdiff_t>(at));
  return blob;
}

TEST_F(ConfigfsTsmTest, SevGuestGivesTheReportAndTheCertificateTable) {
  rd_.fill(0xab);
  write("provider", "sev_guest\n");
  write("outblob", outblob_with(1184, 0x50, rd_));
  write("auxblob", std::string(4096, 'c'));
  auto evidence = configfs_tsm_evidence(rd_, root_);
  ASSERT_TRUE(evidence) << evidence.error().message();
  ASSERT_EQ(evidence->pieces.size(), 2u);
  EXPECT_EQ(evidence->find(EvidenceKind::kSnpReport)->size(), 1184u);
  EXPECT_EQ(evidence->find(EvidenceKind::kSnpCertTable)->size(), 4096u);
  const Bytes inblob = read_file(entry_ / "inblob", {4096, "inblob"}).value();
  EXPECT_EQ(inblob, Bytes(rd_.begin(), rd_.end()));
}

TEST_F(ConfigfsTsmTest, TdxGuestGivesTheQuote) {
  rd_.fill(0x5d);
  write("provider", "tdx_guest\n");
  std::string quote = outblob_with(5000, 48 + 520, rd_);
  quote[0] = 4;
  quote[1] = 0;
  write("outblob", quote);
  auto evidence = configfs_tsm_evidence(rd_, root_);
  ASSERT_TRUE(evidence) << evidence.error().message();
  EXPECT_EQ(evidence->find(EvidenceKind::kTdxQuote)->size(), 5000u);
  EXPECT_EQ(evidence->find(EvidenceKind::kSnpCertTable), nullptr);
}

// Another writer's inblob landing between ours and the read: the outblob carries its REPORT_DATA.
TEST_F(ConfigfsTsmTest, EvidenceForAnotherReportDataIsRefused) {
  rd_.fill(0xab);
  ReportData other{};
  other.fill(0xcd);
  write("provider", "sev_guest\n");
  write("outblob", outblob_with(1184, 0x50, other));
  auto evidence = configfs_tsm_evidence(rd_, root_);
  ASSERT_FALSE(evidence);
  EXPECT_THAT(evidence.error().message(),
              HasSubstr("configfs-tsm: the sev_guest outblob of 1184 bytes does not carry the "
                        "REPORT_DATA written to "));
}

TEST_F(ConfigfsTsmTest, AnUnknownProviderIsRefused) {
  write("provider", "arm_cca_guest\n");
  write("outblob", "x");
  auto evidence = configfs_tsm_evidence(rd_, root_);
  ASSERT_FALSE(evidence);
  EXPECT_THAT(evidence.error().message(),
              HasSubstr("provider: expected sev_guest or tdx_guest, found 'arm_cca_guest'"));
}

TEST_F(ConfigfsTsmTest, AnOversizedBlobIsRefusedNamingTheLimit) {
  write("provider", "sev_guest\n");
  write("outblob", std::string(65 * 1024, 'r'));
  auto evidence = configfs_tsm_evidence(rd_, root_);
  ASSERT_FALSE(evidence);
  EXPECT_THAT(evidence.error().message(), HasSubstr("TSM_OUTBLOB_MAX"));
}

TEST(LocalEvidenceTest, WithoutAnySourceTheErrorNamesAllThree) {
  ReportData rd{};
  LocalEvidenceSources none;
  none.tsm_report_dir = "/nonexistent/tsm/report";
  none.sev_guest = "/nonexistent/sev-guest";
  none.tdx_guest = "/nonexistent/tdx_guest";
  auto evidence = local_evidence(rd, none);
  ASSERT_FALSE(evidence);
  EXPECT_EQ(evidence.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(evidence.error().message(),
              HasSubstr("no TEE evidence source: configfs-tsm: /nonexistent/tsm/report does not "
                        "exist"));
  EXPECT_THAT(evidence.error().message(),
              HasSubstr("; open /nonexistent/sev-guest: No such file or directory (errno 2); "
                        "open /nonexistent/tdx_guest: No such file or directory (errno 2)"));
}

// Without configfs-tsm and /dev/sev-guest, the TDX device is asked: here a regular file stands
// in for it, so the ioctl the kernel's tdx-guest driver answers is refused by the file system
// (ENOTTY), and that error, not "no source", is what the caller sees.
TEST(LocalEvidenceTest, TheTdxGuestDeviceIsTheLastFallback) {
  const fs::path device =
      fs::temp_directory_path() / ("cloister-tdx-guest-" + std::to_string(::getpid()));
  std::ofstream(device) << "";
  LocalEvidenceSources sources;
  sources.tsm_report_dir = "/nonexistent/tsm/report";
  sources.sev_guest = "/nonexistent/sev-guest";
  sources.tdx_guest = device;
  auto evidence = local_evidence(ReportData{}, sources);
  ASSERT_FALSE(evidence);
  EXPECT_EQ(evidence.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(evidence.error().message(), "TDX_CMD_GET_REPORT0 on " + device.string() +
                                            ": Inappropriate ioctl for device (errno 25)");
  auto bad_qgs = tdx_guest_evidence(ReportData{}, device, "qgs.sock");
  ASSERT_FALSE(bad_qgs);
  EXPECT_EQ(bad_qgs.error().message(),
            "quote generation socket 'qgs.sock': expected unix:PATH, vsock:CID:PORT or HOST:PORT");
  fs::remove(device);
  auto missing = tdx_guest_evidence(ReportData{}, device);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace cloister::sdk
