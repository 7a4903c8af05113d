// TDX GetQuote on the host side: the QGS provider against a fake QGS (the protocol itself is
// tested with attestation::tdx::QgsClient), and the GHCI shared buffer served asynchronously.
#include "cloister/vmm/tee/quote.h"

#include <gtest/gtest.h>
#include <linux/vm_sockets.h>
#include <sys/socket.h>

#include <functional>

#include "support/fake_qgs.h"

namespace cloister::vmm {
namespace {

using namespace std::chrono_literals;
using testing::FakeQgs;
using testing::qgs_framed;
using testing::qgs_response;

TEST(QuoteTest, TheQgsProviderIsTheAttestationLibrarysClient) {
  const Bytes quote(600, 0x51);
  FakeQgs qgs([&](const Bytes&) { return qgs_framed(qgs_response(quote)); });
  auto provider = qgs_quote_provider(qgs.address());
  ASSERT_TRUE(provider.ok()) << provider.error().message();
  auto got = (*provider)->get_quote(Bytes(1024, 0x7e), 5s);
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_EQ(*got, quote);
  EXPECT_EQ(qgs.request().size(), 16u + 8u + 1024u);
  EXPECT_EQ((*provider)->describe(), "QGS at " + qgs.address());
  EXPECT_EQ((*provider)->socket_families(), std::vector<int>{AF_UNIX});
  EXPECT_EQ((*qgs_quote_provider("vsock:2:4050"))->socket_families(), std::vector<int>{AF_VSOCK});
  EXPECT_EQ(qgs_quote_provider("vsock:2").error().message(),
            "quote generation socket 'vsock:2': expected vsock:CID:PORT");
}

// A provider the test controls.
class ScriptedProvider final : public QuoteProvider {
 public:
  std::function<Result<Bytes>(ByteView)> answer;
  Result<Bytes> get_quote(ByteView tdreport, std::chrono::milliseconds) override {
    return answer(tdreport);
  }
  std::string describe() const override { return "scripted"; }
};

struct GuestBuffer {
  GuestBuffer() {
    RegionSpec spec{"ram", 0, 1 << 20, false};
    memory = *GuestMemory::create(std::span(&spec, 1), false);
  }
  void request(std::uint64_t gpa, std::uint64_t version = 1, std::uint32_t in_len = 1024) {
    Bytes header(24, 0);
    store_le64(header, 0, version);
    store_le64(header, 8, 0);
    header[16] = static_cast<std::uint8_t>(in_len);
    header[17] = static_cast<std::uint8_t>(in_len >> 8);
    ASSERT_TRUE(memory.write(gpa, header, "test").ok());
    ASSERT_TRUE(memory.write(gpa + 24, Bytes(1024, 0xab), "test").ok());
  }
  std::uint64_t status(std::uint64_t gpa) {
    Bytes b(8);
    EXPECT_TRUE(memory.read(gpa + 8, b, "test").ok());
    return load_le64(b, 0);
  }
  GuestMemory memory;
};

TEST(QuoteTest, GetQuoteIsAnsweredAsynchronouslyIntoTheGuestBuffer) {
  GuestBuffer guest;
  auto provider = std::make_unique<ScriptedProvider>();
  std::mutex gate;
  gate.lock();
  Bytes seen;
  provider->answer = [&](ByteView report) -> Result<Bytes> {
    std::lock_guard hold(gate);
    seen.assign(report.begin(), report.end());
    return Bytes(300, 0x99);
  };
  Logger log(LogFormat::kText, LogLevel::kError);
  auto running = GetQuoteService::start(guest.memory, std::move(provider), log, /*sandbox=*/false);
  ASSERT_TRUE(running.ok()) << running.error().message();
  GetQuoteService& service = **running;
  guest.request(0x10000);
  EXPECT_EQ(service.submit(0x10000, 0x2000), kTdvmcallSuccess);
  EXPECT_EQ(guest.status(0x10000), kGetQuoteStatusInFlight);
  gate.unlock();
  for (int i = 0; i < 500 && guest.status(0x10000) == kGetQuoteStatusInFlight; ++i)
    std::this_thread::sleep_for(2ms);
  EXPECT_EQ(guest.status(0x10000), kGetQuoteStatusSuccess);
  Bytes out(4 + 300);
  ASSERT_TRUE(guest.memory.read(0x10000 + 20, out, "test").ok());
  EXPECT_EQ(load_le32(out, 0), 300u);
  EXPECT_EQ(out[4], 0x99);
  EXPECT_EQ(seen, Bytes(1024, 0xab));
}

TEST(QuoteTest, BadBuffersAndTooManyRequestsAreRefused) {
  GuestBuffer guest;
  auto provider = std::make_unique<ScriptedProvider>();
  std::mutex gate;
  gate.lock();
  std::atomic<bool> started = false;
  provider->answer = [&](ByteView) -> Result<Bytes> {
    started = true;
    std::lock_guard hold(gate);
    return Error("the QGS is gone");
  };
  Logger log(LogFormat::kText, LogLevel::kError);
  auto running = GetQuoteService::start(guest.memory, std::move(provider), log, /*sandbox=*/false);
  ASSERT_TRUE(running.ok()) << running.error().message();
  GetQuoteService& service = **running;
  guest.request(0x20000, 2);
  EXPECT_EQ(service.submit(0x20000, 0x1000), kTdvmcallInvalidOperand);  // version
  guest.request(0x20000, 1, 512);
  EXPECT_EQ(service.submit(0x20000, 0x1000), kTdvmcallInvalidOperand);  // in_len
  guest.request(0x20000);
  EXPECT_EQ(service.submit(0x20800, 0x1000), kTdvmcallInvalidOperand);   // unaligned
  EXPECT_EQ(service.submit(0x20000, 0x40000), kTdvmcallInvalidOperand);  // over 128 KiB
  EXPECT_EQ(service.submit(0xff000, 0x2000), kTdvmcallInvalidOperand);   // past RAM
  // One is being served (blocked in the provider), sixteen wait, the next is told to retry.
  guest.request(0x30000);
  EXPECT_EQ(service.submit(0x30000, 0x1000), kTdvmcallSuccess);
  for (int w = 0; w < 2000 && !started; ++w) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(started);
  for (std::uint64_t i = 1; i <= GetQuoteService::kMaxInFlight; ++i) {
    guest.request(0x30000 + i * 0x1000);
    EXPECT_EQ(service.submit(0x30000 + i * 0x1000, 0x1000), kTdvmcallSuccess) << i;
  }
  guest.request(0x80000);
  EXPECT_EQ(service.submit(0x80000, 0x1000), kTdvmcallRetry);
  EXPECT_EQ(guest.status(0x80000), 0u);  // untouched: the guest retries the call
  gate.unlock();
  for (int i = 0; i < 1000 && guest.status(0x30000) == kGetQuoteStatusInFlight; ++i)
    std::this_thread::sleep_for(2ms);
  EXPECT_EQ(guest.status(0x30000), kGetQuoteStatusError);  // the provider failed
}

}  // namespace
}  // namespace cloister::vmm
