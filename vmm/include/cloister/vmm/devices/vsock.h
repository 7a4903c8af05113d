// virtio-vsock (virtio 1.2 §5.10) with Firecracker's "hybrid" host side:
//   - a guest stream connection to the host (CID 2) port P becomes a connection to the host
//     UNIX socket "<uds_path>_<P>";
//   - a host process connects to the UNIX socket uds_path (the device listens there), writes
//     "CONNECT <P>\n" and, once the guest accepts on its port P, reads "OK <host port>\n";
//     after that the socket carries the stream.
// Packets, credit and connection state follow §5.10.6.
//
// Threading: the notifying vCPU only wakes the device thread. The device thread owns every
// connection and does all socket I/O, and takes the transport lock only for each ring access
// (VirtqueueLink), so a host peer never stalls a vCPU touching the device's registers.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "cloister/vmm/config/config.h"
#include "cloister/vmm/devices/virtio.h"
#include "cloister/vmm/fd.h"

namespace cloister::vmm {

namespace vsock {
inline constexpr std::uint64_t kHostCid = 2;
inline constexpr std::size_t kHeaderSize = 44;  // struct virtio_vsock_hdr
inline constexpr std::uint16_t kTypeStream = 1;
inline constexpr std::uint16_t kOpRequest = 1, kOpResponse = 2, kOpRst = 3, kOpShutdown = 4,
                               kOpRw = 5, kOpCreditUpdate = 6, kOpCreditRequest = 7;
inline constexpr std::uint32_t kShutdownRcv = 1, kShutdownSend = 2;
inline constexpr std::uint32_t kBufAlloc = 256 * 1024;  // what we can buffer per connection
inline constexpr std::size_t kMaxPayload = 64 * 1024;
inline constexpr std::size_t kMaxConnections = 64;

struct Header {
  std::uint64_t src_cid = 0, dst_cid = 0;
  std::uint32_t src_port = 0, dst_port = 0, len = 0;
  std::uint16_t type = 0, op = 0;
  std::uint32_t flags = 0, buf_alloc = 0, fwd_cnt = 0;
};
Header parse_header(ByteView bytes);  // bytes.size() >= kHeaderSize
void write_header(const Header& h, std::span<std::uint8_t> out);
}  // namespace vsock

class VirtioVsock final : public VirtioDevice {
 public:
  // Listens on config.uds_path (guest_cid >= 3).
  static Result<std::unique_ptr<VirtioVsock>> create(const VsockConfig& config, Logger& log,
                                                     Metrics& metrics);
  ~VirtioVsock() override;

  std::string_view name() const override { return "virtio-vsock"; }
  std::uint32_t device_id() const override { return virtio::kIdVsock; }
  std::uint64_t features() const override { return virtio::kFVersion1; }
  std::uint16_t num_queues() const override { return 3; }  // rx, tx, event
  std::uint16_t queue_max_size() const override { return 256; }
  void read_config(std::uint64_t offset, std::span<std::uint8_t> data) const override;
  // The device thread runs under the kVsock filter: sockets of family AF_UNIX only.
  Status start(VirtqueueLink& link, const DeviceSandbox& sandbox) override;
  void kick() override;
  void stop() override;

 private:
  struct Connection {
    Fd socket;
    std::uint32_t guest_port = 0, host_port = 0;
    std::uint32_t peer_buf_alloc = 0, peer_fwd_cnt = 0;  // the guest's receive window
    std::uint32_t rx_cnt = 0;                            // bytes we sent to the guest
    std::uint32_t fwd_cnt = 0;                           // guest bytes we passed to the host
    std::uint32_t last_fwd_cnt_sent = 0;
    bool host_eof = false;
    bool connecting = false;  // host-initiated: REQUEST sent, the guest has not answered yet
  };
  // A host connection on uds_path that has not finished its "CONNECT <port>\n" line.
  struct HostHandshake {
    Fd socket;
    std::string line;
  };
  using Key = std::pair<std::uint32_t, std::uint32_t>;  // (guest port, host port)

  VirtioVsock(const VsockConfig& config, Fd epoll, Fd wake, Fd listener, Logger& log,
              Metrics& metrics);
  void run();
  void round();
  void drop_all();
  void accept_host_connections();
  void advance_handshakes();
  void handle_tx(std::uint64_t generation);
  void handle_packet(const vsock::Header& h, ByteView payload);
  void deliver_rx(std::uint64_t generation);
  void queue_control(const Connection* c, std::uint32_t guest_port, std::uint32_t host_port,
                     std::uint16_t op, std::uint32_t flags = 0);
  void close_connection(Key key);
  void watch(int fd);

  const std::uint64_t guest_cid_;
  const std::string uds_path_;
  Fd epoll_;
  Fd wake_;
  Fd listener_;  // uds_path
  Logger& log_;
  Metrics& metrics_;
  VirtqueueLink* link_ = nullptr;
  std::atomic<bool> stopping_{false};
  std::thread thread_;

  // Device thread only.
  std::uint64_t generation_ = 0;
  std::map<Key, Connection> connections_;
  std::deque<vsock::Header> control_;  // packets for the guest without payload
  std::vector<HostHandshake> handshakes_;
  std::uint32_t next_host_port_ = 1u << 30;  // local ports of host-initiated connections
};

}  // namespace cloister::vmm
