// TDX GetQuote on the host side: the QGS socket protocol against a fake QGS, and the GHCI shared
// buffer served asynchronously.
#include "cloister/vmm/tee/quote.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <thread>

namespace cloister::vmm {
namespace {

using namespace std::chrono_literals;

Bytes be32(std::uint32_t v) {
  return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
          static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
}

void put32(Bytes& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

// A qgs_msg_get_quote_resp: header {1, 1, type, size, error}, selected_id_size, quote_size.
Bytes qgs_response(ByteView quote, std::uint32_t error = 0, std::uint32_t type = 1,
                   ByteView id = {}) {
  Bytes r;
  r.push_back(1), r.push_back(0), r.push_back(1), r.push_back(0);
  put32(r, type);
  put32(r, static_cast<std::uint32_t>(24 + id.size() + quote.size()));
  put32(r, error);
  put32(r, static_cast<std::uint32_t>(id.size()));
  put32(r, static_cast<std::uint32_t>(quote.size()));
  r.insert(r.end(), id.begin(), id.end());
  r.insert(r.end(), quote.begin(), quote.end());
  return r;
}

// A one-connection QGS on a UNIX socket: hands the request to `answer` and sends its reply.
class FakeQgs {
 public:
  explicit FakeQgs(std::function<Bytes(const Bytes&)> answer)
      : path_(::testing::TempDir() + "/cloister-qgs-" + std::to_string(::getpid()) + "-" +
              std::to_string(counter_++)) {
    ::unlink(path_.c_str());
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listener_, 4), 0);
    thread_ = std::thread([this, answer = std::move(answer)] {
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      std::uint8_t prefix[4];
      if (::recv(fd, prefix, 4, MSG_WAITALL) == 4) {
        const std::uint32_t size = prefix[0] << 24 | prefix[1] << 16 | prefix[2] << 8 | prefix[3];
        request_.resize(size);
        ::recv(fd, request_.data(), size, MSG_WAITALL);
        const Bytes reply = answer(request_);
        ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
      }
      ::close(fd);
    });
  }
  ~FakeQgs() {
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
    ::unlink(path_.c_str());
  }
  std::string address() const { return "unix:" + path_; }
  const Bytes& request() const { return request_; }

 private:
  static inline std::atomic<int> counter_{0};
  std::string path_;
  int listener_ = -1;
  Bytes request_;
  std::thread thread_;
};

Bytes framed(const Bytes& body) {
  Bytes out = be32(static_cast<std::uint32_t>(body.size()));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

TEST(QuoteTest, QgsProviderSpeaksTheQgsProtocol) {
  const Bytes quote(600, 0x51);
  FakeQgs qgs([&](const Bytes&) { return framed(qgs_response(quote, 0, 1, Bytes(16, 0x1d))); });
  auto provider = qgs_quote_provider(qgs.address());
  ASSERT_TRUE(provider.ok()) << provider.error().message();
  const Bytes report(1024, 0x7e);
  auto got = (*provider)->get_quote(report, 5s);
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_EQ(*got, quote);
  // qgs_msg_get_quote_req: {major 1, minor 1, type 0, size, error 0}, report_size, id_list_size.
  const Bytes& req = qgs.request();
  ASSERT_EQ(req.size(), 16u + 8u + 1024u);
  EXPECT_EQ(load_le16(req, 0), 1u);
  EXPECT_EQ(load_le16(req, 2), 1u);
  EXPECT_EQ(load_le32(req, 4), 0u);
  EXPECT_EQ(load_le32(req, 8), req.size());
  EXPECT_EQ(load_le32(req, 12), 0u);
  EXPECT_EQ(load_le32(req, 16), 1024u);
  EXPECT_EQ(load_le32(req, 20), 0u);
  EXPECT_EQ(req[24], 0x7e);
  EXPECT_EQ((*provider)->describe(), "QGS at " + qgs.address());
}

TEST(QuoteTest, QgsFailuresAreNamed) {
  const Bytes report(1024, 1);
  {
    FakeQgs qgs([](const Bytes&) { return framed(qgs_response(Bytes(8, 1), 0x12)); });
    auto got = (*qgs_quote_provider(qgs.address()))->get_quote(report, 5s);
    ASSERT_FALSE(got.ok());
    EXPECT_NE(got.error().message().find("error code 0x12"), std::string::npos);
  }
  {
    FakeQgs qgs([](const Bytes&) { return framed(qgs_response(Bytes(8, 1), 0, 3)); });
    auto got = (*qgs_quote_provider(qgs.address()))->get_quote(report, 5s);
    ASSERT_FALSE(got.ok());
    EXPECT_NE(got.error().message().find("message type 3, expected 1 (GET_QUOTE_RESP)"),
              std::string::npos);
  }
  {
    FakeQgs qgs([](const Bytes&) { return be32(100); });  // promises 100 bytes, closes
    auto got = (*qgs_quote_provider(qgs.address()))->get_quote(report, 5s);
    ASSERT_FALSE(got.ok());
    EXPECT_NE(got.error().message().find("closed the connection after 0 of 100 bytes"),
              std::string::npos);
  }
  {
    FakeQgs qgs([](const Bytes&) { return be32(64u << 20); });
    auto got = (*qgs_quote_provider(qgs.address()))->get_quote(report, 5s);
    ASSERT_FALSE(got.ok());
    EXPECT_NE(got.error().message().find("exceeds the limit of 4194304"), std::string::npos);
  }
  auto missing = (*qgs_quote_provider("unix:/nonexistent/qgs.sock"))->get_quote(report, 1s);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("QGS at unix:/nonexistent/qgs.sock: connect"),
            std::string::npos);
  for (const char* bad : {"qgs.sock", "vsock:2", "vsock:x:4050", "unix:"}) {
    auto p = qgs_quote_provider(bad);
    EXPECT_FALSE(p.ok()) << bad;
  }
  EXPECT_TRUE(qgs_quote_provider("vsock:2:4050").ok());
  EXPECT_TRUE(qgs_quote_provider("127.0.0.1:4050").ok());
}

TEST(QuoteTest, QgsResponseParserChecksEveryLength) {
  EXPECT_EQ(*parse_qgs_response(qgs_response(Bytes(5, 9))), Bytes(5, 9));
  Bytes r = qgs_response(Bytes(5, 9));
  r[20] = 6;  // quote_size beyond the message
  EXPECT_NE(parse_qgs_response(r).error().message().find("do not fill"), std::string::npos);
  EXPECT_FALSE(parse_qgs_response(Bytes(10, 0)).ok());
  Bytes wrong_size = qgs_response(Bytes(5, 9));
  wrong_size[8] = 99;
  EXPECT_NE(parse_qgs_response(wrong_size).error().message().find("header size 99"),
            std::string::npos);
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
