#include <sqlite3.h>

#include <mutex>
#include <string_view>
#include <unordered_map>

#include "cloister/common/hex.h"
#include "cloister/common/sha.h"
#include "cloister/service/store.h"

namespace cloister::service {
namespace {

constexpr int kSchemaVersion = 1;

const char* const kSchema = R"sql(
CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_at);
CREATE TABLE IF NOT EXISTS policies (id TEXT PRIMARY KEY, document TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (path TEXT PRIMARY KEY, sealed BLOB NOT NULL,
                                      policy TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, line TEXT NOT NULL,
                                  digest TEXT NOT NULL);
)sql";

Error db_error(sqlite3* db, const std::string& what) {
  return Error(ErrorCode::kUnavailable,
               "SQLite store: " + what + ": " + (db ? sqlite3_errmsg(db) : "no database"));
}

// The store's prepared statements, each SQL text prepared once on first use and kept until
// the store closes. Used only under the store's mutex. The cache keys view the SQL text, so it
// must outlive the store: every caller passes a string literal.
class StatementCache {
 public:
  explicit StatementCache(sqlite3* db) : db_(db) {}
  ~StatementCache() { finalize(); }
  StatementCache(const StatementCache&) = delete;
  StatementCache& operator=(const StatementCache&) = delete;

  void finalize() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    cache_.clear();
  }

  // The statement for `sql`, or null when it does not prepare.
  sqlite3_stmt* get(const char* sql) {
    auto it = cache_.find(sql);
    if (it != cache_.end()) return it->second;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return nullptr;
    }
    return cache_.emplace(sql, stmt).first->second;
  }

 private:
  sqlite3* db_;
  std::unordered_map<std::string_view, sqlite3_stmt*> cache_;
};

// One use of a cached statement: bound, stepped, then reset and its bindings cleared on scope
// exit, so that it holds no read transaction open and no bound data between uses.
class Statement {
 public:
  Statement(StatementCache& cache, const char* sql) : stmt_(cache.get(sql)) {}
  ~Statement() {
    if (stmt_ == nullptr) return;
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool ok() const { return stmt_ != nullptr; }
  void bind(int index, const std::string& text) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  void bind(int index, std::int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
  void bind(int index, ByteView blob) {
    sqlite3_bind_blob(stmt_, index, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(stmt_); }
  std::string text(int column) const {
    const auto* p = sqlite3_column_text(stmt_, column);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)))
             : std::string();
  }
  Bytes blob(int column) const {
    const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, column));
    return p ? Bytes(p, p + sqlite3_column_bytes(stmt_, column)) : Bytes();
  }
  std::int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(sqlite3* db) : db_(db), statements_(db) {}
  ~SqliteStore() override {
    statements_.finalize();  // sqlite3_close refuses a connection with live statements
    sqlite3_close(db_);
  }

  Status init() {
    std::lock_guard lock(mutex_);
    CLOISTER_CHECK_OK(exec("PRAGMA journal_mode=WAL"));
    CLOISTER_CHECK_OK(exec("PRAGMA synchronous=NORMAL"));
    CLOISTER_CHECK_OK(exec(kSchema));
    Statement version(statements_, "PRAGMA user_version");
    if (!version.ok() || version.step() != SQLITE_ROW) return db_error(db_, "reading user_version");
    const auto found = version.integer(0);
    if (found == 0) return exec("PRAGMA user_version=" + std::to_string(kSchemaVersion));
    if (found != kSchemaVersion) {
      return Error(ErrorCode::kFailedPrecondition,
                   "SQLite store: schema version: expected " + std::to_string(kSchemaVersion) +
                       ", found " + std::to_string(found) + " (a newer cloister-attestd wrote it)");
    }
    return {};
  }

  Result<bool> consume_nonce(const std::string& nonce, UnixTime expires_at, UnixTime now) override {
    std::lock_guard lock(mutex_);
    {
      Statement purge(statements_, "DELETE FROM nonces WHERE expires_at < ?1");
      if (!purge.ok()) return db_error(db_, "preparing the nonce purge");
      purge.bind(1, static_cast<std::int64_t>(now));
      if (purge.step() != SQLITE_DONE) return db_error(db_, "purging expired nonces");
    }
    Statement insert(statements_,
                     "INSERT OR IGNORE INTO nonces (nonce, expires_at) VALUES (?1, ?2)");
    if (!insert.ok()) return db_error(db_, "preparing the nonce insert");
    insert.bind(1, nonce);
    insert.bind(2, static_cast<std::int64_t>(expires_at));
    if (insert.step() != SQLITE_DONE) return db_error(db_, "consuming a nonce");
    return sqlite3_changes(db_) == 1;
  }

  Result<std::string> claim_setting(const std::string& name, const std::string& value) override {
    std::lock_guard lock(mutex_);
    {
      Statement insert(statements_, "INSERT OR IGNORE INTO settings (name, value) VALUES (?1, ?2)");
      if (!insert.ok()) return db_error(db_, "preparing the setting insert");
      insert.bind(1, name);
      insert.bind(2, value);
      if (insert.step() != SQLITE_DONE) return db_error(db_, "storing setting " + name);
    }
    Statement q(statements_, "SELECT value FROM settings WHERE name = ?1");
    if (!q.ok()) return db_error(db_, "preparing the setting lookup");
    q.bind(1, name);
    if (q.step() != SQLITE_ROW) return db_error(db_, "reading setting " + name);
    return q.text(0);
  }

  Status put_policy(const std::string& id, const std::string& document) override {
    return upsert(
        "INSERT INTO policies (id, document) VALUES (?1, ?2) "
        "ON CONFLICT (id) DO UPDATE SET document = excluded.document",
        id, document, std::nullopt, "storing policy " + id);
  }
  Result<std::string> get_policy(const std::string& id) override {
    std::lock_guard lock(mutex_);
    Statement q(statements_, "SELECT document FROM policies WHERE id = ?1");
    if (!q.ok()) return db_error(db_, "preparing the policy lookup");
    q.bind(1, id);
    const int rc = q.step();
    if (rc == SQLITE_DONE) return Error(ErrorCode::kNotFound, "no policy with id '" + id + "'");
    if (rc != SQLITE_ROW) return db_error(db_, "reading policy " + id);
    return q.text(0);
  }
  Result<std::vector<std::string>> list_policies() override {
    return list("SELECT id FROM policies ORDER BY id", "listing policies");
  }
  Status delete_policy(const std::string& id) override {
    return remove("DELETE FROM policies WHERE id = ?1", id, "policy");
  }

  Status put_resource(const std::string& path, const StoredResource& resource) override {
    return upsert(
        "INSERT INTO resources (path, policy, sealed) VALUES (?1, ?2, ?3) "
        "ON CONFLICT (path) DO UPDATE SET sealed = excluded.sealed, "
        "policy = excluded.policy",
        path, resource.policy, ByteView(resource.sealed), "storing resource " + path);
  }
  Result<StoredResource> get_resource(const std::string& path) override {
    std::lock_guard lock(mutex_);
    Statement q(statements_, "SELECT sealed, policy FROM resources WHERE path = ?1");
    if (!q.ok()) return db_error(db_, "preparing the resource lookup");
    q.bind(1, path);
    const int rc = q.step();
    if (rc == SQLITE_DONE) return Error(ErrorCode::kNotFound, "no resource at '" + path + "'");
    if (rc != SQLITE_ROW) return db_error(db_, "reading resource " + path);
    return StoredResource{q.blob(0), q.text(1)};
  }
  Result<std::vector<std::string>> list_resources() override {
    return list("SELECT path FROM resources ORDER BY path", "listing resources");
  }
  Status delete_resource(const std::string& path) override {
    return remove("DELETE FROM resources WHERE path = ?1", path, "resource");
  }

  Result<audit::Head> append_audit(const audit::Record& record) override {
    std::lock_guard lock(mutex_);
    CLOISTER_CHECK_OK(step_once("BEGIN IMMEDIATE", "beginning an audit append"));
    auto head = append_locked(record);
    if (!head) {
      (void)step_once("ROLLBACK", "rolling back an audit append");
      return head.error();
    }
    if (auto committed = step_once("COMMIT", "committing an audit append"); !committed) {
      (void)step_once("ROLLBACK", "rolling back an audit append");
      return committed.error();
    }
    return head;
  }

  Result<AuditExport> export_audit() override {
    std::lock_guard lock(mutex_);
    Statement q(statements_, "SELECT line, digest FROM audit ORDER BY seq");
    if (!q.ok()) return db_error(db_, "preparing the audit export");
    AuditExport out;
    out.head.digest = std::string(64, '0');
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
      out.log += q.text(0);
      out.log += '\n';
      out.head.digest = q.text(1);
      ++out.head.records;
    }
    if (rc != SQLITE_DONE) return db_error(db_, "exporting the audit log");
    return out;
  }

 private:
  Status exec(const std::string& sql) {
    char* message = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
      Error e(ErrorCode::kUnavailable,
              "SQLite store: " + sql.substr(0, sql.find(' ')) + ": " + (message ? message : "?"));
      sqlite3_free(message);
      return e;
    }
    return {};
  }

  // A cached statement without parameters or rows (a transaction's BEGIN, COMMIT, ROLLBACK).
  Status step_once(const char* sql, const std::string& what) {
    Statement q(statements_, sql);
    if (!q.ok()) return db_error(db_, "preparing " + what);
    if (q.step() != SQLITE_DONE) return db_error(db_, what);
    return {};
  }

  Status upsert(const char* sql, const std::string& key, const std::string& text,
                std::optional<ByteView> blob, const std::string& what) {
    std::lock_guard lock(mutex_);
    Statement q(statements_, sql);
    if (!q.ok()) return db_error(db_, "preparing " + what);
    q.bind(1, key);
    q.bind(2, text);
    if (blob) q.bind(3, *blob);
    if (q.step() != SQLITE_DONE) return db_error(db_, what);
    return {};
  }

  Status remove(const char* sql, const std::string& key, const std::string& kind) {
    std::lock_guard lock(mutex_);
    Statement q(statements_, sql);
    if (!q.ok()) return db_error(db_, "preparing the " + kind + " delete");
    q.bind(1, key);
    if (q.step() != SQLITE_DONE) return db_error(db_, "deleting " + kind + " " + key);
    if (sqlite3_changes(db_) == 0)
      return Error(ErrorCode::kNotFound, "no " + kind + " '" + key + "'");
    return {};
  }

  Result<std::vector<std::string>> list(const char* sql, const std::string& what) {
    std::lock_guard lock(mutex_);
    Statement q(statements_, sql);
    if (!q.ok()) return db_error(db_, "preparing " + what);
    std::vector<std::string> out;
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) out.push_back(q.text(0));
    if (rc != SQLITE_DONE) return db_error(db_, what);
    return out;
  }

  Result<audit::Head> append_locked(const audit::Record& record) {
    audit::Head head{0, std::string(64, '0')};
    {
      Statement last(statements_, "SELECT seq, digest FROM audit ORDER BY seq DESC LIMIT 1");
      if (!last.ok()) return db_error(db_, "preparing the audit head lookup");
      const int rc = last.step();
      if (rc == SQLITE_ROW) {
        head.records = static_cast<std::size_t>(last.integer(0));
        head.digest = last.text(1);
      } else if (rc != SQLITE_DONE) {
        return db_error(db_, "reading the audit head");
      }
    }
    CLOISTER_TRY(const std::string line,
                 audit::canonical_record(record, head.records + 1, head.digest));
    const std::string digest = to_hex(sha256(as_bytes(line)));
    Statement insert(statements_, "INSERT INTO audit (seq, line, digest) VALUES (?1, ?2, ?3)");
    if (!insert.ok()) return db_error(db_, "preparing the audit append");
    insert.bind(1, static_cast<std::int64_t>(head.records + 1));
    insert.bind(2, line);
    insert.bind(3, digest);
    if (insert.step() != SQLITE_DONE) return db_error(db_, "appending an audit record");
    return audit::Head{head.records + 1, digest};
  }

  sqlite3* db_;
  StatementCache statements_;
  std::mutex mutex_;
};

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const std::filesystem::path& path) {
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Error e = db_error(db, "opening " + path.string());
    sqlite3_close(db);
    return e;
  }
  sqlite3_busy_timeout(db, 5000);
  auto store = std::make_unique<SqliteStore>(db);
  if (auto ready = store->init(); !ready) return ready.error();
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace cloister::service
