// End-to-end: the cloister-vmm binary boots the project's test guest under KVM, or under the
// emulator (emu.h) where /dev/kvm is absent or cannot create a VM.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "cloister/sdk/guest_evidence.h"
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

TEST(VmmIntegrationTest, BootsFirmwareGuestOnOneVcpu) {
  VmmProcess run(run_args(
      {"run", "--firmware", guest("test-guest.bin"), "--memory", "64M", "--log-format", "json"}));
  ASSERT_EQ(run.wait(), 0) << run.err();
  const std::string out = run.out();
  EXPECT_NE(out.find("cloister test guest: boot=firmware\n"), std::string::npos) << out;
  EXPECT_NE(out.find("fw_cfg: present, cpus 1, ram 64 MiB\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("smp:"), std::string::npos);
  EXPECT_NE(out.find("test guest: done, status 0\n"), std::string::npos) << out;
  json last = run.last_log();
  EXPECT_EQ(last["event"], "vm.stopped");
  EXPECT_EQ(last["reason"], "debug_exit");
  EXPECT_EQ(last["guest_status"], 0);
  EXPECT_GT(last["metrics"]["exits_io"].get<int>(), 10);
  EXPECT_EQ(last["metrics"]["serial_tx_bytes"].get<std::size_t>(), out.size());
}

TEST(VmmIntegrationTest, BootsFirmwareGuestOnFourVcpus) {
  VmmProcess run(
      run_args({"run", "--firmware", guest("test-guest.bin"), "--memory", "64M", "--vcpus", "4"}));
  ASSERT_EQ(run.wait(), 0) << run.err();
  EXPECT_NE(run.out().find("fw_cfg: present, cpus 4, ram 64 MiB\n"), std::string::npos)
      << run.out();
  EXPECT_NE(run.out().find("smp: 4 of 4 cpus online\n"), std::string::npos) << run.out();
  EXPECT_NE(run.out().find("test guest: done, status 0\n"), std::string::npos);
}

TEST(VmmIntegrationTest, GuestFailureStatusBecomesExitCodeFour) {
  VmmProcess run(run_args({"run", "--firmware", guest("test-guest.bin"), "--memory", "8M",
                           "--cmdline", "exit=9", "--log-format", "json"}));
  ASSERT_EQ(run.wait(), 4) << run.err();
  EXPECT_NE(run.out().find("cmdline: 'exit=9'\n"), std::string::npos) << run.out();
  EXPECT_EQ(run.last_log()["guest_status"], 9);
}

TEST(VmmIntegrationTest, BootsBzImageWithInitrdCmdlineAndTwoVcpus) {
  const fs::path initrd =
      fs::temp_directory_path() / ("cloister-initrd-" + std::to_string(::getpid()));
  std::ofstream(initrd) << "CLOISTER-INITRD-CONTENT";
  VmmProcess run(
      run_args({"run", "--kernel", guest("test-guest.bzImage"), "--initrd", initrd.string(),
                "--cmdline", "console=ttyS0 quiet", "--memory", "64M", "--vcpus", "2"}));
  const int code = run.wait();
  fs::remove(initrd);
  ASSERT_EQ(code, 0) << run.err();
  const std::string out = run.out();
  EXPECT_NE(out.find("boot=linux\n"), std::string::npos) << out;
  EXPECT_NE(out.find("cmdline: 'console=ttyS0 quiet'\n"), std::string::npos) << out;
  EXPECT_NE(out.find("e820: 3 entries\n"), std::string::npos) << out;
  EXPECT_NE(out.find("  0x100000 +0x3f00000 type 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("initrd: 23 bytes at 0x3fff000, starts 'CLOISTER-INITRD-CONTENT'\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("mptable: 2 cpus, ioapic 0xfec00000\n"), std::string::npos) << out;
  EXPECT_NE(out.find("smp: 2 of 2 cpus online\n"), std::string::npos) << out;
}

TEST(VmmIntegrationTest, BootsElfKernelWithRamAboveFourGiB) {
  VmmProcess run(run_args({"run", "--kernel", guest("test-guest.elf"), "--memory", "5G"}));
  ASSERT_EQ(run.wait(), 0) << run.err();
  EXPECT_NE(run.out().find("e820: 4 entries\n"), std::string::npos) << run.out();
  EXPECT_NE(run.out().find("  0x100000000 +0x80000000 type 1\n"), std::string::npos) << run.out();
}

TEST(VmmIntegrationTest, VirtioBlockDiskIsReadByTheGuest) {
  const fs::path disk = fs::temp_directory_path() / ("cloister-disk-" + std::to_string(::getpid()));
  {
    std::string content(8192, '\0');
    content.replace(0, 19, "hello from the disk");
    std::ofstream(disk, std::ios::binary) << content;
  }
  VmmProcess run(run_args({"run", "--firmware", guest("test-guest.bin"), "--memory", "16M",
                           "--disk", disk.string() + ",ro", "--log-format", "json"}));
  const int code = run.wait();
  fs::remove(disk);
  ASSERT_EQ(code, 0) << run.err();
  EXPECT_NE(run.out().find("virtio-mmio@0xd0000000: device 2 version 2\n"), std::string::npos)
      << run.out();
  EXPECT_NE(run.out().find("virtio-blk: sector 0 says 'hello from the disk'\n"), std::string::npos)
      << run.out();
  EXPECT_EQ(run.last_log()["metrics"]["virtio_blk_bytes_read"], 512);
}

TEST(VmmIntegrationTest, VsockConnectsTheGuestToAHostSocket) {
  const fs::path uds = fs::temp_directory_path() / ("cloister-vsock-" + std::to_string(::getpid()));
  const fs::path port_socket = uds.string() + "_1234";
  int listener = unix_listen(port_socket);
  ASSERT_GE(listener, 0) << std::strerror(errno);
  std::string heard;
  std::thread echo([&] {
    int conn = ::accept(listener, nullptr, nullptr);
    if (conn < 0) return;
    char buf[256];
    ssize_t n = ::read(conn, buf, sizeof buf);
    if (n > 0) {
      heard.assign(buf, static_cast<std::size_t>(n));
      const std::string answer = "pong: " + heard;
      (void)!::write(conn, answer.data(), answer.size());
    }
    ::close(conn);
  });
  VmmProcess run(
      run_args({"run", "--firmware", guest("test-guest.bin"), "--memory", "16M", "--vsock-uds",
                uds.string(), "--vsock-cid", "42", "--log-format", "json"}));
  const int code = run.wait();
  ::shutdown(listener, SHUT_RDWR);
  echo.join();
  ::close(listener);
  fs::remove(port_socket);
  ASSERT_EQ(code, 0) << run.err();
  EXPECT_EQ(heard, "ping from the test guest");
  EXPECT_NE(run.out().find("virtio-mmio@0xd0000000: device 19 version 2\n"), std::string::npos)
      << run.out();
  EXPECT_NE(run.out().find(
                "virtio-vsock: cid 42, host port 1234 answered 'pong: ping from the test guest'\n"),
            std::string::npos)
      << run.out();
  json metrics = run.last_log()["metrics"];
  EXPECT_EQ(metrics["vsock_connections"], 1);
  EXPECT_EQ(metrics["vsock_bytes_to_host"], 24);
  EXPECT_EQ(metrics["vsock_bytes_to_guest"], 30);
}

TEST(VmmIntegrationTest, VsockConnectionToAClosedHostPortIsRefused) {
  const fs::path uds =
      fs::temp_directory_path() / ("cloister-novsock-" + std::to_string(::getpid()));
  VmmProcess run(run_args({"run", "--firmware", guest("test-guest.bin"), "--memory", "16M",
                           "--vsock-uds", uds.string(), "--cmdline", "vsock_port=4321"}));
  ASSERT_EQ(run.wait(), 0) << run.err();
  EXPECT_NE(
      run.out().find("virtio-vsock: cid 3, host port 4321: the host refused the connection\n"),
      std::string::npos)
      << run.out();
  EXPECT_NE(run.err().find("vsock.refused"), std::string::npos) << run.err();
}

TEST(VmmIntegrationTest, VsockHostConnectsToAGuestPort) {
  const fs::path uds =
      fs::temp_directory_path() / ("cloister-vsock-host-" + std::to_string(::getpid()));
  VmmProcess run(
      run_args({"run", "--firmware", guest("test-guest.bin"), "--memory", "16M", "--vsock-uds",
                uds.string(), "--cmdline", "vsock_listen=5000", "--log-format", "json"}));
  ASSERT_TRUE(run.wait_for_output("virtio-vsock: listening on port 5000\n"))
      << run.out() << run.err();
  int fd = unix_connect(uds);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  const std::string connect = "CONNECT 5000\n";
  ASSERT_EQ(::write(fd, connect.data(), connect.size()), static_cast<ssize_t>(connect.size()));
  auto read_some = [&] {
    char buf[256];
    ssize_t n = ::read(fd, buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  };
  const std::string ok = read_some();
  EXPECT_EQ(ok.rfind("OK ", 0), 0u) << ok;
  EXPECT_EQ(ok.back(), '\n');
  ASSERT_EQ(::write(fd, "hello guest", 11), 11);
  EXPECT_EQ(read_some(), "echo: hello guest");
  ::close(fd);
  ASSERT_EQ(run.wait(), 0) << run.err();
  EXPECT_NE(run.out().find("virtio-vsock: cid 3, the host said 'hello guest'\n"), std::string::npos)
      << run.out();
  EXPECT_FALSE(fs::exists(uds));  // the listening socket is removed on exit
  json metrics = run.last_log()["metrics"];
  EXPECT_EQ(metrics["vsock_connections"], 1);
  EXPECT_EQ(metrics["vsock_bytes_to_guest"], 11);
  EXPECT_EQ(metrics["vsock_bytes_to_host"], 17);
}

TEST(VmmIntegrationTest, VsockRejectsMalformedHostHandshakes) {
  const fs::path uds =
      fs::temp_directory_path() / ("cloister-vsock-bad-" + std::to_string(::getpid()));
  VmmProcess run(run_args({"run", "--firmware", guest("test-guest.bin"), "--memory", "16M",
                           "--vsock-uds", uds.string(), "--cmdline", "mode=idle"}));
  ASSERT_TRUE(run.wait_for_output("idle\n")) << run.err();
  for (const std::string& line : std::vector<std::string>{
           "HELLO 5000\n", "CONNECT abc\n", "CONNECT 99999999999\n", std::string(100, 'C')}) {
    int fd = unix_connect(uds);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    (void)!::send(fd, line.data(), line.size(), MSG_NOSIGNAL);
    char buf[16];
    // Closed without an answer (a reset when the VMM left bytes unread).
    EXPECT_LE(::read(fd, buf, sizeof buf), 0) << line;
    ::close(fd);
  }
  ::kill(run.pid(), SIGTERM);
  EXPECT_EQ(run.wait(), 0) << run.err();
}

// A JSON config file in the temporary directory, removed with the object.
class TempConfig {
 public:
  TempConfig(const std::string& name, const json& doc)
      : path_(fs::temp_directory_path() / (name + "-" + std::to_string(::getpid()) + ".json")) {
    std::ofstream(path_) << doc.dump();
  }
  ~TempConfig() { fs::remove(path_); }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

// Connects to the vsock device's host socket and completes "CONNECT <port>\n"; -1 on failure.
int vsock_host_connect(const fs::path& uds, std::uint32_t port) {
  int fd = unix_connect(uds);
  if (fd < 0) return -1;
  const std::string line = "CONNECT " + std::to_string(port) + "\n";
  std::string answer;
  char ch;
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return -1;
  while (answer.size() < 32 && ::read(fd, &ch, 1) == 1 && ch != '\n') answer += ch;
  if (answer.rfind("OK ", 0) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Waits up to `seconds` for `fd` to be readable and reads from it: what read(2) returned.
ssize_t read_within(int fd, int seconds) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, seconds * 1000) <= 0) return -2;
  char buf[4096];
  return ::read(fd, buf, sizeof buf);
}

// The guest echoes every byte back; the host sends and never reads. The guest's bytes fill the
// host socket and the device's per-connection buffer, the guest waits for credit, and after
// host_send_timeout_ms the device resets the connection (RST to the guest, the host socket
// closed). Meanwhile the VM runs: the API answers and every vCPU parks and resumes. The host's
// sends stall once the guest waits; a slow (instrumented) guest may still trickle a little, so
// the stall is timed from the first refused send, with a reset deadline that leaves room for it.
TEST(VmmIntegrationTest, VsockHostPeerThatNeverReadsIsResetWhileTheGuestAndApiRun) {
  const std::string tag = std::to_string(::getpid());
  const fs::path uds = fs::temp_directory_path() / ("cloister-vsock-stall-" + tag);
  const fs::path api = fs::temp_directory_path() / ("cloister-vsock-stall-" + tag + ".sock");
  TempConfig cfg("cloister-vsock-stall",
                 {{"vsock", {{"uds_path", uds.string()}, {"host_send_timeout_ms", 4000}}}});
  VmmProcess run(run_args({"run", "--config", cfg.path(), "--firmware", guest("test-guest.bin"),
                           "--memory", "16M", "--cmdline", "vsock_echo=5000 mode=idle",
                           "--api-socket", api.string(), "--log-format", "json"}));
  ASSERT_TRUE(run.wait_for_output("virtio-vsock: echoing on port 5000\n")) << run.err();
  const int fd = vsock_host_connect(uds, 5000);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::fcntl(fd, F_SETFL, O_NONBLOCK), 0);

  const std::string block(64 * 1024, 'x');
  bool checked_api = false;
  std::optional<std::chrono::steady_clock::time_point> stalled_since;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (run.out().find("the host reset the connection") == std::string::npos &&
         std::chrono::steady_clock::now() < give_up) {
    const ssize_t n = ::send(fd, block.data(), block.size(), MSG_NOSIGNAL);
    if (n > 0) continue;
    if (errno != EAGAIN) break;  // the device closed its end
    if (!stalled_since) stalled_since = std::chrono::steady_clock::now();
    if (!checked_api && std::chrono::steady_clock::now() - *stalled_since > 500ms) {
      // The guest waits for credit, the device holds unwritten bytes.
      checked_api = true;
      auto [status, body] = http(api, "GET", "/api/v1/vm.info");
      EXPECT_EQ(status, 200) << body;
      EXPECT_EQ(json::parse(body)["state"], "running");
      EXPECT_EQ(http(api, "PUT", "/api/v1/vm.pause").first, 204);  // no vCPU is stuck
      EXPECT_EQ(http(api, "PUT", "/api/v1/vm.resume").first, 204);
    }
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(checked_api);
  ASSERT_TRUE(run.wait_for_output("idle\n")) << run.out() << run.err();
  // The guest echoed until the host's stalled end was reset. How much depends on its speed: on
  // emu it fills the device's 256 KiB window and the socket buffer before it waits; a guest
  // slowed by a nested KVM had sent less when the send deadline passed.
  const std::string out = run.out();
  const std::string prefix = "virtio-vsock: cid 3, echoed ";
  const auto at = out.find(prefix);
  ASSERT_NE(at, std::string::npos) << out;
  const std::uint64_t echoed = std::stoull(out.substr(at + prefix.size()));
  EXPECT_GT(echoed, 0u) << out;
  EXPECT_NE(out.find(" bytes, the host reset the connection\n", at), std::string::npos) << out;
  // The host's end was closed: once what it holds is read, EOF or a reset.
  ASSERT_EQ(::fcntl(fd, F_SETFL, 0), 0);
  ssize_t got;
  while ((got = read_within(fd, 10)) > 0) {
  }
  EXPECT_NE(got, -2) << "the VMM kept the host connection open";
  ::close(fd);
  auto metrics = http(api, "GET", "/api/v1/metrics");
  ASSERT_EQ(metrics.first, 200);
  EXPECT_EQ(json::parse(metrics.second)["vsock_host_timeouts"], 1);
  EXPECT_EQ(json::parse(http(api, "GET", "/api/v1/vm.info").second)["state"], "running");
  ::kill(run.pid(), SIGTERM);
  EXPECT_EQ(run.wait(), 0) << run.err();
  json stalled = run.log_event("vsock.host_stalled");
  ASSERT_FALSE(stalled.is_null()) << run.err();
  EXPECT_EQ(stalled["timeout_ms"], 4000);
  EXPECT_EQ(stalled["guest_port"], 5000);
}

// Host connections that never send "CONNECT <port>\n" are closed after handshake_timeout_ms;
// while 16 wait, one more is refused at once; afterwards a well-behaved host gets in.
TEST(VmmIntegrationTest, VsockHandshakesTimeOutAndPendingHostConnectionsAreCapped) {
  const fs::path uds =
      fs::temp_directory_path() / ("cloister-vsock-idle-" + std::to_string(::getpid()));
  TempConfig cfg("cloister-vsock-idle",
                 {{"vsock", {{"uds_path", uds.string()}, {"handshake_timeout_ms", 2000}}}});
  VmmProcess run(
      run_args({"run", "--config", cfg.path(), "--firmware", guest("test-guest.bin"), "--memory",
                "16M", "--cmdline", "vsock_echo=5000 mode=idle", "--log-format", "json"}));
  ASSERT_TRUE(run.wait_for_output("virtio-vsock: echoing on port 5000\n")) << run.err();
  std::vector<int> idle;
  for (int i = 0; i < 16; ++i) {  // kMaxPendingHostConnections
    const int fd = unix_connect(uds);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    idle.push_back(fd);
    if (i % 2) {
      ASSERT_EQ(::write(fd, "CONN", 4), 4);  // half a line, never finished
    }
  }
  const int extra = unix_connect(uds);
  ASSERT_GE(extra, 0) << std::strerror(errno);
  EXPECT_EQ(read_within(extra, 10), 0);  // closed without an answer
  ::close(extra);
  for (int fd : idle) {
    EXPECT_LE(read_within(fd, 10), 0);  // closed by the VMM (EOF, or a reset if bytes were left)
    ::close(fd);
  }
  const int fd = vsock_host_connect(uds, 5000);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::write(fd, "hello", 5), 5);
  char buf[16];
  ASSERT_EQ(::read(fd, buf, sizeof buf), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");
  ::close(fd);
  ASSERT_TRUE(run.wait_for_output("echoed 5 bytes, the host closed the connection\n")) << run.out();
  ::kill(run.pid(), SIGTERM);
  ASSERT_EQ(run.wait(), 0) << run.err();
  json metrics = run.last_log()["metrics"];
  EXPECT_EQ(metrics["vsock_handshake_timeouts"], 16);
  EXPECT_EQ(metrics["vsock_refused"], 1);
  EXPECT_EQ(metrics["vsock_connections"], 1);
  EXPECT_EQ(run.log_event("vsock.handshake_timeout")["timeout_ms"], 2000);
}

TEST(VmmIntegrationTest, GarbageWritingGuestEndsWithAnErrorAndTheVmmExitsCleanly) {
  const fs::path disk =
      fs::temp_directory_path() / ("cloister-gdisk-" + std::to_string(::getpid()));
  std::ofstream(disk, std::ios::binary) << std::string(4096, 'x');
  // A disk and a vsock device, so both virtio device models get garbage too.
  VmmProcess run(run_args({"run", "--firmware", guest("test-guest.bin"), "--memory", "64M",
                           "--disk", disk.string(), "--vsock-uds", disk.string() + "-vsock",
                           "--cmdline", "mode=garbage", "--log-format", "json"}));
  const int code = run.wait(180);
  fs::remove(disk);
  ASSERT_EQ(code, 3) << run.err();  // guest fault, not a crash (which would be a signal)
  EXPECT_NE(run.out().find("garbage: survived; triple-faulting on purpose\n"), std::string::npos);
  json last = run.last_log();
  EXPECT_EQ(last["event"], "vm.stopped");
  EXPECT_EQ(last["reason"], "guest_fault");
  EXPECT_NE(last["msg"].get<std::string>().find("KVM_EXIT_SHUTDOWN"), std::string::npos);
  EXPECT_NE(last["msg"].get<std::string>().find("rip=0x"), std::string::npos);
  EXPECT_GT(last["metrics"]["pio_unassigned"].get<long>(), 60000);
  EXPECT_GT(last["metrics"]["mmio_unassigned"].get<long>(), 50);
  EXPECT_GT(last["metrics"]["virtio_notifications"].get<long>(), 0);
  EXPECT_EQ(run.err().find("Sanitizer"), std::string::npos);
}

// Sends raw bytes to the API socket and returns the HTTP status of the answer (-1: none).
int raw_http_status(const fs::path& socket, const std::string& bytes) {
  int fd = unix_connect(socket);
  if (fd < 0) return -1;
  (void)!::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  char buf[512];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n < 12) return -1;
  return std::stoi(std::string(buf + 9, 3));
}

TEST(VmmIntegrationTest, ApiReportsPausesResumesAndShutsDownARunningVm) {
  const fs::path sock =
      fs::temp_directory_path() / ("cloister-api-" + std::to_string(::getpid()) + ".sock");
  VmmProcess run(
      run_args({"run", "--firmware", guest("test-guest.bin"), "--memory", "16M", "--vcpus", "2",
                "--cmdline", "mode=idle", "--api-socket", sock.string()}));
  ASSERT_TRUE(run.wait_for_output("idle\n")) << run.out() << run.err();

  auto [status, body] = http(sock, "GET", "/api/v1/vm.info");
  ASSERT_EQ(status, 200) << body;
  json info = json::parse(body);
  EXPECT_EQ(info["state"], "running");
  EXPECT_EQ(info["vcpus"], 2);
  EXPECT_EQ(info["boot"], "firmware");
  EXPECT_TRUE(info["measurement"].is_null());
  EXPECT_EQ(info["config"]["boot"]["cmdline"], "mode=idle");

  EXPECT_EQ(http(sock, "PUT", "/api/v1/vm.pause").first, 204);
  EXPECT_EQ(json::parse(http(sock, "GET", "/api/v1/vm.info").second)["state"], "paused");
  auto again = http(sock, "PUT", "/api/v1/vm.pause");
  EXPECT_EQ(again.first, 409);
  EXPECT_EQ(http(sock, "PUT", "/api/v1/vm.resume").first, 204);
  EXPECT_EQ(json::parse(http(sock, "GET", "/api/v1/vm.info").second)["state"], "running");

  auto measurement = http(sock, "GET", "/api/v1/vm.measurement");
  EXPECT_EQ(measurement.first, 200);
  EXPECT_TRUE(json::parse(measurement.second)["measurement"].is_null());
  auto prom = http(sock, "GET", "/api/v1/metrics?format=prometheus");
  EXPECT_EQ(prom.first, 200);
  EXPECT_NE(prom.second.find("cloister_vmm_serial_tx_bytes_total "), std::string::npos);
  EXPECT_EQ(http(sock, "GET", "/api/v1/nope").first, 404);
  // Garbage on the API socket gets 400, requests over the size limits 431 (headers) and 413
  // (body), and none of them changes anything.
  EXPECT_EQ(raw_http_status(sock, "GARBAGE\r\n\r\n"), 400);
  EXPECT_EQ(raw_http_status(sock, "GET / HTTP/1.1\r\nX: " + std::string(10000, 'a') + "\r\n\r\n"),
            431);
  EXPECT_EQ(raw_http_status(
                sock, "PUT /api/v1/vm.pause HTTP/1.1\r\nHost: x\r\nContent-Length: 65537\r\n\r\n"),
            413);
  EXPECT_EQ(
      raw_http_status(
          sock, "PUT /api/v1/vm.pause HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"),
      400);
  EXPECT_EQ(json::parse(http(sock, "GET", "/api/v1/vm.info").second)["state"], "running");

  EXPECT_EQ(http(sock, "PUT", "/api/v1/vm.shutdown").first, 204);
  EXPECT_EQ(run.wait(), 0) << run.err();
  EXPECT_FALSE(fs::exists(sock));
}

// Issue 10's hostile API clients, all connected at once to a running VMM: 50 idle connections,
// one that pipelines requests and never reads the answers, one that sends its request a byte at
// a time. A fresh vm.info is answered while every one of them is still connected, and SIGTERM
// then stops the VMM cleanly with them still connected.
TEST(VmmIntegrationTest, ApiServesAFreshRequestAndStopsOnSigtermWhileHostileClientsHang) {
  const fs::path sock =
      fs::temp_directory_path() / ("cloister-api-hostile-" + std::to_string(::getpid()) + ".sock");
  VmmProcess run(
      run_args({"run", "--firmware", guest("test-guest.bin"), "--memory", "16M", "--cmdline",
                "mode=idle", "--api-socket", sock.string(), "--log-format", "json"}));
  ASSERT_TRUE(run.wait_for_output("idle\n")) << run.out() << run.err();

  std::vector<cloister::Fd> idle;
  for (int i = 0; i < 50; ++i) {
    idle.push_back(connect_unix(sock));
    ASSERT_TRUE(idle.back().valid()) << std::strerror(errno);
  }

  // 64 KiB of pipelined vm.info requests ask for megabytes of answers, far more than socket
  // buffers hold: the server is left with a response this client never takes.
  cloister::Fd pipeliner = connect_unix(sock);
  const std::string one = get_request("/api/v1/vm.info");
  std::string burst;
  while (burst.size() < 64 * 1024) burst += one;
  std::string_view unsent = burst;
  while (!unsent.empty()) {
    ssize_t n = ::send(pipeliner.get(), unsent.data(), unsent.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      unsent.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << std::strerror(errno);
    pollfd p{pipeliner.get(), POLLOUT, 0};
    // The server reads only between answers; once it is stuck writing, the rest stays unsent.
    if (::poll(&p, 1, 500) == 0) break;
  }

  // A request header trickled one byte every 300 ms, never finished within the test.
  cloister::Fd slowloris = connect_unix(sock);
  const std::string slow = "GET /api/v1/vm.info HTTP/1.1\r\nX-Slow: " + std::string(1000, 'x');
  std::atomic<int> trickled{0};
  std::atomic<bool> done{false};
  std::thread trickler([&] {
    for (std::size_t i = 0; i < slow.size() && !done; ++i) {
      if (::send(slowloris.get(), &slow[i], 1, MSG_NOSIGNAL) != 1) return;
      ++trickled;
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  });
  for (int i = 0; i < 2000 && trickled < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GE(trickled, 3);

  Reply fresh = round_trip(sock, get_request("/api/v1/vm.info"));
  EXPECT_EQ(fresh.status, 200) << fresh.body;
  EXPECT_EQ(json::parse(fresh.body, nullptr, false).value("state", ""), "running") << fresh.body;
  EXPECT_TRUE(server_holds(pipeliner));
  EXPECT_TRUE(server_holds(slowloris));
  int idle_held = 0;
  for (const auto& fd : idle) idle_held += server_holds(fd);
  EXPECT_EQ(idle_held, 50);

  ::kill(run.pid(), SIGTERM);
  EXPECT_EQ(run.wait(), 0) << run.err();
  EXPECT_EQ(run.last_log()["reason"], "requested");
  EXPECT_EQ(run.last_log()["msg"], "signal 15");
  EXPECT_FALSE(fs::exists(sock));
  done = true;
  trickler.join();
}

// Debian's OVMF (package ovmf) mapped at the top of 4 GiB and entered at its reset vector. On
// this project's development host KVM cannot emulate the x87 `finit` OVMF's SEC phase runs, and
// the emulator stops at the first exception OVMF takes (it delivers none), so the VM may end
// with a guest fault (exit 3) and a register dump; on other hosts OVMF keeps running. Either way
// it must have executed far enough to probe PCI config space (0xcf8).
TEST(VmmIntegrationTest, OvmfRunsFromItsResetVector) {
  const fs::path ovmf = "/usr/share/OVMF/OVMF_CODE.fd";
  if (!fs::exists(ovmf))
    GTEST_SKIP() << ovmf << " is missing (Debian package ovmf, scripts/deps/build.txt)";
  const fs::path sock =
      fs::temp_directory_path() / ("cloister-ovmf-" + std::to_string(::getpid()) + ".sock");
  VmmProcess run(run_args({"run", "--firmware", ovmf.string(), "--memory", "256M", "--api-socket",
                           sock.string(), "--log-format", "json"}));
  for (int i = 0; i < 200 && run.err().find("vm.stopped") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto metrics = http(sock, "GET", "/api/v1/metrics");
  if (metrics.first == 200) {
    EXPECT_GT(json::parse(metrics.second)["pio_unassigned"].get<long>(), 0);
    EXPECT_EQ(http(sock, "PUT", "/api/v1/vm.shutdown").first, 204);
    EXPECT_EQ(run.wait(), 0) << run.err();
  } else {
    ASSERT_EQ(run.wait(), 3) << run.err();
    json last = run.last_log();
    EXPECT_NE(last["msg"].get<std::string>().find("KVM_EXIT_INTERNAL_ERROR"), std::string::npos)
        << last.dump();
    EXPECT_GT(last["metrics"]["pio_unassigned"].get<long>(), 0);
  }
}

TEST(VmmIntegrationTest, SigtermStopsTheVmCleanly) {
  VmmProcess run(run_args({"run", "--firmware", guest("test-guest.bin"), "--memory", "16M",
                           "--cmdline", "mode=idle", "--log-format", "json"}));
  ASSERT_TRUE(run.wait_for_output("idle\n")) << run.err();
  ::kill(run.pid(), SIGTERM);
  ASSERT_EQ(run.wait(), 0) << run.err();
  EXPECT_EQ(run.last_log()["reason"], "requested");
  EXPECT_EQ(run.last_log()["msg"], "signal 15");
}

TEST(VmmIntegrationTest, ConsoleGoesToAFileOrASocket) {
  const fs::path file =
      fs::temp_directory_path() / ("cloister-console-" + std::to_string(::getpid()) + ".log");
  VmmProcess to_file(run_args({"run", "--firmware", guest("test-guest.bin"), "--memory", "8M",
                               "--console", "file:" + file.string()}));
  ASSERT_EQ(to_file.wait(), 0) << to_file.err();
  EXPECT_TRUE(to_file.out().empty());
  EXPECT_NE(slurp(file).find("test guest: done, status 0\n"), std::string::npos);
  fs::remove(file);

  const fs::path sock =
      fs::temp_directory_path() / ("cloister-console-" + std::to_string(::getpid()) + ".sock");
  int listener = unix_listen(sock);
  ASSERT_GE(listener, 0) << std::strerror(errno);
  VmmProcess to_socket(run_args({"run", "--firmware", guest("test-guest.bin"), "--memory", "8M",
                                 "--console", "socket:" + sock.string()}));
  int conn = ::accept(listener, nullptr, nullptr);
  ASSERT_GE(conn, 0);
  std::string received;
  char buf[1024];
  ssize_t n;
  while ((n = ::read(conn, buf, sizeof buf)) > 0) received.append(buf, static_cast<std::size_t>(n));
  ::close(conn);
  ::close(listener);
  fs::remove(sock);
  ASSERT_EQ(to_socket.wait(), 0) << to_socket.err();
  EXPECT_NE(received.find("cloister test guest: boot=firmware\n"), std::string::npos) << received;
  EXPECT_NE(received.find("test guest: done, status 0\n"), std::string::npos) << received;
}

TEST(VmmIntegrationTest, ConsoleSocketCarriesInputToTheUart) {
  const fs::path sock =
      fs::temp_directory_path() / ("cloister-input-" + std::to_string(::getpid()) + ".sock");
  int listener = unix_listen(sock);
  ASSERT_GE(listener, 0) << std::strerror(errno);
  VmmProcess run(
      run_args({"run", "--firmware", guest("test-guest.bin"), "--memory", "8M", "--cmdline",
                "mode=idle", "--console", "socket:" + sock.string(), "--log-format", "json"}));
  int conn = ::accept(listener, nullptr, nullptr);
  ASSERT_GE(conn, 0);
  std::string received;
  char buf[256];
  while (received.find("idle\n") == std::string::npos) {
    ssize_t n = ::read(conn, buf, sizeof buf);
    ASSERT_GT(n, 0);
    received.append(buf, static_cast<std::size_t>(n));
  }
  ASSERT_EQ(::write(conn, "typed", 5), 5);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ::kill(run.pid(), SIGTERM);
  ASSERT_EQ(run.wait(), 0) << run.err();
  ::close(conn);
  ::close(listener);
  fs::remove(sock);
  EXPECT_EQ(run.last_log()["metrics"]["serial_rx_bytes"], 5);
}

// Without a simulated secure processor (tee none) the attesting guest must neither hang nor
// pretend: it sends its reason over the evidence protocol and exits with a failure status.
TEST(VmmIntegrationTest, AttestationOnAPlainVmSendsTheGuestsReasonOverVsock) {
  const fs::path uds =
      fs::temp_directory_path() / ("cloister-attest-" + std::to_string(::getpid()));
  VmmProcess run({"run", "--firmware", guest("test-guest.bin"), "--memory", "16M", "--vsock-uds",
                  uds.string(), "--cmdline", "attest=snp attest_port=9100"});
  ASSERT_TRUE(run.wait_for_output("attest: snp, listening on vsock port 9100\n"))
      << run.out() << run.err();
  cloister::sdk::ReportData report_data{};
  report_data[0] = 0x42;
  cloister::sdk::EvidenceFailure failure = cloister::sdk::EvidenceFailure::kMalformed;
  const auto evidence = cloister::sdk::fetch_guest_evidence(
      uds, 9100, report_data, std::chrono::steady_clock::now() + std::chrono::seconds(30),
      &failure);
  const std::string reason =
      "VMPCK0 in the secrets page is empty (disabled, or the VM does not run with --tee sim-snp)";
  ASSERT_FALSE(evidence.ok());
  EXPECT_EQ(failure, cloister::sdk::EvidenceFailure::kGuestFailed);
  EXPECT_EQ(evidence.error().message(),
            "guest evidence stream: the guest reported no evidence: \"" + reason + "\"");
  EXPECT_EQ(run.wait(), 4) << run.err();
  EXPECT_NE(run.out().find("attest: failed: " + reason + "\n"), std::string::npos) << run.out();
}

TEST(VmmIntegrationTest, AttestationFailsAtBootWithoutWhatItNeeds) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--firmware", guest("test-guest.bin"), "--cmdline", "attest=tdx"},
       "attest: failed: TDG.MR.RTMR.EXTEND failed: RAX 0x2 (unchanged: is the VM running with "
       "--tee sim-tdx?)\n"},
      {{"--firmware", guest("test-guest.bin"), "--cmdline", "attest=snp"},
       "attest: failed: no virtio-vsock device (run cloister-vmm with --vsock-uds)\n"},
      {{"--kernel", guest("test-guest.elf"), "--cmdline", "attest=snp"},
       "attest: failed: attestation needs the firmware boot (test-guest.bin)\n"},
      {{"--firmware", guest("test-guest.bin"), "--cmdline", "attest=sev"},
       "attest: failed: attest= takes snp or tdx\n"},
  };
  for (const auto& [args, line] : cases) {
    std::vector<std::string> argv = {"run", "--memory", "16M"};
    argv.insert(argv.end(), args.begin(), args.end());
    VmmProcess run(argv);
    EXPECT_EQ(run.wait(), 4) << run.err();
    EXPECT_NE(run.out().find(line), std::string::npos) << run.out();
  }
}

TEST(VmmIntegrationTest, ConfigErrorsExitTwoBeforeKvm) {
  const fs::path cfg =
      fs::temp_directory_path() / ("cloister-cfg-" + std::to_string(::getpid()) + ".json");
  std::ofstream(cfg) << R"({"boot": {"firmware": "/x"}, "vcpu": 2})";
  VmmProcess bad_key({"run", "--config", cfg.string()});
  EXPECT_EQ(bad_key.wait(), 2);
  EXPECT_NE(bad_key.err().find("config: unknown key \"vcpu\""), std::string::npos) << bad_key.err();
  fs::remove(cfg);
  VmmProcess no_subcommand({});
  EXPECT_EQ(no_subcommand.wait(), 2);
  VmmProcess bad_flag({"run", "--vcpus", "two"});
  EXPECT_EQ(bad_flag.wait(), 2);
  VmmProcess bad_value({"run", "--firmware", "/x", "--vcpus", "0"});
  EXPECT_EQ(bad_value.wait(), 2);
  EXPECT_NE(bad_value.err().find("vcpus: expected an integer 1..254, found 0"), std::string::npos);
  const fs::path plain =
      fs::temp_directory_path() / ("cloister-plain-" + std::to_string(::getpid()));
  std::ofstream(plain) << std::string(4096, '\xf4');
  // A malformed input file is an input to fix, like a bad config (exit 2), not a VM failure.
  VmmProcess tee({"run", "--firmware", plain.string(), "--tee", "tdx"});
  EXPECT_EQ(tee.wait(), 2);
  EXPECT_NE(tee.err().find("vm.input_invalid: boot.firmware " + plain.string() +
                           ": OVMF image has no footer table"),
            std::string::npos)
      << tee.err();
  fs::remove(plain);
}

}  // namespace
