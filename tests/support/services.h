// Real servers from Debian for the tests that need them (the attestation service's store and
// its replicas): PostgreSQL and HAProxy, each started on loopback in a temporary directory,
// as an unprivileged user (nobody when the tests run as root, as on CI: initdb refuses root),
// and stopped and removed by the destructor. No mocks: what an operator runs is what runs.
//
// start() fails, naming what is missing, when the Debian package is not installed
// (scripts/deps/build.txt installs postgresql and haproxy); tests skip with that message.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cloister/common/result.h"

namespace cloister::testing {

// A free TCP port on 127.0.0.1 at the time of the call (bound to port 0, then released).
int free_loopback_port();

// The user the fixtures run servers as, and the command prefix that switches to it ("" when
// the tests do not run as root).
struct Unprivileged {
  uid_t uid;
  gid_t gid;
  std::string prefix;
};
Unprivileged unprivileged_user();

class PostgresServer {
 public:
  // initdb (trust authentication for local connections, user "cloister"), then pg_ctl start
  // listening on 127.0.0.1 at a free port and on a UNIX socket in the data directory.
  static Result<std::unique_ptr<PostgresServer>> start();
  ~PostgresServer();  // pg_ctl stop -m immediate, data directory removed
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  // A libpq connection string for `database` on this server.
  std::string conninfo(const std::string& database = "postgres") const;
  // CREATE DATABASE `name` (an identifier of letters, digits and '_').
  Status create_database(const std::string& name) const;
  // The server's log, for failure messages.
  std::string log() const;

 private:
  PostgresServer(std::filesystem::path dir, std::filesystem::path bin, int port)
      : dir_(std::move(dir)), bin_(std::move(bin)), port_(port) {}

  std::filesystem::path dir_;
  std::filesystem::path bin_;  // /usr/lib/postgresql/<version>/bin
  int port_;
};

// HAProxy in TCP mode (TLS passes through to the replicas) balancing connections round-robin
// over `backends` ("HOST:PORT"), so consecutive connections reach alternate backends. Backends
// are health-checked every 500 ms (a TCP connect) and a connection that cannot reach its backend
// is redispatched to another, as a production setup would do when a replica dies.
class HaproxyServer {
 public:
  static Result<std::unique_ptr<HaproxyServer>> start(const std::vector<std::string>& backends);
  ~HaproxyServer();  // SIGTERM, wait, directory removed
  HaproxyServer(const HaproxyServer&) = delete;
  HaproxyServer& operator=(const HaproxyServer&) = delete;

  int port() const { return port_; }
  std::string log() const;

 private:
  HaproxyServer(std::filesystem::path dir, pid_t pid, int port)
      : dir_(std::move(dir)), pid_(pid), port_(port) {}

  std::filesystem::path dir_;
  pid_t pid_;
  int port_;
};

}  // namespace cloister::testing
