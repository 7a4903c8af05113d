// virtio-net (virtio 1.2 §5.1) over a Linux TAP interface opened with IFF_TAP | IFF_NO_PI |
// IFF_VNET_HDR: the 12-byte struct virtio_net_hdr travels between the guest and the TAP as it
// is, so the offloads both ends support (checksums, TSO) need no packet handling in the VMM.
//
// Features offered: VERSION_1, MAC (when configured), and when the TAP takes TUNSETOFFLOAD
// (probed at open) CSUM, GUEST_CSUM, GUEST_TSO4/6, HOST_TSO4/6. What the kernel may hand the
// guest follows what the driver accepted: the device thread sets TUNSETOFFLOAD to the accepted
// GUEST_* features each time the driver brings the device up. Without MRG_RXBUF each receive
// chain must hold a whole frame (the driver posts 65562-byte buffers when it takes GUEST_TSO).
//
// Threading: the notifying vCPU only wakes the device thread, which owns the TAP descriptor
// (non-blocking) and does all I/O. A frame read from the TAP waits in the device until the
// guest posts a receive buffer; meanwhile the TAP is not read further, so the kernel's queue
// absorbs bursts and drops beyond it. Transmitted frames are written to the TAP in ring order;
// a frame the TAP refuses, or a chain too short for the header or longer than a frame can be,
// is dropped and counted (net_tx_dropped), and the buffer returned to the guest.
//
// Rate limiting (config nets[].rx_rate_limiter / tx_rate_limiter, and the API's vm.net): a
// direction over its budget waits, without dropping, until its buckets allow the next frame.
//
// Snapshots: the device thread parks between rounds; a receive or transmit chain it holds goes
// back to its ring in the saved state, and a frame read from the TAP but not yet delivered to
// the guest is not saved (counted in net_rx_dropped_snapshot). Frames that reach the TAP while
// the device is parked wait in the kernel's TAP queue for this device if the VM resumes; the
// kernel discards them when this process closes the TAP.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "cloister/vmm/config/config.h"
#include "cloister/vmm/devices/rate_limiter.h"
#include "cloister/vmm/devices/virtio.h"
#include "cloister/vmm/fd.h"

namespace cloister::vmm {

namespace net {
inline constexpr std::uint64_t kFCsum = 1ull << 0;
inline constexpr std::uint64_t kFGuestCsum = 1ull << 1;
inline constexpr std::uint64_t kFMac = 1ull << 5;
inline constexpr std::uint64_t kFGuestTso4 = 1ull << 7;
inline constexpr std::uint64_t kFGuestTso6 = 1ull << 8;
inline constexpr std::uint64_t kFHostTso4 = 1ull << 11;
inline constexpr std::uint64_t kFHostTso6 = 1ull << 12;
inline constexpr std::size_t kHeaderSize = 12;  // struct virtio_net_hdr with num_buffers
// The largest frame with its header: 65535 bytes of IP payload, Ethernet and VLAN headers.
inline constexpr std::size_t kMaxPacket = kHeaderSize + 65535 + 14 + 4;
inline constexpr std::uint16_t kRxQueue = 0, kTxQueue = 1;
}  // namespace net

class VirtioNet final : public VirtioDevice {
 public:
  // Attaches to config.tap (see NetConfig) and probes its offloads. Errors name the TAP and
  // what the kernel said (for example EPERM: the TAP belongs to another user).
  static Result<std::unique_ptr<VirtioNet>> open(const NetConfig& config, Logger& log,
                                                 Metrics& metrics);
  ~VirtioNet() override;

  std::string_view name() const override { return "virtio-net"; }
  std::uint32_t device_id() const override { return virtio::kIdNet; }
  std::uint64_t features() const override { return features_; }
  std::uint16_t num_queues() const override { return 2; }  // receiveq, transmitq
  std::uint16_t queue_max_size() const override { return 256; }
  void read_config(std::uint64_t offset, std::span<std::uint8_t> data) const override;
  // The device thread runs under the kNet filter: its TAP's TUNSETOFFLOAD and the interrupt.
  Status start(VirtqueueLink& link, const DeviceSandbox& sandbox) override;
  void kick() override;
  void stop() override;
  void park() override;
  void unpark() override { parking_.unpark(); }
  VirtioDeviceSpecificState save() override;
  std::uint16_t held_chains(std::uint16_t queue, std::uint64_t generation) const override;
  // Before start(): the rate limiters' buckets as a snapshot saved them.
  void restore(const NetDeviceState& state);

  const std::string& tap() const { return tap_; }
  // Replaces the limits of both directions; the device thread applies them at its next round
  // with full buckets. Safe from any thread.
  void set_rate_limiters(const RateLimiterConfig& rx, const RateLimiterConfig& tx);
  std::pair<RateLimiterConfig, RateLimiterConfig> rate_limiters() const;

 private:
  using Clock = std::chrono::steady_clock;
  VirtioNet(const NetConfig& config, Fd tap, Fd epoll, Fd wake, std::uint64_t features, Logger& log,
            Metrics& metrics);
  void run();
  // One round of work; returns when the thread should wake next without an event.
  Clock::time_point round();
  void apply_offloads(std::uint64_t generation);
  void receive(std::uint64_t generation, Clock::time_point now, Clock::time_point& next);
  void transmit(std::uint64_t generation, Clock::time_point now, Clock::time_point& next);

  const std::string tap_;
  const std::optional<std::array<std::uint8_t, 6>> mac_;
  const std::uint64_t features_;
  Fd tap_fd_;
  Fd epoll_;
  Fd wake_;
  Logger& log_;
  Metrics& metrics_;
  VirtqueueLink* link_ = nullptr;
  std::atomic<bool> stopping_{false};
  DeviceParking parking_;
  std::thread thread_;

  mutable std::mutex limits_mutex_;
  RateLimiterConfig rx_config_, tx_config_;
  bool limits_changed_ = false;

  // Device thread only.
  std::uint64_t generation_ = ~0ull;
  RateLimiter rx_limiter_, tx_limiter_;
  bool tap_readable_ = true;
  Bytes rx_frame_;  // a frame read from the TAP, waiting for a receive buffer; empty: none
  std::optional<VirtqChain> rx_held_;  // a receive buffer waiting for the receive budget
  std::optional<VirtqChain> tx_held_;  // a frame waiting for the transmit budget
  Bytes tx_buffer_;
};

}  // namespace cloister::vmm
