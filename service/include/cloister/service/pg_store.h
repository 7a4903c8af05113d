// The PostgreSQL store (store.h) for several replicas sharing one database. Every replica opens
// the same database; the first creates the schema (under an advisory lock, so replicas starting
// together do not race), the rest find it. Nonces are consumed with INSERT … ON CONFLICT DO
// NOTHING, so exactly one replica wins a nonce; audit records are appended under a
// transaction-scoped advisory lock, so concurrent replicas extend one chain in one order.
//
// The store keeps a small pool of connections (one per concurrent caller, up to `connections`);
// a connection the server dropped (restart, failover) is reset and the statement retried once
// when it was not inside a transaction, so a database restart costs callers one error at most.
//
// No call waits without bound on another replica or the database: `wait` is the longest a call
// waits for a lock another session holds (lock_timeout, as when a stalled replica holds the audit
// chain's lock) and for a connection from the pool; each statement may run for 3 × `wait`
// (statement_timeout), a session idle inside a transaction is ended by the server after 3 ×
// `wait` (idle_in_transaction_session_timeout), and connecting gives up after 10 s with TCP
// keepalives after 30 s idle — defaults that a conninfo's own connect_timeout or keepalives_*
// override. Such a call fails with ErrorCode::kUnavailable. Transactions run at READ COMMITTED
// whatever the role's default isolation, so an audit append reads the head after its lock.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "cloister/common/result.h"
#include "cloister/service/store.h"

namespace cloister::service {

// `conninfo`: a libpq connection string or URI ("postgresql://user@host:5432/db").
Result<std::unique_ptr<Store>> open_postgres_store(
    const std::string& conninfo, std::size_t connections = 8,
    std::chrono::milliseconds wait = std::chrono::seconds(10));

}  // namespace cloister::service
