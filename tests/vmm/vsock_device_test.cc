// virtio-vsock driven as a hostile guest would drive it, through the MMIO transport and rings in
// guest memory, against real host UNIX sockets: many tiny packets, connection requests past the
// cap while host handshakes are pending, and a flood of refused requests.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cloister/common/socket.h"
#include "cloister/vmm/devices/virtio.h"
#include "cloister/vmm/devices/vsock.h"
#include "cloister/vmm/memory/guest_memory.h"
#include "support/api_client.h"

namespace cloister::vmm {
namespace {

namespace fs = std::filesystem;

constexpr std::uint32_t kQueueSize = 128;
constexpr std::uint64_t kRxRing = 0x10000, kTxRing = 0x20000;  // desc, +0x1000 avail, +0x2000 used
constexpr std::uint64_t kRxBuffers = 0x40000, kTxBuffers = 0x80000;
constexpr std::uint32_t kSlot = 0x100;  // bytes per buffer
constexpr std::uint32_t kHostPort = 1234;

// The guest side: queues set up, packets written into tx descriptors and kicked, answers read
// from the rx queue's used ring.
class VsockDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uds_ = ::testing::TempDir() + "/cloister-vsockdev-" + std::to_string(::getpid());
    fs::remove(uds_);
    RegionSpec spec{"ram", 0, 1 << 20, false};
    auto mem = GuestMemory::create(std::span(&spec, 1), false);
    ASSERT_TRUE(mem.ok());
    mem_.emplace(std::move(*mem));
    auto dev = VirtioVsock::create(VsockConfig{3, uds_}, log_, metrics_);
    ASSERT_TRUE(dev.ok()) << dev.error().message();
    auto transport =
        VirtioMmio::create(std::move(*dev), *mem_, nullptr, DeviceSandbox{}, log_, metrics_);
    ASSERT_TRUE(transport.ok()) << transport.error().message();
    transport_ = std::move(*transport);
    set(0x070, 3);
    set(0x024, 1);
    set(0x020, 1);  // VIRTIO_F_VERSION_1
    set(0x070, 3 | 8);
    for (std::uint32_t q = 0; q < 3; ++q) {
      const std::uint64_t base = 0x10000 * (q + 1);
      set(0x030, q);
      set(0x038, kQueueSize);
      set(0x080, static_cast<std::uint32_t>(base));
      set(0x090, static_cast<std::uint32_t>(base + 0x1000));
      set(0x0a0, static_cast<std::uint32_t>(base + 0x2000));
      set(0x044, 1);
    }
    set(0x070, 3 | 8 | 4);
    // Every rx descriptor is a writable buffer the device may answer into.
    for (std::uint32_t i = 0; i < kQueueSize; ++i) {
      desc(kRxRing, i, kRxBuffers + i * kSlot, kSlot, virtio::kDescFWrite);
      put16(kRxRing + 0x1000 + 4 + 2 * i, static_cast<std::uint16_t>(i));
    }
    put16(kRxRing + 0x1000 + 2, static_cast<std::uint16_t>(kQueueSize));
    set(0x050, vsock::kRxQueue);
  }
  void TearDown() override {
    transport_.reset();
    fs::remove(uds_);
  }

  void set(std::uint64_t offset, std::uint32_t value) {
    std::uint8_t b[4];
    store_le32(b, 0, value);
    transport_->write(offset, b);
  }
  void put(std::uint64_t gpa, ByteView bytes) { ASSERT_TRUE(mem_->write(gpa, bytes, "test").ok()); }
  void put16(std::uint64_t gpa, std::uint16_t v) {
    std::uint8_t b[2];
    store_le16(b, 0, v);
    put(gpa, b);
  }
  std::uint16_t get16(std::uint64_t gpa) {
    std::uint8_t b[2];
    EXPECT_TRUE(mem_->read(gpa, b, "test").ok());
    return load_le16(b, 0);
  }
  void desc(std::uint64_t table, std::uint32_t i, std::uint64_t addr, std::uint32_t len,
            std::uint16_t flags) {
    std::uint8_t d[16] = {};
    store_le64(d, 0, addr);
    store_le32(d, 8, len);
    store_le16(d, 12, flags);
    put(table + 16 * i, d);
  }
  static bool wait_for(const std::function<bool()>& condition) {
    for (int i = 0; i < 5000 && !condition(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return condition();
  }

  // Queues one packet from guest port `src` to host port `dst` (not yet kicked).
  void queue(std::uint16_t op, std::uint32_t src, std::uint32_t dst, ByteView payload = {}) {
    vsock::Header h;
    h.src_cid = 3, h.dst_cid = vsock::kHostCid, h.src_port = src, h.dst_port = dst;
    h.type = vsock::kTypeStream, h.op = op, h.len = static_cast<std::uint32_t>(payload.size());
    h.buf_alloc = 64 * 1024;
    std::vector<std::uint8_t> packet(vsock::kHeaderSize + payload.size());
    vsock::write_header(h, std::span(packet).first(vsock::kHeaderSize));
    std::copy(payload.begin(), payload.end(), packet.begin() + vsock::kHeaderSize);
    const std::uint32_t slot = tx_next_ % kQueueSize;
    put(kTxBuffers + slot * kSlot, packet);
    desc(kTxRing, slot, kTxBuffers + slot * kSlot, static_cast<std::uint32_t>(packet.size()), 0);
    put16(kTxRing + 0x1000 + 4 + 2 * slot, static_cast<std::uint16_t>(slot));
    ++tx_next_;
  }
  // Makes the queued packets available and notifies; waits until the device used them all.
  void kick() {
    put16(kTxRing + 0x1000 + 2, static_cast<std::uint16_t>(tx_next_));
    set(0x050, vsock::kTxQueue);
    ASSERT_TRUE(wait_for([&] { return get16(kTxRing + 0x2000 + 2) == tx_next_; }));
  }
  // The packets the device has put on the rx queue so far.
  std::vector<vsock::Header> answers() {
    std::vector<vsock::Header> out;
    const std::uint16_t used = get16(kRxRing + 0x2000 + 2);
    for (std::uint16_t i = 0; i < used; ++i) {
      std::uint8_t entry[8];
      EXPECT_TRUE(mem_->read(kRxRing + 0x2000 + 4 + 8 * i, entry, "test").ok());
      std::uint8_t raw[vsock::kHeaderSize];
      EXPECT_TRUE(mem_->read(kRxBuffers + load_le32(entry, 0) * kSlot, raw, "test").ok());
      out.push_back(vsock::parse_header(raw));
    }
    return out;
  }
  std::size_t answered(std::uint16_t op) {
    std::size_t n = 0;
    for (const auto& h : answers()) n += h.op == op;
    return n;
  }

  std::string uds_;
  Metrics metrics_;
  Logger log_{LogFormat::kJson, LogLevel::kInfo};
  std::optional<GuestMemory> mem_;
  std::shared_ptr<VirtioMmio> transport_;
  std::uint16_t tx_next_ = 0;
};

// The device thread answers a packet for an unknown connection with RST, and turns a malformed
// tx packet into DEVICE_NEEDS_RESET, without touching the host.
TEST_F(VsockDeviceTest, MalformedTrafficBreaksOnlyTheDevice) {
  // Nothing listens on "<uds>_99", so the RW meets no connection.
  queue(vsock::kOpRw, 1024, 99);
  kick();
  ASSERT_TRUE(wait_for([&] { return answers().size() == 1; }));
  EXPECT_EQ(answers()[0].op, vsock::kOpRst);
  EXPECT_EQ(answers()[0].dst_port, 1024u);
  // A 10-byte tx packet cannot even hold a header: the device needs a reset.
  desc(kTxRing, tx_next_, kTxBuffers, 10, 0);
  put16(kTxRing + 0x1000 + 4 + 2 * tx_next_, tx_next_);
  put16(kTxRing + 0x1000 + 2, static_cast<std::uint16_t>(tx_next_ + 1));
  set(0x050, vsock::kTxQueue);
  ASSERT_TRUE(wait_for([&] {
    std::uint8_t b[4];
    transport_->read(0x070, b);
    return (load_le32(b, 0) & virtio::kStatusNeedsReset) != 0;
  }));
  EXPECT_EQ(metrics_.virtio_device_errors.load(), 1u);
}

// Status bits stay set until a reset: a driver that writes a status without FEATURES_OK and
// DRIVER_OK after DRIVER_OK (to renegotiate features under the running device) changes nothing,
// and only a write of 0 resets; DRIVER_OK is not taken before FEATURES_OK.
TEST_F(VsockDeviceTest, TheDriverClearsStatusBitsOnlyByResetting) {
  auto status = [&] {
    std::uint8_t b[4];
    transport_->read(0x070, b);
    return load_le32(b, 0);
  };
  ASSERT_EQ(status(), 0xfu);
  set(0x070, 0x3);
  EXPECT_EQ(status(), 0xfu);
  set(0x070, 0);
  EXPECT_EQ(status(), 0u);
  set(0x070, 0x3 | 0x4);  // DRIVER_OK without FEATURES_OK
  EXPECT_EQ(status(), 0x3u);
}

// A guest sending its stream a byte per packet, a hundred packets at once, to a host peer that
// reads late: every byte arrives, in order (the device gathers such packets into one buffer,
// rather than a heap block and a queue entry per byte).
TEST_F(VsockDeviceTest, ManyOneBytePacketsReachASlowHostPeerWholeAndInOrder) {
  const std::string port_socket = uds_ + "_" + std::to_string(kHostPort);
  auto listener = listen_unix(port_socket);
  ASSERT_TRUE(listener) << listener.error().message();
  queue(vsock::kOpRequest, 2000, kHostPort);
  kick();
  ASSERT_TRUE(wait_for([&] { return answered(vsock::kOpResponse) == 1; }));
  Fd host(::accept(listener->get(), nullptr, nullptr));
  ASSERT_TRUE(host.valid());
  std::string sent;
  for (int i = 0; i < 100; ++i) {
    const std::uint8_t byte = static_cast<std::uint8_t>('a' + i % 26);
    sent += static_cast<char>(byte);
    queue(vsock::kOpRw, 2000, kHostPort, ByteView(&byte, 1));
  }
  kick();
  ASSERT_TRUE(wait_for([&] { return metrics_.vsock_bytes_to_host.load() == 100; }));
  std::string heard;
  while (heard.size() < sent.size()) {
    pollfd p{host.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1);
    char buf[256];
    const ssize_t n = ::recv(host.get(), buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    heard.append(buf, static_cast<std::size_t>(n));
  }
  EXPECT_EQ(heard, sent);
  EXPECT_EQ(answered(vsock::kOpRst), 0u);
  fs::remove(port_socket);
}

// Host handshakes and connections share the cap whichever side asks: with 48 guest connections
// open and 16 host connections in their handshake, a further guest REQUEST is answered RST (it
// used to be accepted, past the 64 the device promises).
TEST_F(VsockDeviceTest, HostHandshakesCountAgainstTheCapForGuestRequestsToo) {
  const std::string port_socket = uds_ + "_" + std::to_string(kHostPort);
  auto listener = listen_unix(port_socket, 128);
  ASSERT_TRUE(listener) << listener.error().message();
  constexpr std::uint32_t kGuestConnections = vsock::kMaxConnections - 16;
  for (std::uint32_t i = 0; i < kGuestConnections; ++i)
    queue(vsock::kOpRequest, 3000 + i, kHostPort);
  kick();
  ASSERT_TRUE(wait_for([&] { return answered(vsock::kOpResponse) == kGuestConnections; }));
  std::vector<Fd> handshakes;
  for (std::size_t i = 0; i < vsock::kMaxPendingHostConnections; ++i) {
    handshakes.push_back(cloister::testing::connect_unix(uds_));
    ASSERT_TRUE(handshakes.back().valid());
  }
  // Each pending handshake is accepted: a host connection over the cap would be closed at once.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (const Fd& fd : handshakes) {
    pollfd p{fd.get(), POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 0), 0) << "a handshake was refused";
  }
  EXPECT_EQ(metrics_.vsock_refused.load(), 0u);
  queue(vsock::kOpRequest, 4000, kHostPort);
  kick();
  ASSERT_TRUE(wait_for([&] { return answered(vsock::kOpRst) == 1; }));
  EXPECT_EQ(answered(vsock::kOpResponse), kGuestConnections);
  EXPECT_EQ(answers().back().dst_port, 4000u);
  fs::remove(port_socket);
}

// A guest asking again and again for a port nothing listens on: every request is answered RST,
// but the host log gets the first ten and then one in a thousand, not a line per request.
TEST_F(VsockDeviceTest, RefusedGuestRequestsAreLoggedTenTimesNotOncePerRequest) {
  ::testing::internal::CaptureStderr();
  for (std::uint32_t i = 0; i < 50; ++i) queue(vsock::kOpRequest, 5000 + i, 99);
  kick();
  const bool all = wait_for([&] { return answered(vsock::kOpRst) == 50; });
  const std::string logged = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(all);
  std::size_t lines = 0;
  for (std::size_t at = logged.find("vsock.refused"); at != std::string::npos;
       at = logged.find("vsock.refused", at + 1))
    ++lines;
  EXPECT_EQ(lines, kRepeatLoggedFirst) << logged;
  EXPECT_THAT(logged, ::testing::HasSubstr("\"refused_so_far\":10"));
}

}  // namespace
}  // namespace cloister::vmm
