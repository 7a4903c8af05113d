#include "cloister/vmm/devices/legacy.h"

#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace cloister::vmm {
namespace {

// 16550 register offsets and bits (PC16550D datasheet, table 2).
constexpr std::uint8_t kIerRdi = 0x01, kIerThri = 0x02;
constexpr std::uint8_t kIirNone = 0x01, kIirThri = 0x02, kIirRdi = 0x04, kIirFifo = 0xc0;
constexpr std::uint8_t kLcrDlab = 0x80;
constexpr std::uint8_t kMcrLoop = 0x10;
constexpr std::uint8_t kLsrDr = 0x01, kLsrThre = 0x20, kLsrTemt = 0x40;
constexpr std::uint8_t kMsrCts = 0x10, kMsrDsr = 0x20, kMsrDcd = 0x80;
constexpr std::size_t kRxLimit = 64 * 1024;

std::uint64_t little_endian(std::span<const std::uint8_t> data) {
  std::uint64_t v = 0;
  for (std::size_t i = data.size(); i-- > 0;) v = (v << 8) | data[i];
  return v;
}

// How long a console write waits for a reader that is behind before the console counts as
// stalled; while stalled, output the reader has no room for is dropped without waiting.
constexpr int kConsoleGraceMs = 500;

// The console's descriptor and whether its reader stalled: the UART's lock serialises calls.
struct ConsoleSink {
  std::shared_ptr<Fd> fd;
  bool socket = false;
  bool stalled = false;

  // Waits up to `ms` until the descriptor takes a PIPE_BUF piece: false when it does not, the
  // wait is interrupted (a vCPU kick), or its reader went away (POLLERR: a pipe's, where
  // writing would raise SIGPIPE; POLLHUP: a socket's).
  bool room(int ms) const {
    pollfd p{fd->get(), POLLOUT, 0};
    return ::poll(&p, 1, ms) > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL)) == 0 &&
           (p.revents & POLLOUT) != 0;
  }

  // Writes `bytes`; returns how many were dropped. Each time a reader that was keeping up falls
  // behind, waits up to kConsoleGraceMs for it; once it has not caught up in that time, waits
  // no more until a write goes through again. Sockets are sent MSG_DONTWAIT (their poll() reports
  // room only below a quarter of the send buffer, so a send is tried first); anything else is
  // written in pieces of at most PIPE_BUF once poll() says there is room, which a pipe or terminal
  // then takes without blocking.
  std::size_t write(ByteView bytes) {
    while (!bytes.empty()) {
      if (!socket && !room(0) && (stalled || !room(kConsoleGraceMs))) break;
      const std::size_t piece = std::min<std::size_t>(bytes.size(), PIPE_BUF);
      const ssize_t n =
          socket ? ::send(fd->get(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL)
                 : ::write(fd->get(), bytes.data(), piece);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN && !stalled && room(kConsoleGraceMs)) continue;
      if (n <= 0) break;
      stalled = false;
      bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
    if (!bytes.empty()) stalled = true;
    return bytes.size();
  }
};

}  // namespace

ConsoleWriter console_writer(std::shared_ptr<Fd> fd, bool socket, Metrics& metrics) {
  auto sink = std::make_shared<ConsoleSink>(ConsoleSink{std::move(fd), socket});
  return [sink, &metrics](ByteView bytes) {
    if (const std::size_t dropped = sink->write(bytes))
      metrics.serial_tx_dropped.fetch_add(dropped, std::memory_order_relaxed);
  };
}

std::uint8_t Serial::interrupt_id() const {
  if ((ier_ & kIerRdi) && !rx_.empty()) return kIirRdi;
  if ((ier_ & kIerThri) && thr_interrupt_) return kIirThri;
  return kIirNone;
}

void Serial::update_irq() {
  const bool level = interrupt_id() != kIirNone;
  if (level != irq_level_) {
    irq_level_ = level;
    if (irq_) irq_(level);
  }
}

SerialState Serial::save() {
  std::lock_guard lock(mutex_);
  return {ier_, lcr_, mcr_, scr_, dll_, dlm_, fcr_, thr_interrupt_, Bytes(rx_.begin(), rx_.end())};
}

void Serial::restore(const SerialState& state) {
  std::lock_guard lock(mutex_);
  ier_ = state.ier, lcr_ = state.lcr, mcr_ = state.mcr, scr_ = state.scr;
  dll_ = state.dll, dlm_ = state.dlm, fcr_ = state.fcr;
  thr_interrupt_ = state.thr_interrupt;
  rx_.assign(state.rx.begin(), state.rx.end());
  irq_level_ = interrupt_id() == kIirNone;  // the opposite of the level, so the line is driven
  update_irq();
}

void Serial::read(std::uint64_t offset, std::span<std::uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if (data.size() != 1) return;  // the UART has byte-wide registers only
  std::lock_guard lock(mutex_);
  std::uint8_t v = 0;
  switch (offset) {
    case 0:
      if (lcr_ & kLcrDlab) {
        v = dll_;
      } else if (!rx_.empty()) {
        v = rx_.front();
        rx_.pop_front();
      }
      break;
    case 1:
      v = (lcr_ & kLcrDlab) ? dlm_ : ier_;
      break;
    case 2:
      v = interrupt_id() | ((fcr_ & 1) ? kIirFifo : 0);
      if ((v & 0x0f) == kIirThri) thr_interrupt_ = false;  // reading IIR clears THRE interrupt
      break;
    case 3:
      v = lcr_;
      break;
    case 4:
      v = mcr_;
      break;
    case 5:
      v = kLsrThre | kLsrTemt | (rx_.empty() ? 0 : kLsrDr);
      break;
    case 6:
      if (mcr_ & kMcrLoop) {
        // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
        v = static_cast<std::uint8_t>(((mcr_ & 0x01) << 5) | ((mcr_ & 0x02) << 3) |
                                      ((mcr_ & 0x04) << 4) | ((mcr_ & 0x08) << 4));
      } else {
        v = kMsrCts | kMsrDsr | kMsrDcd;
      }
      break;
    case 7:
      v = scr_;
      break;
    default:
      break;
  }
  data[0] = v;
  update_irq();
}

void Serial::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
  if (data.size() != 1) return;
  const std::uint8_t v = data[0];
  std::lock_guard lock(mutex_);
  switch (offset) {
    case 0:
      if (lcr_ & kLcrDlab) {
        dll_ = v;
      } else if (mcr_ & kMcrLoop) {
        if (rx_.size() < kRxLimit) rx_.push_back(v);
        thr_interrupt_ = true;
      } else {
        metrics_.serial_tx_bytes.fetch_add(1, std::memory_order_relaxed);
        if (out_) out_(ByteView(&v, 1));
        thr_interrupt_ = true;  // the transmitter is instantly empty again
      }
      break;
    case 1:
      if (lcr_ & kLcrDlab) {
        dlm_ = v;
      } else {
        // Enabling THRI while the holder is empty raises the interrupt at once (16550 quirk
        // Linux's 8250 driver probes for).
        if ((v & kIerThri) && !(ier_ & kIerThri)) thr_interrupt_ = true;
        ier_ = v & 0x0f;
      }
      break;
    case 2:
      fcr_ = v;
      if (v & 0x02) rx_.clear();
      break;
    case 3:
      lcr_ = v;
      break;
    case 4:
      mcr_ = v & 0x1f;
      break;
    case 7:
      scr_ = v;
      break;
    default:
      break;  // LSR and MSR are read-only
  }
  update_irq();
}

void Serial::write_burst(std::uint64_t offset, std::span<const std::uint8_t> data,
                         std::size_t access_size) {
  {
    std::lock_guard lock(mutex_);
    const bool plain_transmit =
        offset == 0 && access_size == 1 && !(lcr_ & kLcrDlab) && !(mcr_ & kMcrLoop);
    if (plain_transmit) {
      metrics_.serial_tx_bytes.fetch_add(data.size(), std::memory_order_relaxed);
      if (out_) out_(data);
      thr_interrupt_ = true;
      update_irq();
      return;
    }
  }
  BusDevice::write_burst(offset, data, access_size);
}

void Serial::push_input(ByteView bytes) {
  std::lock_guard lock(mutex_);
  for (auto b : bytes)
    if (rx_.size() < kRxLimit) rx_.push_back(b);
  metrics_.serial_rx_bytes.fetch_add(bytes.size(), std::memory_order_relaxed);
  update_irq();
}

void DebugExit::read(std::uint64_t, std::span<std::uint8_t> data) {
  std::fill(data.begin(), data.end(), 0xff);
}

void DebugExit::write(std::uint64_t, std::span<const std::uint8_t> data) {
  const auto status = static_cast<std::uint32_t>(little_endian(data));
  stop_.request_stop({StopKind::kDebugExit, status,
                      "guest wrote status " + std::to_string(status) + " to the debug-exit port"});
}

void I8042::read(std::uint64_t, std::span<std::uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);  // status: output buffer empty, input buffer empty
}

void I8042::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
  constexpr std::uint8_t kPulseResetLine = 0xfe;
  if (offset == 4 && data.size() == 1 && data[0] == kPulseResetLine)
    stop_.request_stop({StopKind::kReset, 0, "guest reset the machine through the i8042"});
}

FwCfg::FwCfg(std::uint64_t ram_size, std::uint16_t cpus, const std::string& cmdline) {
  auto le = [](std::uint64_t v, std::size_t n) {
    Bytes out(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(v >> (8 * i));
    return out;
  };
  items_[kSignature] = {'Q', 'E', 'M', 'U'};
  items_[kId] = le(1, 4);  // bit 0: traditional interface; no DMA
  items_[kRamSize] = le(ram_size, 8);
  items_[kNbCpus] = le(cpus, 2);
  items_[kMaxCpus] = le(cpus, 2);
  items_[kCmdlineSize] = le(cmdline.size() + 1, 4);
  Bytes cmd(cmdline.begin(), cmdline.end());
  cmd.push_back(0);
  items_[kCmdlineData] = std::move(cmd);
  items_[kFileDir] = Bytes(4, 0);  // big-endian count 0: no files
}

void FwCfg::read(std::uint64_t offset, std::span<std::uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  std::lock_guard lock(mutex_);
  if (offset != 1) return;
  auto it = items_.find(selector_);
  for (auto& byte : data) {
    if (it != items_.end() && position_ < it->second.size()) byte = it->second[position_];
    ++position_;
  }
}

void FwCfg::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
  std::lock_guard lock(mutex_);
  if (offset == 0 && data.size() == 2) {
    selector_ = static_cast<std::uint16_t>(little_endian(data));
    position_ = 0;
  }
  // Writes to the data port are ignored: this fw_cfg has no writable items.
}

}  // namespace cloister::vmm
