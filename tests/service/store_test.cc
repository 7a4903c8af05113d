// The store contract, run against both backends: the embedded SQLite store and a real
// PostgreSQL server (Debian's, started on loopback by the fixture): single-use nonces, reference
// values, sealed resources and the audit chain, across reopening (what a restart or kill -9
// leaves) and across two store instances at once (two replicas). Then what only SQLite has: its
// file, which a test can tamper with directly.
#include "cloister/service/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "cloister/service/pg_store.h"
#include "support/services.h"

namespace cloister::service {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Opens stores of one backend on one database; a second open() is a second replica.
class StoreContractTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cloister-store-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    if (GetParam() == "postgres") {
      auto pg = cloister::testing::PostgresServer::start();
      if (!pg) GTEST_SKIP() << pg.error().message();
      pg_ = std::move(*pg);
      ASSERT_TRUE(pg_->create_database("attestd"));
    }
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::unique_ptr<Store> open() {
    auto store = GetParam() == "postgres" ? open_postgres_store(pg_->conninfo("attestd"))
                                          : open_sqlite_store(dir_ / "state.db");
    EXPECT_TRUE(store) << store.error().message();
    return std::move(store).value();
  }
  fs::path dir_;
  std::unique_ptr<cloister::testing::PostgresServer> pg_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreContractTest, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return param_info.param;
                         });

audit::Record record(std::string outcome, std::string resource) {
  return {1'700'000'000,        "127.0.0.1",          "snp",
          std::string(96, 'a'), std::string(64, 'b'), std::string(64, 'c'),
          std::move(resource),  std::move(outcome),   "ok"};
}

TEST_P(StoreContractTest, ASettingIsClaimedOnceAndEveryReplicaReadsTheFirstValue) {
  auto first = open();
  auto second = open();
  EXPECT_EQ(first->claim_setting("kek_check", "aa").value(), "aa");
  EXPECT_EQ(second->claim_setting("kek_check", "bb").value(), "aa");
  EXPECT_EQ(second->claim_setting("token_kid", "k2").value(), "k2");
  EXPECT_EQ(first->claim_setting("token_kid", "k1").value(), "k2");
}

TEST_P(StoreContractTest, ANonceIsConsumedOnceAndForgottenAfterItExpires) {
  auto store = open();
  EXPECT_TRUE(store->consume_nonce("n1", 1000, 900).value());
  EXPECT_FALSE(store->consume_nonce("n1", 1000, 950).value());
  // Past its expiry the record is purged; a session carrying it has expired by then, so a
  // second use is refused by the session check, not the store.
  EXPECT_TRUE(store->consume_nonce("n2", 2000, 1001).value());
  EXPECT_TRUE(store->consume_nonce("n1", 3000, 1001).value());
}

TEST_P(StoreContractTest, ConcurrentConsumersOfOneNonceHaveExactlyOneWinner) {
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

TEST_P(StoreContractTest, PoliciesAndResourcesSurviveReopening) {
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

TEST_P(StoreContractTest, TheAuditChainVerifiesAcrossReopening) {
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
  EXPECT_THAT(exported.log, HasSubstr("\"outcome\":\"released\""));
}

TEST_P(StoreContractTest, TwoReplicasAppendingAtOnceFormOneChain) {
  auto first = open();
  auto second = open();
  std::vector<std::thread> threads;
  for (Store* s : {first.get(), second.get()}) {
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([s] {
        for (int i = 0; i < 25; ++i) ASSERT_TRUE(s->append_audit(record("attested", "")));
      });
    }
  }
  for (auto& t : threads) t.join();
  const auto exported = second->export_audit().value();
  EXPECT_EQ(exported.head.records, 100u);
  const auto check = audit::verify_text(exported.log, exported.head);
  EXPECT_TRUE(check.intact()) << check.problem;
  EXPECT_EQ(check.records, 100u);
  // And a nonce consumed through one replica is spent for the other.
  EXPECT_TRUE(first->consume_nonce("shared", 5000, 100).value());
  EXPECT_FALSE(second->consume_nonce("shared", 5000, 100).value());
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cloister-sqlite-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::unique_ptr<Store> open() { return open_sqlite_store(dir_ / "state.db").value(); }
  fs::path dir_;
};

TEST_F(SqliteStoreTest, AChangedAuditRecordBreaksTheChain) {
  auto store = open();
  ASSERT_TRUE(store->append_audit(record("attested", "")));
  ASSERT_TRUE(store->append_audit(record("released", "repo/key/one")));
  ASSERT_TRUE(store->append_audit(record("denied", "repo/key/two")));
  const auto exported = store->export_audit().value();
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

// A replica that stalls (SIGSTOP, a paused VM, a cut network) while it holds the audit chain's
// lock: the other replicas' appends fail after the store's wait, naming the lock timeout, instead
// of hanging until TCP gives up; once the lock is free they append again.
TEST(PgStoreTest, AStalledHolderOfTheAuditLockCostsOthersTheWaitNotAHang) {
  auto pg = cloister::testing::PostgresServer::start();
  if (!pg) GTEST_SKIP() << pg.error().message();
  ASSERT_TRUE((*pg)->create_database("attestd"));
  auto store = open_postgres_store((*pg)->conninfo("attestd"), 2, std::chrono::milliseconds(300));
  ASSERT_TRUE(store) << store.error().message();
  ASSERT_TRUE((*store)->append_audit(record("released", "a/b/c")));

  PGconn* stalled = PQconnectdb((*pg)->conninfo("attestd").c_str());
  ASSERT_EQ(PQstatus(stalled), CONNECTION_OK) << PQerrorMessage(stalled);
  for (const char* sql : {"BEGIN", "SELECT pg_advisory_xact_lock(427021267970)"}) {
    PGresult* r = PQexec(stalled, sql);
    EXPECT_TRUE(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)
        << sql << ": " << PQresultErrorMessage(r);
    PQclear(r);
  }
  auto blocked = (*store)->append_audit(record("released", "a/b/d"));
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(blocked.error().message(), HasSubstr("locking the audit chain"));
  EXPECT_THAT(blocked.error().message(), HasSubstr("lock timeout"));

  PQclear(PQexec(stalled, "COMMIT"));
  PQfinish(stalled);
  auto after = (*store)->append_audit(record("released", "a/b/e"));
  ASSERT_TRUE(after) << after.error().message();
  EXPECT_EQ(after->records, 2u);
  EXPECT_TRUE(audit::verify_text((*store)->export_audit().value().log, std::nullopt).intact());
}

TEST(PgStoreTest, AWaitOfZeroIsRefused) {
  auto store = open_postgres_store("postgresql://nowhere", 1, std::chrono::milliseconds(0));
  ASSERT_FALSE(store);
  EXPECT_THAT(store.error().message(),
              HasSubstr("PostgreSQL store: wait: expected a positive duration, found 0 ms"));
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
