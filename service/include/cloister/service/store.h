// The attestation service's shared state, behind one interface so that one replica (SQLite in
// its state directory) and several replicas (one PostgreSQL database) run the same code:
//
// - nonces: single use. A challenge is signed and time-limited (any replica can check it
//   without the store); the store only remembers which nonces were consumed, until they expire.
// - reference values: the attestation policies (cloister-measure --policy-out documents) by id.
// - resources: secrets sealed under the key-encryption key (the store never sees plaintext),
//   each with the resource policy that a token must satisfy.
// - the audit log: hash-chained records (audit.h) appended in one transaction each, so that
//   replicas appending at once still form one chain.
//
// Every method is safe to call from several threads at once; a failure of the database is an
// Error with code kUnavailable, a missing item kNotFound.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"
#include "cloister/common/time.h"
#include "cloister/service/audit.h"

namespace cloister::service {

struct StoredResource {
  Bytes sealed;        // AES-256-GCM under the KEK: 12-byte IV ‖ ciphertext ‖ 16-byte tag
  std::string policy;  // the resource policy document (JSON text)
  bool operator==(const StoredResource&) const = default;
};

class Store {
 public:
  virtual ~Store() = default;

  // Records `nonce` as consumed until `expires_at`. True when this call consumed it, false when
  // it was consumed before (a replay). Forgets nonces whose expiry is before `now`.
  virtual Result<bool> consume_nonce(const std::string& nonce, UnixTime expires_at,
                                     UnixTime now) = 0;

  // Reference values (attestation policies), by id ("default", a tenant's name, …).
  virtual Status put_policy(const std::string& id, const std::string& document) = 0;
  virtual Result<std::string> get_policy(const std::string& id) = 0;  // kNotFound when absent
  virtual Result<std::vector<std::string>> list_policies() = 0;
  virtual Status delete_policy(const std::string& id) = 0;  // kNotFound when absent

  // Resources, by "repo/type/tag".
  virtual Status put_resource(const std::string& path, const StoredResource& resource) = 0;
  virtual Result<StoredResource> get_resource(const std::string& path) = 0;  // kNotFound
  virtual Result<std::vector<std::string>> list_resources() = 0;
  virtual Status delete_resource(const std::string& path) = 0;  // kNotFound when absent

  // Appends `record` to the audit chain (seq and prev taken from the stored head in the same
  // transaction) and returns the new head.
  virtual Result<audit::Head> append_audit(const audit::Record& record) = 0;
  // The log as audit::verify_text() reads it (canonical lines, each ending in "\n") and the
  // head stored beside it.
  struct AuditExport {
    std::string log;
    audit::Head head;
  };
  virtual Result<AuditExport> export_audit() = 0;

  // A fact every process sharing the store must agree on (the service stores a check value of
  // its keys, so that a replica started with other keys is refused before it seals a resource
  // the others cannot open): stores `value` under `name` unless a value is stored there already,
  // and returns the stored value, in one atomic step.
  virtual Result<std::string> claim_setting(const std::string& name, const std::string& value) = 0;
};

// The embedded store: one SQLite database file in WAL mode with synchronous=NORMAL: a committed
// nonce, resource or audit record is in the operating system's hands when the call returns, so
// it survives kill -9 and restarts of the service; a power loss or kernel crash can lose the
// last transactions before a WAL checkpoint (use PostgreSQL with its fsync settings where that
// matters). Creates the file and its schema when missing; refuses a database whose schema
// version it does not know.
Result<std::unique_ptr<Store>> open_sqlite_store(const std::filesystem::path& path);

}  // namespace cloister::service
