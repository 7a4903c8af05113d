#include "cloister/vmm/metrics.h"

#include <utility>
#include <vector>

namespace cloister::vmm {
namespace {

std::vector<std::pair<const char*, std::uint64_t>> snapshot(const Metrics& m) {
  auto get = [](const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  return {{"exits_io", get(m.exits_io)},
          {"exits_mmio", get(m.exits_mmio)},
          {"exits_hlt", get(m.exits_hlt)},
          {"exits_interrupted", get(m.exits_interrupted)},
          {"exits_other", get(m.exits_other)},
          {"pio_unassigned", get(m.pio_unassigned)},
          {"mmio_unassigned", get(m.mmio_unassigned)},
          {"serial_tx_bytes", get(m.serial_tx_bytes)},
          {"serial_tx_dropped", get(m.serial_tx_dropped)},
          {"serial_rx_bytes", get(m.serial_rx_bytes)},
          {"virtio_notifications", get(m.virtio_notifications)},
          {"virtio_blk_requests", get(m.virtio_blk_requests)},
          {"virtio_blk_bytes_read", get(m.virtio_blk_bytes_read)},
          {"virtio_blk_bytes_written", get(m.virtio_blk_bytes_written)},
          {"virtio_device_errors", get(m.virtio_device_errors)},
          {"vsock_connections", get(m.vsock_connections)},
          {"vsock_packets_tx", get(m.vsock_packets_tx)},
          {"vsock_bytes_to_host", get(m.vsock_bytes_to_host)},
          {"vsock_bytes_to_guest", get(m.vsock_bytes_to_guest)},
          {"vsock_host_timeouts", get(m.vsock_host_timeouts)},
          {"vsock_handshake_timeouts", get(m.vsock_handshake_timeouts)},
          {"vsock_refused", get(m.vsock_refused)},
          {"net_rx_frames", get(m.net_rx_frames)},
          {"net_rx_bytes", get(m.net_rx_bytes)},
          {"net_tx_frames", get(m.net_tx_frames)},
          {"net_tx_bytes", get(m.net_tx_bytes)},
          {"net_tx_dropped", get(m.net_tx_dropped)},
          {"net_rate_limited", get(m.net_rate_limited)},
          {"net_rx_dropped_snapshot", get(m.net_rx_dropped_snapshot)},
          {"api_requests", get(m.api_requests)},
          {"api_errors", get(m.api_errors)}};
}

}  // namespace

nlohmann::json Metrics::to_json() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, value] : snapshot(*this)) out[name] = value;
  return out;
}

std::string Metrics::to_prometheus() const {
  std::string out;
  for (const auto& [name, value] : snapshot(*this)) {
    out += "# TYPE cloister_vmm_" + std::string(name) + "_total counter\n";
    out += "cloister_vmm_" + std::string(name) + "_total " + std::to_string(value) + "\n";
  }
  return out;
}

}  // namespace cloister::vmm
