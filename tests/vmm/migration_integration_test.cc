// Live migration end to end (issue 12): a source cloister-vmm running the test guest in
// "mode=memwrite" (it rewrites a buffer and checks every word before overwriting it, printing
// "checksum ok N" after pass N) is moved to a `cloister-vmm receive` over a UNIX socket and over
// TCP on loopback; and the failure paths: a destination that refuses the connection or cuts the
// stream, a stream the destination cannot trust.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cloister/vmm/migration/stream.h"
#include "support/api_client.h"
#include "vmm_process.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;
using namespace cloister::testing;

const std::string kGuestDir = CLOISTER_TEST_GUEST_DIR;

std::string guest(const std::string& name) {
  return kGuestDir + "/" + name;
}

fs::path scratch(const std::string& name) {
  const fs::path p =
      fs::temp_directory_path() / ("cloister-mig-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(p);
  return p;
}

std::pair<int, std::string> migrate(const fs::path& sock, const std::string& destination) {
  return put(sock, "/api/v1/vm.migrate", json{{"destination", destination}}.dump());
}

std::pair<int, std::string> migrate(const fs::path& sock, const fs::path& destination) {
  return migrate(sock, "unix:" + destination.string());
}

// The N of every complete "checksum ok N" line, in order; -1 for a "checksum bad" line.
std::vector<long long> checksums(const std::string& text) {
  std::vector<long long> values;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (lines.eof()) break;
    if (line.starts_with("checksum ok ")) values.push_back(std::stoll(line.substr(12)));
    if (line.starts_with("checksum bad")) values.push_back(-1);
  }
  return values;
}

bool wait_for_checksum(const fs::path& console, long long at_least, int seconds = 60) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    auto values = checksums(slurp(console));
    if (!values.empty() && values.back() >= at_least) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// Waits until a `receive` (run with --log-format json) listens.
bool wait_until_listening(const VmmProcess& destination, int seconds = 30) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!destination.log_event("vm.receive_listening").is_null()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// A writing guest on a source VMM with its API on `sock` and console in `console`.
std::vector<std::string> source_args(const fs::path& sock, const fs::path& console) {
  return run_args({"run", "--firmware", guest("test-guest.bin"), "--memory", "16M", "--cmdline",
                   "mode=memwrite memwrite_kib=64", "--api-socket", sock.string(), "--console",
                   "file:" + console.string(), "--log-format", "json"});
}

// Moves a writing guest to a `receive --listen listen` and checks it goes on there intact.
// `listen` may be tcp:HOST:0: the source is given the address the destination logs.
void expect_moved_intact(const std::string& name, const std::string& listen) {
  const fs::path src_sock = scratch(name + "-src.sock"), src_console = scratch(name + "-src.log");
  const fs::path dst_sock = scratch(name + "-dst.sock"), dst_console = scratch(name + "-dst.log");
  VmmProcess source(source_args(src_sock, src_console));
  ASSERT_TRUE(wait_for_checksum(src_console, 3)) << source.err() << slurp(src_console);
  VmmProcess destination({"receive", "--listen", listen, "--api-socket", dst_sock.string(),
                          "--console", "file:" + dst_console.string(), "--log-format", "json"});
  ASSERT_TRUE(wait_until_listening(destination)) << destination.err();
  const std::string address =
      destination.log_event("vm.receive_listening")["address"].get<std::string>();
  if (!listen.ends_with(":0")) {
    EXPECT_EQ(address, listen);
  }

  auto [status, body] = migrate(src_sock, address);
  ASSERT_EQ(status, 204) << body << source.err();
  EXPECT_EQ(source.wait(), 0) << source.err();
  const json migrated = source.log_event("vm.migrated");
  ASSERT_FALSE(migrated.is_null()) << source.err();
  EXPECT_GT(migrated["bytes_sent"].get<std::uint64_t>(), 64u * 1024);
  EXPECT_EQ(migrated["destination"], address);
  // KVM's dirty log where the VMM runs on KVM; emu has none and compares contents.
  const bool on_kvm = source.log_event("hypervisor.selected")["hypervisor"] == "kvm";
  EXPECT_EQ(migrated["tracker"], on_kvm ? "kvm-dirty-log" : "content");
  const auto before = checksums(slurp(src_console));
  ASSERT_FALSE(before.empty());

  // The guest goes on where it was: passes keep completing and every word it checks holds what
  // it wrote before the move.
  ASSERT_TRUE(wait_for_checksum(dst_console, before.back() + 3))
      << destination.err() << slurp(dst_console);
  // What the source printed up to the move, then what the destination printed: one unbroken
  // run of passes, whatever line or byte the pause fell on.
  const std::string after = slurp(dst_console);
  EXPECT_FALSE(after.starts_with("cloister test guest")) << "the guest booted again";
  const auto all = checksums(slurp(src_console) + after);
  ASSERT_GT(all.size(), before.size() + 2);
  for (std::size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], static_cast<long long>(i) + 1);
  EXPECT_EQ(json::parse(http(dst_sock, "GET", "/api/v1/vm.info").second)["state"], "running");
  EXPECT_FALSE(destination.log_event("vm.received").is_null()) << destination.err();
  EXPECT_EQ(http(dst_sock, "PUT", "/api/v1/vm.shutdown").first, 204);
  EXPECT_EQ(destination.wait(), 0) << destination.err();
}

TEST(MigrationIntegrationTest, WritingGuestMovesToTheDestinationWithItsMemoryIntact) {
  expect_moved_intact("unix", "unix:" + scratch("listen.sock").string());
}

TEST(MigrationIntegrationTest, WritingGuestMovesOverTcpWithItsMemoryIntact) {
  expect_moved_intact("tcp", "tcp:127.0.0.1:0");
}

// A TCP destination that refuses the connection (nobody listens on the port) or accepts and
// closes at once: the source answers 503 and its guest keeps running and writing.
TEST(MigrationIntegrationTest, RefusedOrClosedTcpDestinationLeavesTheSourceRunning) {
  const fs::path sock = scratch("tcp-refused.sock"), console = scratch("tcp-refused.console");
  VmmProcess source(source_args(sock, console));
  ASSERT_TRUE(wait_for_checksum(console, 2)) << source.err() << slurp(console);

  const int probe = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(probe, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::getsockname(probe, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string nobody = "tcp:127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  ::close(probe);  // bound, never listening: the port refuses connections
  auto [refused, refused_body] = migrate(sock, nobody);
  EXPECT_EQ(refused, 503) << refused_body;
  EXPECT_NE(refused_body.find("migration destination " + nobody + ": connect: Connection refused"),
            std::string::npos)
      << refused_body;
  EXPECT_NE(refused_body.find("the VM runs on here"), std::string::npos) << refused_body;

  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  addr.sin_port = 0;
  len = sizeof addr;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string closer = "tcp:127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  std::thread closing([listener] { ::close(::accept(listener, nullptr, nullptr)); });
  auto [closed, closed_body] = migrate(sock, closer);
  closing.join();
  ::close(listener);
  EXPECT_EQ(closed, 503) << closed_body;
  EXPECT_NE(closed_body.find("migration destination " + closer), std::string::npos) << closed_body;
  EXPECT_TRUE(closed_body.find("the VM was resumed here") != std::string::npos ||
              closed_body.find("the VM runs on here") != std::string::npos)
      << closed_body;

  EXPECT_EQ(json::parse(http(sock, "GET", "/api/v1/vm.info").second)["state"], "running");
  const long long last = checksums(slurp(console)).back();
  ASSERT_TRUE(wait_for_checksum(console, last + 2)) << source.err();
  for (long long v : checksums(slurp(console))) ASSERT_GE(v, 1);
  EXPECT_EQ(http(sock, "PUT", "/api/v1/vm.shutdown").first, 204);
  EXPECT_EQ(source.wait(), 0) << source.err();
}

// A destination that takes the stream a few hundred bytes at a time holds the migration (and so
// the API thread serving it) no longer than one record's deadline, and not at all once the VMM
// is told to stop: SIGTERM ends the migration and the VMM exits as usual.
TEST(MigrationIntegrationTest, SigtermEndsAMigrationToADestinationThatTrickles) {
  const fs::path sock = scratch("trickle.sock"), console = scratch("trickle.console");
  VmmProcess source(source_args(sock, console));
  ASSERT_TRUE(wait_for_checksum(console, 2)) << source.err() << slurp(console);
  const fs::path listen = scratch("trickler.sock");
  const int listener = unix_listen(listen);
  ASSERT_GE(listener, 0);
  std::atomic<bool> done{false};
  std::atomic<std::size_t> taken{0};
  std::thread trickler([&] {
    const int conn = ::accept(listener, nullptr, nullptr);
    char buf[512];
    while (!done) {
      const ssize_t n = ::recv(conn, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0) break;
      if (n > 0) taken += static_cast<std::size_t>(n);
      std::this_thread::sleep_for(100ms);
    }
    ::close(conn);
  });
  std::thread migrating([&] { (void)migrate(sock, listen); });
  while (taken == 0) std::this_thread::sleep_for(20ms);
  std::this_thread::sleep_for(500ms);  // the socket buffer full, the source waiting on it
  ::kill(source.pid(), SIGTERM);
  EXPECT_EQ(source.wait(), 0) << source.err();
  done = true;
  migrating.join();
  trickler.join();
  ::close(listener);
  const json failed = source.log_event("vm.migration_failed");
  ASSERT_FALSE(failed.is_null()) << source.err();
  EXPECT_NE(failed.dump().find("cancelled (the VMM is stopping)"), std::string::npos)
      << failed.dump();
}

TEST(MigrationIntegrationTest, DestinationGoneOrCuttingTheStreamLeavesTheSourceRunning) {
  const fs::path sock = scratch("cut.sock"), console = scratch("cut.console");
  VmmProcess source(source_args(sock, console));
  ASSERT_TRUE(wait_for_checksum(console, 2)) << source.err() << slurp(console);

  // Nobody listens.
  auto [gone, gone_body] = migrate(sock, scratch("nobody.sock"));
  EXPECT_EQ(gone, 503) << gone_body;
  EXPECT_NE(gone_body.find("connect"), std::string::npos) << gone_body;
  EXPECT_NE(gone_body.find("the VM runs on here"), std::string::npos) << gone_body;

  // A destination that reads the header and a little more, then hangs up mid-stream.
  const fs::path listen = scratch("cutter.sock");
  const int listener = unix_listen(listen);
  ASSERT_GE(listener, 0);
  std::thread cutter([listener] {
    const int conn = ::accept(listener, nullptr, nullptr);
    char buf[200];
    std::size_t got = 0;
    while (got < sizeof buf) {
      const ssize_t n = ::read(conn, buf, sizeof buf - got);
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    ::close(conn);
  });
  auto [cut, cut_body] = migrate(sock, listen);
  cutter.join();
  ::close(listener);
  EXPECT_EQ(cut, 503) << cut_body;
  // Whether the source notices while sending or while waiting for the answer (the destination
  // went away: a failed send, or a reset from the bytes it left unread; or it closed instead of
  // accepting) depends on the socket buffer.
  EXPECT_NE(cut_body.find("migration destination unix:" + listen.string()), std::string::npos)
      << cut_body;
  EXPECT_TRUE(cut_body.find("the destination went away") != std::string::npos ||
              cut_body.find("closed the connection instead of accepting") != std::string::npos)
      << cut_body;
  EXPECT_TRUE(cut_body.find("the VM was resumed here") != std::string::npos ||
              cut_body.find("the VM runs on here") != std::string::npos)
      << cut_body;

  // Still running, still writing, and still intact.
  EXPECT_EQ(json::parse(http(sock, "GET", "/api/v1/vm.info").second)["state"], "running");
  const long long last = checksums(slurp(console)).back();
  ASSERT_TRUE(wait_for_checksum(console, last + 2)) << source.err();
  for (long long v : checksums(slurp(console))) ASSERT_GE(v, 1);
  EXPECT_FALSE(source.log_event("vm.migration_failed").is_null()) << source.err();
  EXPECT_EQ(http(sock, "PUT", "/api/v1/vm.shutdown").first, 204);
  EXPECT_EQ(source.wait(), 0) << source.err();
}

// A destination that takes the whole stream and never answers may be running the guest (its
// answer can be on the way when the source stops waiting): the source keeps the guest paused
// rather than resume it, so two copies never run on one disk; the operator resumes it.
TEST(MigrationIntegrationTest, NoAnswerAfterTheWholeStreamLeavesTheSourcePaused) {
  const fs::path sock = scratch("silent.sock"), console = scratch("silent.console");
  VmmProcess source(source_args(sock, console));
  ASSERT_TRUE(wait_for_checksum(console, 2)) << source.err() << slurp(console);
  const fs::path listen = scratch("silent-dest.sock");
  const int listener = unix_listen(listen);
  ASSERT_GE(listener, 0);
  std::thread silent([listener] {  // reads until the source hangs up, never answers
    const int conn = ::accept(listener, nullptr, nullptr);
    char buf[65536];
    while (::read(conn, buf, sizeof buf) > 0) {
    }
    ::close(conn);
  });
  auto [status, body] = migrate(sock, listen);
  silent.join();
  ::close(listener);
  EXPECT_EQ(status, 503) << body;
  EXPECT_NE(body.find("no answer to the stream within 10000 ms; the VM stays paused here: the "
                      "destination may be running it (check there before vm.resume here)"),
            std::string::npos)
      << body;
  EXPECT_EQ(json::parse(http(sock, "GET", "/api/v1/vm.info").second)["state"], "paused");
  EXPECT_EQ(http(sock, "PUT", "/api/v1/vm.resume").first, 204);
  const long long last = checksums(slurp(console)).back();
  ASSERT_TRUE(wait_for_checksum(console, last + 2)) << source.err();
  EXPECT_EQ(http(sock, "PUT", "/api/v1/vm.shutdown").first, 204);
  EXPECT_EQ(source.wait(), 0) << source.err();
}

// Sends `stream` to a fresh destination, which must refuse it: exit 2, the reason logged, no
// guest run.
void expect_refused(const cloister::Bytes& stream, const std::string& reason) {
  const fs::path listen = scratch("refuse.sock"), console = scratch("refuse.console");
  VmmProcess destination({"receive", "--listen", "unix:" + listen.string(), "--console",
                          "file:" + console.string(), "--log-format", "json"});
  ASSERT_TRUE(wait_until_listening(destination)) << destination.err();
  const int fd = unix_connect(listen);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::send(fd, stream.data(), stream.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(stream.size()));
  ::shutdown(fd, SHUT_WR);
  char answer = 0;
  EXPECT_EQ(::read(fd, &answer, 1), 0) << "the destination accepted";
  ::close(fd);
  EXPECT_EQ(destination.wait(), 2) << destination.err();
  const json refused = destination.log_event("vm.migration_refused");
  ASSERT_FALSE(refused.is_null()) << destination.err();
  EXPECT_NE(refused["msg"].get<std::string>().find(reason), std::string::npos) << refused;
  EXPECT_TRUE(!fs::exists(console) || slurp(console).empty()) << slurp(console);
}

TEST(MigrationIntegrationTest, DestinationRefusesAStreamItCannotTrust) {
  using namespace cloister::vmm;
  expect_refused(encode_migration_header(17 << 20, kMigrationStreamVersion + 1),
                 "migration stream: version: expected 1, found 2");

  cloister::Bytes corrupted = encode_migration_header(17 << 20);
  cloister::Bytes record = encode_migration_record(
      MigrationRecordType::kMemory, 0,
      encode_memory_payload(0x400000, cloister::Bytes(kMigrationPageBytes, 0x5a)));
  record[kMigrationRecordHeaderBytes + 8 + 17] ^= 0x01;
  corrupted.insert(corrupted.end(), record.begin(), record.end());
  expect_refused(corrupted, "record 0 (memory): checksum (sha256): expected");

  // Cut before the state: the guest must not run half received.
  cloister::Bytes cut = encode_migration_header(17 << 20);
  record[kMigrationRecordHeaderBytes + 8 + 17] ^= 0x01;
  cut.insert(cut.end(), record.begin(), record.end());
  expect_refused(cut, "record 1: end of stream");
}

// The N of every complete "blk N 'text'" line (the test guest's "mode=blkcount"), in order.
std::vector<std::uint64_t> blk_reads(const std::string& text) {
  std::vector<std::uint64_t> values;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (lines.eof()) break;
    EXPECT_EQ(line.find("failed"), std::string::npos) << line;
    if (line.starts_with("blk ") && line.ends_with("'"))
      values.push_back(std::stoull(line.substr(4, line.find(' ', 4) - 4)));
  }
  return values;
}

bool wait_for_blk_read(const fs::path& console, std::uint64_t at_least, int seconds = 60) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    auto values = blk_reads(slurp(console));
    if (!values.empty() && values.back() >= at_least) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// A disk is re-opened by path on the destination (here the same file): the guest's virtio-blk
// queue moves with it and its reads go on with no gap or repeat.
TEST(MigrationIntegrationTest, DiskGuestMovesWithItsQueueAndKeepsReading) {
  const fs::path src_sock = scratch("blk-src.sock"), src_console = scratch("blk-src.console");
  const fs::path dst_sock = scratch("blk-dst.sock"), dst_console = scratch("blk-dst.console");
  const fs::path listen = scratch("blk-listen.sock"), disk = scratch("blk.img");
  std::ofstream(disk, std::ios::binary) << std::string(8 * 512, 'b');
  VmmProcess source(
      run_args({"run", "--firmware", guest("test-guest.bin"), "--memory", "16M", "--cmdline",
                "mode=blkcount", "--disk", disk.string(), "--api-socket", src_sock.string(),
                "--console", "file:" + src_console.string(), "--log-format", "json"}));
  ASSERT_TRUE(wait_for_blk_read(src_console, 50)) << source.err() << slurp(src_console);
  VmmProcess destination({"receive", "--listen", "unix:" + listen.string(), "--api-socket",
                          dst_sock.string(), "--console", "file:" + dst_console.string(),
                          "--log-format", "json"});
  ASSERT_TRUE(wait_until_listening(destination)) << destination.err();

  auto [status, body] = migrate(src_sock, listen);
  ASSERT_EQ(status, 204) << body << source.err();
  EXPECT_EQ(source.wait(), 0) << source.err();
  const auto before = blk_reads(slurp(src_console));
  ASSERT_FALSE(before.empty());
  ASSERT_TRUE(wait_for_blk_read(dst_console, before.back() + 50))
      << destination.err() << slurp(dst_console);
  const auto all = blk_reads(slurp(src_console) + slurp(dst_console));
  for (std::size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], i + 1) << "read " << i;
  EXPECT_EQ(destination.log_event("vm.restored").value("virtio_devices", 0), 1)
      << destination.err();
  EXPECT_EQ(http(dst_sock, "PUT", "/api/v1/vm.shutdown").first, 204);
  EXPECT_EQ(destination.wait(), 0) << destination.err();
  fs::remove(disk);
}

// On one host a vsock device cannot move: its UNIX socket is the source's until the source
// stops, so the destination cannot bind it, and the source keeps the VM.
TEST(MigrationIntegrationTest, SameHostMigrationOfAVsockGuestFailsAndTheSourceKeepsRunning) {
  const fs::path src_sock = scratch("vs-src.sock"), src_console = scratch("vs-src.console");
  const fs::path listen = scratch("vs-listen.sock"), uds = scratch("vs.uds");
  VmmProcess source(run_args({"run", "--firmware", guest("test-guest.bin"), "--memory", "16M",
                              "--cmdline", "mode=memwrite memwrite_kib=64", "--vsock-uds",
                              uds.string(), "--api-socket", src_sock.string(), "--console",
                              "file:" + src_console.string(), "--log-format", "json"}));
  ASSERT_TRUE(wait_for_checksum(src_console, 2)) << source.err() << slurp(src_console);
  VmmProcess destination({"receive", "--listen", "unix:" + listen.string(), "--console", "none",
                          "--log-format", "json"});
  ASSERT_TRUE(wait_until_listening(destination)) << destination.err();

  auto [status, body] = migrate(src_sock, listen);
  EXPECT_EQ(status, 503) << body;
  EXPECT_NE(destination.wait(), 0);
  const json failed = destination.log_event("vm.receive_failed");
  EXPECT_NE(failed.value("msg", "").find("restore: /body/devices/virtio/0 (virtio-vsock): bind "
                                         "vsock socket " +
                                         uds.string()),
            std::string::npos)
      << destination.err();
  EXPECT_EQ(json::parse(http(src_sock, "GET", "/api/v1/vm.info").second)["state"], "running");
  const auto passes = checksums(slurp(src_console)).size();
  ASSERT_TRUE(wait_for_checksum(src_console, static_cast<long long>(passes) + 2)) << source.err();
  EXPECT_EQ(http(src_sock, "PUT", "/api/v1/vm.shutdown").first, 204);
  EXPECT_EQ(source.wait(), 0) << source.err();
}

}  // namespace
