#include "cloister/common/http_server.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <future>
#include <map>
#include <optional>
#include <utility>
#include <variant>
#include <vector>

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
// epoll tokens: the listener, the stop eventfd, then connections numbered from kFirstConnection.
constexpr std::uint64_t kListenerToken = 0;
constexpr std::uint64_t kWakeToken = 1;
constexpr std::uint64_t kFirstConnection = 2;

enum class Phase {
  kIdle,       // waiting for a request's first byte
  kReading,    // part of a request is buffered
  kWriting,    // a response is pending; nothing is read
  kLingering,  // the last response is written and the write side shut; discarding input
};

struct Connection {
  std::uint64_t token = 0;
  Fd fd;
  Phase phase = Phase::kIdle;
  Clock::time_point deadline;
  Clock::time_point idle_since;
  std::uint32_t interest = EPOLLIN;
  std::string in;   // received bytes not yet parsed
  std::string out;  // the pending response
  std::size_t written = 0;
  bool close_after_write = false;
  std::size_t discarded = 0;
};

enum class Progress { kDone, kBlocked, kFailed };

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
  Handler handler;
  ServerOptions options;
  std::map<std::uint64_t, Connection> connections;  // by token, i.e. in accept order
  std::uint64_t next_token = kFirstConnection;
  std::optional<Clock::time_point> accept_paused_until;

  void run();
  int wait_timeout_ms(Clock::time_point now) const;
  void accept_batch(Clock::time_point now);
  bool evict_oldest_idle();
  void refuse_unavailable(Fd fd);
  void pause_accepting(Clock::time_point now);
  void resume_accepting(Clock::time_point now);
  // Each returns false when the connection must be closed.
  bool on_ready(Connection& c, std::uint32_t events, Clock::time_point now);
  bool advance(Connection& c, Clock::time_point now);
  bool on_deadline(Connection& c, Clock::time_point now);
  void answer(Connection& c, const Response& response, bool keep_alive, Clock::time_point now);
  void refuse(Connection& c, int status, const std::string& reason, Clock::time_point now);
  void become_idle(Connection& c, Clock::time_point now);
  void start_reading(Connection& c, Clock::time_point now);
  void want(Connection& c, std::uint32_t interest);
  void close(std::uint64_t token);
  void emit(ServerEvent::Kind kind, int status, std::string message) const;
  Response error_response(int status, const std::string& reason) const;
};

namespace {

Progress write_pending(Connection& c) {
  while (c.written < c.out.size()) {
    ssize_t n = ::send(c.fd.get(), c.out.data() + c.written, c.out.size() - c.written,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Progress::kBlocked;
    if (n <= 0) return Progress::kFailed;
    c.written += static_cast<std::size_t>(n);
  }
  c.out.clear();
  c.written = 0;
  return Progress::kDone;
}

}  // namespace

void Server::Loop::emit(ServerEvent::Kind kind, int status, std::string message) const {
  if (options.on_event) options.on_event(ServerEvent{kind, status, std::move(message)});
}

Response Server::Loop::error_response(int status, const std::string& reason) const {
  return options.error_response ? options.error_response(status, reason)
                                : plain_error(status, reason);
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
  c.deadline = now + options.request_timeout;
}

void Server::Loop::answer(Connection& c, const Response& response, bool keep_alive,
                          Clock::time_point now) {
  c.out = format_response(response, options.name, keep_alive);
  c.written = 0;
  c.close_after_write = !keep_alive;
  c.phase = Phase::kWriting;
  c.deadline = now + options.response_timeout;
}

void Server::Loop::refuse(Connection& c, int status, const std::string& reason,
                          Clock::time_point now) {
  emit(ServerEvent::Kind::kRejected, status, reason);
  c.in.clear();
  answer(c, error_response(status, reason), false, now);
}

// Drives the connection as far as it goes without blocking: parses buffered requests, runs the
// handler, writes responses, and leaves the connection waiting for the one event it needs.
bool Server::Loop::advance(Connection& c, Clock::time_point now) {
  for (;;) {
    switch (c.phase) {
      case Phase::kIdle:
      case Phase::kLingering:
        want(c, EPOLLIN);
        return true;
      case Phase::kReading: {
        ParseResult parsed = parse_request(c.in, options.limits);
        if (std::holds_alternative<Incomplete>(parsed)) {
          want(c, EPOLLIN);
          return true;
        }
        if (auto* rejection = std::get_if<Rejection>(&parsed)) {
          refuse(c, rejection->status, rejection->reason, now);
          break;
        }
        auto& [request, consumed] = std::get<Parsed>(parsed);
        c.in.erase(0, consumed);
        try {
          answer(c, handler(request), request.keep_alive, now);
        } catch (const std::exception& e) {
          const std::string reason = request.method + " " + request.path + ": " + e.what();
          emit(ServerEvent::Kind::kHandlerFailed, 500, reason);
          answer(c, error_response(500, reason), false, now);
        }
        break;
      }
      case Phase::kWriting: {
        const Progress progress = write_pending(c);
        if (progress == Progress::kFailed) return false;
        if (progress == Progress::kBlocked) {
          want(c, EPOLLOUT);
          return true;
        }
        if (c.close_after_write) {
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
  if (c.phase == Phase::kWriting) return advance(c, now);
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return true;
  char chunk[kReadChunk];
  ssize_t n = ::recv(c.fd.get(), chunk, sizeof chunk, MSG_DONTWAIT);
  if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return true;
  if (n <= 0) return false;  // closed by the client, or an error
  const auto got = static_cast<std::size_t>(n);
  if (c.phase == Phase::kLingering) {
    c.discarded += got;
    return c.discarded <= options.limits.max_header_bytes + options.limits.max_body_bytes;
  }
  if (c.phase == Phase::kIdle) start_reading(c, now);
  c.in.append(chunk, got);
  return advance(c, now);
}

bool Server::Loop::on_deadline(Connection& c, Clock::time_point now) {
  switch (c.phase) {
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

// Answered connections count as idle: those waiting for a next request and those lingering
// after their last answer.
bool Server::Loop::evict_oldest_idle() {
  auto oldest = connections.end();
  for (auto it = connections.begin(); it != connections.end(); ++it) {
    const Connection& c = it->second;
    if ((c.phase == Phase::kIdle || c.phase == Phase::kLingering) &&
        (oldest == connections.end() || c.idle_since < oldest->second.idle_since))
      oldest = it;
  }
  if (oldest == connections.end()) return false;
  emit(ServerEvent::Kind::kEvicted, 0,
       "closed the connection idle longest to admit a new one (" +
           std::to_string(options.max_connections) + " connections at most)");
  close(oldest->first);
  return true;
}

void Server::Loop::refuse_unavailable(Fd fd) {
  const std::string reason = "the server has " + std::to_string(options.max_connections) +
                             " connections open, none of them idle; retry later";
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
    Fd fd(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
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
    if (connections.size() >= options.max_connections && !evict_oldest_idle()) {
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
    become_idle(c, now);
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
        for (auto& [t, c] : connections)
          if (c.phase == Phase::kWriting) write_pending(c);
        connections.clear();
        return;
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
  for (auto [fd, token] :
       {std::pair{loop->listener.get(), kListenerToken}, std::pair{loop->wake.get(), kWakeToken}}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = token;
    if (::epoll_ctl(loop->epoll.get(), EPOLL_CTL_ADD, fd, &ev) < 0)
      return os_error("HTTP server: epoll_ctl");
  }
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
