// virtio over MMIO (virtio 1.2: §2.7 split virtqueues, §4.2.2 MMIO register layout) and the
// virtio-blk device (§5.2). Everything here parses guest-controlled memory: descriptor
// addresses, lengths, chain links and ring indices are checked against GuestMemory and the
// queue size, and a malformed ring puts the device into DEVICE_NEEDS_RESET instead of
// crashing or corrupting host memory.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "cloister/vmm/devices/bus.h"
#include "cloister/vmm/devices/legacy.h"
#include "cloister/vmm/devices/rate_limiter.h"
#include "cloister/vmm/fd.h"
#include "cloister/vmm/hypervisor/hypervisor.h"
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
inline constexpr std::uint32_t kIdNet = 1;
inline constexpr std::uint32_t kIdBlock = 2;
inline constexpr std::uint32_t kIdVsock = 19;
inline constexpr std::uint64_t kMmioSize = 0x1000;
}  // namespace virtio

// ---- saved state (snapshots and migration; snapshot/snapshot.h serialises it) ----

// A split virtqueue as the device sees it (virtio 1.2 §2.7, §4.2.2 Queue* registers).
struct VirtqueueState {
  std::uint16_t size = 0;
  bool ready = false;
  std::uint64_t desc_addr = 0, driver_addr = 0, device_addr = 0;
  std::uint16_t next_avail = 0;  // the avail.ring index the device takes next (last_avail_idx)
  std::uint16_t next_used = 0;   // the used.idx the device publishes next
  bool operator==(const VirtqueueState&) const = default;
};

// The virtio-mmio registers the driver wrote (virtio 1.2 §4.2.2) and the queues.
struct VirtioTransportState {
  std::uint32_t status = 0;
  std::uint32_t device_features_sel = 0, driver_features_sel = 0;
  std::uint64_t driver_features = 0;
  std::uint32_t queue_sel = 0;
  std::uint32_t interrupt_status = 0;
  std::uint32_t config_generation = 0;
  std::vector<VirtqueueState> queues;
  bool operator==(const VirtioTransportState&) const = default;
};

// virtio-blk: the disk's identity, checked when it is re-opened by path at restore (the
// snapshot holds no disk contents).
struct BlockDeviceState {
  std::string path;
  std::uint64_t bytes = 0;
  bool read_only = false;
  bool operator==(const BlockDeviceState&) const = default;
};

// virtio-net: the TAP it attaches to again, its MAC and what its rate limiters' buckets hold.
struct NetDeviceState {
  std::string tap;
  std::optional<std::array<std::uint8_t, 6>> mac;
  RateLimiterState rx, tx;
};

// virtio-vsock: the guest's CID. Connections are not saved: a restored device sends
// VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (virtio 1.2 §5.10.6.8) and starts with none.
struct VsockDeviceState {
  std::uint64_t guest_cid = 0;
};

using VirtioDeviceSpecificState = std::variant<BlockDeviceState, NetDeviceState, VsockDeviceState>;

// One virtio-mmio slot: slots are numbered in config order (disks, nets, vsock).
struct VirtioDeviceState {
  std::uint32_t slot = 0;
  VirtioTransportState transport;
  VirtioDeviceSpecificState device;
};

// "block", "net" or "vsock": the names state.json uses.
std::string_view virtio_kind_name(const VirtioDeviceSpecificState& device);

// Parks a device thread between rounds of work so that a snapshot sees its queues still. The
// device thread calls checkpoint() where it holds no chain a request is working on; park() asks
// for it, wakes the thread through `kick` and returns once the thread sits in checkpoint().
class DeviceParking {
 public:
  // Device thread: blocks while a park is requested, until unpark() or release().
  void checkpoint();
  // Whether a park was requested: the device thread ends its round early.
  bool requested() const { return requested_.load(std::memory_order_acquire); }
  void park(const std::function<void()>& kick);
  void unpark();
  // Stopping, or the device thread ended: nothing parks from here on.
  void release();

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::atomic<bool> requested_{false};
  bool parked_ = false;
  bool released_ = false;
};

// One guest buffer of a descriptor chain.
struct VirtqBuffer {
  std::uint64_t addr;
  std::uint32_t len;
  bool device_writable;
};

struct VirtqChain {
  std::uint16_t head;
  std::vector<VirtqBuffer> buffers;  // device-readable buffers first, then device-writable

  std::uint64_t readable_bytes() const;
  std::uint64_t writable_bytes() const;
  // Writes `data` across the device-writable buffers, in order; fails naming `what` when they
  // are too small ("<what>: too small for a packet") or outside guest memory.
  Status scatter(const GuestMemory& memory, ByteView data, std::string_view what) const;
};

// epoll_wait's timeout until `deadline` (-1: none), for device threads that wait for I/O and
// deadlines at once.
int epoll_timeout_until(std::chrono::steady_clock::time_point deadline);

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
  // `held` chains the device took and still holds go back to the avail ring: the restored
  // device takes them again.
  VirtqueueState save(std::uint16_t held) const;
  void restore(const VirtqueueState& state);

 private:
  std::uint16_t last_avail_ = 0;
  std::uint16_t used_idx_ = 0;
};

// The transport as a device thread sees it. Each call takes the transport lock for the queue
// operation alone: a device never holds it across I/O, so a vCPU touching the device's
// registers waits at most for one ring access, never for a disk or a host socket.
//
// Generations: every reset of the device by the driver (status 0) starts a new generation. A
// device thread reads generation() when it starts a round of work, drops its own state when it
// changed, and passes it to every call; calls made for an older generation do nothing, so a
// round never hands the driver a buffer of a queue it has reset, nor mixes state across a reset.
class VirtqueueLink {
 public:
  virtual ~VirtqueueLink() = default;
  virtual const GuestMemory& memory() const = 0;
  virtual std::uint64_t generation() const = 0;
  // The features the driver accepted in `generation`; 0 when it is stale or the driver has not
  // set FEATURES_OK.
  virtual std::uint64_t driver_features(std::uint64_t generation) const = 0;
  // The next available chain of `queue`; nullopt when there is none, when the driver has not
  // set DRIVER_OK or broke the device, or when `generation` is stale. A malformed chain breaks
  // the device (DEVICE_NEEDS_RESET) and returns nullopt.
  virtual std::optional<VirtqChain> pop(std::uint64_t generation, std::uint16_t queue) = 0;
  // Returns chain `head` of `queue` to the driver with `written` bytes written into it, and
  // interrupts the driver unless it asked not to be.
  virtual void push(std::uint64_t generation, std::uint16_t queue, std::uint16_t head,
                    std::uint32_t written) = 0;
  // The driver broke the device protocol (`why` names the check): DEVICE_NEEDS_RESET.
  virtual void fail(std::uint64_t generation, const std::string& why) = 0;
};

// How a device thread sandboxes itself (seccomp/seccomp.h): whether it installs its filter,
// and the ioctls raising the device's interrupt issues (Vm::irq_ioctls), which it permits.
struct DeviceSandbox {
  bool seccomp = false;
  std::vector<Ioctl> irq_ioctls;
};

// The device-type half of a virtio device; the transport owns the generic state. Every device
// works its queues on a thread of its own: the notifying vCPU only kicks it.
class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;
  virtual std::string_view name() const = 0;
  virtual std::uint32_t device_id() const = 0;
  virtual std::uint64_t features() const = 0;  // offered, including kFVersion1
  virtual std::uint16_t num_queues() const = 0;
  virtual std::uint16_t queue_max_size() const = 0;
  // Called on vCPU threads with the transport lock held: reads immutable configuration only.
  virtual void read_config(std::uint64_t offset, std::span<std::uint8_t> data) const = 0;
  // Starts the device thread, which works the queues through `link` until stop(). Returns once
  // the thread runs under its seccomp filter (when `sandbox.seccomp`), or the error that kept
  // it from starting.
  virtual Status start(VirtqueueLink& link, const DeviceSandbox& sandbox) = 0;
  // Wakes the device thread: the driver notified a queue, set DRIVER_OK or reset the device.
  // Called on a vCPU thread with the transport lock held: it must not block.
  virtual void kick() = 0;
  // Stops and joins the device thread; called before the transport is destroyed.
  virtual void stop() = 0;
  // Parks the device thread (DeviceParking): a request being worked on completes first, and
  // nothing touches the rings or guest memory until unpark(). Not called on vCPU threads.
  virtual void park() = 0;
  virtual void unpark() = 0;
  // Device thread parked: the device's own state, and how many chains of `queue` it took from
  // the ring in transport generation `generation` (the current one) and holds without having
  // returned them. Chains held from before a reset count for nothing: the reset emptied the
  // ring they came from.
  virtual VirtioDeviceSpecificState save() = 0;
  virtual std::uint16_t held_chains(std::uint16_t queue, std::uint64_t generation) const = 0;
};

class VirtioMmio final : public BusDevice, private VirtqueueLink {
 public:
  // The transport of `device` at one virtio-mmio slot, with the device thread started.
  // With `restored`, the transport and its queues start in that state (a snapshot's), and the
  // device thread is woken once so that it takes what the driver published before the snapshot.
  static Result<std::shared_ptr<VirtioMmio>> create(
      std::unique_ptr<VirtioDevice> device, const GuestMemory& memory, IrqLine irq,
      const DeviceSandbox& sandbox, Logger& log, Metrics& metrics,
      const std::optional<VirtioTransportState>& restored = std::nullopt);
  ~VirtioMmio() override;
  // Parks the device thread (VirtioDevice::park) and returns the slot's state; the device stays
  // parked until resume_device(). For snapshots, with every vCPU parked.
  VirtioDeviceState save(std::uint32_t slot);
  void resume_device() { device_->unpark(); }
  std::string_view name() const override { return device_->name(); }
  void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
  void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

 private:
  VirtioMmio(std::unique_ptr<VirtioDevice> device, const GuestMemory& memory, IrqLine irq,
             Logger& log, Metrics& metrics);
  const GuestMemory& memory() const override { return memory_; }
  std::uint64_t generation() const override;
  std::uint64_t driver_features(std::uint64_t generation) const override;
  std::optional<VirtqChain> pop(std::uint64_t generation, std::uint16_t queue) override;
  void push(std::uint64_t generation, std::uint16_t queue, std::uint16_t head,
            std::uint32_t written) override;
  void fail(std::uint64_t generation, const std::string& why) override;

  Status restore_locked(const VirtioTransportState& state);
  bool live_locked(std::uint64_t generation) const;
  void reset_locked();
  void interrupt_unless_suppressed_locked(const Virtqueue& queue);
  void fail_locked(const std::string& why);
  void set_interrupt_locked(std::uint32_t bits);
  Virtqueue* selected_locked();

  mutable std::mutex mutex_;
  std::unique_ptr<VirtioDevice> device_;
  const GuestMemory& memory_;
  IrqLine irq_;
  Logger& log_;
  Metrics& metrics_;
  std::vector<Virtqueue> queues_;
  std::uint64_t generation_ = 0;
  std::uint32_t status_ = 0;
  std::uint32_t device_features_sel_ = 0, driver_features_sel_ = 0, queue_sel_ = 0;
  std::uint64_t driver_features_ = 0;
  std::uint32_t interrupt_status_ = 0;
  std::uint32_t config_generation_ = 0;
  unsigned errors_logged_ = 0;
};

// virtio-blk backed by a host file, 512-byte sectors. Offers VIRTIO_BLK_F_RO for read-only disks
// and VIRTIO_BLK_F_FLUSH. Requests run on the device's own thread (one request at a time, in
// ring order, with pread/pwrite/fdatasync straight into guest memory) without the transport
// lock: the notifying vCPU only kicks that thread and returns to the guest, and a slow disk
// delays the disk's requests alone.
class VirtioBlock final : public VirtioDevice {
 public:
  // Opens the disk at `path` (never waiting on a FIFO). A path that is not a regular file of
  // whole sectors is ErrorCode::kFailedPrecondition, naming it.
  static Result<std::unique_ptr<VirtioBlock>> open(const std::string& path, bool read_only,
                                                   Metrics& metrics);
  ~VirtioBlock() override;
  std::string_view name() const override { return "virtio-blk"; }
  std::uint32_t device_id() const override { return virtio::kIdBlock; }
  std::uint64_t features() const override;
  std::uint16_t num_queues() const override { return 1; }
  std::uint16_t queue_max_size() const override { return 256; }
  void read_config(std::uint64_t offset, std::span<std::uint8_t> data) const override;
  Status start(VirtqueueLink& link, const DeviceSandbox& sandbox) override;
  void kick() override;
  void stop() override;
  void park() override;
  void unpark() override { parking_.unpark(); }
  VirtioDeviceSpecificState save() override;
  std::uint16_t held_chains(std::uint16_t, std::uint64_t) const override { return 0; }
  std::uint64_t capacity_sectors() const { return size_ / 512; }
  std::uint64_t size_bytes() const { return size_; }

 private:
  VirtioBlock(Fd fd, std::string path, std::uint64_t size, bool read_only, std::string id,
              Metrics& metrics)
      : fd_(std::move(fd)),
        path_(std::move(path)),
        size_(size),
        read_only_(read_only),
        id_(std::move(id)),
        metrics_(metrics) {}
  void run();
  // Executes one request; returns the bytes written into device-writable buffers, or an
  // error for a chain too malformed to even carry a status byte.
  Result<std::uint32_t> execute(const VirtqChain& chain, const GuestMemory& memory);

  Fd fd_;
  std::string path_;
  std::uint64_t size_;
  bool read_only_;
  std::string id_;
  Metrics& metrics_;
  VirtqueueLink* link_ = nullptr;
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool kicked_ = false;
  std::atomic<bool> stopping_{false};
  DeviceParking parking_;
  std::thread thread_;
};

}  // namespace cloister::vmm
