#include "cloister/service/pg_store.h"

#include <libpq-fe.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <vector>

#include "cloister/common/hex.h"
#include "cloister/common/sha.h"

namespace cloister::service {
namespace {

constexpr int kSchemaVersion = 1;
// pg_advisory_lock keys: "clst" + 1 (schema), + 2 (audit chain).
constexpr long long kSchemaLock = 0x636c737401;
constexpr long long kAuditLock = 0x636c737402;

const char* const kSchema = R"sql(
CREATE TABLE IF NOT EXISTS cloister_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_at);
CREATE TABLE IF NOT EXISTS policies (id TEXT PRIMARY KEY, document TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (path TEXT PRIMARY KEY, sealed BYTEA NOT NULL,
                                      policy TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (seq BIGINT PRIMARY KEY, line TEXT NOT NULL,
                                  digest TEXT NOT NULL);
)sql";

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

// A statement parameter: text, or bytes sent in binary format (bytea).
struct Param {
  std::string value;
  bool binary = false;
};

std::string first_line(const char* message) {
  std::string m = message ? message : "";
  if (auto nl = m.find('\n'); nl != std::string::npos) m.resize(nl);
  return m;
}

class PgStore final : public Store {
 public:
  PgStore(std::string conninfo, std::size_t connections, std::chrono::milliseconds wait)
      : conninfo_(std::move(conninfo)), max_connections_(connections), wait_(wait) {}
  ~PgStore() override {
    for (PGconn* c : idle_) PQfinish(c);
  }

  Status init() {
    CLOISTER_TRY(Lease lease, acquire());
    PGconn* c = lease.conn;
    CLOISTER_CHECK_OK(command(c, "SELECT pg_advisory_lock(" + std::to_string(kSchemaLock) + ")",
                              "locking the schema"));
    Status done = create_schema(c);
    const Status unlocked =
        command(c, "SELECT pg_advisory_unlock(" + std::to_string(kSchemaLock) + ")",
                "unlocking the schema");
    if (!done) return done;
    return unlocked;
  }

  Result<bool> consume_nonce(const std::string& nonce, UnixTime expires_at, UnixTime now) override {
    CLOISTER_TRY(Lease lease, acquire());
    CLOISTER_TRY(PgResult purged, run(lease, "DELETE FROM nonces WHERE expires_at < $1::bigint",
                                      {{std::to_string(now)}}, "purging expired nonces"));
    CLOISTER_TRY(PgResult inserted,
                 run(lease,
                     "INSERT INTO nonces (nonce, expires_at) VALUES ($1, $2::bigint) "
                     "ON CONFLICT (nonce) DO NOTHING",
                     {{nonce}, {std::to_string(expires_at)}}, "consuming a nonce"));
    return std::string(PQcmdTuples(inserted.get())) == "1";
  }

  Result<std::string> claim_setting(const std::string& name, const std::string& proposed) override {
    CLOISTER_TRY(Lease lease, acquire());
    CLOISTER_TRY(PgResult inserted,
                 run(lease,
                     "INSERT INTO cloister_meta (key, value) VALUES ($1, $2) "
                     "ON CONFLICT (key) DO NOTHING",
                     {{"setting:" + name}, {proposed}}, "storing setting " + name));
    CLOISTER_TRY(PgResult r, run(lease, "SELECT value FROM cloister_meta WHERE key = $1",
                                 {{"setting:" + name}}, "reading setting " + name));
    if (PQntuples(r.get()) != 1) {
      return Error(ErrorCode::kUnavailable, "PostgreSQL store: setting " + name + " vanished");
    }
    return value(r, 0, 0);
  }

  Status put_policy(const std::string& id, const std::string& document) override {
    CLOISTER_TRY(Lease lease, acquire());
    CLOISTER_TRY(PgResult r, run(lease,
                                 "INSERT INTO policies (id, document) VALUES ($1, $2) "
                                 "ON CONFLICT (id) DO UPDATE SET document = excluded.document",
                                 {{id}, {document}}, "storing policy " + id));
    return {};
  }
  Result<std::string> get_policy(const std::string& id) override {
    CLOISTER_TRY(Lease lease, acquire());
    CLOISTER_TRY(PgResult r, run(lease, "SELECT document FROM policies WHERE id = $1", {{id}},
                                 "reading policy " + id));
    if (PQntuples(r.get()) == 0) {
      return Error(ErrorCode::kNotFound, "no policy with id '" + id + "'");
    }
    return value(r, 0, 0);
  }
  Result<std::vector<std::string>> list_policies() override {
    return list("SELECT id FROM policies ORDER BY id", "listing policies");
  }
  Status delete_policy(const std::string& id) override {
    return remove("DELETE FROM policies WHERE id = $1", id, "policy");
  }

  Status put_resource(const std::string& path, const StoredResource& resource) override {
    CLOISTER_TRY(Lease lease, acquire());
    CLOISTER_TRY(PgResult r,
                 run(lease,
                     "INSERT INTO resources (path, policy, sealed) VALUES ($1, $2, $3) "
                     "ON CONFLICT (path) DO UPDATE SET sealed = excluded.sealed, "
                     "policy = excluded.policy",
                     {{path},
                      {resource.policy},
                      {std::string(resource.sealed.begin(), resource.sealed.end()), true}},
                     "storing resource " + path));
    return {};
  }
  Result<StoredResource> get_resource(const std::string& path) override {
    CLOISTER_TRY(Lease lease, acquire());
    CLOISTER_TRY(PgResult r, run(lease, "SELECT sealed, policy FROM resources WHERE path = $1",
                                 {{path}}, "reading resource " + path, /*binary_result=*/true));
    if (PQntuples(r.get()) == 0) {
      return Error(ErrorCode::kNotFound, "no resource at '" + path + "'");
    }
    const std::string sealed = value(r, 0, 0);
    return StoredResource{Bytes(sealed.begin(), sealed.end()), value(r, 0, 1)};
  }
  Result<std::vector<std::string>> list_resources() override {
    return list("SELECT path FROM resources ORDER BY path", "listing resources");
  }
  Status delete_resource(const std::string& path) override {
    return remove("DELETE FROM resources WHERE path = $1", path, "resource");
  }

  Result<audit::Head> append_audit(const audit::Record& record) override {
    CLOISTER_TRY(Lease lease, acquire());
    PGconn* c = lease.conn;
    CLOISTER_CHECK_OK(
        command(c, "BEGIN ISOLATION LEVEL READ COMMITTED", "starting an audit append"));
    auto head = append_in_transaction(c, record);
    if (!head) {
      (void)command(c, "ROLLBACK", "rolling back an audit append");
      return head.error();
    }
    if (auto committed = command(c, "COMMIT", "committing an audit append"); !committed)
      return committed.error();
    return head;
  }

  Result<AuditExport> export_audit() override {
    CLOISTER_TRY(Lease lease, acquire());
    CLOISTER_TRY(PgResult r, run(lease, "SELECT line, digest FROM audit ORDER BY seq", {},
                                 "exporting the audit log"));
    AuditExport out;
    out.head.digest = std::string(64, '0');
    const int rows = PQntuples(r.get());
    for (int i = 0; i < rows; ++i) {
      out.log += value(r, i, 0);
      out.log += '\n';
      out.head.digest = value(r, i, 1);
    }
    out.head.records = static_cast<std::size_t>(rows);
    return out;
  }

 private:
  // A connection taken from the pool, returned when destroyed (closed instead when broken).
  struct Lease {
    PgStore* store;
    PGconn* conn;
    Lease(PgStore* s, PGconn* c) : store(s), conn(c) {}
    Lease(Lease&& o) noexcept : store(o.store), conn(std::exchange(o.conn, nullptr)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (conn != nullptr) store->release(conn);
    }
  };

  Result<Lease> acquire() {
    std::unique_lock lock(mutex_);
    if (!available_.wait_for(lock, wait_,
                             [&] { return !idle_.empty() || open_ < max_connections_; })) {
      return Error(ErrorCode::kUnavailable,
                   "PostgreSQL store: all " + std::to_string(max_connections_) +
                       " connections stayed busy for " + std::to_string(wait_.count()) + " ms");
    }
    if (!idle_.empty()) {
      PGconn* c = idle_.back();
      idle_.pop_back();
      return Lease(this, c);
    }
    ++open_;
    lock.unlock();
    // Defaults first: the conninfo, expanded after them, overrides any it names.
    const char* const keywords[] = {"connect_timeout", "keepalives_idle", "dbname", nullptr};
    const char* const values[] = {"10", "30", conninfo_.c_str(), nullptr};
    PGconn* c = PQconnectdbParams(keywords, values, 1);
    std::optional<Error> failed;
    if (PQstatus(c) != CONNECTION_OK) {
      failed = Error(ErrorCode::kUnavailable,
                     "PostgreSQL store: connecting: " + first_line(PQerrorMessage(c)));
    } else {
      const long long ms = wait_.count();
      const std::string limits =
          "SET lock_timeout = " + std::to_string(ms) +
          "; SET statement_timeout = " + std::to_string(3 * ms) +
          "; SET idle_in_transaction_session_timeout = " + std::to_string(3 * ms);
      PgResult set(PQexec(c, limits.c_str()));
      if (PQresultStatus(set.get()) != PGRES_COMMAND_OK) {
        failed = pg_error(c, set.get(), "setting the session's timeouts");
      }
    }
    if (failed) {
      PQfinish(c);
      lock.lock();
      --open_;
      available_.notify_one();
      return *failed;
    }
    // CREATE … IF NOT EXISTS and the like send NOTICEs; they are not the operator's concern.
    PQsetNoticeProcessor(
        c, [](void*, const char*) {}, nullptr);
    return Lease(this, c);
  }

  void release(PGconn* c) {
    std::lock_guard lock(mutex_);
    if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) == PQTRANS_IDLE) {
      idle_.push_back(c);
    } else {
      PQfinish(c);
      --open_;
    }
    available_.notify_one();
  }

  static Error pg_error(PGconn* c, const PGresult* r, const std::string& what) {
    const char* message = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
    return Error(ErrorCode::kUnavailable, "PostgreSQL store: " + what + ": " + first_line(message));
  }

  static Result<PgResult> exec(PGconn* c, const std::string& sql, const std::vector<Param>& params,
                               const std::string& what, bool binary_result) {
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    for (const auto& p : params) {
      values.push_back(p.value.data());
      lengths.push_back(static_cast<int>(p.value.size()));
      formats.push_back(p.binary ? 1 : 0);
    }
    PgResult r(PQexecParams(c, sql.c_str(), static_cast<int>(params.size()), nullptr, values.data(),
                            lengths.data(), formats.data(), binary_result ? 1 : 0));
    const auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return pg_error(c, r.get(), what);
    return r;
  }

  // One statement outside a transaction; retried once on a fresh connection when the server
  // dropped this one (a restarted database).
  Result<PgResult> run(Lease& lease, const std::string& sql, const std::vector<Param>& params,
                       const std::string& what, bool binary_result = false) {
    auto r = exec(lease.conn, sql, params, what, binary_result);
    if (r || PQstatus(lease.conn) == CONNECTION_OK) return r;
    PQreset(lease.conn);
    if (PQstatus(lease.conn) != CONNECTION_OK) return r;
    return exec(lease.conn, sql, params, what, binary_result);
  }

  // SQL without parameters, possibly several statements (the schema).
  static Status command(PGconn* c, const std::string& sql, const std::string& what) {
    PgResult r(PQexec(c, sql.c_str()));
    const auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return pg_error(c, r.get(), what);
    return {};
  }

  static std::string value(const PgResult& r, int row, int column) {
    return std::string(PQgetvalue(r.get(), row, column),
                       static_cast<std::size_t>(PQgetlength(r.get(), row, column)));
  }

  Status create_schema(PGconn* c) {
    CLOISTER_CHECK_OK(command(c, kSchema, "creating the schema"));
    auto version = exec(c, "SELECT value FROM cloister_meta WHERE key = 'schema_version'", {},
                        "reading the schema version", false);
    if (!version) return version.error();
    if (PQntuples(version->get()) == 0) {
      return command(c,
                     "INSERT INTO cloister_meta (key, value) VALUES ('schema_version', '" +
                         std::to_string(kSchemaVersion) + "')",
                     "recording the schema version");
    }
    const std::string found = value(*version, 0, 0);
    if (found != std::to_string(kSchemaVersion)) {
      return Error(ErrorCode::kFailedPrecondition,
                   "PostgreSQL store: schema version: expected " + std::to_string(kSchemaVersion) +
                       ", found " + found + " (a newer cloister-attestd wrote it)");
    }
    return {};
  }

  Result<std::vector<std::string>> list(const std::string& sql, const std::string& what) {
    CLOISTER_TRY(Lease lease, acquire());
    CLOISTER_TRY(PgResult r, run(lease, sql, {}, what));
    std::vector<std::string> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) out.push_back(value(r, i, 0));
    return out;
  }

  Status remove(const std::string& sql, const std::string& key, const std::string& kind) {
    CLOISTER_TRY(Lease lease, acquire());
    CLOISTER_TRY(PgResult r, run(lease, sql, {{key}}, "deleting " + kind + " " + key));
    if (std::string(PQcmdTuples(r.get())) == "0") {
      return Error(ErrorCode::kNotFound, "no " + kind + " '" + key + "'");
    }
    return {};
  }

  Result<audit::Head> append_in_transaction(PGconn* c, const audit::Record& record) {
    CLOISTER_TRY(PgResult locked,
                 exec(c, "SELECT pg_advisory_xact_lock(" + std::to_string(kAuditLock) + ")", {},
                      "locking the audit chain", false));
    CLOISTER_TRY(PgResult last, exec(c, "SELECT seq, digest FROM audit ORDER BY seq DESC LIMIT 1",
                                     {}, "reading the audit head", false));
    audit::Head head{0, std::string(64, '0')};
    if (PQntuples(last.get()) == 1) {
      head.records = std::stoull(value(last, 0, 0));
      head.digest = value(last, 0, 1);
    }
    CLOISTER_TRY(const std::string line,
                 audit::canonical_record(record, head.records + 1, head.digest));
    const std::string digest = to_hex(sha256(as_bytes(line)));
    CLOISTER_TRY(PgResult inserted,
                 exec(c, "INSERT INTO audit (seq, line, digest) VALUES ($1::bigint, $2, $3)",
                      {{std::to_string(head.records + 1)}, {line}, {digest}},
                      "appending an audit record", false));
    return audit::Head{head.records + 1, digest};
  }

  std::string conninfo_;
  std::size_t max_connections_;
  std::chrono::milliseconds wait_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<PGconn*> idle_;
  std::size_t open_ = 0;
};

}  // namespace

Result<std::unique_ptr<Store>> open_postgres_store(const std::string& conninfo,
                                                   std::size_t connections,
                                                   std::chrono::milliseconds wait) {
  if (connections == 0) return Error("PostgreSQL store: connections: expected at least 1, found 0");
  if (wait.count() <= 0) {
    return Error("PostgreSQL store: wait: expected a positive duration, found " +
                 std::to_string(wait.count()) + " ms");
  }
  auto store = std::make_unique<PgStore>(conninfo, connections, wait);
  if (auto ready = store->init(); !ready) return ready.error();
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace cloister::service
