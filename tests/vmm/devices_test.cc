#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "cloister/vmm/devices/bus.h"
#include "cloister/vmm/devices/legacy.h"
#include "cloister/vmm/devices/net.h"
#include "cloister/vmm/devices/virtio.h"
#include "cloister/vmm/devices/vsock.h"
#include "cloister/vmm/seccomp/seccomp.h"
#include "cloister/vmm/vstate/vcpu_threads.h"

namespace cloister::vmm {
namespace {

struct RecordingStop : StopSink {
  std::vector<StopReason> reasons;
  void request_stop(StopReason r) override { reasons.push_back(std::move(r)); }
};

std::uint8_t rd(BusDevice& d, std::uint64_t off) {
  std::uint8_t b[1];
  d.read(off, b);
  return b[0];
}
void wr(BusDevice& d, std::uint64_t off, std::uint8_t v) {
  d.write(off, std::span(&v, 1));
}

TEST(BusTest, DispatchesInsideRangesOnly) {
  RecordingStop stop;
  Bus bus("pio");
  auto exit_dev = std::make_shared<DebugExit>(stop);
  ASSERT_TRUE(bus.insert(exit_dev, 0xf4, 4).ok());
  EXPECT_FALSE(bus.insert(exit_dev, 0xf6, 4).ok());  // overlaps
  EXPECT_FALSE(bus.insert(exit_dev, 0x10, 0).ok());
  std::uint8_t v[4] = {1, 0, 0, 0};
  EXPECT_TRUE(bus.write(0xf4, std::span(v, 1)));
  EXPECT_TRUE(bus.write(0xf4, std::span(v, 4)));
  EXPECT_FALSE(bus.write(0xf6, std::span(v, 4)));  // crosses the end
  EXPECT_FALSE(bus.write(0xf3, std::span(v, 1)));
  EXPECT_EQ(stop.reasons.size(), 2u);
  EXPECT_EQ(stop.reasons[0].kind, StopKind::kDebugExit);
  EXPECT_EQ(stop.reasons[0].guest_status, 1u);
  EXPECT_EQ(exit_code_for(stop.reasons[0]), 4);
}

TEST(SerialTest, TransmitsAndLoopsBack) {
  Metrics m;
  std::string out;
  std::vector<bool> irq;
  Serial s([&](ByteView b) { out.append(b.begin(), b.end()); }, [&](bool l) { irq.push_back(l); },
           m);
  EXPECT_EQ(rd(s, 5) & 0x60, 0x60);  // THRE | TEMT
  wr(s, 0, 'h');
  wr(s, 0, 'i');
  EXPECT_EQ(out, "hi");
  EXPECT_EQ(m.serial_tx_bytes.load(), 2u);
  // DLAB: offsets 0/1 are the divisor latch, not THR/IER.
  wr(s, 3, 0x80);
  wr(s, 0, 0x0c);
  EXPECT_EQ(rd(s, 0), 0x0c);
  wr(s, 3, 0x03);
  EXPECT_EQ(out, "hi");
  // Loopback: output comes back as input and is not transmitted.
  wr(s, 4, 0x10);
  wr(s, 0, 'x');
  EXPECT_EQ(out, "hi");
  EXPECT_EQ(rd(s, 5) & 0x01, 0x01);
  EXPECT_EQ(rd(s, 0), 'x');
  EXPECT_EQ(rd(s, 5) & 0x01, 0x00);
  wr(s, 4, 0x00);
  // Received-data interrupt.
  wr(s, 1, 0x01);
  s.push_input(as_bytes("ab"));
  EXPECT_EQ(rd(s, 2) & 0x0f, 0x04);
  ASSERT_FALSE(irq.empty());
  EXPECT_TRUE(irq.back());
  EXPECT_EQ(rd(s, 0), 'a');
  EXPECT_EQ(rd(s, 0), 'b');
  EXPECT_EQ(rd(s, 2) & 0x0f, 0x01);
  EXPECT_FALSE(irq.back());
  // THRE interrupt fires when enabled and clears when IIR is read.
  wr(s, 1, 0x02);
  EXPECT_EQ(rd(s, 2) & 0x0f, 0x02);
  EXPECT_EQ(rd(s, 2) & 0x0f, 0x01);
}

TEST(SerialTest, TransmitBurstIsOneConsoleWrite) {
  Metrics m;
  std::vector<std::string> writes;
  Serial s([&](ByteView b) { writes.emplace_back(b.begin(), b.end()); }, nullptr, m);
  const std::string burst = "0123456789abcdef";
  s.write_burst(0, as_bytes(burst), 1);
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0], burst);
  EXPECT_EQ(m.serial_tx_bytes.load(), 16u);
  // With DLAB set the same burst programs the divisor latch instead of transmitting.
  wr(s, 3, 0x80);
  s.write_burst(0, as_bytes("xy"), 1);
  EXPECT_EQ(writes.size(), 1u);
  EXPECT_EQ(rd(s, 0), 'y');
}

// The console writer does not wait on a reader that stopped: onto a socket or a pipe nobody
// reads, a guest's 4 MiB of output returns after one grace period, and every byte is either
// delivered or counted as dropped.
TEST(ConsoleWriterTest, AReaderThatDoesNotReadCostsOutputNotTheVcpu) {
  for (const bool socket : {true, false}) {
    SCOPED_TRACE(socket ? "socket" : "pipe");
    int ends[2];
    ASSERT_EQ(socket ? ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends)
                     : ::pipe2(ends, O_CLOEXEC),
              0);
    const int reader = socket ? ends[1] : ends[0];
    Metrics m;
    ConsoleWriter write =
        console_writer(std::make_shared<Fd>(socket ? ends[0] : ends[1]), socket, m);
    const Bytes burst(64 * 1024, 'x');
    for (int i = 0; i < 64; ++i) write(burst);
    ASSERT_GT(m.serial_tx_dropped.load(), 0u);
    ASSERT_EQ(::fcntl(reader, F_SETFL, O_NONBLOCK), 0);
    std::size_t delivered = 0;
    Bytes buffer(64 * 1024);
    for (ssize_t n; (n = ::read(reader, buffer.data(), buffer.size())) > 0;)
      delivered += static_cast<std::size_t>(n);
    EXPECT_EQ(delivered + m.serial_tx_dropped.load(), 64u * burst.size());
    ::close(reader);
    // The reader gone: dropped as well, no SIGPIPE.
    write(burst);
    EXPECT_EQ(delivered + m.serial_tx_dropped.load(), 65u * burst.size());
  }
}

// A reader that is merely behind loses nothing: the writer waits for it (a socket's send buffer
// holds only a few hundred one-byte writes, the UART's usual size).
TEST(ConsoleWriterTest, AReaderThatIsBehindGetsEveryByte) {
  int ends[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends), 0);
  Metrics m;
  ConsoleWriter write = console_writer(std::make_shared<Fd>(ends[0]), true, m);
  constexpr std::size_t kBytes = 20000;
  std::string received;
  std::thread reader([&] {
    char buffer[256];
    while (received.size() < kBytes) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      const ssize_t n = ::read(ends[1], buffer, sizeof buffer);
      if (n <= 0) break;
      received.append(buffer, static_cast<std::size_t>(n));
    }
  });
  for (std::size_t i = 0; i < kBytes; ++i) {
    const std::uint8_t byte = static_cast<std::uint8_t>('a' + i % 26);
    write(ByteView(&byte, 1));
  }
  reader.join();
  ::close(ends[1]);
  EXPECT_EQ(m.serial_tx_dropped.load(), 0u);
  ASSERT_EQ(received.size(), kBytes);
  for (std::size_t i = 0; i < kBytes; ++i) ASSERT_EQ(received[i], 'a' + i % 26) << i;
}

TEST(I8042Test, OnlyPulseResetStops) {
  RecordingStop stop;
  I8042 kbd(stop);
  wr(kbd, 4, 0xfd);
  wr(kbd, 0, 0xfe);
  EXPECT_TRUE(stop.reasons.empty());
  wr(kbd, 4, 0xfe);
  ASSERT_EQ(stop.reasons.size(), 1u);
  EXPECT_EQ(stop.reasons[0].kind, StopKind::kReset);
  EXPECT_EQ(exit_code_for(stop.reasons[0]), 0);
}

TEST(FwCfgTest, ServesSignatureCpusRamAndCmdline) {
  FwCfg cfg(64ull << 20, 4, "mode=idle");
  auto select = [&](std::uint16_t key) {
    std::uint8_t sel[2] = {static_cast<std::uint8_t>(key), static_cast<std::uint8_t>(key >> 8)};
    cfg.write(0, sel);
  };
  auto read_n = [&](std::size_t n) {
    std::vector<std::uint8_t> out(n);
    for (auto& b : out) b = rd(cfg, 1);
    return out;
  };
  select(FwCfg::kSignature);
  EXPECT_EQ(read_n(4), (std::vector<std::uint8_t>{'Q', 'E', 'M', 'U'}));
  select(FwCfg::kNbCpus);
  EXPECT_EQ(read_n(2), (std::vector<std::uint8_t>{4, 0}));
  select(FwCfg::kRamSize);
  EXPECT_EQ(read_n(8), (std::vector<std::uint8_t>{0, 0, 0, 4, 0, 0, 0, 0}));
  select(FwCfg::kCmdlineSize);
  EXPECT_EQ(read_n(4), (std::vector<std::uint8_t>{10, 0, 0, 0}));
  select(FwCfg::kCmdlineData);
  auto cmd = read_n(12);
  EXPECT_EQ(std::string(cmd.begin(), cmd.begin() + 9), "mode=idle");
  EXPECT_EQ(cmd[9], 0);
  EXPECT_EQ(cmd[11], 0);  // past the end reads zero
  select(0x4242);
  EXPECT_EQ(read_n(2), (std::vector<std::uint8_t>{0, 0}));
}

// A guest driver's view of one virtio-mmio device on top of 1 MiB of real guest memory.
class MmioDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RegionSpec spec{"ram", 0, 1 << 20, false};
    auto mem = GuestMemory::create(std::span(&spec, 1), false);
    ASSERT_TRUE(mem.ok());
    memory_ = std::make_unique<GuestMemory>(std::move(*mem));
  }
  void attach(std::unique_ptr<VirtioDevice> device) {
    auto transport = VirtioMmio::create(
        std::move(device), *memory_,
        [this](bool l) {
          irq_ = l;
          irq_thread_ = std::this_thread::get_id();
        },
        DeviceSandbox{}, log_, metrics_);
    ASSERT_TRUE(transport.ok()) << transport.error().message();
    dev_ = std::move(*transport);
  }

  std::uint32_t reg(std::uint64_t off) {
    std::uint8_t b[4];
    dev_->read(off, b);
    return load_le32(b, 0);
  }
  void set(std::uint64_t off, std::uint32_t v) {
    std::uint8_t b[4];
    store_le32(b, 0, v);
    dev_->write(off, b);
  }
  void put64(std::uint64_t gpa, std::uint64_t v) {
    std::uint8_t b[8];
    store_le64(b, 0, v);
    ASSERT_TRUE(memory_->write(gpa, b, "test").ok());
  }
  void put32(std::uint64_t gpa, std::uint32_t v) {
    std::uint8_t b[4];
    store_le32(b, 0, v);
    ASSERT_TRUE(memory_->write(gpa, b, "test").ok());
  }
  void put16(std::uint64_t gpa, std::uint16_t v) {
    std::uint8_t b[2];
    store_le16(b, 0, v);
    ASSERT_TRUE(memory_->write(gpa, b, "test").ok());
  }
  // Descriptor `i` of the table at `table`.
  void desc(unsigned i, std::uint64_t addr, std::uint32_t len, std::uint16_t flags,
            std::uint16_t next, std::uint64_t table = kDesc) {
    put64(table + 16 * i, addr);
    put32(table + 16 * i + 8, len);
    put16(table + 16 * i + 12, flags);
    put16(table + 16 * i + 14, next);
  }
  // Reset, ACKNOWLEDGE | DRIVER, VIRTIO_F_VERSION_1 alone, FEATURES_OK.
  void negotiate() {
    set(0x070, 0);
    set(0x070, 3);
    set(0x024, 1);
    set(0x020, 1);  // VIRTIO_F_VERSION_1
    set(0x070, 3 | 8);
    ASSERT_EQ(reg(0x070) & 8, 8u);
  }
  // Queue `index`, eight entries, at the three ring addresses.
  void ready_queue(std::uint32_t index, std::uint64_t table, std::uint64_t avail,
                   std::uint64_t used) {
    set(0x030, index);
    set(0x038, 8);
    set(0x080, static_cast<std::uint32_t>(table));
    set(0x090, static_cast<std::uint32_t>(avail));
    set(0x0a0, static_cast<std::uint32_t>(used));
    set(0x044, 1);
  }
  void bring_up() {
    negotiate();
    ready_queue(0, kDesc, kAvail, kUsed);
    set(0x070, 3 | 8 | 4);
  }
  // Publishes `head` as the avail ring's entry `avail_idx` - 1 and notifies `queue`.
  void submit(std::uint16_t head, std::uint16_t avail_idx, std::uint32_t queue = 0,
              std::uint64_t avail = kAvail) {
    put16(avail + 4 + 2 * ((avail_idx - 1) % 8), head);
    put16(avail + 2, avail_idx);
    set(0x050, queue);
  }
  std::uint16_t used_idx(std::uint64_t used = kUsed) {
    std::uint8_t b[2];
    EXPECT_TRUE(memory_->read(used + 2, b, "test").ok());
    return load_le16(b, 0);
  }
  // Requests complete on the device thread: waits (up to 2 s) for `condition`.
  template <typename F>
  bool eventually(F condition) {
    for (int i = 0; i < 2000 && !condition(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return condition();
  }
  bool used_reaches(std::uint16_t n) {
    return eventually([&] { return used_idx() == n; });
  }
  std::uint8_t byte_at(std::uint64_t gpa) {
    std::uint8_t b[1];
    EXPECT_TRUE(memory_->read(gpa, b, "test").ok());
    return b[0];
  }

  static constexpr std::uint64_t kDesc = 0x1000, kAvail = 0x2000, kUsed = 0x3000, kHdr = 0x4000,
                                 kData = 0x5000, kStatus = 0x6000;
  Metrics metrics_;
  Logger log_{LogFormat::kText, LogLevel::kError};
  std::unique_ptr<GuestMemory> memory_;
  std::shared_ptr<VirtioMmio> dev_;
  std::atomic<bool> irq_ = false;
  std::atomic<std::thread::id> irq_thread_;
};

class VirtioBlockTest : public MmioDriverTest {
 protected:
  void SetUp() override {
    MmioDriverTest::SetUp();
    char path[] = "/tmp/cloister-vblk-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    disk_path_ = path;
    std::string content(4096, '\0');
    content.replace(0, 9, "SECTOR-0!");
    content.replace(512, 9, "SECTOR-1!");
    ASSERT_EQ(::write(fd, content.data(), content.size()), 4096);
    ::close(fd);
    auto blk = VirtioBlock::open(disk_path_, false, metrics_);
    ASSERT_TRUE(blk.ok()) << blk.error().message();
    attach(std::move(*blk));
  }
  void TearDown() override { std::remove(disk_path_.c_str()); }

  std::string disk_path_;
};

TEST_F(VirtioBlockTest, IdentifiesAsBlockDevice) {
  EXPECT_EQ(reg(0x000), virtio::kMagic);
  EXPECT_EQ(reg(0x004), 2u);
  EXPECT_EQ(reg(0x008), virtio::kIdBlock);
  set(0x014, 1);
  EXPECT_EQ(reg(0x010) & 1, 1u);
  EXPECT_EQ(reg(0x100), 8u);  // capacity: 4096 / 512
}

TEST_F(VirtioBlockTest, ReadsASectorAndInterrupts) {
  bring_up();
  put32(kHdr, 0);  // VIRTIO_BLK_T_IN
  put64(kHdr + 8, 1);
  desc(0, kHdr, 16, virtio::kDescFNext, 1);
  desc(1, kData, 512, virtio::kDescFWrite | virtio::kDescFNext, 2);
  desc(2, kStatus, 1, virtio::kDescFWrite, 0);
  submit(0, 1);
  ASSERT_TRUE(used_reaches(1));
  EXPECT_EQ(byte_at(kStatus), 0);
  EXPECT_EQ(byte_at(kData), 'S');
  EXPECT_EQ(byte_at(kData + 7), '1');
  ASSERT_TRUE(eventually([&] { return irq_.load(); }));
  // The notifying thread only kicked the device: its own thread did the read and interrupted.
  EXPECT_NE(irq_thread_.load(), std::this_thread::get_id());
  EXPECT_EQ(reg(0x060), 1u);
  set(0x064, 1);
  EXPECT_FALSE(irq_);
  EXPECT_EQ(metrics_.virtio_blk_bytes_read.load(), 512u);
}

// A snapshot's view of a block device: save() parks the device thread (a request published
// afterwards waits), the state holds the transport and the queue's indices, a parked device
// stops cleanly, and a transport restored from that state serves the waiting request.
TEST_F(VirtioBlockTest, SaveParksTheDeviceAndARestoredTransportServesWhatWaits) {
  bring_up();
  put32(kHdr, 0);
  put64(kHdr + 8, 1);
  desc(0, kHdr, 16, virtio::kDescFNext, 1);
  desc(1, kData, 512, virtio::kDescFWrite | virtio::kDescFNext, 2);
  desc(2, kStatus, 1, virtio::kDescFWrite, 0);
  submit(0, 1);
  ASSERT_TRUE(used_reaches(1));
  const VirtioDeviceState saved = dev_->save(0);
  EXPECT_EQ(saved.slot, 0u);
  EXPECT_EQ(saved.transport.status, 15u);
  EXPECT_EQ(saved.transport.driver_features, virtio::kFVersion1);
  ASSERT_EQ(saved.transport.queues.size(), 1u);
  EXPECT_EQ(saved.transport.queues[0],
            (VirtqueueState{8, true, kDesc, kAvail, kUsed, /*next_avail=*/1, /*next_used=*/1}));
  EXPECT_EQ(std::get<BlockDeviceState>(saved.device), (BlockDeviceState{disk_path_, 4096, false}));

  put64(kHdr + 8, 0);
  submit(0, 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(used_idx(), 1u) << "a parked device took a request";
  dev_.reset();

  auto blk = VirtioBlock::open(disk_path_, false, metrics_);
  ASSERT_TRUE(blk.ok()) << blk.error().message();
  auto restored = VirtioMmio::create(
      std::move(*blk), *memory_, [this](bool l) { irq_ = l; }, DeviceSandbox{}, log_, metrics_,
      saved.transport);
  ASSERT_TRUE(restored.ok()) << restored.error().message();
  dev_ = std::move(*restored);
  EXPECT_EQ(reg(0x070), 15u);
  ASSERT_TRUE(used_reaches(2));
  EXPECT_EQ(byte_at(kData + 7), '0');
  EXPECT_EQ(dev_->save(0).transport.queues[0].next_used, 2u);
  dev_->resume_device();
}

// A restored transport keeps the live one's invariants: features the device does not offer, or
// DRIVER_OK without FEATURES_OK, are refused with the field, not run.
TEST_F(VirtioBlockTest, ARestoredTransportKeepsTheLiveInvariants) {
  bring_up();
  const VirtioTransportState good = dev_->save(0).transport;
  dev_.reset();
  auto restore = [&](const VirtioTransportState& state) {
    auto blk = VirtioBlock::open(disk_path_, false, metrics_);
    EXPECT_TRUE(blk.ok());
    return VirtioMmio::create(
        std::move(*blk), *memory_, [](bool) {}, DeviceSandbox{}, log_, metrics_, state);
  };
  VirtioTransportState unoffered = good;
  unoffered.driver_features |= 1ull << 60;
  auto refused = restore(unoffered);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(refused.error().message().find("driver features: expected a subset of the offered "),
            std::string::npos)
      << refused.error().message();
  VirtioTransportState unaccepted = good;
  unaccepted.status &= ~virtio::kStatusFeaturesOk;
  refused = restore(unaccepted);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message(),
            "virtio-blk status: expected DRIVER_OK only with FEATURES_OK, found 0x7");
  auto restored = restore(good);
  ASSERT_TRUE(restored.ok()) << restored.error().message();
  (*restored)->resume_device();
}

TEST_F(VirtioBlockTest, OutOfRangeSectorGetsIoError) {
  bring_up();
  put32(kHdr, 0);
  put64(kHdr + 8, 8);  // one past the end
  desc(0, kHdr, 16, virtio::kDescFNext, 1);
  desc(1, kData, 512, virtio::kDescFWrite | virtio::kDescFNext, 2);
  desc(2, kStatus, 1, virtio::kDescFWrite, 0);
  submit(0, 1);
  ASSERT_TRUE(used_reaches(1));
  EXPECT_EQ(byte_at(kStatus), 1);  // VIRTIO_BLK_S_IOERR
}

TEST_F(VirtioBlockTest, DescriptorLoopBreaksTheDeviceNotTheVmm) {
  bring_up();
  desc(0, kHdr, 16, virtio::kDescFNext, 1);
  desc(1, kData, 512, virtio::kDescFNext, 0);  // back to 0
  submit(0, 1);
  ASSERT_TRUE(eventually([&] { return (reg(0x070) & virtio::kStatusNeedsReset) != 0; }));
  EXPECT_EQ(used_idx(), 0);
  EXPECT_EQ(metrics_.virtio_device_errors.load(), 1u);
  set(0x070, 0);  // a reset recovers the device
  EXPECT_EQ(reg(0x070), 0u);
}

TEST_F(VirtioBlockTest, BuffersOutsideGuestMemoryAreRejected) {
  bring_up();
  put32(kHdr, 0);
  put64(kHdr + 8, 0);
  desc(0, kHdr, 16, virtio::kDescFNext, 1);
  desc(1, 0xfff00000, 512, virtio::kDescFWrite | virtio::kDescFNext, 2);
  desc(2, kStatus, 1, virtio::kDescFWrite, 0);
  submit(0, 1);
  ASSERT_TRUE(used_reaches(1));
  EXPECT_EQ(byte_at(kStatus), 1);  // IOERR for the request, device still usable
  set(0x0a0, 0x7fffffff);          // queue is live: address writes are ignored
  put64(kStatus, 0xff);
  desc(1, 0x100000 - 256, 512, virtio::kDescFWrite | virtio::kDescFNext, 2);  // straddles the end
  submit(0, 2);
  ASSERT_TRUE(used_reaches(2));
  EXPECT_EQ(byte_at(kStatus), 1);
  // A queue size that is not a power of two is refused.
  set(0x070, 0);
  set(0x030, 0);
  set(0x038, 6);
  EXPECT_EQ(reg(0x070) & virtio::kStatusNeedsReset, virtio::kStatusNeedsReset);
}

// A write, a flush and a read back, served by a device thread under the kBlock filter. In a
// child process, which a call outside the filter would kill.
TEST_F(VirtioBlockTest, WritesFlushesAndReadsUnderTheBlockFilter) {
  if (!seccomp_available())
    GTEST_SKIP() << "sanitizer build: seccomp filters are disabled (docs/operator.md)";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto blk = VirtioBlock::open(disk_path_, false, metrics_);
    if (!blk.ok()) _exit(10);
    auto filtered = VirtioMmio::create(std::move(*blk), *memory_, nullptr,
                                       DeviceSandbox{/*seccomp=*/true, {}}, log_, metrics_);
    if (!filtered.ok()) _exit(11);
    // The fixture's transport, whose thread did not survive the fork, is never destroyed here.
    const std::shared_ptr<VirtioMmio> unfiltered = dev_;
    dev_ = *filtered;
    bring_up();
    if (!memory_->write(kData, Bytes(512, 'W'), "test").ok()) _exit(15);
    put32(kHdr, 1);  // VIRTIO_BLK_T_OUT
    put64(kHdr + 8, 2);
    desc(0, kHdr, 16, virtio::kDescFNext, 1);
    desc(1, kData, 512, virtio::kDescFNext, 2);
    desc(2, kStatus, 1, virtio::kDescFWrite, 0);
    submit(0, 1);
    if (!used_reaches(1) || byte_at(kStatus) != 0) _exit(12);
    put32(kHdr, 4);  // VIRTIO_BLK_T_FLUSH
    desc(1, kStatus, 1, virtio::kDescFWrite, 0);
    put64(kStatus, 0xff);
    submit(0, 2);
    if (!used_reaches(2) || byte_at(kStatus) != 0) _exit(13);
    put32(kHdr, 0);  // VIRTIO_BLK_T_IN
    desc(1, kData + 0x200, 512, virtio::kDescFWrite | virtio::kDescFNext, 2);
    put64(kStatus, 0xff);
    submit(0, 3);
    if (!used_reaches(3) || byte_at(kStatus) != 0 || byte_at(kData + 0x200) != 'W') _exit(14);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  std::ifstream disk(disk_path_, std::ios::binary);
  disk.seekg(1024);
  EXPECT_EQ(disk.get(), 'W');  // sector 2 reached the file
}

// A transmit chain the device holds (its rate limiter is spent) when the driver resets the device
// is gone with the reset: it is neither sent nor completed in the rings the driver sets up next,
// where it would be a completion the driver never asked for (virtio 1.2 §2.4.1).
TEST_F(MmioDriverTest, ANetChainHeldAcrossAResetIsDroppedNotCompletedInTheNewRings) {
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/net/tun";
  NetConfig config;
  config.tap = "cheld" + std::to_string(::getpid() % 100000);
  config.tx_rate_limiter.ops = {/*size=*/1, /*one_time_burst=*/0, /*refill_time_ms=*/3600'000};
  auto net = VirtioNet::open(config, log_, metrics_);
  if (!net.ok() && net.error().message().find("TUNSETIFF") != std::string::npos)
    GTEST_SKIP() << net.error().message();
  ASSERT_TRUE(net.ok()) << net.error().message();
  VirtioNet& device = **net;
  attach(std::move(*net));

  // Ring A: the first frame takes the one token, the second waits in the device.
  negotiate();
  ready_queue(net::kTxQueue, kDesc, kAvail, kUsed);
  set(0x070, 3 | 8 | 4);
  const std::uint32_t frame = net::kHeaderSize + 60;
  desc(0, kData, frame, 0, 0);
  desc(1, kData + 0x100, frame, 0, 0);
  submit(0, 1, net::kTxQueue);
  ASSERT_TRUE(used_reaches(1));
  submit(1, 2, net::kTxQueue);
  ASSERT_TRUE(eventually([&] { return metrics_.net_rate_limited.load() > 0; }));
  EXPECT_EQ(used_idx(), 1u);

  // Reset, ring B elsewhere, and no more limit: the held chain would go out now if it survived.
  constexpr std::uint64_t kDescB = 0x8000, kAvailB = 0x9000, kUsedB = 0xa000;
  negotiate();
  ready_queue(net::kTxQueue, kDescB, kAvailB, kUsedB);
  set(0x070, 3 | 8 | 4);
  device.set_rate_limiters({}, {});
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(used_idx(kUsedB), 0u) << "a chain from before the reset completed in the new ring";
  EXPECT_EQ(used_idx(), 1u);
  EXPECT_EQ(metrics_.net_tx_frames.load() + metrics_.net_tx_dropped.load(), 1u);

  // What the driver posts after the reset is served, under its own head.
  desc(3, kData + 0x200, frame, 0, 0, kDescB);
  submit(3, 1, net::kTxQueue, kAvailB);
  ASSERT_TRUE(eventually([&] { return used_idx(kUsedB) == 1; }));
  std::uint8_t id[4];
  ASSERT_TRUE(memory_->read(kUsedB + 4, id, "test").ok());
  EXPECT_EQ(load_le32(id, 0), 3u);
  EXPECT_EQ(metrics_.net_tx_frames.load() + metrics_.net_tx_dropped.load(), 2u);
}

TEST(VsockTest, ListeningSocketPathMustBeFree) {
  Metrics m;
  Logger log{LogFormat::kText, LogLevel::kError};
  auto bad = VirtioVsock::create(VsockConfig{3, "/nonexistent/dir/vsock"}, log, m);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("bind vsock socket /nonexistent/dir/vsock"),
            std::string::npos);
}

TEST(VsockTest, HeaderRoundTrip) {
  vsock::Header h;
  h.src_cid = 3, h.dst_cid = 2, h.src_port = 1024, h.dst_port = 1234, h.len = 5;
  h.type = vsock::kTypeStream, h.op = vsock::kOpRw, h.flags = 0, h.buf_alloc = 4096, h.fwd_cnt = 77;
  std::uint8_t raw[vsock::kHeaderSize];
  vsock::write_header(h, raw);
  EXPECT_EQ(load_le32(raw, 20), 1234u);  // dst_port at offset 20 (virtio 1.2 §5.10.6)
  EXPECT_EQ(load_le16(raw, 30), vsock::kOpRw);
  auto back = vsock::parse_header(raw);
  EXPECT_EQ(back.src_cid, 3u);
  EXPECT_EQ(back.fwd_cnt, 77u);
  EXPECT_EQ(back.len, 5u);
}

TEST(VsockTest, RejectsInvalidGuestCid) {
  Metrics m;
  Logger log{LogFormat::kText, LogLevel::kError};
  const std::string uds =
      ::testing::TempDir() + "/cloister-vsock-cid-" + std::to_string(::getpid());
  EXPECT_FALSE(VirtioVsock::create(VsockConfig{2, uds}, log, m).ok());
  auto ok = VirtioVsock::create(VsockConfig{3, uds}, log, m);
  ASSERT_TRUE(ok.ok());
  std::uint8_t cid[8];
  (*ok)->read_config(0, cid);
  EXPECT_EQ(load_le64(cid, 0), 3u);
}

TEST(VcpuThreadsTest, EveryThreadIsSandboxedBeforeAnyRunsAndJoinReleasesIdleThreads) {
  std::mutex m;
  std::vector<std::size_t> sandboxed, ran;
  {
    VcpuThreads threads(3);
    EXPECT_EQ(threads.size(), 3u);
    ASSERT_TRUE(threads
                    .sandbox([&](std::size_t i) {
                      std::lock_guard lock(m);
                      sandboxed.push_back(i);
                      return Status{};
                    })
                    .ok());
    {
      std::lock_guard lock(m);
      EXPECT_EQ(sandboxed.size(), 3u);  // all of them, before any body was handed out
      EXPECT_TRUE(ran.empty());
    }
    EXPECT_FALSE(threads.sandbox([](std::size_t) { return Status{}; }).ok());  // once only
    threads.run([&](std::size_t i) {
      std::lock_guard lock(m);
      ran.push_back(i);
    });
    threads.run([&](std::size_t) { ADD_FAILURE() << "run twice"; });
    threads.join();
  }
  std::sort(ran.begin(), ran.end());
  EXPECT_EQ(ran, (std::vector<std::size_t>{0, 1, 2}));
  VcpuThreads idle(2);  // never sandboxed: the destructor must not hang
}

TEST(VcpuThreadsTest, OneFailedSandboxKeepsEveryThreadFromRunning) {
  VcpuThreads threads(3);
  auto st = threads.sandbox([](std::size_t i) -> Status {
    if (i == 1) return Error("seccomp(SECCOMP_SET_MODE_FILTER): Invalid argument (errno 22)");
    return {};
  });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(),
            "vCPU 1: seccomp(SECCOMP_SET_MODE_FILTER): Invalid argument (errno 22)");
  threads.run([](std::size_t) { ADD_FAILURE() << "a thread ran after a failed sandbox"; });
  threads.join();
}

TEST(GuestMemoryTest, HugepagesEitherWorkOrSayWhatIsMissing) {
  RegionSpec spec{"ram", 0, 2 << 20, false};
  auto mem = GuestMemory::create(std::span(&spec, 1), true);
  if (mem.ok()) {
    EXPECT_TRUE(mem->regions()[0].hugepages);
  } else {
    EXPECT_NE(mem.error().message().find("hugepages"), std::string::npos) << mem.error().message();
  }
  RegionSpec small{"ram", 0, 4096, false};
  auto bad = GuestMemory::create(std::span(&small, 1), true);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("multiples of 0x200000"), std::string::npos);
}

TEST(GuestMemoryTest, BoundsAndOverlap) {
  RegionSpec specs[] = {{"low", 0, 0x10000, false}, {"rom", 0x20000, 0x1000, true}};
  auto mem = GuestMemory::create(specs, false);
  ASSERT_TRUE(mem.ok());
  EXPECT_TRUE(mem->view(0xfff0, 0x10, Access::kWrite, "x").ok());
  auto e = mem->view(0xfff0, 0x11, Access::kRead, "virtio desc");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message(), "virtio desc: GPA 0xfff0 + 0x11 is not inside guest memory");
  EXPECT_FALSE(mem->view(0x20000, 4, Access::kWrite, "x").ok());
  EXPECT_TRUE(mem->view(0x20000, 4, Access::kRead, "x").ok());
  EXPECT_FALSE(mem->view(~0ull - 2, 8, Access::kRead, "x").ok());
  RegionSpec overlapping[] = {{"a", 0, 0x2000, false}, {"b", 0x1000, 0x2000, false}};
  EXPECT_FALSE(GuestMemory::create(overlapping, false).ok());
  RegionSpec unaligned[] = {{"a", 0, 0x1800, false}};
  EXPECT_FALSE(GuestMemory::create(unaligned, false).ok());
}

}  // namespace
}  // namespace cloister::vmm
