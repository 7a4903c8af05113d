// The embedded SQLite store: single-use nonces, reference values, sealed resources and the
// audit chain, across reopening (what a restart or kill -9 leaves).
#include "cloister/service/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

namespace cloister::service {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cloister-store-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::unique_ptr<Store> open() {
    auto store = open_sqlite_store(dir_ / "state.db");
    EXPECT_TRUE(store) << store.error().message();
    return std::move(store).value();
  }
  fs::path dir_;
};

audit::Record record(std::string outcome, std::string resource) {
  return {1'700'000'000,        "127.0.0.1",          "snp",
          std::string(96, 'a'), std::string(64, 'b'), std::string(64, 'c'),
          std::move(resource),  std::move(outcome),   "ok"};
}

TEST_F(SqliteStoreTest, ANonceIsConsumedOnceAndForgottenAfterItExpires) {
  auto store = open();
  EXPECT_TRUE(store->consume_nonce("n1", 1000, 900).value());
  EXPECT_FALSE(store->consume_nonce("n1", 1000, 950).value());
  // Past its expiry the record is purged; a session carrying it has expired by then, so a
  // second use is refused by the session check, not the store.
  EXPECT_TRUE(store->consume_nonce("n2", 2000, 1001).value());
  EXPECT_TRUE(store->consume_nonce("n1", 3000, 1001).value());
}

TEST_F(SqliteStoreTest, ConcurrentConsumersOfOneNonceHaveExactlyOneWinner) {
  auto store = open();
  std::atomic<int> winners{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (store->consume_nonce("shared", 5000, 100).value()) ++winners;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(winners.load(), 1);
}

TEST_F(SqliteStoreTest, PoliciesAndResourcesSurviveReopening) {
  {
    auto store = open();
    ASSERT_TRUE(store->put_policy("default", R"({"version":1})"));
    ASSERT_TRUE(store->put_policy("default", R"({"version":1,"snp":{}})"));
    ASSERT_TRUE(store->put_resource("repo/key/one", {Bytes{1, 2, 3}, R"({"tees":["snp"]})"}));
    ASSERT_TRUE(store->put_resource("repo/key/two", {Bytes{4}, "{}"}));
    EXPECT_TRUE(store->consume_nonce("kept", 9000, 100).value());
  }
  auto store = open();
  EXPECT_EQ(store->get_policy("default").value(), R"({"version":1,"snp":{}})");
  EXPECT_THAT(store->list_policies().value(), ElementsAre("default"));
  EXPECT_EQ(store->get_resource("repo/key/one").value(),
            (StoredResource{Bytes{1, 2, 3}, R"({"tees":["snp"]})"}));
  EXPECT_THAT(store->list_resources().value(), ElementsAre("repo/key/one", "repo/key/two"));
  EXPECT_FALSE(store->consume_nonce("kept", 9000, 200).value());

  ASSERT_TRUE(store->delete_resource("repo/key/two"));
  const auto gone = store->get_resource("repo/key/two");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(gone.error().message(), "no resource at 'repo/key/two'");
  EXPECT_EQ(store->delete_policy("absent").error().code(), ErrorCode::kNotFound);
}

TEST_F(SqliteStoreTest, TheAuditChainVerifiesAndExposesTampering) {
  {
    auto store = open();
    EXPECT_EQ(store->append_audit(record("attested", "")).value().records, 1u);
    EXPECT_EQ(store->append_audit(record("released", "repo/key/one")).value().records, 2u);
    EXPECT_EQ(store->append_audit(record("denied", "repo/key/two")).value().records, 3u);
  }
  auto store = open();
  auto exported = store->export_audit().value();
  EXPECT_EQ(exported.head.records, 3u);
  const auto ok = audit::verify_text(exported.log, exported.head);
  EXPECT_TRUE(ok.intact()) << ok.problem;
  EXPECT_EQ(ok.records, 3u);
  EXPECT_EQ(ok.last_digest, exported.head.digest);

  // Someone with write access to the database rewrites record 2's outcome.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "state.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "UPDATE audit SET line = replace(line, '\"released\"', '\"denied\"') "
                         "WHERE seq = 2",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  const auto tampered = audit::verify_text(store->export_audit().value().log, exported.head);
  ASSERT_FALSE(tampered.intact());
  EXPECT_EQ(*tampered.first_broken, 2u) << tampered.problem;
  EXPECT_THAT(tampered.problem, HasSubstr("record 2: its SHA-256"));
  EXPECT_THAT(tampered.problem, HasSubstr("that record 3 carries (the record was changed)"));
}

TEST_F(SqliteStoreTest, ADatabaseFromANewerSchemaIsRefused) {
  open();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "state.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=7", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto store = open_sqlite_store(dir_ / "state.db");
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(store.error().message(), HasSubstr("schema version: expected 1, found 7"));
}

}  // namespace
}  // namespace cloister::service
