#include "cloister/service/audit.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "cloister/common/file.h"

namespace cloister::service::audit {
namespace {

class AuditLog : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cloister-audit-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = dir_ / "audit.jsonl";
    auto writer = Writer::open(path_);
    ASSERT_TRUE(writer) << writer.error().message();
    for (int i = 1; i <= 4; ++i) {
      Record r{1760000000 + i,
               "10.0.0." + std::to_string(i),
               "snp",
               std::string(96, 'a'),
               std::string(64, 'e'),
               std::string(64, 'p'),
               "default/key/disk",
               i == 3 ? "denied" : "released",
               i == 3 ? "policy.measurement: expected aa…, found bb…" : "ok"};
      ASSERT_TRUE((*writer)->append(r));
    }
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::vector<std::string> lines() {
    std::ifstream in(path_);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  void write_lines(const std::vector<std::string>& ls, bool final_newline = true) {
    std::string text;
    for (std::size_t i = 0; i < ls.size(); ++i)
      text += ls[i] + (i + 1 < ls.size() || final_newline ? "\n" : "");
    ASSERT_TRUE(write_file_atomic(path_, as_bytes(text)));
  }
  Verification check() {
    auto v = verify(path_);
    EXPECT_TRUE(v) << v.error().message();
    return *v;
  }

  std::filesystem::path dir_;
  std::filesystem::path path_;
};

TEST_F(AuditLog, AnUntouchedLogVerifiesAndReopens) {
  const Verification v = check();
  EXPECT_TRUE(v.intact()) << v.problem;
  EXPECT_EQ(v.records, 4u);
  const auto ls = lines();
  ASSERT_EQ(ls.size(), 4u);
  EXPECT_EQ(ls[0].rfind(R"({"client":"10.0.0.1","evidence_digest":")", 0), 0u);
  EXPECT_NE(
      ls[0].find(R"("prev":"0000000000000000000000000000000000000000000000000000000000000000")"),
      std::string::npos);
  EXPECT_NE(ls[2].find(R"("outcome":"denied")"), std::string::npos);
  auto writer = Writer::open(path_);
  ASSERT_TRUE(writer) << writer.error().message();
  EXPECT_EQ((*writer)->head().records, 4u);
  EXPECT_EQ((*writer)->head().digest, v.last_digest);
  ASSERT_TRUE(
      (*writer)->append(Record{1760000100, "c", "tdx", "m", "e", "p", "", "attested", "ok"}));
  EXPECT_EQ(check().records, 5u);
  EXPECT_TRUE(check().intact());
}

// A reason quoting a client's bytes that are not UTF-8 is recorded with U+FFFD in their place,
// never refused, and the chain stays intact.
TEST_F(AuditLog, TextThatIsNotUtf8IsRecordedWithReplacementCharacters) {
  auto writer = Writer::open(path_);
  ASSERT_TRUE(writer) << writer.error().message();
  ASSERT_TRUE((*writer)->append(Record{1760000100, "10.0.0.9\xff", "snp", "", "", "", "", "denied",
                                       "body: invalid literal; last read: '\xfe'"}));
  const Verification v = check();
  EXPECT_TRUE(v.intact()) << v.problem;
  EXPECT_EQ(v.records, 5u);
  const std::string last = lines().back();
  EXPECT_NE(last.find("\"client\":\"10.0.0.9\xef\xbf\xbd\""), std::string::npos) << last;
  EXPECT_NE(last.find("last read: '\xef\xbf\xbd'"), std::string::npos) << last;
}

TEST_F(AuditLog, AChangedFieldIsNamed) {
  auto ls = lines();
  const auto at = ls[1].find("10.0.0.2");
  ls[1].replace(at, 8, "10.0.0.9");
  write_lines(ls);
  const Verification v = check();
  ASSERT_FALSE(v.intact());
  EXPECT_EQ(v.first_broken, 2u);
  EXPECT_EQ(v.problem.rfind("record 2: its SHA-256 ", 0), 0u) << v.problem;
  EXPECT_NE(v.problem.find("that record 3 carries (the record was changed)"), std::string::npos);
  // A writer refuses to extend a broken chain.
  auto writer = Writer::open(path_);
  ASSERT_FALSE(writer);
  EXPECT_NE(writer.error().message().find("is not intact: record 2: "), std::string::npos);
}

TEST_F(AuditLog, AChangedLastRecordDiffersFromTheHead) {
  auto ls = lines();
  const auto at = ls[3].find("released");
  ls[3].replace(at, 8, "denied!!");
  write_lines(ls);
  const Verification v = check();
  EXPECT_EQ(v.first_broken, 4u);
  EXPECT_NE(v.problem.find("differs from the head's"), std::string::npos) << v.problem;
}

TEST_F(AuditLog, ADeletedRecordIsNamed) {
  auto ls = lines();
  ls.erase(ls.begin() + 1);
  write_lines(ls);
  const Verification v = check();
  EXPECT_EQ(v.first_broken, 2u);
  EXPECT_EQ(v.problem, "record 2: seq is 3, expected 2 (records deleted or reordered)");
}

TEST_F(AuditLog, ReorderedRecordsAreNamed) {
  auto ls = lines();
  std::swap(ls[2], ls[3]);
  write_lines(ls);
  const Verification v = check();
  EXPECT_EQ(v.first_broken, 3u);
  EXPECT_EQ(v.problem, "record 3: seq is 4, expected 3 (records deleted or reordered)");
}

TEST_F(AuditLog, ATruncatedTailIsDetected) {
  auto ls = lines();
  ls.pop_back();
  write_lines(ls);
  const Verification v = check();
  EXPECT_EQ(v.first_broken, 4u);
  EXPECT_EQ(v.problem,
            "record 4: missing: the head names 4 records, the log ends after 3 (truncated)");
  auto cut = lines();
  cut.back().resize(cut.back().size() / 2);
  write_lines(cut, false);
  const Verification partial = check();
  EXPECT_EQ(partial.first_broken, 3u);
  EXPECT_EQ(partial.problem, "record 3: truncated (the last line has no newline)");
}

TEST_F(AuditLog, AnEditedButChainedLineIsNotCanonical) {
  auto ls = lines();
  ls[0].insert(1, " ");
  write_lines(ls);
  const Verification v = check();
  EXPECT_EQ(v.first_broken, 1u);
  EXPECT_EQ(v.problem,
            "record 1: not in canonical form or carries unknown members (the line was edited)");
}

}  // namespace
}  // namespace cloister::service::audit
