// Legacy port-I/O devices: the 16550A UART console, QEMU's isa-debug-exit port, the i8042
// reset line and the fw_cfg paravirt channel.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "cloister/common/bytes.h"
#include "cloister/vmm/devices/bus.h"
#include "cloister/vmm/fd.h"
#include "cloister/vmm/metrics.h"
#include "cloister/vmm/vstate/stop.h"

namespace cloister::vmm {

// Where console output goes (stdout, a file, a socket); write() must not throw, and must not
// wait on the reader for long: the UART calls it on a vCPU thread holding its lock.
using ConsoleWriter = std::function<void(ByteView)>;
// A ConsoleWriter onto `fd` (kept open by the writer) that waits for a reader who is behind at
// most 500 ms (or until the vCPU is kicked) and then counts the console as stalled: from then on
// output the reader has no room for is dropped at once and counted in serial_tx_dropped, until
// a write goes through again. A reader that stops reading (a full pipe, socket or FIFO, a paused
// terminal) or goes away thus costs the guest its output, never a vCPU or the VMM's exit.
// Sockets are sent MSG_DONTWAIT | MSG_NOSIGNAL; pipes and terminals get pieces of at most
// PIPE_BUF once poll() says they take them.
ConsoleWriter console_writer(std::shared_ptr<Fd> fd, bool socket, Metrics& metrics);
// Drives an interrupt line (KVM_IRQ_LINE); level is true while an interrupt is pending.
using IrqLine = std::function<void(bool level)>;

// The UART's registers and pending input, as a snapshot records them.
struct SerialState {
  std::uint8_t ier = 0, lcr = 0x03, mcr = 0, scr = 0, dll = 1, dlm = 0, fcr = 0;
  bool thr_interrupt = false;
  Bytes rx;  // received bytes the guest has not read yet
};

// National Semiconductor PC16550D UART (datasheet, "Registers"): 8 registers, FIFO mode,
// loopback, THR-empty and received-data interrupts. Output goes to the ConsoleWriter; input
// is queued by push_input() from the host side.
class Serial final : public BusDevice {
 public:
  Serial(ConsoleWriter out, IrqLine irq, Metrics& metrics)
      : out_(std::move(out)), irq_(std::move(irq)), metrics_(metrics) {}
  std::string_view name() const override { return "serial"; }
  void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
  void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;
  // Transmit bursts reach the console with one write.
  void write_burst(std::uint64_t offset, std::span<const std::uint8_t> data,
                   std::size_t access_size) override;
  // Bytes typed at the console; dropped beyond 64 KiB of backlog.
  void push_input(ByteView bytes);
  // Snapshot state. restore() drives the interrupt line to match the restored registers.
  SerialState save();
  void restore(const SerialState& state);

 private:
  std::uint8_t interrupt_id() const;  // IIR without the FIFO bits; 0x01 = none pending
  void update_irq();

  std::mutex mutex_;
  ConsoleWriter out_;
  IrqLine irq_;
  Metrics& metrics_;
  std::uint8_t ier_ = 0, lcr_ = 0x03, mcr_ = 0, scr_ = 0, dll_ = 1, dlm_ = 0, fcr_ = 0;
  bool thr_interrupt_ = false;
  bool irq_level_ = false;
  std::deque<std::uint8_t> rx_;
};

// QEMU's isa-debug-exit: a write of V stops the VM with guest status V (QEMU itself exits
// with (V << 1) | 1). Reads return all ones.
class DebugExit final : public BusDevice {
 public:
  explicit DebugExit(StopSink& stop) : stop_(stop) {}
  std::string_view name() const override { return "debug-exit"; }
  void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
  void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

 private:
  StopSink& stop_;
};

// The part of the i8042 keyboard controller guests use to reset the machine: command 0xFE
// ("pulse output line 0", Linux reboot=k) on port 0x64 stops the VM as a reset. Status reads
// report an empty, idle controller. Mapped at 0x60-0x64 (offset 0 data, offset 4 command).
class I8042 final : public BusDevice {
 public:
  explicit I8042(StopSink& stop) : stop_(stop) {}
  std::string_view name() const override { return "i8042"; }
  void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
  void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

 private:
  StopSink& stop_;
};

// QEMU fw_cfg, traditional I/O interface (QEMU docs/specs/fw_cfg.rst): a 16-bit selector at
// offset 0 and a byte-wide data port at offset 1 that reads the selected item sequentially.
// No DMA interface (FW_CFG_ID reports only the traditional interface).
class FwCfg final : public BusDevice {
 public:
  static constexpr std::uint16_t kSignature = 0x00;
  static constexpr std::uint16_t kId = 0x01;
  static constexpr std::uint16_t kRamSize = 0x03;
  static constexpr std::uint16_t kNbCpus = 0x05;
  static constexpr std::uint16_t kMaxCpus = 0x0f;
  static constexpr std::uint16_t kCmdlineSize = 0x14;
  static constexpr std::uint16_t kCmdlineData = 0x15;
  static constexpr std::uint16_t kFileDir = 0x19;

  // The items this VMM publishes: signature, id, RAM size, CPU counts, the command line and
  // an empty file directory.
  FwCfg(std::uint64_t ram_size, std::uint16_t cpus, const std::string& cmdline);
  std::string_view name() const override { return "fw_cfg"; }
  void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
  void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

 private:
  std::mutex mutex_;
  std::map<std::uint16_t, Bytes> items_;
  std::uint16_t selector_ = 0;
  std::size_t position_ = 0;
};

}  // namespace cloister::vmm
