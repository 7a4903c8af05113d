// The migration transport's addresses and its TCP path on loopback: a source and a destination
// in one process, and the failures a source must report (nobody listening, a destination that
// closes instead of accepting).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <thread>

#include "cloister/common/socket.h"
#include "cloister/vmm/migration/transport.h"

namespace cloister::vmm {
namespace {

using namespace std::chrono_literals;

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
}

}  // namespace
}  // namespace cloister::vmm
