#include "cloister/vmm/migration/transport.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "cloister/common/socket.h"

namespace cloister::vmm {
namespace {

using Clock = std::chrono::steady_clock;

enum class Ready { kYes, kTimedOut, kCancelled };

// Waits until `fd` is ready for `events` (or in error: the call that follows says which) or
// `deadline` passes, in slices of kMigrationCancelCheck while `cancelled` can end the wait.
Ready wait_ready(int fd, short events, Clock::time_point deadline,
                 const std::function<bool()>& cancelled) {
  pollfd p{fd, events, 0};
  for (;;) {
    if (cancelled && cancelled()) return Ready::kCancelled;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Ready::kTimedOut;
    const auto slice = cancelled ? std::min(left, kMigrationCancelCheck) : left;
    const int n = ::poll(&p, 1, static_cast<int>(slice.count()));
    if (n > 0) return Ready::kYes;
    if (n < 0 && errno != EINTR) return Ready::kYes;
  }
}

}  // namespace

Result<MigrationAddress> parse_migration_address(std::string_view address) {
  const std::string quoted = "migration address \"" + std::string(address) + "\"";
  MigrationAddress out;
  if (address.starts_with("unix:") && address.size() > 5) {
    out.family = AF_UNIX;
    out.path = std::string(address.substr(5));
    return out;
  }
  if (address.starts_with("tcp:")) {
    auto host_port = parse_host_port(address.substr(4));
    if (!host_port) return Error(quoted + ": " + host_port.error().message());
    auto resolved = tcp_address(host_port->first, host_port->second);
    if (!resolved) return Error(quoted + ": " + resolved.error().message());
    out.family = resolved->family();
    out.host = host_port->first;
    out.port = host_port->second;
    return out;
  }
  return Error(quoted + ": expected unix:PATH or tcp:HOST:PORT");
}

std::vector<int> migration_socket_families() {
  return {AF_UNIX, AF_INET, AF_INET6};
}

namespace {

// A non-blocking stream socket connected to `address`, or the reason (kUnavailable for a
// destination that refuses or does not answer within `timeout`).
Result<Fd> connect_migration(const MigrationAddress& address, std::string_view text,
                             std::chrono::milliseconds timeout,
                             const std::function<bool()>& cancelled) {
  const std::string where = "migration destination " + std::string(text);
  sockaddr_storage storage{};
  socklen_t length = 0;
  if (address.family == AF_UNIX) {
    auto* un = reinterpret_cast<sockaddr_un*>(&storage);
    if (address.path.size() >= sizeof un->sun_path)
      return Error(ErrorCode::kInvalidArgument,
                   where + ": path is " + std::to_string(address.path.size()) +
                       " bytes; expected at most " + std::to_string(sizeof un->sun_path - 1));
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, address.path.data(), address.path.size());
    length = sizeof *un;
  } else {
    CLOISTER_TRY(TcpAddress tcp, tcp_address(address.host, address.port));
    storage = tcp.storage;
    length = tcp.length;
  }
  Fd fd(::socket(address.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return os_error("migration: socket");
  const int one = 1;
  if (address.family != AF_UNIX &&
      ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
    return os_error("migration: TCP_NODELAY");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&storage), length) == 0) return fd;
  // A TCP connect completes later; a UNIX one either completes at once or fails.
  if (errno != EINPROGRESS || address.family == AF_UNIX)
    return Error(ErrorCode::kUnavailable, os_error(where + ": connect").message());
  switch (wait_ready(fd.get(), POLLOUT, Clock::now() + timeout, cancelled)) {
    case Ready::kYes:
      break;
    case Ready::kTimedOut:
      return Error(ErrorCode::kUnavailable, where + ": connect: no answer within " +
                                                std::to_string(timeout.count()) + " ms");
    case Ready::kCancelled:
      return Error(ErrorCode::kFailedPrecondition, where + ": connect: cancelled");
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) < 0)
    return os_error("migration: getsockopt(SO_ERROR)");
  if (err != 0) return Error(ErrorCode::kUnavailable, os_error(where + ": connect", err).message());
  return fd;
}

}  // namespace

Result<MigrationSender> MigrationSender::connect(std::string_view address,
                                                 std::chrono::milliseconds timeout,
                                                 std::function<bool()> cancelled) {
  CLOISTER_TRY(MigrationAddress parsed, parse_migration_address(address));
  CLOISTER_TRY(Fd fd, connect_migration(parsed, address, timeout, cancelled));
  return MigrationSender(std::move(fd), std::string(address), parsed.family == AF_UNIX, timeout,
                         std::move(cancelled));
}

Status MigrationSender::wait(short events, Clock::time_point deadline,
                             const std::string& what) const {
  switch (wait_ready(fd_.get(), events, deadline, cancelled_)) {
    case Ready::kYes:
      return {};
    case Ready::kTimedOut:
      return lost(what);
    case Ready::kCancelled:
      return Error(ErrorCode::kFailedPrecondition,
                   "migration destination " + address_ + ": cancelled (the VMM is stopping)");
  }
  return {};
}

Error MigrationSender::lost(const std::string& what) const {
  return Error(ErrorCode::kUnavailable, "migration destination " + address_ + ": " + what);
}

Status MigrationSender::send_all(ByteView bytes) {
  const auto deadline = Clock::now() + timeout_;
  const std::string stalled = "did not take a " + std::to_string(bytes.size()) +
                              "-byte record within " + std::to_string(timeout_.count()) +
                              " ms (not reading the stream, or too slowly)";
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      CLOISTER_CHECK_OK(wait(POLLOUT, deadline, stalled));
      continue;
    }
    if (n < 0) return lost(os_error("send").message() + " (the destination went away)");
    bytes = bytes.subspan(static_cast<std::size_t>(n));
    bytes_sent_ += static_cast<std::uint64_t>(n);
  }
  return {};
}

Status MigrationSender::send_header(std::uint64_t memory_bytes) {
  return send_all(encode_migration_header(memory_bytes));
}

Status MigrationSender::send_pages(std::uint64_t offset, const std::uint8_t* host,
                                   std::uint64_t size) {
  for (std::uint64_t done = 0; done < size;) {
    const std::uint64_t n = std::min<std::uint64_t>(kMigrationChunkBytes, size - done);
    CLOISTER_CHECK_OK(send_all(
        encode_migration_record(MigrationRecordType::kMemory, sequence_++,
                                encode_memory_payload(offset + done, ByteView(host + done, n)))));
    done += n;
  }
  return {};
}

Status MigrationSender::send_state(ByteView state) {
  return send_all(encode_migration_record(MigrationRecordType::kState, sequence_++, state));
}

Status MigrationSender::await_accepted() {
  const auto deadline = Clock::now() + timeout_;
  for (;;) {
    CLOISTER_CHECK_OK(
        wait(POLLIN, deadline,
             "no answer to the stream within " + std::to_string(timeout_.count()) + " ms"));
    std::uint8_t answer = 0;
    const ssize_t n = ::recv(fd_.get(), &answer, 1, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    // On a unix socket a reset means the destination closed with bytes of the stream unread
    // (Linux resets the peer of a socket closed with data still queued): it never had the whole
    // stream, so it runs nothing. Over TCP a reset may come from anything on the path while the
    // destination runs the guest: the outcome stays unknown.
    if (n < 0 && errno == ECONNRESET && local_) {
      refused_ = true;
      return lost(os_error("recv").message() +
                  " (the destination went away without reading the whole stream)");
    }
    if (n < 0) return lost(os_error("recv").message());
    if (n == 0) {
      refused_ = true;
      return lost("closed the connection instead of accepting the VM (its log names the reason)");
    }
    if (answer != kMigrationAccepted)
      return lost("answered byte " + std::to_string(answer) + ", expected " +
                  std::to_string(kMigrationAccepted) + " (accepted)");
    return {};
  }
}

Result<Fd> listen_migration(std::string_view address) {
  CLOISTER_TRY(MigrationAddress parsed, parse_migration_address(address));
  if (parsed.family == AF_UNIX) return listen_unix(parsed.path, 1);
  return listen_tcp(parsed.host, parsed.port, 1);
}

Result<std::string> listening_migration_address(int listener, std::string_view address) {
  CLOISTER_TRY(MigrationAddress parsed, parse_migration_address(address));
  if (parsed.family == AF_UNIX) return std::string(address);
  CLOISTER_TRY(std::uint16_t port, local_port(listener));
  const std::string host = parsed.family == AF_INET6 ? "[" + parsed.host + "]" : parsed.host;
  return "tcp:" + host + ":" + std::to_string(port);
}

Result<Fd> accept_migration(Fd listener, std::string_view address) {
  CLOISTER_TRY(MigrationAddress parsed, parse_migration_address(address));
  Fd conn;
  for (;;) {
    conn = Fd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (conn.valid() || errno != EINTR) break;
  }
  if (parsed.family == AF_UNIX) ::unlink(parsed.path.c_str());
  if (!conn.valid()) return os_error("accept on " + std::string(address));
  return conn;
}

MigrationReadFn migration_reader(int fd, std::chrono::milliseconds timeout) {
  return [fd, timeout](std::span<std::uint8_t> out) -> Status {
    const auto deadline = Clock::now() + timeout;
    const std::size_t wanted = out.size();
    while (!out.empty()) {
      if (wait_ready(fd, POLLIN, deadline, {}) != Ready::kYes)
        return Error("the source did not send " + std::to_string(wanted) + " bytes within " +
                     std::to_string(timeout.count()) + " ms (a stalled or trickling source)");
      const ssize_t n = ::recv(fd, out.data(), out.size(), 0);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n < 0) return os_error("recv");
      if (n == 0) return Error("end of stream (the source closed the connection)");
      out = out.subspan(static_cast<std::size_t>(n));
    }
    return {};
  };
}

Status send_migration_accepted(int fd) {
  std::uint8_t next = 0;
  ssize_t peeked = 0;
  do {
    peeked = ::recv(fd, &next, 1, MSG_PEEK | MSG_DONTWAIT);
  } while (peeked < 0 && errno == EINTR);
  if (peeked == 0)
    return Error(ErrorCode::kUnavailable,
                 "migration: the source closed the connection before the VM was accepted (it "
                 "gave up waiting and keeps the VM)");
  if (peeked > 0)
    return Error(ErrorCode::kUnavailable,
                 "migration: the source sent byte " + std::to_string(next) +
                     " after its state, expected nothing until the answer");
  if (errno != EAGAIN && errno != EWOULDBLOCK) return os_error("migration: check the source");
  const std::uint8_t answer = kMigrationAccepted;
  if (::send(fd, &answer, 1, MSG_NOSIGNAL) != 1) return os_error("migration: send the answer");
  return {};
}

}  // namespace cloister::vmm
