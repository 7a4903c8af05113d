// The live-migration stream's two ends over a UNIX stream socket (stream.h is the format):
// MigrationSender for the source's `PUT vm.migrate`, accept_migration() and
// migration_reader() for `cloister-vmm receive`. Every wait on the peer is bounded by a timeout,
// so a destination that stops reading cannot hold the source's VM paused.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"
#include "cloister/vmm/fd.h"
#include "cloister/vmm/migration/stream.h"

namespace cloister::vmm {

// The path of a "unix:PATH" migration address (the only transport); anything else is
// ErrorCode::kInvalidArgument naming the address.
Result<std::string> migration_socket_path(std::string_view address);

class MigrationSender {
 public:
  // Connects to the destination listening at `address` ("unix:PATH"). A bad address is
  // kInvalidArgument; a destination that does not answer is kUnavailable. Sends and the wait for
  // the destination's answer each give up after `timeout`.
  static Result<MigrationSender> connect(std::string_view address,
                                         std::chrono::milliseconds timeout);

  Status send_header(std::uint64_t memory_bytes);
  // Memory records for the `size` bytes at `host`, which lie at `offset` of the memory layout
  // (both whole pages), in chunks of at most kMigrationChunkBytes.
  Status send_pages(std::uint64_t offset, const std::uint8_t* host, std::uint64_t size);
  Status send_state(ByteView state);
  // Waits for the destination's kMigrationAccepted; fails (kUnavailable) when it closes instead.
  Status await_accepted();
  std::uint64_t bytes_sent() const { return bytes_sent_; }

 private:
  MigrationSender(Fd fd, std::string address, std::chrono::milliseconds timeout)
      : fd_(std::move(fd)), address_(std::move(address)), timeout_(timeout) {}
  Status send_all(ByteView bytes);
  Error lost(const std::string& what) const;

  Fd fd_;
  std::string address_;
  std::chrono::milliseconds timeout_;
  std::uint64_t sequence_ = 0;
  std::uint64_t bytes_sent_ = 0;
};

// Listens at `address` ("unix:PATH") for one source.
Result<Fd> listen_migration(std::string_view address);
// Accepts the source on `listener` (from listen_migration(address)), then closes the listening
// socket and removes its path: the connection to read the stream from.
Result<Fd> accept_migration(Fd listener, std::string_view address);
// Reads the stream from `fd`; a read that waits longer than `timeout` fails (a stalled source).
MigrationReadFn migration_reader(int fd, std::chrono::milliseconds timeout);
// The destination's answer once its VM is built.
Status send_migration_accepted(int fd);

}  // namespace cloister::vmm
