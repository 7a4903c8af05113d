#include "support/services.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/command.h"

namespace cloister::testing {
namespace {

std::string slurp_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A fresh directory owned by the unprivileged user.
Result<std::filesystem::path> owned_temp_dir(const std::string& what) {
  std::string pattern = (std::filesystem::temp_directory_path() / ("cloister-" + what + "-XXXXXX"));
  if (::mkdtemp(pattern.data()) == nullptr)
    return Error("mkdtemp " + pattern + ": " + std::strerror(errno));
  const Unprivileged user = unprivileged_user();
  if (::chown(pattern.c_str(), user.uid, user.gid) != 0)
    return Error("chown " + pattern + ": " + std::strerror(errno));
  return std::filesystem::path(pattern);
}

// The newest /usr/lib/postgresql/<version>/bin with initdb and pg_ctl.
Result<std::filesystem::path> postgres_bin() {
  std::vector<std::filesystem::path> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    if (std::filesystem::exists(entry.path() / "bin" / "initdb") &&
        std::filesystem::exists(entry.path() / "bin" / "pg_ctl"))
      found.push_back(entry.path() / "bin");
  }
  if (found.empty())
    return Error(
        "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; apt-get install "
        "postgresql)");
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return std::atoi(a.parent_path().filename().c_str()) <
           std::atoi(b.parent_path().filename().c_str());
  });
  return found.back();
}

// Whether something listens on 127.0.0.1:port, from /proc/net/tcp (state 0A), without
// connecting: a connection to a TCP balancer would reach a backend.
bool listening(int port) {
  char local[32];
  std::snprintf(local, sizeof local, "0100007F:%04X", port);
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  while (std::getline(tcp, line)) {
    std::istringstream fields(line);
    std::string slot, local_address, remote_address, state;
    fields >> slot >> local_address >> remote_address >> state;
    if (local_address == local && state == "0A") return true;
  }
  return false;
}

}  // namespace

int free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

Unprivileged unprivileged_user() {
  if (::geteuid() != 0) return {::getuid(), ::getgid(), ""};
  const passwd* nobody = ::getpwnam("nobody");
  const uid_t uid = nobody ? nobody->pw_uid : 65534;
  const gid_t gid = nobody ? nobody->pw_gid : 65534;
  return {uid, gid,
          "setpriv --reuid=" + std::to_string(uid) + " --regid=" + std::to_string(gid) +
              " --clear-groups -- "};
}

Result<std::unique_ptr<PostgresServer>> PostgresServer::start() {
  CLOISTER_TRY(std::filesystem::path bin, postgres_bin());
  CLOISTER_TRY(std::filesystem::path dir, owned_temp_dir("postgres"));
  const std::string as_user = "cd " + dir.string() + " && " + unprivileged_user().prefix;
  const std::filesystem::path data = dir / "data";
  auto init = run_command(as_user + (bin / "initdb").string() + " -D " + data.string() +
                          " -U cloister -A trust -E UTF8 --no-locale --no-sync");
  if (init.status != 0) {
    std::filesystem::remove_all(dir);
    return Error("initdb failed (exit " + std::to_string(init.status) + "): " + init.out);
  }
  // A free port can be taken between the probe and the server's bind: try a few.
  std::string last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const int port = free_loopback_port();
    auto started =
        run_command(as_user + (bin / "pg_ctl").string() + " -D " + data.string() + " -l " +
                    (dir / "server.log").string() + " -o '-c listen_addresses=127.0.0.1 -p " +
                    std::to_string(port) + " -k " + dir.string() + " -c fsync=off' -w -t 30 start");
    if (started.status == 0)
      return std::unique_ptr<PostgresServer>(new PostgresServer(dir, bin, port));
    last = started.out + slurp_file(dir / "server.log");
  }
  std::filesystem::remove_all(dir);
  return Error("pg_ctl start failed 3 times: " + last);
}

PostgresServer::~PostgresServer() {
  run_command("cd " + dir_.string() + " && " + unprivileged_user().prefix +
              (bin_ / "pg_ctl").string() + " -D " + (dir_ / "data").string() +
              " -m immediate -w stop");
  std::filesystem::remove_all(dir_);
}

std::string PostgresServer::conninfo(const std::string& database) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=cloister dbname=" + database +
         " connect_timeout=10";
}

Status PostgresServer::create_database(const std::string& name) const {
  if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
      }))
    return Error("database name: expected letters, digits and '_', found \"" + name + "\"");
  PGconn* conn = PQconnectdb(conninfo().c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = PQerrorMessage(conn);
    PQfinish(conn);
    return Error("connect to PostgreSQL on port " + std::to_string(port_) + ": " + why);
  }
  PGresult* r = PQexec(conn, ("CREATE DATABASE " + name).c_str());
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  std::string why = ok ? "" : PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(conn);
  if (!ok) return Error("CREATE DATABASE " + name + ": " + why);
  return {};
}

std::string PostgresServer::log() const {
  return slurp_file(dir_ / "server.log");
}

Result<std::unique_ptr<HaproxyServer>> HaproxyServer::start(
    const std::vector<std::string>& backends) {
  const std::filesystem::path haproxy = "/usr/sbin/haproxy";
  if (!std::filesystem::exists(haproxy))
    return Error("HAProxy is not installed (no /usr/sbin/haproxy; apt-get install haproxy)");
  CLOISTER_TRY(std::filesystem::path dir, owned_temp_dir("haproxy"));
  const int port = free_loopback_port();
  {
    std::ofstream cfg(dir / "haproxy.cfg");
    cfg << "global\n  maxconn 256\n\n"
        << "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30s\n"
        << "  timeout server 30s\n  retries 3\n  option redispatch\n\n"
        << "frontend replicas\n  bind 127.0.0.1:" << port << "\n  default_backend replicas\n\n"
        << "backend replicas\n  balance roundrobin\n";
    for (std::size_t i = 0; i < backends.size(); ++i)
      cfg << "  server r" << i << " " << backends[i] << " check inter 500ms fall 1 rise 1\n";
  }
  const Unprivileged user = unprivileged_user();
  const std::string cfg = (dir / "haproxy.cfg").string(), log = (dir / "haproxy.log").string();
  const pid_t pid = ::fork();
  if (pid < 0) return Error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ::dup2(out, 1);
    ::dup2(out, 2);
    if (::geteuid() == 0 &&
        (::setgroups(0, nullptr) != 0 || ::setgid(user.gid) != 0 || ::setuid(user.uid) != 0))
      ::_exit(126);
    ::execl(haproxy.c_str(), "haproxy", "-f", cfg.c_str(), "-db", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  auto server = std::unique_ptr<HaproxyServer>(new HaproxyServer(dir, pid, port));
  for (int i = 0; i < 200; ++i) {
    if (listening(port)) return server;
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      server->pid_ = -1;
      return Error("haproxy exited (status " + std::to_string(status) + "): " + server->log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Error("haproxy did not listen on 127.0.0.1:" + std::to_string(port) +
               " within 10 s: " + server->log());
}

HaproxyServer::~HaproxyServer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  std::filesystem::remove_all(dir_);
}

std::string HaproxyServer::log() const {
  return slurp_file(dir_ / "haproxy.log");
}

}  // namespace cloister::testing
