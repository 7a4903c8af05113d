#include "cloister/common/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cloister/common/socket.h"
#include "cloister/common/tls.h"
#include "support/api_client.h"

namespace cloister::http {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using namespace cloister::testing;
constexpr int kGuardMs = static_cast<int>(kGuard.count());

fs::path socket_path(const std::string& name) {
  return fs::temp_directory_path() /
         ("cloister-http-" + std::to_string(::getpid()) + "-" + name + ".sock");
}

// A connected TCP socket to `host` (an IPv4 or IPv6 literal) at `port`; invalid when the
// connect fails.
Fd connect_tcp(const std::string& host, std::uint16_t port) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof *v4;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof *v6;
  } else {
    return Fd();
  }
  Fd fd(::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid() || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) return Fd();
  return fd;
}

// A blocking TLS client on 127.0.0.1 that trusts only `trusted_cert` and checks the name
// "localhost", offering TLS versions up to `max_version`. Reads give up after kGuard.
class TlsClient {
 public:
  TlsClient(std::uint16_t port, const fs::path& trusted_cert, int max_version = TLS1_3_VERSION)
      : fd_(connect_tcp("127.0.0.1", port)) {
    if (!fd_.valid()) return;
    const timeval guard{kGuardMs / 1000, 0};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_max_proto_version(ctx_.get(), max_version);
    SSL_CTX_load_verify_locations(ctx_.get(), trusted_cert.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
    ssl_.reset(SSL_new(ctx_.get()));
    SSL_set1_host(ssl_.get(), "localhost");
    SSL_set_tlsext_host_name(ssl_.get(), "localhost");
    SSL_set_fd(ssl_.get(), fd_.get());
    handshake_ok_ = SSL_connect(ssl_.get()) == 1 && SSL_get_verify_result(ssl_.get()) == X509_V_OK;
    ERR_clear_error();
  }
  bool ok() const { return handshake_ok_; }
  int version() const { return SSL_version(ssl_.get()); }
  const Fd& fd() const { return fd_; }

  bool send(std::string_view bytes) {
    std::size_t put = 0;
    return SSL_write_ex(ssl_.get(), bytes.data(), bytes.size(), &put) == 1 && put == bytes.size();
  }
  // One response, as read_reply() does over a plain socket.
  Reply read_reply() {
    Reply reply;
    for (;;) {
      const std::size_t end = pending_.find("\r\n\r\n");
      if (end != std::string::npos) {
        const std::string headers = pending_.substr(0, end + 2);
        const std::size_t cl = headers.find("Content-Length: ");
        const std::size_t length =
            cl == std::string::npos ? 0 : std::stoul(headers.substr(cl + 16));
        if (pending_.size() >= end + 4 + length) {
          reply.status = std::stoi(pending_.substr(9, 3));
          reply.headers = headers;
          reply.body = pending_.substr(end + 4, length);
          pending_.erase(0, end + 4 + length);
          return reply;
        }
      }
      char buf[4096];
      std::size_t got = 0;
      if (SSL_read_ex(ssl_.get(), buf, sizeof buf, &got) != 1) {
        ERR_clear_error();
        return reply;
      }
      pending_.append(buf, got);
    }
  }
  // Whether the server closed the session (close_notify or end of stream) with nothing more.
  bool closed_by_server() {
    char byte;
    std::size_t got = 0;
    const int result = SSL_read_ex(ssl_.get(), &byte, 1, &got);
    const int error = SSL_get_error(ssl_.get(), result);
    ERR_clear_error();
    return result != 1 && (error == SSL_ERROR_ZERO_RETURN || error == SSL_ERROR_SYSCALL);
  }

 private:
  struct CtxFree {
    void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
  };
  struct SslFree {
    void operator()(SSL* ssl) const { SSL_free(ssl); }
  };
  Fd fd_;
  std::unique_ptr<SSL_CTX, CtxFree> ctx_;
  std::unique_ptr<SSL, SslFree> ssl_;  // declared after fd_: freed before the socket closes
  std::string pending_;
  bool handshake_ok_ = false;
};

// A server on a fresh socket whose handler answers the path, padded to `body_bytes`, and that
// records its events.
class ServerTest : public ::testing::Test {
 protected:
  static Handler echo(std::size_t body_bytes) {
    return [body_bytes](const Request& r) {
      if (r.path == "/throw") throw std::runtime_error("handler exploded");
      std::string body = r.method + " " + r.path + " " + r.body;
      if (body.size() < body_bytes) body.resize(body_bytes, '.');
      return Response{200, "text/plain", body, ""};
    };
  }
  std::string test_name() const {
    return ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  void start(ServerOptions options = {}, std::size_t body_bytes = 0) {
    start_with(echo(body_bytes), std::move(options));
  }
  // Serves `handler` on a fresh UNIX socket.
  void start_with(Handler handler, ServerOptions options) {
    path_ = socket_path(test_name());
    auto listener = listen_unix(path_);
    ASSERT_TRUE(listener) << listener.error().message();
    serve(std::move(*listener), std::move(handler), std::move(options));
  }
  // Serves `handler` over TLS on 127.0.0.1 at a port the kernel picks (port_), with a fresh
  // self-signed certificate for "localhost" (cert_): from the files, or from a context built
  // beforehand when `prebuilt`.
  void start_tls(Handler handler, ServerOptions options = {}, bool prebuilt = false) {
    dir_ = fs::temp_directory_path() /
           ("cloister-https-" + std::to_string(::getpid()) + "-" + test_name());
    fs::create_directories(dir_);
    cert_ = dir_ / "cert.pem";
    auto written =
        write_self_signed_certificate(cert_, dir_ / "key.pem", {"localhost"}, {"127.0.0.1"}, 1);
    ASSERT_TRUE(written) << written.error().message();
    options.tls = TlsOptions{nullptr, cert_, dir_ / "key.pem"};
    if (prebuilt) {
      auto context = make_server_tls_context(cert_, dir_ / "key.pem");
      ASSERT_TRUE(context) << context.error().message();
      options.tls = TlsOptions{*context, {}, {}};
    }
    auto listener = listen_tcp("127.0.0.1", 0);
    ASSERT_TRUE(listener) << listener.error().message();
    auto port = local_port(listener->get());
    ASSERT_TRUE(port) << port.error().message();
    port_ = *port;
    serve(std::move(*listener), std::move(handler), std::move(options));
  }
  void serve(Fd listener, Handler handler, ServerOptions options) {
    options.name = "test";
    options.on_event = [this](const ServerEvent& e) {
      std::lock_guard lock(mutex_);
      events_.push_back(e);
    };
    auto server = Server::start(std::move(listener), std::move(handler), std::move(options));
    ASSERT_TRUE(server) << server.error().message();
    server_ = std::move(*server);
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (!path_.empty()) fs::remove(path_);
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  Fd client() {
    Fd fd = connect_unix(path_);
    EXPECT_TRUE(fd.valid()) << std::strerror(errno);
    return fd;
  }
  Reply request(const std::string& wire) { return round_trip(path_, wire); }
  std::vector<ServerEvent> events() {
    std::lock_guard lock(mutex_);
    return events_;
  }
  bool saw(ServerEvent::Kind kind, int status = 0) {
    for (const auto& e : events())
      if (e.kind == kind && e.status == status) return true;
    return false;
  }

  fs::path path_;
  fs::path dir_;
  fs::path cert_;
  std::uint16_t port_ = 0;
  std::unique_ptr<Server> server_;
  std::mutex mutex_;
  std::vector<ServerEvent> events_;
};

TEST_F(ServerTest, AnswersPipelinedRequestsInOrderOnAKeptAliveConnection) {
  start();
  Fd fd = client();
  ASSERT_TRUE(send_all(fd, get_request("/a") +
                               "PUT /b HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nxyz" +
                               get_request("/c")));
  std::string pending;
  EXPECT_EQ(read_reply(fd, pending).body, "GET /a ");
  EXPECT_EQ(read_reply(fd, pending).body, "PUT /b xyz");
  Reply third = read_reply(fd, pending);
  EXPECT_EQ(third.body, "GET /c ");
  EXPECT_NE(third.headers.find("Server: test\r\n"), std::string::npos);
  EXPECT_TRUE(server_holds(fd));
  // A later request on the same connection.
  ASSERT_TRUE(send_all(fd, get_request("/d", true)));
  Reply last = read_reply(fd, pending);
  EXPECT_EQ(last.body, "GET /d ");
  EXPECT_NE(last.headers.find("Connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(server_released(fd));
}

// The three hostile clients at once, then a fresh one: it is answered while all of them
// are still connected, and stop() returns with them connected.
// A HEAD is answered with the headers a GET would get and no body, so the client reads the
// answer to its next request, not the body, as the next answer on a kept-alive connection.
TEST_F(ServerTest, AHeadAnswerCarriesNoBodyAndTheNextAnswerFollows) {
  start();
  Fd fd = client();
  ASSERT_TRUE(send_all(fd, "HEAD /h HTTP/1.1\r\nHost: test\r\n\r\n" + get_request("/next")));
  std::string wire;
  for (int i = 0; i < 200 && wire.find("GET /next ") == std::string::npos; ++i) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[1024];
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) break;
    wire.append(buf, static_cast<std::size_t>(n));
  }
  const std::string head_answer =
      "HTTP/1.1 200 OK\r\nServer: test\r\nContent-Type: text/plain\r\n"
      "Content-Length: 8\r\n\r\n";
  ASSERT_EQ(wire.substr(0, head_answer.size()), head_answer) << wire;
  EXPECT_EQ(wire.substr(head_answer.size(), 17), "HTTP/1.1 200 OK\r\n") << wire;
  EXPECT_NE(wire.find("\r\n\r\nGET /next "), std::string::npos) << wire;
}

// A request that arrives in pieces of a byte or two — the header's end split between reads, the
// body after it — is parsed once complete, and the request pipelined behind it after that.
TEST_F(ServerTest, ARequestArrivingByteByByteIsServedWithThePipelinedOneBehindIt) {
  start();
  Fd fd = client();
  const std::string wire =
      "PUT /piecewise HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello" +
      get_request("/next");
  for (std::size_t i = 0; i < wire.size(); i += 2) {
    ASSERT_TRUE(send_all(fd, wire.substr(i, 2)));
    std::this_thread::sleep_for(milliseconds(1));
  }
  std::string pending;
  Reply first = read_reply(fd, pending);
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.body, "PUT /piecewise hello");
  Reply second = read_reply(fd, pending);
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.body, "GET /next ");
}

TEST_F(ServerTest, SlowPipeliningAndIdleClientsDoNotDelayAFreshRequest) {
  // Deadlines far beyond the test, so that every hostile client is still connected at the end.
  ServerOptions options;
  options.idle_timeout = options.request_timeout = options.response_timeout = milliseconds(600'000);
  start(options, 16 * 1024);
  std::vector<Fd> idle;
  for (int i = 0; i < 50; ++i) idle.push_back(client());

  // Pipelines 200 requests and never reads: 200 answers of 16 KiB outgrow any socket buffer, so
  // the server ends up with a response it cannot finish writing.
  Fd pipeliner = client();
  std::string burst;
  for (int i = 0; i < 200; ++i) burst += get_request("/p");
  ASSERT_TRUE(send_all(pipeliner, burst));

  // Sends a header one byte every 200 ms and never finishes it within the test.
  Fd slowloris = client();
  const std::string slow = "GET /slow HTTP/1.1\r\nX-Slow: " + std::string(1000, 'x');
  std::atomic<int> trickled{0};
  std::atomic<bool> done{false};
  std::thread trickler([&] {
    for (std::size_t i = 0; i < slow.size() && !done; ++i) {
      if (::send(slowloris.get(), &slow[i], 1, MSG_NOSIGNAL) != 1) return;
      ++trickled;
      std::this_thread::sleep_for(milliseconds(200));
    }
  });
  for (int i = 0; i < kGuardMs / 10 && trickled < 3; ++i)
    std::this_thread::sleep_for(milliseconds(10));
  EXPECT_GE(trickled, 3);

  Reply fresh = request(get_request("/fresh"));
  EXPECT_EQ(fresh.status, 200);
  EXPECT_EQ(fresh.body.substr(0, 11), "GET /fresh ");
  EXPECT_TRUE(server_holds(pipeliner));
  EXPECT_TRUE(server_holds(slowloris));
  for (const Fd& fd : idle) EXPECT_TRUE(server_holds(fd));

  auto stopped = std::async(std::launch::async, [this] { server_->stop(); });
  EXPECT_EQ(stopped.wait_for(milliseconds(kGuardMs)), std::future_status::ready);
  EXPECT_TRUE(server_released(pipeliner));
  EXPECT_TRUE(server_released(slowloris));
  for (const Fd& fd : idle) EXPECT_TRUE(server_released(fd));
  done = true;
  trickler.join();
  EXPECT_TRUE(events().empty());
}

// The request deadline counts from the first byte and bytes do not extend it: a client that
// keeps trickling is answered 408 long before its request could be complete.
TEST_F(ServerTest, ATricklingRequestGets408AtItsDeadline) {
  ServerOptions options;
  options.request_timeout = milliseconds(300);
  start(options);
  Fd fd = client();
  const std::string wire = "GET /slow HTTP/1.1\r\nX-Slow: " + std::string(2000, 'x');
  std::size_t sent = 0;
  for (; sent < wire.size(); ++sent) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 20) > 0) break;  // the server answered
    if (::send(fd.get(), &wire[sent], 1, MSG_NOSIGNAL) != 1) break;
  }
  EXPECT_LT(sent, wire.size());
  Reply reply = read_reply(fd);
  EXPECT_EQ(reply.status, 408);
  EXPECT_NE(reply.headers.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(reply.body, "the request did not arrive whole within 300 ms of its first byte\n");
  EXPECT_TRUE(server_released(fd));
  EXPECT_TRUE(saw(ServerEvent::Kind::kRejected, 408));
}

TEST_F(ServerTest, AnIdleConnectionIsClosedAtTheIdleDeadline) {
  ServerOptions options;
  options.idle_timeout = milliseconds(100);
  start(options);
  Fd fd = client();
  EXPECT_TRUE(server_released(fd));
  char byte;
  EXPECT_EQ(::recv(fd.get(), &byte, 1, 0), 0);  // closed without an answer
  EXPECT_TRUE(saw(ServerEvent::Kind::kTimedOut));
}

TEST_F(ServerTest, AClientThatDoesNotReadIsClosedAtTheResponseDeadline) {
  ServerOptions options;
  options.response_timeout = milliseconds(300);
  start(options, 64 * 1024);
  Fd fd = client();
  std::string burst;
  for (int i = 0; i < 100; ++i) burst += get_request("/p");
  ASSERT_TRUE(send_all(fd, burst));
  // The connection is closed (POLLHUP) while answers are still unread in its buffer.
  pollfd p{fd.get(), 0, 0};
  const auto guard = std::chrono::steady_clock::now() + milliseconds(kGuardMs);
  while (std::chrono::steady_clock::now() < guard && !(p.revents & POLLHUP)) ::poll(&p, 1, 50);
  EXPECT_TRUE(p.revents & POLLHUP);
  EXPECT_TRUE(saw(ServerEvent::Kind::kTimedOut));
  EXPECT_EQ(request(get_request("/after")).status, 200);
}

TEST_F(ServerTest, OversizedRequestsGet431Or413AndTheConnectionCloses) {
  ServerOptions options;
  options.limits = Limits{256, 16};
  start(options);
  Fd big_head = client();
  ASSERT_TRUE(send_all(big_head, "GET / HTTP/1.1\r\nX: " + std::string(300, 'a')));
  Reply r431 = read_reply(big_head);
  EXPECT_EQ(r431.status, 431);
  EXPECT_TRUE(server_released(big_head));

  Fd big_body = client();
  ASSERT_TRUE(send_all(big_body, "PUT / HTTP/1.1\r\nHost: test\r\nContent-Length: 17\r\n\r\n"));
  Reply r413 = read_reply(big_body);
  EXPECT_EQ(r413.status, 413);
  EXPECT_EQ(r413.body, "HTTP body: Content-Length 17 exceeds the 16-byte limit\n");
  EXPECT_TRUE(server_released(big_body));

  EXPECT_EQ(request("GARBAGE\r\n\r\n").status, 400);
  EXPECT_TRUE(saw(ServerEvent::Kind::kRejected, 431));
  EXPECT_TRUE(saw(ServerEvent::Kind::kRejected, 413));
  EXPECT_TRUE(saw(ServerEvent::Kind::kRejected, 400));
}

TEST_F(ServerTest, AtTheConnectionCapTheOldestIdleConnectionMakesRoom) {
  ServerOptions options;
  options.max_connections = 3;
  start(options);
  // Each connection is accepted and becomes idle in turn (a round trip), a first.
  std::vector<Fd> conns;
  for (int i = 0; i < 3; ++i) {
    conns.push_back(client());
    ASSERT_TRUE(send_all(conns.back(), get_request("/warm")));
    ASSERT_EQ(read_reply(conns.back()).status, 200);
  }
  Fd fourth = client();
  ASSERT_TRUE(send_all(fourth, get_request("/fourth")));
  EXPECT_EQ(read_reply(fourth).status, 200);
  EXPECT_TRUE(server_released(conns[0]));
  EXPECT_TRUE(server_holds(conns[1]));
  EXPECT_TRUE(server_holds(conns[2]));
  EXPECT_TRUE(saw(ServerEvent::Kind::kEvicted));
}

// Slowloris clients at the cap: with none idle, the connection whose request has been arriving
// longest makes room, so a fresh client is answered (it used to get 503 while they trickled).
TEST_F(ServerTest, AtTheConnectionCapTheOldestSlowRequestMakesRoomWhenNoneIsIdle) {
  ServerOptions options;
  options.max_connections = 2;
  start(options);
  // Two connections in the middle of a request: busy, not idle. Each sends a request and the
  // start of the next; the server has read that start when it answers the first.
  Fd a = client();
  ASSERT_TRUE(send_all(a, get_request("/a") + "GET /a2 HTTP/1.1\r\n"));
  ASSERT_EQ(read_reply(a).status, 200);
  Fd b = client();
  ASSERT_TRUE(send_all(b, get_request("/b") + "GET /b2 HTTP/1.1\r\n"));
  ASSERT_EQ(read_reply(b).status, 200);
  EXPECT_EQ(request(get_request("/c")).status, 200);
  EXPECT_TRUE(server_released(a));
  EXPECT_TRUE(server_holds(b));
  bool evicted = false;
  for (const auto& e : events())
    evicted |= e.kind == ServerEvent::Kind::kEvicted &&
               e.message.starts_with(
                   "closed the connection whose request has been arriving "
                   "longest to admit a new one (2 connections at most)");
  EXPECT_TRUE(evicted);
}

// Only connections whose handler is running are never closed: with every one of them busy in a
// handler, a new connection is answered 503.
TEST_F(ServerTest, AtTheConnectionCapWithEveryHandlerRunningNewConnectionsGet503) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> running{0};
  ServerOptions options;
  options.max_connections = 2;
  options.workers = 2;
  start_with(
      [&](const Request& r) {
        ++running;
        released.wait();
        return Response{200, "text/plain", r.path, ""};
      },
      options);
  Fd a = client();
  Fd b = client();
  ASSERT_TRUE(send_all(a, get_request("/a")));
  ASSERT_TRUE(send_all(b, get_request("/b")));
  for (int i = 0; i < 1000 && running.load() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(running.load(), 2);
  Reply refused = request(get_request("/c"));
  EXPECT_EQ(refused.status, 503);
  EXPECT_NE(refused.headers.find("Retry-After: 1\r\n"), std::string::npos);
  EXPECT_TRUE(saw(ServerEvent::Kind::kRejected, 503));
  release.set_value();
  EXPECT_EQ(read_reply(a).status, 200);
  EXPECT_EQ(read_reply(b).status, 200);
}

TEST_F(ServerTest, AHandlerExceptionBecomes500) {
  start();
  Reply r = request(get_request("/throw"));
  EXPECT_EQ(r.status, 500);
  // The client learns that it failed, not why: the exception's text is for the owner's log.
  EXPECT_EQ(r.body, std::string(kHandlerFailedReason) + "\n");
  bool logged = false;
  for (const auto& e : events())
    logged |= e.kind == ServerEvent::Kind::kHandlerFailed && e.status == 500 &&
              e.message == "GET /throw: handler exploded";
  EXPECT_TRUE(logged);
  EXPECT_EQ(request(get_request("/ok")).status, 200);
}

// The owner's error formatter runs on the server thread: when it throws, the refusal goes out as
// plain text and the server goes on serving (it used to end the process).
TEST_F(ServerTest, AThrowingErrorFormatterFallsBackToPlainText) {
  ServerOptions options;
  options.error_response = [](int, const std::string&) -> Response {
    throw std::runtime_error("the formatter cannot encode this");
  };
  start(options);
  Reply r = request("GET / HTTP/1.\xff\r\n\r\n");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "HTTP request line: expected HTTP/1.1 or HTTP/1.0, found \"HTTP/1.\\xff\"\n");
  EXPECT_NE(r.headers.find("Content-Type: text/plain; charset=utf-8\r\n"), std::string::npos);
  EXPECT_EQ(request(get_request("/ok")).status, 200);
}

TEST_F(ServerTest, ErrorBodiesComeFromTheOwner) {
  ServerOptions options;
  options.error_response = [](int status, const std::string& reason) {
    return Response{status, "application/json", "{\"error\":\"" + reason + "\"}", ""};
  };
  start(options);
  Reply r = request("PUT / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body,
            "{\"error\":\"HTTP header: Transfer-Encoding is not supported; send "
            "Content-Length\"}");
  EXPECT_NE(r.headers.find("Content-Type: application/json\r\n"), std::string::npos);
}

TEST_F(ServerTest, ServesTls13VerifiedAgainstItsSelfSignedCertificate) {
  start_tls(echo(0));
  TlsClient client(port_, cert_);
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(client.version(), TLS1_3_VERSION);
  ASSERT_TRUE(client.send(get_request("/a")));
  Reply reply = client.read_reply();
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "GET /a ");
  EXPECT_TRUE(server_holds(client.fd()));
  EXPECT_TRUE(events().empty());
}

TEST_F(ServerTest, HandlersSeeThePeerAddressOfTcpClients) {
  start_tls([](const Request& r) { return Response{200, "text/plain", "peer=" + r.peer, ""}; });
  TlsClient client(port_, cert_);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client.send(get_request("/a")));
  EXPECT_EQ(client.read_reply().body, "peer=127.0.0.1");
}

TEST_F(ServerTest, RefusesAClientLimitedToTls12) {
  start_tls(echo(0));
  TlsClient old(port_, cert_, TLS1_2_VERSION);
  EXPECT_FALSE(old.ok());
  EXPECT_TRUE(server_released(old.fd()));
  EXPECT_TRUE(saw(ServerEvent::Kind::kTlsFailed));
  // The server goes on serving TLS 1.3.
  TlsClient client(port_, cert_);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client.send(get_request("/after")));
  EXPECT_EQ(client.read_reply().status, 200);
}

// The handshake is bounded by request_timeout from the accept, and a client that never sends its
// ClientHello holds only its own connection meanwhile.
TEST_F(ServerTest, AClientThatNeverSendsAClientHelloIsClosedAtTheDeadline) {
  ServerOptions options;
  options.request_timeout = milliseconds(300);
  start_tls(echo(0), options);
  Fd silent = connect_tcp("127.0.0.1", port_);
  ASSERT_TRUE(silent.valid());
  TlsClient client(port_, cert_);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client.send(get_request("/served")));
  EXPECT_EQ(client.read_reply().body, "GET /served ");
  EXPECT_TRUE(server_released(silent));
  char byte;
  EXPECT_EQ(::recv(silent.get(), &byte, 1, 0), 0);  // closed without a byte
  EXPECT_TRUE(saw(ServerEvent::Kind::kTimedOut));
}

TEST_F(ServerTest, AnswersPipelinedRequestsInOrderOverTls) {
  start_tls(echo(0), {}, /*prebuilt=*/true);
  TlsClient client(port_, cert_);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client.send(get_request("/a") +
                          "PUT /b HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nxyz" +
                          get_request("/c", true)));
  EXPECT_EQ(client.read_reply().body, "GET /a ");
  EXPECT_EQ(client.read_reply().body, "PUT /b xyz");
  Reply last = client.read_reply();
  EXPECT_EQ(last.body, "GET /c ");
  EXPECT_NE(last.headers.find("Connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(client.closed_by_server());
  EXPECT_TRUE(server_released(client.fd()));
}

// A client that resets its connection while a large answer is being written: the server's next
// write fails with EPIPE, and must not raise SIGPIPE (which would end this test).
TEST_F(ServerTest, ATlsClientThatResetsMidResponseDoesNotRaiseSigpipe) {
  start_tls(echo(4 * 1024 * 1024));
  {
    TlsClient client(port_, cert_);
    ASSERT_TRUE(client.ok());
    ASSERT_TRUE(client.send(get_request("/big")));
    char byte;
    ASSERT_EQ(::recv(client.fd().get(), &byte, 1, 0), 1);  // the answer is under way
    // A FIN first puts the server's socket in CLOSE_WAIT, where Linux reports the reset as
    // EPIPE: the error that raises SIGPIPE without MSG_NOSIGNAL.
    ::shutdown(client.fd().get(), SHUT_WR);
    const linger reset{1, 0};
    ::setsockopt(client.fd().get(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  }  // closed with a reset
  TlsClient next(port_, cert_);
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(next.send(get_request("/next")));
  EXPECT_EQ(next.read_reply().status, 200);
}

// With workers, a handler that takes its time holds only its own connection: another
// connection is answered while it is still inside the handler.
TEST_F(ServerTest, ASlowHandlerOnAWorkerDoesNotDelayAnotherConnection) {
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> slow_returned{false};
  ServerOptions options;
  options.workers = 2;
  start_with(
      [&](const Request& r) {
        if (r.path == "/slow") {
          entered.set_value();
          released.wait_for(milliseconds(kGuardMs));
          slow_returned = true;
        }
        return Response{200, "text/plain", r.path, ""};
      },
      options);
  Fd slow = client();
  ASSERT_TRUE(send_all(slow, get_request("/slow")));
  ASSERT_EQ(entered.get_future().wait_for(milliseconds(kGuardMs)), std::future_status::ready);

  Reply fast = request(get_request("/fast"));
  EXPECT_EQ(fast.status, 200);
  EXPECT_EQ(fast.body, "/fast");
  EXPECT_FALSE(slow_returned);  // answered while the slow handler still ran

  release.set_value();
  Reply answered = read_reply(slow);
  EXPECT_EQ(answered.status, 200);
  EXPECT_EQ(answered.body, "/slow");
  EXPECT_TRUE(slow_returned);
}

// stop() with a request in a worker waits for its handler, answers it with "Connection: close",
// and closes a connection whose request no worker had started without an answer.
TEST_F(ServerTest, StopLetsTheRunningHandlerFinishAndAnswers) {
  std::promise<void> entered;
  std::atomic<bool> slow_returned{false};
  ServerOptions options;
  options.workers = 1;
  start_with(
      [&](const Request& r) {
        if (r.path == "/slow") {
          entered.set_value();
          std::this_thread::sleep_for(milliseconds(300));
          slow_returned = true;
        }
        return Response{200, "text/plain", r.path, ""};
      },
      options);
  Fd running = client();
  ASSERT_TRUE(send_all(running, get_request("/slow")));
  ASSERT_EQ(entered.get_future().wait_for(milliseconds(kGuardMs)), std::future_status::ready);
  // The only worker is busy: this request waits in the queue.
  Fd queued = client();
  ASSERT_TRUE(send_all(queued, get_request("/queued")));
  ASSERT_TRUE(server_holds(queued));

  server_->stop();
  EXPECT_TRUE(slow_returned);  // stop() returned after the handler did
  Reply answered = read_reply(running);
  EXPECT_EQ(answered.status, 200);
  EXPECT_EQ(answered.body, "/slow");
  EXPECT_NE(answered.headers.find("Connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(server_released(running));
  EXPECT_EQ(read_reply(queued).status, -1);  // closed unanswered
  EXPECT_TRUE(server_released(queued));
}

TEST_F(ServerTest, AHandlerExceptionOnAWorkerBecomes500) {
  ServerOptions options;
  options.workers = 2;
  start(options);
  Reply r = request(get_request("/throw"));
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, std::string(kHandlerFailedReason) + "\n");
  EXPECT_TRUE(saw(ServerEvent::Kind::kHandlerFailed, 500));
  // Pipelined requests on one connection go to the workers one at a time, in order.
  Fd fd = client();
  ASSERT_TRUE(send_all(fd, get_request("/a") + get_request("/b") + get_request("/c")));
  std::string pending;
  EXPECT_EQ(read_reply(fd, pending).body, "GET /a ");
  EXPECT_EQ(read_reply(fd, pending).body, "GET /b ");
  EXPECT_EQ(read_reply(fd, pending).body, "GET /c ");
}

TEST(ServerStartTest, TlsFilesThatCannotBeLoadedFailStart) {
  const fs::path missing = fs::temp_directory_path() / "cloister-no-such-cert.pem";
  auto listener = listen_tcp("127.0.0.1", 0);
  ASSERT_TRUE(listener) << listener.error().message();
  ServerOptions options;
  options.tls = TlsOptions{nullptr, missing, missing};
  auto server = Server::start(
      std::move(*listener), [](const Request&) { return Response{}; }, std::move(options));
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().message().rfind("HTTP server: ", 0), 0u) << server.error().message();
  EXPECT_NE(server.error().message().find(missing.string()), std::string::npos);

  auto second = listen_tcp("127.0.0.1", 0);
  ASSERT_TRUE(second) << second.error().message();
  ServerOptions empty;
  empty.tls = TlsOptions{};
  auto unconfigured = Server::start(
      std::move(*second), [](const Request&) { return Response{}; }, std::move(empty));
  ASSERT_FALSE(unconfigured);
  EXPECT_EQ(unconfigured.error().message(),
            "HTTP server: TLS options name neither a context nor a certificate chain and key file");
}

TEST(ServerStartTest, AFailingThreadInitFailsStart) {
  const fs::path path = socket_path("init");
  auto listener = listen_unix(path);
  ASSERT_TRUE(listener) << listener.error().message();
  ServerOptions options;
  options.thread_init = [] { return Status(Error("seccomp: refused")); };
  auto server = Server::start(
      std::move(*listener), [](const Request&) { return Response{}; }, std::move(options));
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().message(), "HTTP server thread: seccomp: refused");
  fs::remove(path);
}

TEST(ListenUnixTest, ReplacesAStaleSocketAndRefusesALiveOneOrAnotherFile) {
  const fs::path path = socket_path("listen");
  {
    auto first = listen_unix(path);
    ASSERT_TRUE(first) << first.error().message();
    auto second = listen_unix(path);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().message(),
              "socket " + path.string() + ": another process is serving it");
  }
  // The first listener is closed; its file is stale now.
  auto again = listen_unix(path);
  ASSERT_TRUE(again) << again.error().message();
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  fs::remove(path);

  std::ofstream(path) << "not a socket";
  auto file = listen_unix(path);
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().message(), "socket " + path.string() + ": exists and is not a socket");
  fs::remove(path);

  const std::string too_long = "/tmp/" + std::string(200, 's');
  auto long_path = listen_unix(too_long);
  ASSERT_FALSE(long_path);
  EXPECT_EQ(long_path.error().message(),
            "socket " + too_long + ": path is 205 bytes; expected 1 to 107");
}

TEST(ListenTcpTest, BindsAPickedPortOnIpv4Ipv6AndLocalhostAndRefusesOthers) {
  for (const std::string host : {"127.0.0.1", "::1", "localhost"}) {
    auto listener = listen_tcp(host, 0);
    ASSERT_TRUE(listener) << host << ": " << listener.error().message();
    auto port = local_port(listener->get());
    ASSERT_TRUE(port) << port.error().message();
    EXPECT_NE(*port, 0);
    Fd client = connect_tcp(host == "localhost" ? "127.0.0.1" : host, *port);
    EXPECT_TRUE(client.valid()) << host << ": " << std::strerror(errno);

    // The port is taken now: a second listener on it fails with the OS reason.
    auto again = listen_tcp(host, *port);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code(), ErrorCode::kInternal);
    EXPECT_NE(again.error().message().find("bind: Address already in use"), std::string::npos)
        << again.error().message();
  }
  auto name = listen_tcp("example.com", 8443);
  ASSERT_FALSE(name);
  EXPECT_EQ(name.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(name.error().message(),
            "TCP listener example.com:8443: host \"example.com\" is not an IPv4 or IPv6 address "
            "literal or \"localhost\"");

  auto unix_port = local_port(listen_unix(socket_path("port")).value().get());
  ASSERT_FALSE(unix_port);
  EXPECT_EQ(unix_port.error().message(),
            "local port: socket family 1; expected AF_INET or AF_INET6");
  fs::remove(socket_path("port"));
}

TEST(ParseHostPortTest, SplitsHostAndPortAndSaysWhatIsWrong) {
  using Parsed = std::pair<std::string, std::uint16_t>;
  EXPECT_EQ(parse_host_port("127.0.0.1:8443").value(), (Parsed{"127.0.0.1", 8443}));
  EXPECT_EQ(parse_host_port("[::1]:8443").value(), (Parsed{"::1", 8443}));
  EXPECT_EQ(parse_host_port("localhost:0").value(), (Parsed{"localhost", 0}));
  EXPECT_EQ(parse_host_port("0.0.0.0:65535").value(), (Parsed{"0.0.0.0", 65535}));
  const std::pair<std::string, std::string> refused[] = {
      {"127.0.0.1", "address \"127.0.0.1\": no port; expected HOST:PORT"},
      {":8443", "address \":8443\": empty host; expected HOST:PORT"},
      {"[]:8443", "address \"[]:8443\": empty host; expected HOST:PORT"},
      {"[::1:8443", "address \"[::1:8443\": '[' without ']'; expected [IPV6]:PORT"},
      {"[::1]8443", "address \"[::1]8443\": no port after ']'; expected [IPV6]:PORT"},
      {"::1:8443", "address \"::1:8443\": an IPv6 address needs brackets; expected [IPV6]:PORT"},
      {"host:", "address \"host:\": port \"\" is not a number from 0 to 65535"},
      {"host:https", "address \"host:https\": port \"https\" is not a number from 0 to 65535"},
      {"host:-1", "address \"host:-1\": port \"-1\" is not a number from 0 to 65535"},
      {"host:65536", "address \"host:65536\": port 65536 is out of range; expected 0 to 65535"},
      {"host:123456", "address \"host:123456\": port 123456 is out of range; expected 0 to 65535"},
  };
  for (const auto& [input, message] : refused) {
    auto parsed = parse_host_port(input);
    ASSERT_FALSE(parsed) << input;
    EXPECT_EQ(parsed.error().message(), message);
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace cloister::http
