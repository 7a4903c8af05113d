#include "cloister/common/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <utility>
#include <variant>
#include <vector>

#include "cloister/common/tls.h"

namespace cloister::http {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long a closing connection may keep sending before it is closed (RFC 9112 section 9.6).
constexpr milliseconds kLingerTimeout{1000};
// How long accepting pauses after accept() failed for want of descriptors or memory.
constexpr milliseconds kAcceptPause{100};
constexpr std::size_t kReadChunk = 16 * 1024;
// Connections accepted per wake-up, so that a flood of connects cannot starve the others.
constexpr int kAcceptBatch = 64;
constexpr int kMaxEvents = 64;
// epoll tokens: the listener, the stop eventfd, the workers' eventfd, then connections numbered
// from kFirstConnection.
constexpr std::uint64_t kListenerToken = 0;
constexpr std::uint64_t kWakeToken = 1;
constexpr std::uint64_t kDoneToken = 2;
constexpr std::uint64_t kFirstConnection = 3;

enum class Phase {
  kHandshake,  // TLS: the handshake is under way
  kIdle,       // waiting for a request's first byte
  kReading,    // part of a request is buffered
  kHandling,   // a worker runs the handler; nothing is read
  kWriting,    // a response is pending; nothing is read
  kLingering,  // the last response is written and the write side shut; discarding input
};

struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};

struct Connection {
  std::uint64_t token = 0;
  Fd fd;
  std::unique_ptr<SSL, SslFree> ssl;  // TLS connections only; destroyed before fd
  Phase phase = Phase::kIdle;
  Clock::time_point deadline;
  Clock::time_point idle_since;
  Clock::time_point busy_since;  // when the request being read or the answer being written began
  std::uint32_t interest = EPOLLIN;
  std::string peer;  // the client's IP address, "" on UNIX sockets
  std::string in;    // received bytes not yet parsed
  // Parsing again only when it can get further: `in` is searched for the header section's end
  // from `scanned` on, and once the header is parsed, the request waits for `needed` bytes.
  std::size_t scanned = 0;
  std::size_t needed = 0;
  std::string out;  // the pending response
  std::size_t written = 0;
  bool close_after_write = false;
  bool head = false;  // the request being answered is a HEAD: its answer goes without the body
  std::size_t discarded = 0;
};

// What a read or write did: moved bytes, or must wait for the socket to become readable or
// writable (TLS may need either for either), or the connection ended.
enum class Io { kDone, kWantRead, kWantWrite, kClosed, kFailed };

// The IP address of an accepted peer, "" for anything but IPv4 and IPv6.
std::string peer_address(const sockaddr_storage& address) {
  char text[INET6_ADDRSTRLEN] = "";
  if (address.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&address);
    ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
  } else if (address.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
  }
  return text;
}

// A handler's answer, or the reason it threw.
struct Outcome {
  std::uint64_t token = 0;
  Response response;
  bool keep_alive = false;
  std::optional<std::string> failure;
};

Outcome run_handler(const Handler& handler, std::uint64_t token, const Request& request) {
  Outcome outcome;
  outcome.token = token;
  try {
    outcome.response = handler(request);
    outcome.keep_alive = request.keep_alive;
  } catch (const std::exception& e) {
    outcome.failure = request.method + " " + request.path + ": " + e.what();
  } catch (...) {
    outcome.failure = request.method + " " + request.path + ": a non-standard exception";
  }
  return outcome;
}

// The worker threads of ServerOptions::workers: requests in, outcomes out, and a write to the
// `done` eventfd after each outcome so that the loop wakes to collect it.
class WorkerPool {
 public:
  WorkerPool(std::size_t workers, const Handler& handler, int done)
      : handler_(handler), done_(done) {
    for (std::size_t i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
  }
  ~WorkerPool() { drain(); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void submit(std::uint64_t token, Request request) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back({token, std::move(request)});
    }
    wanted_.notify_one();
  }

  std::vector<Outcome> take_outcomes() {
    std::lock_guard lock(mutex_);
    return std::exchange(outcomes_, {});
  }

  // Drops the requests no worker has started and joins the workers, which return once their
  // current handler has. Idempotent.
  void drain() {
    {
      std::lock_guard lock(mutex_);
      queue_.clear();
      stopping_ = true;
    }
    wanted_.notify_all();
    for (std::thread& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  struct Job {
    std::uint64_t token;
    Request request;
  };

  void work() {
    for (;;) {
      Job job;
      {
        std::unique_lock lock(mutex_);
        wanted_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      Outcome outcome = run_handler(handler_, job.token, job.request);
      {
        std::lock_guard lock(mutex_);
        outcomes_.push_back(std::move(outcome));
      }
      const std::uint64_t one = 1;
      [[maybe_unused]] ssize_t n = ::write(done_, &one, sizeof one);
    }
  }

  const Handler& handler_;
  const int done_;
  std::mutex mutex_;
  std::condition_variable wanted_;
  std::deque<Job> queue_;
  std::vector<Outcome> outcomes_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// A socket BIO for TLS connections that writes with MSG_NOSIGNAL (OpenSSL's own socket BIO
// uses write(2), which raises SIGPIPE on a connection the peer has reset).
int bio_fd(BIO* bio) {
  return static_cast<int>(reinterpret_cast<std::intptr_t>(BIO_get_data(bio)));
}

int bio_write(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  ssize_t n;
  do {
    n = ::send(bio_fd(bio), data, static_cast<std::size_t>(size), MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_write(bio);
  return static_cast<int>(n);
}

int bio_read(BIO* bio, char* data, int size) {
  BIO_clear_retry_flags(bio);
  ssize_t n;
  do {
    n = ::recv(bio_fd(bio), data, static_cast<std::size_t>(size), MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_read(bio);
  return static_cast<int>(n);
}

long bio_ctrl(BIO*, int command, long, void*) {
  return command == BIO_CTRL_FLUSH ? 1 : 0;  // nothing is buffered
}

// Made once and kept for the life of the process.
const BIO_METHOD* socket_bio_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m =
        BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "cloister socket (MSG_NOSIGNAL)");
    if (m && (BIO_meth_set_write(m, bio_write) != 1 || BIO_meth_set_read(m, bio_read) != 1 ||
              BIO_meth_set_ctrl(m, bio_ctrl) != 1)) {
      BIO_meth_free(m);
      m = nullptr;
    }
    return m;
  }();
  return method;
}

// A server-side TLS 1.3 session on `fd`; null when OpenSSL cannot make one (no memory).
std::unique_ptr<SSL, SslFree> new_tls_session(SSL_CTX* ctx, int fd) {
  const BIO_METHOD* method = socket_bio_method();
  if (!method) return nullptr;
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx));
  BIO* bio = BIO_new(method);
  if (!ssl || !bio || SSL_set_min_proto_version(ssl.get(), TLS1_3_VERSION) != 1) {
    BIO_free(bio);
    return nullptr;
  }
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<std::intptr_t>(fd)));
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl.get(), bio, bio);  // owns the BIO now
  SSL_set_mode(ssl.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_set_accept_state(ssl.get());
  return ssl;
}

// Maps a failed SSL call; the thread's error queue is left empty.
Io tls_io(SSL* ssl, int result) {
  const int error = SSL_get_error(ssl, result);
  ERR_clear_error();
  switch (error) {
    case SSL_ERROR_WANT_READ:
      return Io::kWantRead;
    case SSL_ERROR_WANT_WRITE:
      return Io::kWantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return Io::kClosed;
    default:
      return Io::kFailed;
  }
}

// The reason of the first error on the thread's OpenSSL queue, which is emptied.
std::string tls_reason(SSL* ssl, int result) {
  const int error = SSL_get_error(ssl, result);
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (const char* reason = code ? ERR_reason_error_string(code) : nullptr) return reason;
  return error == SSL_ERROR_SYSCALL || error == SSL_ERROR_ZERO_RETURN
             ? "the client closed the connection"
             : "SSL error " + std::to_string(error);
}

Io read_some(Connection& c, char* data, std::size_t size, std::size_t& got) {
  if (c.ssl) {
    ERR_clear_error();
    const int result = SSL_read_ex(c.ssl.get(), data, size, &got);
    return result == 1 ? Io::kDone : tls_io(c.ssl.get(), result);
  }
  const ssize_t n = ::recv(c.fd.get(), data, size, MSG_DONTWAIT);
  if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return Io::kWantRead;
  if (n < 0) return Io::kFailed;
  if (n == 0) return Io::kClosed;
  got = static_cast<std::size_t>(n);
  return Io::kDone;
}

Io write_some(Connection& c, const char* data, std::size_t size, std::size_t& put) {
  if (c.ssl) {
    ERR_clear_error();
    const int result = SSL_write_ex(c.ssl.get(), data, size, &put);
    return result == 1 ? Io::kDone : tls_io(c.ssl.get(), result);
  }
  ssize_t n;
  do {
    n = ::send(c.fd.get(), data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Io::kWantWrite;
  if (n <= 0) return Io::kFailed;
  put = static_cast<std::size_t>(n);
  return Io::kDone;
}

Response plain_error(int status, const std::string& reason) {
  return Response{status, "text/plain; charset=utf-8", reason + "\n", ""};
}

std::string millis(milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

}  // namespace

struct Server::Loop {
  Fd listener;
  Fd epoll;
  Fd wake;
  Fd done;  // the workers' eventfd, with workers only
  Handler handler;
  ServerOptions options;
  std::shared_ptr<SSL_CTX> tls;
  std::unique_ptr<WorkerPool> pool;  // destroyed (joined) before the handler and `done`
  std::map<std::uint64_t, Connection> connections;  // by token, i.e. in accept order
  std::uint64_t next_token = kFirstConnection;
  std::optional<Clock::time_point> accept_paused_until;

  void run();
  void shut_down();
  void collect_outcomes(Clock::time_point now);
  int wait_timeout_ms(Clock::time_point now) const;
  void accept_batch(Clock::time_point now);
  bool make_room();
  void refuse_unavailable(Fd fd);
  void pause_accepting(Clock::time_point now);
  void resume_accepting(Clock::time_point now);
  // Each returns false when the connection must be closed.
  bool on_ready(Connection& c, std::uint32_t events, Clock::time_point now);
  bool advance(Connection& c, Clock::time_point now);
  bool on_deadline(Connection& c, Clock::time_point now);
  void answer(Connection& c, const Response& response, bool keep_alive, Clock::time_point now);
  void finish(Connection& c, const Outcome& outcome, bool keep_alive, Clock::time_point now);
  void refuse(Connection& c, int status, const std::string& reason, Clock::time_point now);
  void become_idle(Connection& c, Clock::time_point now);
  void start_reading(Connection& c, Clock::time_point now);
  void consume(Connection& c, std::size_t bytes);
  void want(Connection& c, std::uint32_t interest);
  void close(std::uint64_t token);
  void emit(ServerEvent::Kind kind, int status, std::string message) const;
  Response error_response(int status, const std::string& reason) const;
};

namespace {

Io write_pending(Connection& c) {
  while (c.written < c.out.size()) {
    std::size_t put = 0;
    const Io io = write_some(c, c.out.data() + c.written, c.out.size() - c.written, put);
    if (io != Io::kDone) return io;
    c.written += put;
  }
  c.out.clear();
  c.written = 0;
  return Io::kDone;
}

}  // namespace

void Server::Loop::emit(ServerEvent::Kind kind, int status, std::string message) const {
  if (options.on_event) options.on_event(ServerEvent{kind, status, std::move(message)});
}

Response Server::Loop::error_response(int status, const std::string& reason) const {
  if (!options.error_response) return plain_error(status, reason);
  // The owner's formatter runs on the server thread: if it throws (say a JSON library refusing
  // bytes it cannot encode), the refusal goes out as plain text rather than ending the process.
  try {
    return options.error_response(status, reason);
  } catch (...) {
    return plain_error(status, reason);
  }
}

void Server::Loop::want(Connection& c, std::uint32_t interest) {
  if (c.interest == interest) return;
  c.interest = interest;
  epoll_event ev{};
  ev.events = interest;
  ev.data.u64 = c.token;
  ::epoll_ctl(epoll.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
}

void Server::Loop::close(std::uint64_t token) {
  auto it = connections.find(token);
  if (it == connections.end()) return;
  ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, it->second.fd.get(), nullptr);
  connections.erase(it);
}

void Server::Loop::become_idle(Connection& c, Clock::time_point now) {
  c.phase = Phase::kIdle;
  c.idle_since = now;
  c.deadline = now + options.idle_timeout;
}

void Server::Loop::start_reading(Connection& c, Clock::time_point now) {
  c.phase = Phase::kReading;
  c.busy_since = now;
  c.deadline = now + options.request_timeout;
}

void Server::Loop::consume(Connection& c, std::size_t bytes) {
  c.in.erase(0, bytes);
  c.scanned = 0;
  c.needed = 0;
}

void Server::Loop::answer(Connection& c, const Response& response, bool keep_alive,
                          Clock::time_point now) {
  c.out = format_response(response, options.name, keep_alive);
  // The headers a GET would get, Content-Length included, and no body (RFC 9110 section 9.3.2):
  // a kept-alive client would read a body as the start of the next answer.
  if (c.head) c.out.resize(c.out.size() - response.body.size());
  c.written = 0;
  c.close_after_write = !keep_alive;
  c.phase = Phase::kWriting;
  c.busy_since = now;
  c.deadline = now + options.response_timeout;
}

void Server::Loop::finish(Connection& c, const Outcome& outcome, bool keep_alive,
                          Clock::time_point now) {
  if (outcome.failure) {
    // The cause goes to the owner's log only: an exception's text may carry internal details.
    emit(ServerEvent::Kind::kHandlerFailed, 500, *outcome.failure);
    answer(c, error_response(500, kHandlerFailedReason), false, now);
  } else {
    answer(c, outcome.response, keep_alive && outcome.keep_alive, now);
  }
}

void Server::Loop::refuse(Connection& c, int status, const std::string& reason,
                          Clock::time_point now) {
  emit(ServerEvent::Kind::kRejected, status, reason);
  consume(c, c.in.size());
  c.head = false;
  answer(c, error_response(status, reason), false, now);
}

// Drives the connection as far as it goes without blocking: completes the TLS handshake, parses
// buffered requests, runs the handler (or hands the request to a worker), writes responses, and
// leaves the connection waiting for the one event it needs.
bool Server::Loop::advance(Connection& c, Clock::time_point now) {
  for (;;) {
    switch (c.phase) {
      case Phase::kHandshake: {
        ERR_clear_error();
        const int result = SSL_do_handshake(c.ssl.get());
        if (result == 1) {
          become_idle(c, now);
          break;
        }
        const int error = SSL_get_error(c.ssl.get(), result);
        if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
          ERR_clear_error();
          want(c, error == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
          return true;
        }
        emit(ServerEvent::Kind::kTlsFailed, 0,
             "TLS handshake: " + tls_reason(c.ssl.get(), result) + "; closed");
        return false;
      }
      case Phase::kHandling:
        want(c, 0);
        return true;
      case Phase::kIdle:
      case Phase::kLingering:
        want(c, EPOLLIN);
        return true;
      case Phase::kReading: {
        // A request arriving a byte at a time costs one search of each new byte, not a parse of
        // everything so far for every byte.
        if (c.in.size() < c.needed) {
          want(c, EPOLLIN);
          return true;
        }
        if (c.needed == 0 && c.in.size() <= options.limits.max_header_bytes &&
            c.in.find("\r\n\r\n", c.scanned > 3 ? c.scanned - 3 : 0) == std::string::npos) {
          c.scanned = c.in.size();
          want(c, EPOLLIN);
          return true;
        }
        ParseResult parsed = parse_request(c.in, options.limits);
        if (const auto* incomplete = std::get_if<Incomplete>(&parsed)) {
          c.needed = incomplete->needed;
          want(c, EPOLLIN);
          return true;
        }
        if (auto* rejection = std::get_if<Rejection>(&parsed)) {
          refuse(c, rejection->status, rejection->reason, now);
          break;
        }
        auto& [request, consumed] = std::get<Parsed>(parsed);
        consume(c, consumed);
        c.head = request.method == "HEAD";
        request.peer = c.peer;
        if (pool) {
          // No deadline while the handler runs: the server cannot interrupt it.
          c.phase = Phase::kHandling;
          c.deadline = Clock::time_point::max();
          pool->submit(c.token, std::move(request));
        } else {
          finish(c, run_handler(handler, c.token, request), true, now);
        }
        break;
      }
      case Phase::kWriting: {
        const Io io = write_pending(c);
        if (io == Io::kWantRead || io == Io::kWantWrite) {
          want(c, io == Io::kWantRead ? EPOLLIN : EPOLLOUT);
          return true;
        }
        if (io != Io::kDone) return false;
        if (c.close_after_write) {
          if (c.ssl) {
            ERR_clear_error();
            SSL_shutdown(c.ssl.get());  // close_notify, as far as the socket takes it
            ERR_clear_error();
          }
          ::shutdown(c.fd.get(), SHUT_WR);
          c.phase = Phase::kLingering;
          c.idle_since = now;
          c.deadline = now + kLingerTimeout;
        } else if (c.in.empty()) {
          become_idle(c, now);
        } else {
          start_reading(c, now);  // a pipelined request: its deadline starts now
        }
        break;
      }
    }
  }
}

bool Server::Loop::on_ready(Connection& c, std::uint32_t events, Clock::time_point now) {
  char chunk[kReadChunk];
  switch (c.phase) {
    case Phase::kHandshake:
    case Phase::kWriting:
      return advance(c, now);
    case Phase::kHandling:
      // Nothing is read while the handler runs; a connection that fails meanwhile is closed
      // (its answer is dropped when it comes).
      return !(events & (EPOLLHUP | EPOLLERR));
    case Phase::kLingering: {
      // Raw bytes, also over TLS: they are discarded unread.
      const ssize_t n = ::recv(c.fd.get(), chunk, sizeof chunk, MSG_DONTWAIT);
      if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      if (n <= 0) return false;  // closed by the client, or an error
      c.discarded += static_cast<std::size_t>(n);
      return c.discarded <= options.limits.max_header_bytes + options.limits.max_body_bytes;
    }
    case Phase::kIdle:
    case Phase::kReading:
      break;
  }
  // TLS may hold decrypted bytes that the socket no longer signals: take them all.
  bool got_any = false;
  for (;;) {
    std::size_t got = 0;
    const Io io = read_some(c, chunk, sizeof chunk, got);
    if (io == Io::kClosed || io == Io::kFailed) return false;  // closed by the client, or an error
    if (io == Io::kDone) {
      if (c.phase == Phase::kIdle) start_reading(c, now);
      c.in.append(chunk, got);
      got_any = true;
    }
    if (io != Io::kDone || !c.ssl || SSL_pending(c.ssl.get()) == 0) {
      if (got_any) break;
      want(c, io == Io::kWantWrite ? EPOLLOUT : EPOLLIN);
      return true;
    }
  }
  return advance(c, now);
}

bool Server::Loop::on_deadline(Connection& c, Clock::time_point now) {
  switch (c.phase) {
    case Phase::kHandshake:
      emit(ServerEvent::Kind::kTimedOut, 0,
           "the TLS handshake did not complete within " + millis(options.request_timeout) +
               " of the connection; closed");
      return false;
    case Phase::kHandling:
      return true;  // no deadline
    case Phase::kIdle:
      emit(ServerEvent::Kind::kTimedOut, 0,
           "connection idle for " + millis(options.idle_timeout) + "; closed");
      return false;
    case Phase::kReading:
      refuse(c, 408,
             "the request did not arrive whole within " + millis(options.request_timeout) +
                 " of its first byte",
             now);
      return advance(c, now);
    case Phase::kWriting:
      emit(ServerEvent::Kind::kTimedOut, 0,
           "the client did not take the response within " + millis(options.response_timeout) +
               "; closed");
      return false;
    case Phase::kLingering:
      return false;
  }
  return false;
}

// Connections without a request in progress count as idle: those in their TLS handshake,
// waiting for a next request, or lingering after their last answer. The one idle longest goes;
// with none idle, the one whose request (or answer) the client has been sending (or taking)
// longest, so that clients trickling requests or never reading cannot hold every slot against
// a fresh client. Only a connection whose handler is running is never closed.
bool Server::Loop::make_room() {
  auto idle = connections.end();
  auto busy = connections.end();
  for (auto it = connections.begin(); it != connections.end(); ++it) {
    const Connection& c = it->second;
    switch (c.phase) {
      case Phase::kHandshake:
      case Phase::kIdle:
      case Phase::kLingering:
        if (idle == connections.end() || c.idle_since < idle->second.idle_since) idle = it;
        break;
      case Phase::kReading:
      case Phase::kWriting:
        if (busy == connections.end() || c.busy_since < busy->second.busy_since) busy = it;
        break;
      case Phase::kHandling:
        break;
    }
  }
  const std::string cap =
      " to admit a new one (" + std::to_string(options.max_connections) + " connections at most)";
  if (idle != connections.end()) {
    emit(ServerEvent::Kind::kEvicted, 0, "closed the connection idle longest" + cap);
    close(idle->first);
    return true;
  }
  if (busy == connections.end()) return false;
  emit(ServerEvent::Kind::kEvicted, 0,
       std::string(busy->second.phase == Phase::kReading
                       ? "closed the connection whose request has been arriving longest"
                       : "closed the connection whose answer has been waiting longest") +
           cap);
  close(busy->first);
  return true;
}

void Server::Loop::refuse_unavailable(Fd fd) {
  const std::string reason = "the server has " + std::to_string(options.max_connections) +
                             " connections open, each waiting for its handler; retry later";
  if (tls) {
    emit(ServerEvent::Kind::kRejected, 503, reason + " (closed: TLS)");
    return;
  }
  emit(ServerEvent::Kind::kRejected, 503, reason);
  Response response = error_response(503, reason);
  response.extra_headers += "Retry-After: 1\r\n";
  const std::string wire = format_response(response, options.name, false);
  // One attempt: a fresh socket's buffer takes this, and a client that cannot is not waited on.
  [[maybe_unused]] ssize_t n =
      ::send(fd.get(), wire.data(), wire.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::shutdown(fd.get(), SHUT_WR);
}

void Server::Loop::pause_accepting(Clock::time_point now) {
  epoll_event ev{};
  ev.data.u64 = kListenerToken;
  ::epoll_ctl(epoll.get(), EPOLL_CTL_MOD, listener.get(), &ev);
  accept_paused_until = now + kAcceptPause;
}

void Server::Loop::resume_accepting(Clock::time_point now) {
  if (!accept_paused_until || now < *accept_paused_until) return;
  accept_paused_until.reset();
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenerToken;
  ::epoll_ctl(epoll.get(), EPOLL_CTL_MOD, listener.get(), &ev);
}

void Server::Loop::accept_batch(Clock::time_point now) {
  for (int i = 0; i < kAcceptBatch; ++i) {
    sockaddr_storage address{};
    socklen_t address_size = sizeof address;
    Fd fd(::accept4(listener.get(), reinterpret_cast<sockaddr*>(&address), &address_size,
                    SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) {
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
      emit(ServerEvent::Kind::kAcceptFailed, 0,
           std::string("accept: ") + std::strerror(err) + " (errno " + std::to_string(err) +
               "); accepting again in " + millis(kAcceptPause));
      pause_accepting(now);
      return;
    }
    if (connections.size() >= options.max_connections && !make_room()) {
      refuse_unavailable(std::move(fd));
      continue;
    }
    const std::uint64_t token = next_token++;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = token;
    if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd.get(), &ev) < 0) continue;
    Connection& c = connections[token];
    c.token = token;
    c.fd = std::move(fd);
    c.peer = peer_address(address);
    become_idle(c, now);
    if (tls) {
      c.ssl = new_tls_session(tls.get(), c.fd.get());
      if (!c.ssl) {
        ERR_clear_error();
        emit(ServerEvent::Kind::kTlsFailed, 0, "TLS: cannot create a session (no memory); closed");
        close(token);
        continue;
      }
      c.phase = Phase::kHandshake;
      c.deadline = now + options.request_timeout;  // idle_since stays the accept
    }
  }
}

int Server::Loop::wait_timeout_ms(Clock::time_point now) const {
  std::optional<Clock::time_point> next = accept_paused_until;
  for (const auto& [token, c] : connections)
    if (!next || c.deadline < *next) next = c.deadline;
  if (!next) return -1;
  if (*next <= now) return 0;
  // Rounded up, so that the loop never wakes just before a deadline and spins; capped at a
  // minute, which keeps the count within an int whatever the options say.
  const auto wait = std::chrono::ceil<milliseconds>(*next - now).count();
  return static_cast<int>(std::min<std::int64_t>(wait, 60'000));
}

void Server::Loop::run() {
  epoll_event events[kMaxEvents];
  for (;;) {
    const int n = ::epoll_wait(epoll.get(), events, kMaxEvents, wait_timeout_ms(Clock::now()));
    if (n < 0 && errno != EINTR) {
      emit(ServerEvent::Kind::kFailed, 0,
           std::string("epoll_wait: ") + std::strerror(errno) + "; the server stopped serving");
      return;
    }
    const Clock::time_point now = Clock::now();
    for (int i = 0; i < n; ++i) {
      const std::uint64_t token = events[i].data.u64;
      if (token == kWakeToken) {
        shut_down();
        return;
      }
      if (token == kDoneToken) {
        collect_outcomes(now);
        continue;
      }
      if (token == kListenerToken) {
        accept_batch(now);
        continue;
      }
      auto it = connections.find(token);
      if (it != connections.end() && !on_ready(it->second, events[i].events, now)) close(token);
    }
    std::vector<std::uint64_t> expired;
    for (const auto& [token, c] : connections)
      if (c.deadline <= now) expired.push_back(token);
    for (std::uint64_t token : expired) {
      auto it = connections.find(token);
      if (it != connections.end() && !on_deadline(it->second, now)) close(token);
    }
    resume_accepting(now);
  }
}

void Server::Loop::collect_outcomes(Clock::time_point now) {
  std::uint64_t count;
  [[maybe_unused]] ssize_t n = ::read(done.get(), &count, sizeof count);
  for (const Outcome& outcome : pool->take_outcomes()) {
    auto it = connections.find(outcome.token);
    if (it == connections.end()) continue;  // closed while its handler ran
    finish(it->second, outcome, true, now);
    if (!advance(it->second, now)) close(outcome.token);
  }
}

// stop(): pending responses get what the sockets take now; requests in a worker get their
// answers once the workers have returned (see ServerOptions::workers).
void Server::Loop::shut_down() {
  for (auto& [t, c] : connections)
    if (c.phase == Phase::kWriting) write_pending(c);
  std::erase_if(connections,
                [](const auto& entry) { return entry.second.phase != Phase::kHandling; });
  if (pool) {
    pool->drain();
    const Clock::time_point now = Clock::now();
    for (const Outcome& outcome : pool->take_outcomes()) {
      auto it = connections.find(outcome.token);
      if (it == connections.end()) continue;
      finish(it->second, outcome, false, now);
      write_pending(it->second);
    }
  }
  connections.clear();
}

Server::Server(std::unique_ptr<Loop> loop) : loop_(std::move(loop)) {}

Result<std::unique_ptr<Server>> Server::start(Fd listener, Handler handler, ServerOptions options) {
  const int flags = ::fcntl(listener.get(), F_GETFL);
  if (flags < 0 || ::fcntl(listener.get(), F_SETFL, flags | O_NONBLOCK) < 0)
    return os_error("HTTP server: make the listener non-blocking");
  auto loop = std::make_unique<Loop>();
  loop->listener = std::move(listener);
  loop->handler = std::move(handler);
  loop->options = std::move(options);
  loop->epoll = Fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!loop->epoll.valid()) return os_error("HTTP server: epoll_create1");
  loop->wake = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!loop->wake.valid()) return os_error("HTTP server: eventfd");
  std::vector<std::pair<int, std::uint64_t>> watched = {{loop->listener.get(), kListenerToken},
                                                        {loop->wake.get(), kWakeToken}};
  if (loop->options.workers > 0) {
    loop->done = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!loop->done.valid()) return os_error("HTTP server: eventfd");
    watched.emplace_back(loop->done.get(), kDoneToken);
  }
  for (auto [fd, token] : watched) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = token;
    if (::epoll_ctl(loop->epoll.get(), EPOLL_CTL_ADD, fd, &ev) < 0)
      return os_error("HTTP server: epoll_ctl");
  }
  if (const auto& tls = loop->options.tls) {
    if (tls->context) {
      loop->tls = tls->context;
    } else if (tls->certificate_chain_pem.empty() || tls->private_key_pem.empty()) {
      return Error(
          "HTTP server: TLS options name neither a context nor a certificate chain and key file");
    } else {
      auto context = make_server_tls_context(tls->certificate_chain_pem, tls->private_key_pem);
      if (!context) return context.error().with_context("HTTP server");
      loop->tls = std::move(*context);
    }
  }
  if (loop->options.workers > 0)
    loop->pool =
        std::make_unique<WorkerPool>(loop->options.workers, loop->handler, loop->done.get());
  std::unique_ptr<Server> server(new Server(std::move(loop)));
  std::promise<Status> ready;
  std::future<Status> init = ready.get_future();
  server->thread_ = std::thread([l = server->loop_.get(), ready = std::move(ready)]() mutable {
    Status st = l->options.thread_init ? l->options.thread_init() : Status();
    const bool ok = st.ok();
    ready.set_value(std::move(st));
    if (ok) l->run();
  });
  if (Status st = init.get(); !st) {
    server->thread_.join();
    return st.error().with_context("HTTP server thread");
  }
  return server;
}

Server::~Server() {
  stop();
}

void Server::stop() {
  if (!thread_.joinable()) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(loop_->wake.get(), &one, sizeof one);
  thread_.join();
  loop_->listener.reset();
}

}  // namespace cloister::http
