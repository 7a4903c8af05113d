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

TEST_F(ConfigfsTsmTest, SevGuestGivesTheReportAndTheCertificateTable) {
  rd_.fill(0xab);
  write("provider", "sev_guest\n");
  write("outblob", std::string(1184, 'r'));
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
  write("provider", "tdx_guest\n");
  write("outblob", std::string(5000, 'q'));
  auto evidence = configfs_tsm_evidence(rd_, root_);
  ASSERT_TRUE(evidence) << evidence.error().message();
  EXPECT_EQ(evidence->find(EvidenceKind::kTdxQuote)->size(), 5000u);
  EXPECT_EQ(evidence->find(EvidenceKind::kSnpCertTable), nullptr);
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

TEST(LocalEvidenceTest, WithoutConfigfsTsmOrTheDeviceTheErrorNamesBoth) {
  ReportData rd{};
  auto tsm = configfs_tsm_evidence(rd, "/nonexistent/tsm/report");
  ASSERT_FALSE(tsm);
  EXPECT_EQ(tsm.error().code(), ErrorCode::kNotFound);
  auto sev = sev_guest_evidence(rd, "/nonexistent/sev-guest");
  ASSERT_FALSE(sev);
  EXPECT_EQ(sev.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(sev.error().message(), HasSubstr("/nonexistent/sev-guest"));
}

}  // namespace
}  // namespace cloister::sdk
