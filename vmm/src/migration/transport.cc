#include "cloister/vmm/migration/transport.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "cloister/common/socket.h"

namespace cloister::vmm {
namespace {

// Waits until `fd` is ready for `events`, at most `timeout`; false on timeout or error.
bool wait_ready(int fd, short events, std::chrono::milliseconds timeout) {
  pollfd p{fd, events, 0};
  for (;;) {
    const int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (n < 0 && errno == EINTR) continue;
    return n > 0;
  }
}

}  // namespace

Result<std::string> migration_socket_path(std::string_view address) {
  constexpr std::string_view kScheme = "unix:";
  if (!address.starts_with(kScheme) || address.size() == kScheme.size())
    return Error(
        ErrorCode::kInvalidArgument,
        "migration destination: expected unix:PATH, found \"" + std::string(address) + "\"");
  return std::string(address.substr(kScheme.size()));
}

Result<MigrationSender> MigrationSender::connect(std::string_view address,
                                                 std::chrono::milliseconds timeout) {
  CLOISTER_TRY(std::string path, migration_socket_path(address));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return Error(ErrorCode::kInvalidArgument, "migration destination " + std::string(address) +
                                                  ": path is " + std::to_string(path.size()) +
                                                  " bytes; expected at most " +
                                                  std::to_string(sizeof addr.sun_path - 1));
  std::memcpy(addr.sun_path, path.data(), path.size());
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return os_error("migration: socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    return Error(ErrorCode::kUnavailable,
                 os_error("migration destination " + std::string(address) + ": connect").message());
  return MigrationSender(std::move(fd), std::string(address), timeout);
}

Error MigrationSender::lost(const std::string& what) const {
  return Error(ErrorCode::kUnavailable, "migration destination " + address_ + ": " + what);
}

Status MigrationSender::send_all(ByteView bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      if (!wait_ready(fd_.get(), POLLOUT, timeout_))
        return lost("not reading the stream for " + std::to_string(timeout_.count()) + " ms");
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
  for (;;) {
    if (!wait_ready(fd_.get(), POLLIN, timeout_))
      return lost("no answer to the stream within " + std::to_string(timeout_.count()) + " ms");
    std::uint8_t answer = 0;
    const ssize_t n = ::recv(fd_.get(), &answer, 1, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return lost(os_error("recv").message());
    if (n == 0)
      return lost("closed the connection instead of accepting the VM (its log names the reason)");
    if (answer != kMigrationAccepted)
      return lost("answered byte " + std::to_string(answer) + ", expected " +
                  std::to_string(kMigrationAccepted) + " (accepted)");
    return {};
  }
}

Result<Fd> listen_migration(std::string_view address) {
  CLOISTER_TRY(std::string path, migration_socket_path(address));
  return listen_unix(path, 1);
}

Result<Fd> accept_migration(Fd listener, std::string_view address) {
  CLOISTER_TRY(std::string path, migration_socket_path(address));
  Fd conn;
  for (;;) {
    conn = Fd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (conn.valid() || errno != EINTR) break;
  }
  ::unlink(path.c_str());
  if (!conn.valid()) return os_error("accept on " + std::string(address));
  return conn;
}

MigrationReadFn migration_reader(int fd, std::chrono::milliseconds timeout) {
  return [fd, timeout](std::span<std::uint8_t> out) -> Status {
    while (!out.empty()) {
      if (!wait_ready(fd, POLLIN, timeout))
        return Error("no data from the source for " + std::to_string(timeout.count()) + " ms");
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
  const std::uint8_t answer = kMigrationAccepted;
  if (::send(fd, &answer, 1, MSG_NOSIGNAL) != 1) return os_error("migration: send the answer");
  return {};
}

}  // namespace cloister::vmm
