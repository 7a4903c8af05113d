// virtio over MMIO (virtio 1.2: §2.7 split virtqueues, §4.2.2 MMIO register layout) and the
// virtio-blk device (§5.2). Everything here parses guest-controlled memory: descriptor
// addresses, lengths, chain links and ring indices are checked against GuestMemory and the
// queue size, and a malformed ring puts the device into DEVICE_NEEDS_RESET instead of
// crashing or corrupting host memory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cloister/vmm/devices/bus.h"
#include "cloister/vmm/devices/legacy.h"
#include "cloister/vmm/fd.h"
#include "cloister/vmm/log.h"
#include "cloister/vmm/memory/guest_memory.h"
#include "cloister/vmm/metrics.h"

namespace cloister::vmm {

namespace virtio {
inline constexpr std::uint32_t kMagic = 0x74726976;     // "virt"
inline constexpr std::uint32_t kVersion = 2;            // virtio 1.x MMIO transport
inline constexpr std::uint32_t kVendorId = 0x54534c43;  // "CLST"
inline constexpr std::uint64_t kFVersion1 = 1ull << 32;
inline constexpr std::uint32_t kStatusAcknowledge = 1, kStatusDriver = 2, kStatusDriverOk = 4,
                               kStatusFeaturesOk = 8, kStatusNeedsReset = 64, kStatusFailed = 128;
inline constexpr std::uint16_t kDescFNext = 1, kDescFWrite = 2, kDescFIndirect = 4;
inline constexpr std::uint16_t kAvailFNoInterrupt = 1;
inline constexpr std::uint32_t kInterruptUsedBuffer = 1, kInterruptConfigChange = 2;
inline constexpr std::uint32_t kIdBlock = 2;
inline constexpr std::uint32_t kIdVsock = 19;
inline constexpr std::uint64_t kMmioSize = 0x1000;
}  // namespace virtio

// One guest buffer of a descriptor chain.
struct VirtqBuffer {
  std::uint64_t addr;
  std::uint32_t len;
  bool device_writable;
};

struct VirtqChain {
  std::uint16_t head;
  std::vector<VirtqBuffer> buffers;  // device-readable buffers first, then device-writable
};

// A split virtqueue as configured by the driver through the transport.
class Virtqueue {
 public:
  std::uint16_t size = 0;
  bool ready = false;
  std::uint64_t desc_addr = 0, driver_addr = 0, device_addr = 0;

  // The next available chain, nullopt when the driver has published nothing new, or an error
  // naming the broken descriptor (out-of-range index, loop, readable after writable, indirect
  // descriptors, which this device does not offer).
  Result<std::optional<VirtqChain>> pop(const GuestMemory& memory);
  // Returns chain `head` to the driver with `written` bytes written into it.
  Status push_used(const GuestMemory& memory, std::uint16_t head, std::uint32_t written);
  // Whether the driver asked not to be interrupted (VIRTQ_AVAIL_F_NO_INTERRUPT).
  Result<bool> interrupts_suppressed(const GuestMemory& memory) const;
  void reset() { *this = Virtqueue(); }

 private:
  std::uint16_t last_avail_ = 0;
  std::uint16_t used_idx_ = 0;
};

// The device-type half of a virtio device; the transport owns the generic state.
class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;
  virtual std::string_view name() const = 0;
  virtual std::uint32_t device_id() const = 0;
  virtual std::uint64_t features() const = 0;  // offered, including kFVersion1
  virtual std::uint16_t num_queues() const = 0;
  virtual std::uint16_t queue_max_size() const = 0;
  virtual void read_config(std::uint64_t offset, std::span<std::uint8_t> data) const = 0;
  // The driver notified queue `index`. Called on the notifying vCPU thread with the transport
  // lock held. Returns true when buffers were used (the driver may need an interrupt), or an
  // error that breaks the device until the driver resets it.
  virtual Result<bool> process(std::uint16_t index, std::span<Virtqueue> queues,
                               const GuestMemory& memory) = 0;
  // Devices with host-side event sources (sockets) run their own thread and call the event
  // callback when something happened; the transport then calls poll() with its lock held.
  virtual void set_event_callback(std::function<void()> callback) { (void)callback; }
  virtual Result<bool> poll(std::span<Virtqueue> queues, const GuestMemory& memory) {
    (void)queues, (void)memory;
    return false;
  }
  // The driver reset the device (status 0): drop all device-type state.
  virtual void reset() {}
  // Stops the device's own thread, if any; called before the transport is destroyed.
  virtual void stop() {}
};

class VirtioMmio final : public BusDevice {
 public:
  VirtioMmio(std::unique_ptr<VirtioDevice> device, const GuestMemory& memory, IrqLine irq,
             Logger& log, Metrics& metrics);
  ~VirtioMmio() override;
  std::string_view name() const override { return device_->name(); }
  void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
  void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

 private:
  void reset_locked();
  void notify_locked(std::uint32_t queue);
  void device_event();
  void interrupt_unless_suppressed_locked(const Virtqueue& queue);
  void fail_locked(const std::string& why);
  void set_interrupt_locked(std::uint32_t bits);
  Virtqueue* selected_locked();

  std::mutex mutex_;
  std::unique_ptr<VirtioDevice> device_;
  const GuestMemory& memory_;
  IrqLine irq_;
  Logger& log_;
  Metrics& metrics_;
  std::vector<Virtqueue> queues_;
  std::uint32_t status_ = 0;
  std::uint32_t device_features_sel_ = 0, driver_features_sel_ = 0, queue_sel_ = 0;
  std::uint64_t driver_features_ = 0;
  std::uint32_t interrupt_status_ = 0;
  std::uint32_t config_generation_ = 0;
  unsigned errors_logged_ = 0;
};

// virtio-blk backed by a host file, 512-byte sectors, synchronous I/O on the notifying vCPU.
// Offers VIRTIO_BLK_F_RO for read-only disks and VIRTIO_BLK_F_FLUSH.
class VirtioBlock final : public VirtioDevice {
 public:
  static Result<std::unique_ptr<VirtioBlock>> open(const std::string& path, bool read_only,
                                                   Metrics& metrics);
  std::string_view name() const override { return "virtio-blk"; }
  std::uint32_t device_id() const override { return virtio::kIdBlock; }
  std::uint64_t features() const override;
  std::uint16_t num_queues() const override { return 1; }
  std::uint16_t queue_max_size() const override { return 256; }
  void read_config(std::uint64_t offset, std::span<std::uint8_t> data) const override;
  Result<bool> process(std::uint16_t index, std::span<Virtqueue> queues,
                       const GuestMemory& memory) override;
  std::uint64_t capacity_sectors() const { return size_ / 512; }

 private:
  VirtioBlock(Fd fd, std::uint64_t size, bool read_only, std::string id, Metrics& metrics)
      : fd_(std::move(fd)),
        size_(size),
        read_only_(read_only),
        id_(std::move(id)),
        metrics_(metrics) {}
  // Executes one request; returns the bytes written into device-writable buffers, or an
  // error for a chain too malformed to even carry a status byte.
  Result<std::uint32_t> execute(const VirtqChain& chain, const GuestMemory& memory);

  Fd fd_;
  std::uint64_t size_;
  bool read_only_;
  std::string id_;
  Metrics& metrics_;
};

}  // namespace cloister::vmm
