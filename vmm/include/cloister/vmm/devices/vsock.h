// virtio-vsock (virtio 1.2 §5.10) with Firecracker's "hybrid" host side:
//   - a guest stream connection to the host (CID 2) port P becomes a connection to the host
//     UNIX socket "<uds_path>_<P>";
//   - a host process connects to the UNIX socket uds_path (the device listens there), writes
//     "CONNECT <P>\n" and, once the guest accepts on its port P, reads "OK <host port>\n";
//     after that the socket carries the stream.
// Packets, credit and connection state follow §5.10.6.
//
// Threading: the notifying vCPU only wakes the device thread. The device thread owns every
// connection and does all socket I/O, non-blocking, and takes the transport lock only for each
// ring access (VirtqueueLink), so no host peer can stall a vCPU or the other connections.
//
// Bounds, so that no host peer can hold the device or lock others out:
//   - bytes the guest sends wait in a per-connection buffer of kBufAlloc bytes (the credit the
//     guest is given) until the host socket takes them; bytes that have waited longer than
//     host_send_timeout_ms (VsockConfig) reset the connection: RST to the guest (§5.10.6.5),
//     the host socket closed. A guest that sends past its credit is reset too;
//   - a host connection must complete its handshake ("CONNECT <P>\n" and the guest's answer)
//     within handshake_timeout_ms, and at most kMaxPendingHostConnections may be in their
//     handshake at once, kMaxConnections open in all (handshakes included, whichever side
//     asked); more are accepted and closed at once, a guest's REQUEST answered RST.
//
// Snapshots (Firecracker's behaviour): the guest CID is saved, connections are not. A restored
// device starts without connections and sends VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (§5.10.6.8)
// on the event queue as soon as the driver has an event buffer there; the guest's driver then
// drops its connections and reads the CID again.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
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
inline constexpr std::size_t kMaxPendingHostConnections = 16;
// Guest bytes for the host arriving within kCoalesceWindow of each other join one buffer of up to
// kCoalesceBytes (and more by one packet).
inline constexpr std::size_t kCoalesceBytes = 64 * 1024;
inline constexpr std::chrono::milliseconds kCoalesceWindow{10};
inline constexpr std::uint16_t kRxQueue = 0, kTxQueue = 1, kEventQueue = 2;
inline constexpr std::uint32_t kEventTransportReset = 0;  // struct virtio_vsock_event's id

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
  void park() override;
  void unpark() override { parking_.unpark(); }
  VirtioDeviceSpecificState save() override;
  std::uint16_t held_chains(std::uint16_t, std::uint64_t) const override { return 0; }
  // Before start(): the device was restored from a snapshot, so it owes the driver a transport
  // reset event.
  void restore() { transport_reset_pending_ = true; }

 private:
  using Clock = std::chrono::steady_clock;
  // Guest bytes on their way to the host socket, with the time by which they must be written.
  struct ToHost {
    Bytes data;
    std::size_t sent = 0;
    Clock::time_point deadline;
  };
  struct Connection {
    Fd socket;
    std::uint32_t guest_port = 0, host_port = 0;
    std::uint32_t peer_buf_alloc = 0, peer_fwd_cnt = 0;  // the guest's receive window
    std::uint32_t rx_cnt = 0;                            // bytes we sent to the guest
    std::uint32_t fwd_cnt = 0;                           // guest bytes written to the host
    std::uint32_t last_fwd_cnt_sent = 0;
    std::deque<ToHost> to_host;
    std::size_t to_host_bytes = 0;
    bool host_eof = false;
    bool connecting = false;  // host-initiated: REQUEST sent, the guest has not answered yet
    Clock::time_point connect_deadline;  // while connecting
    bool guest_shut_send = false;        // SHUT_WR the host socket once to_host is written
    bool host_shut = false;              // ...done
    bool guest_closed = false;           // RST and close once to_host is written
  };
  // A host connection on uds_path that has not finished its "CONNECT <port>\n" line.
  struct HostHandshake {
    Fd socket;
    Clock::time_point deadline;
  };
  using Key = std::pair<std::uint32_t, std::uint32_t>;  // (guest port, host port)

  VirtioVsock(const VsockConfig& config, Fd epoll, Fd wake, Fd listener, Logger& log,
              Metrics& metrics);
  void run();
  // One round of work; returns when the thread should wake next without an event.
  Clock::time_point round();
  void drop_all();
  void accept_host_connections();
  void advance_handshakes(Clock::time_point now);
  void expire_connects(Clock::time_point now);
  void handle_tx(std::uint64_t generation);
  void handle_packet(const vsock::Header& h, ByteView payload);
  void flush_to_host(Clock::time_point now);
  void deliver_rx(std::uint64_t generation);
  void deliver_transport_reset(std::uint64_t generation);
  void queue_control(const Connection* c, std::uint32_t guest_port, std::uint32_t host_port,
                     std::uint16_t op, std::uint32_t flags = 0);
  void reset_connection(Key key);  // RST to the guest, host socket closed
  void close_connection(Key key);
  void watch(int fd);
  std::size_t pending_host_connections() const;

  const std::uint64_t guest_cid_;
  const std::string uds_path_;
  const std::chrono::milliseconds handshake_timeout_;
  const std::chrono::milliseconds host_send_timeout_;
  Fd epoll_;
  Fd wake_;
  Fd listener_;  // uds_path
  Logger& log_;
  Metrics& metrics_;
  VirtqueueLink* link_ = nullptr;
  std::atomic<bool> stopping_{false};
  DeviceParking parking_;
  std::thread thread_;

  // Device thread only.
  bool transport_reset_pending_ = false;
  std::uint64_t generation_ = 0;
  std::map<Key, Connection> connections_;
  std::deque<vsock::Header> control_;  // packets for the guest without payload
  std::vector<HostHandshake> handshakes_;
  std::uint32_t next_host_port_ = 1u << 30;  // local ports of host-initiated connections
  RepeatBudget guest_refusals_;              // guest REQUESTs with nothing listening
};

}  // namespace cloister::vmm
