#include "cloister/vmm/devices/virtio.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <climits>

#include "cloister/vmm/format.h"
#include "cloister/vmm/seccomp/seccomp.h"

namespace cloister::vmm {
namespace {

using namespace virtio;

constexpr std::uint64_t kBlkFRo = 1ull << 5;
constexpr std::uint64_t kBlkFFlush = 1ull << 9;
constexpr std::uint32_t kBlkTIn = 0, kBlkTOut = 1, kBlkTFlush = 4, kBlkTGetId = 8;
constexpr std::uint8_t kBlkSOk = 0, kBlkSIoErr = 1, kBlkSUnsupp = 2;
constexpr std::size_t kSector = 512;
constexpr unsigned kMaxLoggedErrors = 10;

Result<std::uint16_t> read_u16(const GuestMemory& memory, std::uint64_t gpa,
                               std::string_view what) {
  std::uint8_t b[2];
  CLOISTER_CHECK_OK(memory.read(gpa, b, what));
  return load_le16(b, 0);
}

Status write_u16(const GuestMemory& memory, std::uint64_t gpa, std::uint16_t v,
                 std::string_view what) {
  std::uint8_t b[2];
  store_le16(b, 0, v);
  return memory.write(gpa, b, what);
}

}  // namespace

Result<std::optional<VirtqChain>> Virtqueue::pop(const GuestMemory& memory) {
  if (!ready || size == 0) return std::optional<VirtqChain>();
  CLOISTER_TRY(auto avail_idx, read_u16(memory, driver_addr + 2, "virtqueue avail.idx"));
  if (avail_idx == last_avail_) return std::optional<VirtqChain>();
  if (static_cast<std::uint16_t>(avail_idx - last_avail_) > size)
    return Error("virtqueue avail.idx " + std::to_string(avail_idx) +
                 " is more than the queue size " + std::to_string(size) + " ahead of " +
                 std::to_string(last_avail_));
  std::atomic_thread_fence(std::memory_order_acquire);
  CLOISTER_TRY(auto head, read_u16(memory, driver_addr + 4 + 2ull * (last_avail_ % size),
                                   "virtqueue avail.ring"));
  if (head >= size)
    return Error("virtqueue avail.ring: head " + std::to_string(head) + " >= queue size " +
                 std::to_string(size));
  VirtqChain chain{head, {}};
  std::uint16_t index = head;
  bool seen_writable = false;
  for (std::uint32_t n = 0;; ++n) {
    if (n == size)
      return Error("virtqueue: descriptor chain from " + std::to_string(head) + " loops");
    std::uint8_t d[16];
    CLOISTER_CHECK_OK(memory.read(desc_addr + 16ull * index, d, "virtqueue descriptor table"));
    const std::uint64_t addr = load_le64(d, 0);
    const std::uint32_t len = load_le32(d, 8);
    const std::uint16_t flags = load_le16(d, 12);
    const std::uint16_t next = load_le16(d, 14);
    const std::string where = "virtqueue descriptor " + std::to_string(index);
    if (flags & kDescFIndirect) return Error(where + ": indirect descriptors were not negotiated");
    const bool writable = (flags & kDescFWrite) != 0;
    if (!writable && seen_writable)
      return Error(where + ": device-readable buffer after a device-writable one");
    seen_writable = seen_writable || writable;
    chain.buffers.push_back({addr, len, writable});
    if (!(flags & kDescFNext)) break;
    if (next >= size)
      return Error(where + ": next " + std::to_string(next) + " >= queue size " +
                   std::to_string(size));
    index = next;
  }
  ++last_avail_;
  return std::optional<VirtqChain>(std::move(chain));
}

Status Virtqueue::push_used(const GuestMemory& memory, std::uint16_t head, std::uint32_t written) {
  std::uint8_t elem[8];
  store_le32(elem, 0, head);
  store_le32(elem, 4, written);
  CLOISTER_CHECK_OK(
      memory.write(device_addr + 4 + 8ull * (used_idx_ % size), elem, "virtqueue used.ring"));
  std::atomic_thread_fence(std::memory_order_release);
  ++used_idx_;
  return write_u16(memory, device_addr + 2, used_idx_, "virtqueue used.idx");
}

Result<bool> Virtqueue::interrupts_suppressed(const GuestMemory& memory) const {
  CLOISTER_TRY(auto flags, read_u16(memory, driver_addr, "virtqueue avail.flags"));
  return (flags & kAvailFNoInterrupt) != 0;
}

VirtqueueState Virtqueue::save(std::uint16_t held) const {
  return {size,        ready,       desc_addr,
          driver_addr, device_addr, static_cast<std::uint16_t>(last_avail_ - held),
          used_idx_};
}

void Virtqueue::restore(const VirtqueueState& state) {
  size = state.size;
  ready = state.ready;
  desc_addr = state.desc_addr;
  driver_addr = state.driver_addr;
  device_addr = state.device_addr;
  last_avail_ = state.next_avail;
  used_idx_ = state.next_used;
}

std::string_view virtio_kind_name(const VirtioDeviceSpecificState& device) {
  struct Name {
    std::string_view operator()(const BlockDeviceState&) const { return "block"; }
    std::string_view operator()(const NetDeviceState&) const { return "net"; }
    std::string_view operator()(const VsockDeviceState&) const { return "vsock"; }
  };
  return std::visit(Name{}, device);
}

void DeviceParking::checkpoint() {
  std::unique_lock lock(mutex_);
  if (!requested_.load(std::memory_order_acquire) || released_) return;
  parked_ = true;
  cv_.notify_all();
  cv_.wait(lock, [&] { return !requested_.load(std::memory_order_acquire) || released_; });
  parked_ = false;
}

void DeviceParking::park(const std::function<void()>& kick) {
  std::unique_lock lock(mutex_);
  if (released_) return;
  requested_.store(true, std::memory_order_release);
  kick();
  cv_.wait(lock, [&] { return parked_ || released_; });
}

void DeviceParking::unpark() {
  {
    std::lock_guard lock(mutex_);
    requested_.store(false, std::memory_order_release);
  }
  cv_.notify_all();
}

void DeviceParking::release() {
  {
    std::lock_guard lock(mutex_);
    released_ = true;
  }
  cv_.notify_all();
}

Result<std::shared_ptr<VirtioMmio>> VirtioMmio::create(
    std::unique_ptr<VirtioDevice> device, const GuestMemory& memory, IrqLine irq,
    const DeviceSandbox& sandbox, Logger& log, Metrics& metrics,
    const std::optional<VirtioTransportState>& restored) {
  std::shared_ptr<VirtioMmio> transport(
      new VirtioMmio(std::move(device), memory, std::move(irq), log, metrics));
  if (restored) {
    std::lock_guard lock(transport->mutex_);
    CLOISTER_CHECK_OK(transport->restore_locked(*restored));
  }
  CLOISTER_CHECK_OK(transport->device_->start(*transport, sandbox));
  if (restored) transport->device_->kick();
  return transport;
}

Status VirtioMmio::restore_locked(const VirtioTransportState& state) {
  if (state.queues.size() != queues_.size())
    return Error(ErrorCode::kFailedPrecondition, std::string(device_->name()) +
                                                     " queues: expected " +
                                                     std::to_string(queues_.size()) + ", found " +
                                                     std::to_string(state.queues.size()));
  for (std::size_t i = 0; i < queues_.size(); ++i) {
    const VirtqueueState& q = state.queues[i];
    if (q.size > device_->queue_max_size() || (q.size & (q.size - 1)) != 0 ||
        (q.ready && q.size == 0))
      return Error(ErrorCode::kFailedPrecondition,
                   std::string(device_->name()) + " queue " + std::to_string(i) +
                       " size: expected a power of two up to " +
                       std::to_string(device_->queue_max_size()) + (q.ready ? "" : " or 0") +
                       ", found " + std::to_string(q.size));
    queues_[i].restore(q);
  }
  // The live transport's invariants (write of 0x070): accepted features are offered ones, and
  // DRIVER_OK follows FEATURES_OK. A destination whose device offers less (a TAP without an
  // offload) must not run a driver that uses more.
  const std::string name(device_->name());
  if ((state.status & kStatusFeaturesOk) && (state.driver_features & ~device_->features()) != 0)
    return Error(ErrorCode::kFailedPrecondition,
                 name + " driver features: expected a subset of the offered " +
                     hex(device_->features()) + ", found " + hex(state.driver_features));
  if ((state.status & kStatusDriverOk) && !(state.status & kStatusFeaturesOk))
    return Error(
        ErrorCode::kFailedPrecondition,
        name + " status: expected DRIVER_OK only with FEATURES_OK, found " + hex(state.status));
  status_ = state.status;
  device_features_sel_ = state.device_features_sel;
  driver_features_sel_ = state.driver_features_sel;
  driver_features_ = state.driver_features;
  queue_sel_ = state.queue_sel;
  config_generation_ = state.config_generation;
  interrupt_status_ = 0;
  set_interrupt_locked(state.interrupt_status);
  return {};
}

VirtioDeviceState VirtioMmio::save(std::uint32_t slot) {
  device_->park();
  VirtioDeviceState saved;
  saved.slot = slot;
  saved.device = device_->save();
  std::lock_guard lock(mutex_);
  VirtioTransportState& t = saved.transport;
  t.status = status_;
  t.device_features_sel = device_features_sel_;
  t.driver_features_sel = driver_features_sel_;
  t.driver_features = driver_features_;
  t.queue_sel = queue_sel_;
  t.interrupt_status = interrupt_status_;
  t.config_generation = config_generation_;
  for (std::size_t i = 0; i < queues_.size(); ++i)
    t.queues.push_back(
        queues_[i].save(device_->held_chains(static_cast<std::uint16_t>(i), generation_)));
  return saved;
}

VirtioMmio::VirtioMmio(std::unique_ptr<VirtioDevice> device, const GuestMemory& memory, IrqLine irq,
                       Logger& log, Metrics& metrics)
    : device_(std::move(device)),
      memory_(memory),
      irq_(std::move(irq)),
      log_(log),
      metrics_(metrics) {
  queues_.resize(device_->num_queues());
}

VirtioMmio::~VirtioMmio() {
  device_->stop();
}

std::uint64_t VirtioMmio::generation() const {
  std::lock_guard lock(mutex_);
  return generation_;
}

std::uint64_t VirtqChain::readable_bytes() const {
  std::uint64_t total = 0;
  for (const auto& b : buffers)
    if (!b.device_writable) total += b.len;
  return total;
}

std::uint64_t VirtqChain::writable_bytes() const {
  std::uint64_t total = 0;
  for (const auto& b : buffers)
    if (b.device_writable) total += b.len;
  return total;
}

Status VirtqChain::scatter(const GuestMemory& memory, ByteView data, std::string_view what) const {
  std::size_t done = 0;
  for (const auto& b : buffers) {
    if (!b.device_writable || done == data.size()) continue;
    const std::size_t take = std::min<std::size_t>(b.len, data.size() - done);
    CLOISTER_CHECK_OK(memory.write(b.addr, data.subspan(done, take), what));
    done += take;
  }
  if (done < data.size()) return Error(std::string(what) + ": too small for a packet");
  return {};
}

int epoll_timeout_until(std::chrono::steady_clock::time_point deadline) {
  if (deadline == std::chrono::steady_clock::time_point::max()) return -1;
  const auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())
          .count();
  return static_cast<int>(std::clamp<long long>(left, 0, INT_MAX));
}

std::uint64_t VirtioMmio::driver_features(std::uint64_t generation) const {
  std::lock_guard lock(mutex_);
  if (generation != generation_ || !(status_ & kStatusFeaturesOk)) return 0;
  return driver_features_;
}

bool VirtioMmio::live_locked(std::uint64_t generation) const {
  return generation == generation_ && (status_ & kStatusDriverOk) && !(status_ & kStatusNeedsReset);
}

std::optional<VirtqChain> VirtioMmio::pop(std::uint64_t generation, std::uint16_t queue) {
  std::lock_guard lock(mutex_);
  if (!live_locked(generation) || queue >= queues_.size()) return std::nullopt;
  auto chain = queues_[queue].pop(memory_);
  if (!chain) {
    fail_locked(chain.error().message());
    return std::nullopt;
  }
  return std::move(*chain);
}

void VirtioMmio::push(std::uint64_t generation, std::uint16_t queue, std::uint16_t head,
                      std::uint32_t written) {
  std::lock_guard lock(mutex_);
  if (!live_locked(generation) || queue >= queues_.size()) return;
  if (auto st = queues_[queue].push_used(memory_, head, written); !st)
    return fail_locked(st.error().message());
  interrupt_unless_suppressed_locked(queues_[queue]);
}

void VirtioMmio::fail(std::uint64_t generation, const std::string& why) {
  std::lock_guard lock(mutex_);
  if (live_locked(generation)) fail_locked(why);
}

void VirtioMmio::interrupt_unless_suppressed_locked(const Virtqueue& queue) {
  auto suppressed = queue.interrupts_suppressed(memory_);
  if (!suppressed) return fail_locked(suppressed.error().message());
  if (!*suppressed) set_interrupt_locked(kInterruptUsedBuffer);
}

Virtqueue* VirtioMmio::selected_locked() {
  return queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr;
}

void VirtioMmio::reset_locked() {
  for (auto& q : queues_) q.reset();
  ++generation_;
  device_->kick();  // the device drops its state for the old generation
  status_ = 0;
  device_features_sel_ = driver_features_sel_ = queue_sel_ = 0;
  driver_features_ = 0;
  if (interrupt_status_ != 0 && irq_) irq_(false);
  interrupt_status_ = 0;
}

void VirtioMmio::set_interrupt_locked(std::uint32_t bits) {
  const bool was_pending = interrupt_status_ != 0;
  interrupt_status_ |= bits;
  if (!was_pending && interrupt_status_ != 0 && irq_) irq_(true);
}

void VirtioMmio::fail_locked(const std::string& why) {
  status_ |= kStatusNeedsReset;
  ++config_generation_;
  set_interrupt_locked(kInterruptConfigChange);
  metrics_.virtio_device_errors.fetch_add(1, std::memory_order_relaxed);
  if (errors_logged_ < kMaxLoggedErrors) {
    ++errors_logged_;
    log_.warn("virtio.device_error", "guest broke the device; it needs a reset",
              {{"device", device_->name()}, {"reason", why}});
  }
}

void VirtioMmio::read(std::uint64_t offset, std::span<std::uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  std::lock_guard lock(mutex_);
  if (offset >= 0x100) {
    device_->read_config(offset - 0x100, data);
    return;
  }
  if (data.size() != 4) return;  // §4.2.2.2: registers are accessed 32 bits wide only
  std::uint32_t v = 0;
  switch (offset) {
    case 0x000:
      v = kMagic;
      break;
    case 0x004:
      v = kVersion;
      break;
    case 0x008:
      v = device_->device_id();
      break;
    case 0x00c:
      v = kVendorId;
      break;
    case 0x010:
      v = device_features_sel_ == 0   ? static_cast<std::uint32_t>(device_->features())
          : device_features_sel_ == 1 ? static_cast<std::uint32_t>(device_->features() >> 32)
                                      : 0;
      break;
    case 0x034:
      v = selected_locked() ? device_->queue_max_size() : 0;
      break;
    case 0x044:
      v = selected_locked() && selected_locked()->ready ? 1 : 0;
      break;
    case 0x060:
      v = interrupt_status_;
      break;
    case 0x070:
      v = status_;
      break;
    case 0x0b4:
    case 0x0b8:
      v = 0xffffffff;
      break;  // SHMLen: no shared memory regions
    case 0x0fc:
      v = config_generation_;
      break;
    default:
      break;
  }
  store_le32(data, 0, v);
}

void VirtioMmio::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
  std::lock_guard lock(mutex_);
  if (offset >= 0x100 || data.size() != 4) return;  // config space is read-only here
  const std::uint32_t v = load_le32(data, 0);
  Virtqueue* q = selected_locked();
  const bool configurable = q && !q->ready;
  switch (offset) {
    case 0x014:
      device_features_sel_ = v;
      break;
    case 0x020:
      if (status_ & kStatusFeaturesOk) break;
      if (driver_features_sel_ == 0)
        driver_features_ = (driver_features_ & ~0xffffffffull) | v;
      else if (driver_features_sel_ == 1)
        driver_features_ = (driver_features_ & 0xffffffffull) | (std::uint64_t{v} << 32);
      break;
    case 0x024:
      driver_features_sel_ = v;
      break;
    case 0x030:
      queue_sel_ = v;
      break;
    case 0x038:
      if (!configurable) break;
      if (v == 0 || v > device_->queue_max_size() || (v & (v - 1)) != 0) {
        fail_locked("QueueNum " + std::to_string(v) + " is not a power of two in 1.." +
                    std::to_string(device_->queue_max_size()));
        break;
      }
      q->size = static_cast<std::uint16_t>(v);
      break;
    case 0x044:
      if (!q) break;
      if (v == 1 && q->size == 0) {
        fail_locked("QueueReady before QueueNum was set");
        break;
      }
      q->ready = v == 1;
      break;
    case 0x050:  // QueueNotify: the device thread does the work
      metrics_.virtio_notifications.fetch_add(1, std::memory_order_relaxed);
      if (live_locked(generation_) && v < queues_.size()) device_->kick();
      break;
    case 0x064:
      interrupt_status_ &= ~v;
      if (interrupt_status_ == 0 && irq_) irq_(false);
      break;
    case 0x070: {
      if (v == 0) {
        reset_locked();
        break;
      }
      // Bits stay set until a reset (virtio 1.2 §2.1.2: the driver must not clear one), so a
      // driver cannot drop FEATURES_OK or DRIVER_OK to renegotiate features under a live device.
      std::uint32_t next = v | status_;
      if ((v & kStatusFeaturesOk) && !(status_ & kStatusFeaturesOk)) {
        const bool subset = (driver_features_ & ~device_->features()) == 0;
        if (!subset || !(driver_features_ & kFVersion1)) next &= ~kStatusFeaturesOk;
      }
      // DRIVER_OK only after the features were accepted (§3.1.1).
      if (!(next & kStatusFeaturesOk)) next &= ~kStatusDriverOk;
      const bool driver_ok = (next & kStatusDriverOk) && !(status_ & kStatusDriverOk);
      status_ = next;
      if (driver_ok) device_->kick();  // work that waited for the driver (host connections)
      break;
    }
    case 0x080:
      if (configurable) q->desc_addr = (q->desc_addr & ~0xffffffffull) | v;
      break;
    case 0x084:
      if (configurable) q->desc_addr = (q->desc_addr & 0xffffffffull) | (std::uint64_t{v} << 32);
      break;
    case 0x090:
      if (configurable) q->driver_addr = (q->driver_addr & ~0xffffffffull) | v;
      break;
    case 0x094:
      if (configurable)
        q->driver_addr = (q->driver_addr & 0xffffffffull) | (std::uint64_t{v} << 32);
      break;
    case 0x0a0:
      if (configurable) q->device_addr = (q->device_addr & ~0xffffffffull) | v;
      break;
    case 0x0a4:
      if (configurable)
        q->device_addr = (q->device_addr & 0xffffffffull) | (std::uint64_t{v} << 32);
      break;
    default:
      break;
  }
}

Result<std::unique_ptr<VirtioBlock>> VirtioBlock::open(const std::string& path, bool read_only,
                                                       Metrics& metrics) {
  // O_NONBLOCK so that a FIFO cannot hold the open until a writer appears; it means nothing
  // for the regular file a disk must be.
  int raw = ::open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK);
  if (raw < 0) return os_error("disk " + path);
  Fd fd(raw);
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) return os_error("fstat of disk " + path);
  // kFailedPrecondition: an input for the operator to fix (cloister-vmm exits 2).
  if (!S_ISREG(st.st_mode))
    return Error(ErrorCode::kFailedPrecondition, "disk " + path + ": expected a regular file");
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size == 0 || size % kSector != 0)
    return Error(ErrorCode::kFailedPrecondition,
                 "disk " + path + ": expected a non-empty multiple of 512 bytes, found " +
                     std::to_string(size) + " bytes");
  std::string id = path.substr(path.find_last_of('/') + 1).substr(0, 20);
  return std::unique_ptr<VirtioBlock>(
      new VirtioBlock(std::move(fd), path, size, read_only, id, metrics));
}

std::uint64_t VirtioBlock::features() const {
  return kFVersion1 | kBlkFFlush | (read_only_ ? kBlkFRo : 0);
}

void VirtioBlock::read_config(std::uint64_t offset, std::span<std::uint8_t> data) const {
  std::uint8_t config[8];  // struct virtio_blk_config: only capacity (le64) is offered
  store_le64(config, 0, capacity_sectors());
  for (std::size_t i = 0; i < data.size(); ++i)
    data[i] = offset + i < sizeof config ? config[offset + i] : 0;
}

VirtioBlock::~VirtioBlock() {
  stop();
}

Status VirtioBlock::start(VirtqueueLink& link, const DeviceSandbox& sandbox) {
  link_ = &link;
  SeccompScope scope;
  scope.ioctls = sandbox.irq_ioctls;
  CLOISTER_TRY(thread_, start_sandboxed_thread(ThreadClass::kBlock, sandbox.seccomp,
                                               std::move(scope), [this] {
                                                 run();
                                                 parking_.release();
                                               }));
  return {};
}

void VirtioBlock::park() {
  parking_.park([this] { kick(); });
}

VirtioDeviceSpecificState VirtioBlock::save() {
  return BlockDeviceState{path_, size_, read_only_};
}

void VirtioBlock::kick() {
  {
    std::lock_guard lock(wake_mutex_);
    kicked_ = true;
  }
  wake_.notify_one();
}

void VirtioBlock::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  parking_.release();
  wake_.notify_one();
  thread_.join();
}

void VirtioBlock::run() {
  for (;;) {
    {
      std::unique_lock lock(wake_mutex_);
      wake_.wait(lock, [&] { return kicked_ || stopping_; });
      if (stopping_) return;
      kicked_ = false;
    }
    parking_.checkpoint();
    // Every available request, one at a time; the transport lock is held only inside pop and
    // push, never during the file I/O. A park request ends the round after the request in
    // flight: park() kicked, so the rest of the ring waits for the thread's return from parking.
    const std::uint64_t generation = link_->generation();
    while (!stopping_ && !parking_.requested()) {
      auto chain = link_->pop(generation, 0);
      if (!chain) break;
      auto written = execute(*chain, link_->memory());
      if (!written) {
        link_->fail(generation, written.error().message());
        break;
      }
      link_->push(generation, 0, chain->head, *written);
    }
  }
}

Result<std::uint32_t> VirtioBlock::execute(const VirtqChain& chain, const GuestMemory& memory) {
  metrics_.virtio_blk_requests.fetch_add(1, std::memory_order_relaxed);
  // §5.2.6: header (device-readable, 16 bytes), data, status (last device-writable byte).
  if (chain.buffers.empty() || !chain.buffers.back().device_writable ||
      chain.buffers.back().len == 0)
    return Error("virtio-blk request " + std::to_string(chain.head) +
                 ": no device-writable status byte");
  std::uint8_t header[16];
  std::size_t have = 0;
  std::size_t first_data = 0;
  for (; first_data < chain.buffers.size() && have < sizeof header; ++first_data) {
    const auto& b = chain.buffers[first_data];
    if (b.device_writable) break;
    const std::size_t take = std::min<std::size_t>(b.len, sizeof header - have);
    CLOISTER_CHECK_OK(
        memory.read(b.addr, std::span(header + have, take), "virtio-blk request header"));
    have += take;
    if (take < b.len)
      return Error("virtio-blk request " + std::to_string(chain.head) +
                   ": header buffer longer than 16 bytes");
  }
  if (have < sizeof header)
    return Error("virtio-blk request " + std::to_string(chain.head) +
                 ": header shorter than 16 bytes");
  const std::uint32_t type = load_le32(header, 0);
  const std::uint64_t sector = load_le64(header, 8);

  std::vector<VirtqBuffer> data(chain.buffers.begin() + static_cast<std::ptrdiff_t>(first_data),
                                chain.buffers.end());
  VirtqBuffer status = data.back();
  status.addr += status.len - 1;
  status.len = 1;
  data.back().len -= 1;
  std::uint64_t data_len = 0;
  for (const auto& b : data) data_len += b.len;

  std::uint8_t result = kBlkSOk;
  std::uint32_t written = 0;
  auto in_range = [&] {
    return data_len % kSector == 0 && sector <= size_ / kSector &&
           data_len <= size_ - sector * kSector;
  };
  switch (type) {
    case kBlkTIn:
    case kBlkTOut: {
      const bool is_read = type == kBlkTIn;
      if (!in_range() || (!is_read && read_only_)) {
        result = kBlkSIoErr;
        break;
      }
      std::uint64_t pos = sector * kSector;
      for (const auto& b : data) {
        if (b.len == 0) continue;
        if (b.device_writable != is_read) {
          result = kBlkSIoErr;
          break;
        }
        auto view = memory.view(b.addr, b.len, is_read ? Access::kWrite : Access::kRead,
                                "virtio-blk data buffer");
        if (!view) {
          result = kBlkSIoErr;
          break;
        }
        ssize_t n = is_read
                        ? ::pread(fd_.get(), view->data(), view->size(), static_cast<off_t>(pos))
                        : ::pwrite(fd_.get(), view->data(), view->size(), static_cast<off_t>(pos));
        if (n != static_cast<ssize_t>(view->size())) {
          result = kBlkSIoErr;
          break;
        }
        pos += b.len;
        if (is_read) {
          memory.written(b.addr, b.len);  // the read may outlast the migration's passes
          written += b.len;
          metrics_.virtio_blk_bytes_read.fetch_add(b.len, std::memory_order_relaxed);
        } else {
          metrics_.virtio_blk_bytes_written.fetch_add(b.len, std::memory_order_relaxed);
        }
      }
      break;
    }
    case kBlkTFlush:
      if (::fdatasync(fd_.get()) < 0) result = kBlkSIoErr;
      break;
    case kBlkTGetId: {
      std::uint8_t id[20] = {};
      std::copy(id_.begin(), id_.end(), id);
      std::size_t done = 0;
      for (const auto& b : data) {
        if (!b.device_writable || done == sizeof id) break;
        const std::size_t take = std::min<std::size_t>(b.len, sizeof id - done);
        if (!memory.write(b.addr, std::span(id + done, take), "virtio-blk id buffer")) {
          result = kBlkSIoErr;
          break;
        }
        done += take;
      }
      written += static_cast<std::uint32_t>(done);
      break;
    }
    default:
      result = kBlkSUnsupp;
      break;
  }
  CLOISTER_CHECK_OK(memory.write(status.addr, std::span(&result, 1), "virtio-blk status byte"));
  return written + 1;
}

}  // namespace cloister::vmm
