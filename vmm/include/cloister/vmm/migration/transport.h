// The live-migration stream's two ends over a UNIX or TCP stream socket (stream.h is the format):
// MigrationSender for the source's `PUT vm.migrate`, accept_migration() and
// migration_reader() for `cloister-vmm receive`. Every wait on the peer is bounded by a timeout,
// so a destination that stops reading cannot hold the source's VM paused; on the source, one
// deadline covers each whole record, so one that trickles cannot either.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"
#include "cloister/vmm/fd.h"
#include "cloister/vmm/migration/stream.h"

namespace cloister::vmm {

// A migration address: "unix:PATH", or "tcp:HOST:PORT" with HOST an IPv4 literal, a bracketed
// IPv6 literal ("tcp:[::1]:7000") or localhost. Names are not resolved: the thread that
// migrates may open no file, so it has no resolver. Port 0 (listening only) lets the kernel
// pick one.
struct MigrationAddress {
  int family = 0;    // AF_UNIX, AF_INET or AF_INET6
  std::string path;  // AF_UNIX
  std::string host;  // AF_INET, AF_INET6: the literal, without brackets
  std::uint16_t port = 0;
};
// Anything else is ErrorCode::kInvalidArgument quoting the address and naming the forms.
Result<MigrationAddress> parse_migration_address(std::string_view address);

// The socket families MigrationSender::connect() creates (AF_UNIX, AF_INET, AF_INET6): what the
// migrating thread's seccomp filter permits.
std::vector<int> migration_socket_families();

// How often a sender waiting on its destination checks whether it was cancelled.
inline constexpr std::chrono::milliseconds kMigrationCancelCheck{100};

class MigrationSender {
 public:
  // Connects to the destination listening at `address` ("unix:PATH", "tcp:HOST:PORT"; TCP with
  // TCP_NODELAY, so the last record does not wait on Nagle's algorithm). A bad address is
  // kInvalidArgument; a destination that does not answer is kUnavailable. Each record's send
  // and the wait for the destination's answer give up (kUnavailable) after `timeout` — one
  // deadline for the whole record, however the destination trickles it in — and any wait on
  // the destination gives up (kFailedPrecondition) within kMigrationCancelCheck of `cancelled`
  // returning true (the VMM stopping).
  static Result<MigrationSender> connect(std::string_view address,
                                         std::chrono::milliseconds timeout,
                                         std::function<bool()> cancelled = {});

  Status send_header(std::uint64_t memory_bytes);
  // Memory records for the `size` bytes at `host`, which lie at `offset` of the memory layout
  // (both whole pages), in chunks of at most kMigrationChunkBytes.
  Status send_pages(std::uint64_t offset, const std::uint8_t* host, std::uint64_t size);
  Status send_state(ByteView state);
  // Waits for the destination's kMigrationAccepted: ok when it came (the guest runs there).
  // Fails (kUnavailable) when the destination closes the connection instead, which is its
  // refusal, or resets a unix socket, having left part of the stream unread (refused() turns
  // true: it runs nothing), and when the outcome is unknown — no answer
  // within the timeout, a broken connection (over TCP a reset can come from anything on the
  // path), another byte, the VMM stopping — in which case the
  // destination may be running the guest (its answer can be on the way) and refused() is false.
  Status await_accepted();
  bool refused() const { return refused_; }
  std::uint64_t bytes_sent() const { return bytes_sent_; }

 private:
  MigrationSender(Fd fd, std::string address, bool local, std::chrono::milliseconds timeout,
                  std::function<bool()> cancelled)
      : fd_(std::move(fd)),
        address_(std::move(address)),
        local_(local),
        timeout_(timeout),
        cancelled_(std::move(cancelled)) {}
  Status send_all(ByteView bytes);
  // Waits until the socket is ready for `events`: ok, or why not (`what` names the wait).
  Status wait(short events, std::chrono::steady_clock::time_point deadline,
              const std::string& what) const;
  Error lost(const std::string& what) const;

  Fd fd_;
  std::string address_;
  bool local_;  // a unix socket: a reset can come only from the destination itself
  std::chrono::milliseconds timeout_;
  std::function<bool()> cancelled_;
  std::uint64_t sequence_ = 0;
  std::uint64_t bytes_sent_ = 0;
  bool refused_ = false;
};

// Listens at `address` ("unix:PATH", "tcp:HOST:PORT") for one source.
Result<Fd> listen_migration(std::string_view address);
// The address `listener` (from listen_migration(address)) listens at, with the port the kernel
// picked for "tcp:HOST:0": what a source is to be given.
Result<std::string> listening_migration_address(int listener, std::string_view address);
// Accepts the source on `listener` (from listen_migration(address)), then closes the listening
// socket and removes a UNIX socket's path: the connection to read the stream from.
Result<Fd> accept_migration(Fd listener, std::string_view address);
// Reads the stream from `fd`; a read not complete within `timeout` fails (a stalled source, or
// one trickling a record in).
MigrationReadFn migration_reader(int fd, std::chrono::milliseconds timeout);
// The destination's answer once its VM is built. Refused (kUnavailable, nothing sent) when the
// source has closed the connection or sent more: a source that gave up waiting keeps the VM, so
// the destination must not run it too.
Status send_migration_accepted(int fd);

}  // namespace cloister::vmm
