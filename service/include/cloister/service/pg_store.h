// The PostgreSQL store (store.h) for several replicas sharing one database. Every replica opens
// the same database; the first creates the schema (under an advisory lock, so replicas starting
// together do not race), the rest find it. Nonces are consumed with INSERT … ON CONFLICT DO
// NOTHING, so exactly one replica wins a nonce; audit records are appended under a
// transaction-scoped advisory lock, so concurrent replicas extend one chain in one order.
//
// The store keeps a small pool of connections (one per concurrent caller, up to `connections`);
// a connection the server dropped (restart, failover) is reset and the statement retried once
// when it was not inside a transaction, so a database restart costs callers one error at most.
#pragma once

#include <memory>
#include <string>

#include "cloister/common/result.h"
#include "cloister/service/store.h"

namespace cloister::service {

// `conninfo`: a libpq connection string or URI ("postgresql://user@host:5432/db").
Result<std::unique_ptr<Store>> open_postgres_store(const std::string& conninfo,
                                                   std::size_t connections = 8);

}  // namespace cloister::service
