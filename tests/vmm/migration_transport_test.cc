// The migration transport's addresses and its TCP path on loopback: a source and a destination
// in one process, and the failures a source must report (nobody listening, a destination that
// closes or resets instead of accepting, or trickles the stream in; the VMM stopping).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <filesystem>
#include <string>
#include <thread>

#include "cloister/common/socket.h"
#include "cloister/vmm/migration/transport.h"

namespace cloister::vmm {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A destination on loopback TCP that accepts and then takes `bytes` every `every` (none for 0)
// until stopped; what a source sends it fills the socket buffers and then waits.
class SlowDestination {
 public:
  SlowDestination(std::size_t bytes, std::chrono::milliseconds every) {
    auto listener = listen_migration("tcp:127.0.0.1:0");
    EXPECT_TRUE(listener.ok());
    address_ = listening_migration_address(listener->get(), "tcp:127.0.0.1:0").value();
    thread_ = std::thread([this, bytes, every, fd = std::move(*listener)]() mutable {
      auto conn = accept_migration(std::move(fd), address_);
      if (!conn) return;
      Bytes buffer(std::max<std::size_t>(bytes, 1));
      while (!done_) {
        if (bytes > 0) (void)::recv(conn->get(), buffer.data(), bytes, MSG_DONTWAIT);
        std::this_thread::sleep_for(every);
      }
    });
  }
  ~SlowDestination() {
    done_ = true;
    thread_.join();
  }
  const std::string& address() const { return address_; }

 private:
  std::string address_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

TEST(MigrationAddressTest, UnixAndTcpAddressesParse) {
  auto unix_address = parse_migration_address("unix:/run/vm-in.sock");
  ASSERT_TRUE(unix_address.ok()) << unix_address.error().message();
  EXPECT_EQ(unix_address->family, AF_UNIX);
  EXPECT_EQ(unix_address->path, "/run/vm-in.sock");
  auto v4 = parse_migration_address("tcp:127.0.0.1:7000");
  ASSERT_TRUE(v4.ok()) << v4.error().message();
  EXPECT_EQ(v4->family, AF_INET);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 7000);
  auto v6 = parse_migration_address("tcp:[::1]:0");
  ASSERT_TRUE(v6.ok()) << v6.error().message();
  EXPECT_EQ(v6->family, AF_INET6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  auto local = parse_migration_address("tcp:localhost:1");
  ASSERT_TRUE(local.ok()) << local.error().message();
  EXPECT_EQ(local->family, AF_INET);
  EXPECT_EQ(migration_socket_families(), (std::vector<int>{AF_UNIX, AF_INET, AF_INET6}));
}

TEST(MigrationAddressTest, OtherAddressesAreRefusedWithTheReason) {
  const std::pair<const char*, const char*> cases[] = {
      {"unix:", "migration address \"unix:\": expected unix:PATH or tcp:HOST:PORT"},
      {"/run/vm-in.sock",
       "migration address \"/run/vm-in.sock\": expected unix:PATH or tcp:HOST:PORT"},
      {"tcp:127.0.0.1",
       "migration address \"tcp:127.0.0.1\": address \"127.0.0.1\": no port; expected HOST:PORT"},
      {"tcp:dest.example:7000",
       "migration address \"tcp:dest.example:7000\": host \"dest.example\" is not an IPv4 or "
       "IPv6 address literal or \"localhost\""},
      {"tcp:127.0.0.1:70000",
       "migration address \"tcp:127.0.0.1:70000\": address \"127.0.0.1:70000\": port 70000 is "
       "out of range; expected 0 to 65535"},
  };
  for (const auto& [address, message] : cases) {
    auto parsed = parse_migration_address(address);
    ASSERT_FALSE(parsed.ok()) << address;
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument) << address;
    EXPECT_EQ(parsed.error().message(), message);
  }
  auto sender = MigrationSender::connect("tcp:dest.example:7000", 1000ms);
  ASSERT_FALSE(sender.ok());
  EXPECT_EQ(sender.error().code(), ErrorCode::kInvalidArgument);
}

TEST(MigrationTcpTest, HeaderPagesAndAnswerCrossLoopback) {
  auto listener = listen_migration("tcp:127.0.0.1:0");
  ASSERT_TRUE(listener.ok()) << listener.error().message();
  auto address = listening_migration_address(listener->get(), "tcp:127.0.0.1:0");
  ASSERT_TRUE(address.ok()) << address.error().message();
  ASSERT_TRUE(address->starts_with("tcp:127.0.0.1:")) << *address;
  EXPECT_NE(*address, "tcp:127.0.0.1:0");

  std::array<std::uint8_t, 2 * kMigrationPageBytes> pages{};
  pages[0] = 0x5a;
  pages[kMigrationPageBytes] = 0xa5;
  Bytes received_header(kMigrationHeaderBytes);
  Bytes received_record(kMigrationRecordHeaderBytes + 8 + pages.size() + 32);
  Status destination;
  std::thread dest([&, fd = std::move(*listener)]() mutable {
    auto conn = accept_migration(std::move(fd), *address);
    if (!conn) {
      destination = conn.error();
      return;
    }
    const MigrationReadFn read = migration_reader(conn->get(), 10000ms);
    if (auto st = read(received_header); !st) destination = st;
    if (auto st = read(received_record); !st) destination = st;
    if (destination.ok()) destination = send_migration_accepted(conn->get());
  });
  auto sender = MigrationSender::connect(*address, 10000ms);
  ASSERT_TRUE(sender.ok()) << sender.error().message();
  ASSERT_TRUE(sender->send_header(2 * kMigrationPageBytes).ok());
  ASSERT_TRUE(sender->send_pages(0, pages.data(), pages.size()).ok());
  auto accepted = sender->await_accepted();
  dest.join();
  ASSERT_TRUE(destination.ok()) << destination.error().message();
  ASSERT_TRUE(accepted.ok()) << accepted.error().message();
  EXPECT_EQ(received_header, encode_migration_header(2 * kMigrationPageBytes));
  EXPECT_EQ(received_record, encode_migration_record(
                                 MigrationRecordType::kMemory, 0,
                                 encode_memory_payload(0, ByteView(pages.data(), pages.size()))));
  EXPECT_EQ(sender->bytes_sent(), received_header.size() + received_record.size());
}

// A port nobody listens on: bound, then closed.
std::uint16_t closed_port() {
  auto probe = listen_tcp("127.0.0.1", 0, 1);
  EXPECT_TRUE(probe.ok());
  auto port = local_port(probe->get());
  EXPECT_TRUE(port.ok());
  return *port;
}

TEST(MigrationTcpTest, RefusedAndClosingDestinationsAreUnavailable) {
  const std::string nobody = "tcp:127.0.0.1:" + std::to_string(closed_port());
  auto refused = MigrationSender::connect(nobody, 10000ms);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(refused.error().message(),
            "migration destination " + nobody + ": connect: Connection refused (errno 111)");

  auto listener = listen_migration("tcp:127.0.0.1:0");
  ASSERT_TRUE(listener.ok()) << listener.error().message();
  auto address = listening_migration_address(listener->get(), "tcp:127.0.0.1:0");
  ASSERT_TRUE(address.ok());
  std::thread dest([&, fd = std::move(*listener)]() mutable {
    auto conn = accept_migration(std::move(fd), *address);
    EXPECT_TRUE(conn.ok());
    std::uint8_t header[kMigrationHeaderBytes];
    EXPECT_TRUE(migration_reader(conn->get(), 10000ms)(header).ok());
  });  // the connection closes without an answer
  auto sender = MigrationSender::connect(*address, 10000ms);
  ASSERT_TRUE(sender.ok()) << sender.error().message();
  ASSERT_TRUE(sender->send_header(kMigrationPageBytes).ok());
  auto accepted = sender->await_accepted();
  dest.join();
  ASSERT_FALSE(accepted.ok());
  EXPECT_EQ(accepted.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(accepted.error().message(),
            "migration destination " + *address +
                ": closed the connection instead of accepting the VM (its log names the reason)");
  EXPECT_TRUE(sender->refused());  // a refusal: the destination runs nothing
}

// A destination that closes with part of the stream unread resets the connection. On a unix
// socket only the destination can reset it, and it never had the whole stream: a refusal. Over
// TCP anything on the path can, so the outcome stays unknown.
TEST(MigrationTransportTest, AResetIsARefusalOnlyOnAUnixSocket) {
  const std::string unix_address =
      "unix:" + (fs::temp_directory_path() /
                 ("cloister-migration-reset-" + std::to_string(::getpid()) + ".sock"))
                    .string();
  for (const std::string& listen_at : {unix_address, std::string("tcp:127.0.0.1:0")}) {
    auto listener = listen_migration(listen_at);
    ASSERT_TRUE(listener.ok()) << listener.error().message();
    auto address = listening_migration_address(listener->get(), listen_at);
    ASSERT_TRUE(address.ok());
    std::thread cutter([&, fd = std::move(*listener)]() mutable {
      auto conn = accept_migration(std::move(fd), *address);
      EXPECT_TRUE(conn.ok());
      std::uint8_t some[8];
      EXPECT_TRUE(migration_reader(conn->get(), 10000ms)(some).ok());
    });  // closes with the rest of the header unread
    auto sender = MigrationSender::connect(*address, 10000ms);
    ASSERT_TRUE(sender.ok()) << sender.error().message();
    ASSERT_TRUE(sender->send_header(kMigrationPageBytes).ok());
    cutter.join();
    auto reset = sender->await_accepted();
    ASSERT_FALSE(reset.ok());
    EXPECT_EQ(reset.error().code(), ErrorCode::kUnavailable);
    const bool local = listen_at == unix_address;
    EXPECT_EQ(reset.error().message(),
              "migration destination " + *address + ": recv: Connection reset by peer (errno 104)" +
                  (local ? " (the destination went away without reading the whole stream)" : ""));
    EXPECT_EQ(sender->refused(), local) << listen_at;
  }
}

// A destination that took the stream and has not answered may be about to run the guest: its
// silence is no refusal, so the source must not resume the guest too.
TEST(MigrationTcpTest, NoAnswerInTimeIsAnUnknownOutcomeNotARefusal) {
  SlowDestination silent(4096, 10ms);
  auto sender = MigrationSender::connect(silent.address(), 300ms);
  ASSERT_TRUE(sender.ok()) << sender.error().message();
  ASSERT_TRUE(sender->send_header(kMigrationPageBytes).ok());
  auto accepted = sender->await_accepted();
  ASSERT_FALSE(accepted.ok());
  EXPECT_EQ(accepted.error().message(), "migration destination " + silent.address() +
                                            ": no answer to the stream within 300 ms");
  EXPECT_FALSE(sender->refused());
}

// The destination answers only a source that still waits: one that closed (it gave up and keeps
// the VM) or sent more than its stream gets no answer, and the destination runs nothing.
TEST(MigrationTcpTest, TheAnswerGoesOnlyToASourceThatStillWaits) {
  auto pair = [] {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    return std::pair{Fd(fds[0]), Fd(fds[1])};
  };
  {
    auto [source, destination] = pair();
    source.reset();
    const Status answered = send_migration_accepted(destination.get());
    ASSERT_FALSE(answered.ok());
    EXPECT_EQ(answered.error().code(), ErrorCode::kUnavailable);
    EXPECT_EQ(answered.error().message(),
              "migration: the source closed the connection before the VM was accepted (it gave "
              "up waiting and keeps the VM)");
  }
  {
    auto [source, destination] = pair();
    ASSERT_EQ(::send(source.get(), "x", 1, MSG_NOSIGNAL), 1);
    const Status answered = send_migration_accepted(destination.get());
    ASSERT_FALSE(answered.ok());
    EXPECT_EQ(answered.error().message(),
              "migration: the source sent byte 120 after its state, expected nothing until the "
              "answer");
    std::uint8_t got = 0;
    EXPECT_EQ(::recv(source.get(), &got, 1, MSG_DONTWAIT), -1);  // nothing was sent
  }
  auto [source, destination] = pair();
  ASSERT_TRUE(send_migration_accepted(destination.get()).ok());
  std::uint8_t got = 0;
  ASSERT_EQ(::recv(source.get(), &got, 1, 0), 1);
  EXPECT_EQ(got, kMigrationAccepted);
}

// One deadline for each whole record: a destination that takes a little now and then (each bit of
// progress used to restart the wait) cannot stretch a record past the timeout.
TEST(MigrationTcpTest, ADestinationThatTricklesMissesTheRecordDeadline) {
  SlowDestination trickler(4096, 50ms);  // 80 KiB/s: a 1 MiB record takes 13 s
  auto sender = MigrationSender::connect(trickler.address(), 1000ms);
  ASSERT_TRUE(sender.ok()) << sender.error().message();
  const Bytes memory(64u << 20, 0x5a);  // more than loopback's socket buffers hold
  const auto sent = sender->send_pages(0, memory.data(), memory.size());
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().code(), ErrorCode::kUnavailable);
  const std::size_t record = kMigrationRecordHeaderBytes + 8 + kMigrationChunkBytes + 32;
  EXPECT_EQ(sent.error().message(), "migration destination " + trickler.address() +
                                        ": did not take a " + std::to_string(record) +
                                        "-byte record within 1000 ms (not reading the stream, "
                                        "or too slowly)");
}

// The VMM stopping ends every wait on the destination, however long its timeout.
TEST(MigrationTcpTest, ACancelledSenderStopsWaitingOnItsDestination) {
  SlowDestination silent(0, 10ms);
  std::atomic<bool> stopping{false};
  auto sender = MigrationSender::connect(silent.address(), 3600s, [&] { return stopping.load(); });
  ASSERT_TRUE(sender.ok()) << sender.error().message();
  std::thread stop([&] {
    std::this_thread::sleep_for(200ms);
    stopping = true;
  });
  const Bytes memory(64u << 20, 0x5a);
  const auto sent = sender->send_pages(0, memory.data(), memory.size());
  stop.join();
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(sent.error().message(),
            "migration destination " + silent.address() + ": cancelled (the VMM is stopping)");
  EXPECT_EQ(sender->await_accepted().error().message(), sent.error().message());
}

}  // namespace
}  // namespace cloister::vmm
