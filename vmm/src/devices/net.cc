#include "cloister/vmm/devices/net.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "cloister/vmm/seccomp/seccomp.h"

namespace cloister::vmm {
namespace {

using namespace net;

// The TUN_F_* offloads matching the GUEST_* features the driver accepted: what the kernel may
// hand the guest.
unsigned tun_offloads(std::uint64_t accepted) {
  unsigned flags = 0;
  if (accepted & kFGuestCsum) {
    flags |= TUN_F_CSUM;
    if (accepted & kFGuestTso4) flags |= TUN_F_TSO4;
    if (accepted & kFGuestTso6) flags |= TUN_F_TSO6;
  }
  return flags;
}

}  // namespace

Result<std::unique_ptr<VirtioNet>> VirtioNet::open(const NetConfig& config, Logger& log,
                                                   Metrics& metrics) {
  const std::string what = "virtio-net TAP " + config.tap;
  Fd tap(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!tap.valid()) return os_error(what + ": open /dev/net/tun");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, config.tap.c_str(), IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (::ioctl(tap.get(), TUNSETIFF, &ifr) < 0)
    return os_error(what +
                    ": TUNSETIFF (does the TAP exist and belong to this user, or may the "
                    "VMM create it?)");
  int header_size = static_cast<int>(kHeaderSize);
  if (::ioctl(tap.get(), TUNSETVNETHDRSZ, &header_size) < 0)
    return os_error(what + ": TUNSETVNETHDRSZ 12");
  std::uint64_t features = virtio::kFVersion1;
  if (config.mac) features |= kFMac;
  // A TAP that takes every offload can carry checksum and segmentation offloads both ways;
  // until a driver accepts them the kernel hands over plain frames only.
  if (::ioctl(tap.get(), TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) == 0) {
    features |= kFCsum | kFGuestCsum | kFGuestTso4 | kFGuestTso6 | kFHostTso4 | kFHostTso6;
  }
  if (::ioctl(tap.get(), TUNSETOFFLOAD, 0u) < 0) return os_error(what + ": TUNSETOFFLOAD 0");
  Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) return os_error(what + ": epoll_create1");
  Fd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return os_error(what + ": eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake.get();
  if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, wake.get(), &ev) < 0)
    return os_error(what + ": epoll_ctl");
  ev.events = EPOLLIN | EPOLLET;
  ev.data.fd = tap.get();
  if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, tap.get(), &ev) < 0)
    return os_error(what + ": epoll_ctl");
  return std::unique_ptr<VirtioNet>(new VirtioNet(config, std::move(tap), std::move(epoll),
                                                  std::move(wake), features, log, metrics));
}

VirtioNet::VirtioNet(const NetConfig& config, Fd tap, Fd epoll, Fd wake, std::uint64_t features,
                     Logger& log, Metrics& metrics)
    : tap_(config.tap),
      mac_(config.mac),
      features_(features),
      tap_fd_(std::move(tap)),
      epoll_(std::move(epoll)),
      wake_(std::move(wake)),
      log_(log),
      metrics_(metrics),
      rx_config_(config.rx_rate_limiter),
      tx_config_(config.tx_rate_limiter),
      rx_limiter_(config.rx_rate_limiter, Clock::now()),
      tx_limiter_(config.tx_rate_limiter, Clock::now()) {
  tx_buffer_.reserve(kMaxPacket);
}

VirtioNet::~VirtioNet() {
  stop();
}

void VirtioNet::read_config(std::uint64_t offset, std::span<std::uint8_t> data) const {
  // struct virtio_net_config { u8 mac[6]; le16 status; ... }: only mac is offered.
  std::uint8_t config[6] = {};
  if (mac_) std::copy(mac_->begin(), mac_->end(), config);
  for (std::size_t i = 0; i < data.size(); ++i)
    data[i] = offset + i < sizeof config ? config[offset + i] : 0;
}

Status VirtioNet::start(VirtqueueLink& link, const DeviceSandbox& sandbox) {
  link_ = &link;
  SeccompScope scope;
  scope.ioctls = sandbox.irq_ioctls;
  scope.ioctls.push_back({tap_fd_.get(), TUNSETOFFLOAD});
  CLOISTER_TRY(thread_,
               start_sandboxed_thread(ThreadClass::kNet, sandbox.seccomp, std::move(scope), [this] {
                 run();
                 parking_.release();
               }));
  return {};
}

void VirtioNet::park() {
  parking_.park([this] { kick(); });
}

VirtioDeviceSpecificState VirtioNet::save() {
  if (!rx_frame_.empty()) metrics_.net_rx_dropped_snapshot.fetch_add(1, std::memory_order_relaxed);
  const Clock::time_point now = Clock::now();
  return NetDeviceState{tap_, mac_, rx_limiter_.save(now), tx_limiter_.save(now)};
}

std::uint16_t VirtioNet::held_chains(std::uint16_t queue, std::uint64_t generation) const {
  if (generation != generation_) return 0;  // held before a reset that the thread has not seen
  if (queue == kRxQueue) return rx_held_ ? 1 : 0;
  if (queue == kTxQueue) return tx_held_ ? 1 : 0;
  return 0;
}

void VirtioNet::restore(const NetDeviceState& state) {
  const Clock::time_point now = Clock::now();
  rx_limiter_.restore(state.rx, now);
  tx_limiter_.restore(state.tx, now);
}

void VirtioNet::kick() {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_.get(), &one, sizeof one);
}

void VirtioNet::stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true);
  parking_.release();
  kick();
  thread_.join();
}

void VirtioNet::set_rate_limiters(const RateLimiterConfig& rx, const RateLimiterConfig& tx) {
  {
    std::lock_guard lock(limits_mutex_);
    rx_config_ = rx;
    tx_config_ = tx;
    limits_changed_ = true;
  }
  kick();
}

std::pair<RateLimiterConfig, RateLimiterConfig> VirtioNet::rate_limiters() const {
  std::lock_guard lock(limits_mutex_);
  return {rx_config_, tx_config_};
}

void VirtioNet::run() {
  epoll_event events[4];
  Clock::time_point next = Clock::time_point::max();
  for (;;) {
    const int n = ::epoll_wait(epoll_.get(), events, 4, epoll_timeout_until(next));
    if (n < 0 && errno != EINTR) {
      log_.error("net.epoll", os_error("epoll_wait").message());
      return;
    }
    for (int i = 0; i < n; ++i)
      if (events[i].data.fd == tap_fd_.get()) tap_readable_ = true;
    std::uint64_t drained;
    while (::read(wake_.get(), &drained, sizeof drained) > 0) {
    }
    parking_.checkpoint();
    if (stopping_.load()) return;
    next = round();
  }
}

VirtioNet::Clock::time_point VirtioNet::round() {
  const Clock::time_point now = Clock::now();
  {
    std::lock_guard lock(limits_mutex_);
    if (limits_changed_) {
      rx_limiter_ = RateLimiter(rx_config_, now);
      tx_limiter_ = RateLimiter(tx_config_, now);
      limits_changed_ = false;
    }
  }
  const std::uint64_t generation = link_->generation();
  if (generation != generation_) {  // the driver reset the device: what was in flight is gone
    generation_ = generation;
    rx_frame_.clear();
    rx_held_.reset();
    tx_held_.reset();
    apply_offloads(generation);
  }
  Clock::time_point next = Clock::time_point::max();
  transmit(generation, now, next);
  receive(generation, now, next);
  return next;
}

void VirtioNet::apply_offloads(std::uint64_t generation) {
  const std::uint64_t accepted = link_->driver_features(generation);
  if (::ioctl(tap_fd_.get(), TUNSETOFFLOAD, tun_offloads(accepted)) < 0)
    log_.warn("net.offload", os_error("TAP " + tap_ + ": TUNSETOFFLOAD").message());
}

void VirtioNet::receive(std::uint64_t generation, Clock::time_point now, Clock::time_point& next) {
  for (;;) {
    if (rx_frame_.empty()) {
      if (!tap_readable_) return;
      rx_frame_.resize(kMaxPacket);
      const ssize_t n = ::read(tap_fd_.get(), rx_frame_.data(), rx_frame_.size());
      if (n <= static_cast<ssize_t>(kHeaderSize)) {
        rx_frame_.clear();
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) tap_readable_ = false;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          log_.warn("net.rx", os_error("TAP " + tap_ + ": read").message());
          tap_readable_ = false;
        }
        if (!tap_readable_) return;
        continue;
      }
      rx_frame_.resize(static_cast<std::size_t>(n));
    }
    if (!rx_held_) {
      rx_held_ = link_->pop(generation, kRxQueue);
      if (!rx_held_) return;  // the frame waits for a receive buffer and the guest's kick
    }
    const VirtqChain& chain = *rx_held_;
    if (chain.writable_bytes() < rx_frame_.size()) {
      link_->fail(generation, "virtio-net receive chain " + std::to_string(chain.head) + ": " +
                                  std::to_string(chain.writable_bytes()) +
                                  " writable bytes, less than the " +
                                  std::to_string(rx_frame_.size()) + "-byte frame");
      rx_held_.reset();
      return;
    }
    Clock::time_point retry;
    if (!rx_limiter_.try_take(rx_frame_.size() - kHeaderSize, now, retry)) {
      metrics_.net_rate_limited.fetch_add(1, std::memory_order_relaxed);
      next = std::min(next, retry);
      return;
    }
    // num_buffers (le16 at offset 10) is 1: one chain per frame without MRG_RXBUF.
    rx_frame_[10] = 1;
    rx_frame_[11] = 0;
    if (auto ok = chain.scatter(link_->memory(), rx_frame_, "virtio-net receive buffer"); !ok) {
      link_->fail(generation, ok.error().message());
      rx_held_.reset();
      return;
    }
    link_->push(generation, kRxQueue, chain.head, static_cast<std::uint32_t>(rx_frame_.size()));
    metrics_.net_rx_frames.fetch_add(1, std::memory_order_relaxed);
    metrics_.net_rx_bytes.fetch_add(rx_frame_.size() - kHeaderSize, std::memory_order_relaxed);
    rx_frame_.clear();
    rx_held_.reset();
  }
}

void VirtioNet::transmit(std::uint64_t generation, Clock::time_point now, Clock::time_point& next) {
  for (;;) {
    if (!tx_held_) {
      tx_held_ = link_->pop(generation, kTxQueue);
      if (!tx_held_) return;
    }
    const VirtqChain& chain = *tx_held_;
    const std::uint64_t length = chain.readable_bytes();
    if (length > kHeaderSize && length <= kMaxPacket) {
      Clock::time_point retry;
      if (!tx_limiter_.try_take(length - kHeaderSize, now, retry)) {
        metrics_.net_rate_limited.fetch_add(1, std::memory_order_relaxed);
        next = std::min(next, retry);
        return;
      }
      tx_buffer_.resize(length);
      std::size_t done = 0;
      Status copied;
      for (const auto& b : chain.buffers) {
        if (b.device_writable) continue;
        copied = link_->memory().read(b.addr, std::span(tx_buffer_).subspan(done, b.len),
                                      "virtio-net transmit buffer");
        if (!copied) break;
        done += b.len;
      }
      if (!copied) {
        link_->fail(generation, copied.error().message());
        tx_held_.reset();
        return;
      }
      const ssize_t n = ::write(tap_fd_.get(), tx_buffer_.data(), tx_buffer_.size());
      if (n == static_cast<ssize_t>(tx_buffer_.size())) {
        metrics_.net_tx_frames.fetch_add(1, std::memory_order_relaxed);
        metrics_.net_tx_bytes.fetch_add(length - kHeaderSize, std::memory_order_relaxed);
      } else {
        metrics_.net_tx_dropped.fetch_add(1, std::memory_order_relaxed);
      }
    } else {
      metrics_.net_tx_dropped.fetch_add(1, std::memory_order_relaxed);
    }
    link_->push(generation, kTxQueue, chain.head, 0);
    tx_held_.reset();
  }
}

}  // namespace cloister::vmm
