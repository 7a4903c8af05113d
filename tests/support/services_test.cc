// The real-server fixtures work as the service tests need them: a PostgreSQL that takes
// connections and keeps data, and an HAProxy that spreads connections over two backends.
#include "support/services.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <string>

#include "support/http_server.h"

namespace cloister::testing {
namespace {

// One query's first value, or the error.
std::string query(const std::string& conninfo, const std::string& sql) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = PQerrorMessage(conn);
    PQfinish(conn);
    return "connect: " + why;
  }
  PGresult* r = PQexec(conn, sql.c_str());
  std::string out;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) {
    out = PQgetvalue(r, 0, 0);
  } else if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    out = std::string("error: ") + PQresultErrorMessage(r);
  }
  PQclear(r);
  PQfinish(conn);
  return out;
}

TEST(PostgresServer, ServesAFreshDatabaseOnLoopback) {
  auto pg = PostgresServer::start();
  if (!pg) GTEST_SKIP() << pg.error().message();
  ASSERT_TRUE((*pg)->create_database("kbs"));
  const std::string db = (*pg)->conninfo("kbs");
  EXPECT_EQ(query(db, "CREATE TABLE resources (name text PRIMARY KEY, value bytea)"), "");
  EXPECT_EQ(query(db, "INSERT INTO resources VALUES ('default/key/1', '\\x2a')"), "");
  EXPECT_EQ(query(db, "SELECT encode(value, 'hex') FROM resources WHERE name = 'default/key/1'"),
            "2a");
  EXPECT_EQ(query(db, "SHOW listen_addresses"), "127.0.0.1");
  EXPECT_EQ(query(db, "SELECT current_user"), "cloister");
  EXPECT_FALSE((*pg)->create_database("x; DROP DATABASE kbs"));
}

// The body of one HTTP/1.0 GET to 127.0.0.1:port over a fresh connection.
std::string get_body(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "connect failed";
  }
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: x\r\n\r\n";
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string response;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) response.append(buf, n);
  ::close(fd);
  auto body = response.find("\r\n\r\n");
  return body == std::string::npos ? response : response.substr(body + 4);
}

TEST(HaproxyServer, AlternatesConnectionsOverTwoBackends) {
  LoopbackHttpServer r0, r1;
  r0.on("/who", {{200, Bytes{'r', '0'}, ""}});
  r1.on("/who", {{200, Bytes{'r', '1'}, ""}});
  const auto host_port = [](const LoopbackHttpServer& s) {
    return s.base_url().substr(std::string("http://").size());
  };
  auto lb = HaproxyServer::start({host_port(r0), host_port(r1)});
  if (!lb) GTEST_SKIP() << lb.error().message();
  std::map<std::string, int> served;
  std::string previous;
  for (int i = 0; i < 4; ++i) {
    const std::string who = get_body((*lb)->port(), "/who");
    EXPECT_NE(who, previous) << (*lb)->log();
    previous = who;
    ++served[who];
  }
  EXPECT_EQ(served, (std::map<std::string, int>{{"r0", 2}, {"r1", 2}}));
  EXPECT_EQ(r0.requests().size(), 2u);
  EXPECT_EQ(r1.requests().size(), 2u);
}

}  // namespace
}  // namespace cloister::testing
