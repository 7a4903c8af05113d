// Process-wide counters, updated lock-free from vCPU, device and API threads and exported by
// the API's /metrics endpoint as JSON or Prometheus text.
#pragma once

#include <atomic>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace cloister::vmm {

struct Metrics {
  std::atomic<std::uint64_t> exits_io{0};
  std::atomic<std::uint64_t> exits_mmio{0};
  std::atomic<std::uint64_t> exits_hlt{0};
  std::atomic<std::uint64_t> exits_interrupted{0};
  std::atomic<std::uint64_t> exits_other{0};
  std::atomic<std::uint64_t> pio_unassigned{0};   // guest touched a port no device owns
  std::atomic<std::uint64_t> mmio_unassigned{0};  // guest touched a GPA nothing backs
  std::atomic<std::uint64_t> serial_tx_bytes{0};
  std::atomic<std::uint64_t> serial_tx_dropped{0};  // the console reader was not ready for them
  std::atomic<std::uint64_t> serial_rx_bytes{0};
  std::atomic<std::uint64_t> virtio_notifications{0};
  std::atomic<std::uint64_t> virtio_blk_requests{0};
  std::atomic<std::uint64_t> virtio_blk_bytes_read{0};
  std::atomic<std::uint64_t> virtio_blk_bytes_written{0};
  std::atomic<std::uint64_t> virtio_device_errors{0};  // device moved to DEVICE_NEEDS_RESET
  std::atomic<std::uint64_t> vsock_connections{0};
  std::atomic<std::uint64_t> vsock_packets_tx{0};  // packets the guest sent
  std::atomic<std::uint64_t> vsock_bytes_to_host{0};
  std::atomic<std::uint64_t> vsock_bytes_to_guest{0};
  std::atomic<std::uint64_t> vsock_host_timeouts{0};       // reset: the host peer did not read
  std::atomic<std::uint64_t> vsock_handshake_timeouts{0};  // host connections that never got in
  std::atomic<std::uint64_t> vsock_refused{0};  // host connections over the pending/open caps
  std::atomic<std::uint64_t> net_rx_frames{0};  // frames delivered to the guest
  std::atomic<std::uint64_t> net_rx_bytes{0};
  std::atomic<std::uint64_t> net_tx_frames{0};  // frames the guest sent, written to the TAP
  std::atomic<std::uint64_t> net_tx_bytes{0};
  std::atomic<std::uint64_t> net_tx_dropped{0};    // malformed, or refused by the TAP
  std::atomic<std::uint64_t> net_rate_limited{0};  // times a direction waited for its budget
  // Frames read from a TAP but not yet delivered when a snapshot was taken: not in the snapshot.
  std::atomic<std::uint64_t> net_rx_dropped_snapshot{0};
  std::atomic<std::uint64_t> api_requests{0};
  std::atomic<std::uint64_t> api_errors{0};

  nlohmann::json to_json() const;
  // Prometheus text exposition format 0.0.4, every counter prefixed "cloister_vmm_".
  std::string to_prometheus() const;
};

}  // namespace cloister::vmm
