// virtio-net end to end: cloister-vmm attaches the test guest to a TAP in a network namespace
// the test creates; a frame the guest sends arrives on the TAP and a frame written to the TAP
// reaches the guest. Needs CAP_SYS_ADMIN and CAP_NET_ADMIN (root, as CI runs) and /dev/net/tun.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "vmm_process.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace cloister::testing;

constexpr const char* kTap = "ctap0";
constexpr std::uint16_t kEtherType = 0x88b5;
constexpr std::array<std::uint8_t, 6> kGuestMac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
constexpr std::array<std::uint8_t, 6> kHostMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
constexpr int kSkip = 77;

std::string os(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// A persistent TAP `name`, up, in the current network namespace; "" or what failed.
std::string create_tap(const char* name) {
  const int tun = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (tun < 0) return os("open /dev/net/tun");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  const bool made = ::ioctl(tun, TUNSETIFF, &ifr) == 0 && ::ioctl(tun, TUNSETPERSIST, 1) == 0;
  const std::string failed = made ? "" : os("TUNSETIFF/TUNSETPERSIST");
  ::close(tun);
  if (!made) return failed;
  // No IPv6 on it: the kernel's neighbour discovery would add frames to the exchange.
  std::ofstream("/proc/sys/net/ipv6/conf/" + std::string(name) + "/disable_ipv6") << "1";
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq up{};
  std::strncpy(up.ifr_name, name, IFNAMSIZ - 1);
  const bool ok = ::ioctl(s, SIOCGIFFLAGS, &up) == 0 &&
                  (up.ifr_flags |= IFF_UP, ::ioctl(s, SIOCSIFFLAGS, &up) == 0);
  const std::string error = ok ? "" : os("SIOCSIFFLAGS IFF_UP");
  ::close(s);
  return error;
}

// A raw packet socket on `name`: what the TAP's kernel side sends and receives.
int packet_socket(const char* name) {
  const int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) return -1;
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons(ETH_P_ALL);
  addr.sll_ifindex = static_cast<int>(::if_nametoindex(name));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// The payload of the next frame of our EtherType within `seconds`, checking its addresses.
std::string receive_guest_frame(int fd, int seconds, std::string& error) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  std::array<std::uint8_t, 2048> frame{};
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    const ssize_t n = ::recv(fd, frame.data(), frame.size(), 0);
    if (n < 14 || frame[12] != (kEtherType >> 8) || frame[13] != (kEtherType & 0xff)) continue;
    if (!std::equal(kGuestMac.begin(), kGuestMac.end(), frame.begin() + 6))
      error = "the guest's frame does not come from its MAC";
    for (int i = 0; i < 6; ++i)
      if (frame[i] != 0xff) error = "the guest's frame is not a broadcast";
    std::string payload(reinterpret_cast<const char*>(frame.data()) + 14, n - 14);
    return payload.substr(0, payload.find('\0'));
  }
  error = "no frame from the guest within " + std::to_string(seconds) + " s";
  return "";
}

bool send_to_guest(int fd, const std::string& message) {
  std::array<std::uint8_t, 60> frame{};
  std::copy(kGuestMac.begin(), kGuestMac.end(), frame.begin());
  std::copy(kHostMac.begin(), kHostMac.end(), frame.begin() + 6);
  frame[12] = kEtherType >> 8;
  frame[13] = kEtherType & 0xff;
  std::copy(message.begin(), message.end(), frame.begin() + 14);
  return ::send(fd, frame.data(), frame.size(), 0) == static_cast<ssize_t>(frame.size());
}

// The scenario, in the child's namespace: "" when everything held, else what did not.
std::string exchange_frames(const std::string& guest_image, const fs::path& api) {
  if (auto error = create_tap(kTap); !error.empty()) return error;
  const int fd = packet_socket(kTap);
  if (fd < 0) return os("packet socket on the TAP");
  VmmProcess run(run_args({"run", "--firmware", guest_image, "--memory", "16M", "--net",
                           std::string(kTap) + ",mac=52:54:00:12:34:56,tx_ops=100/1000",
                           "--api-socket", api.string(), "--log-format", "json"}));
  std::string error;
  const std::string from_guest = receive_guest_frame(fd, 60, error);
  if (!error.empty()) return error + "\n" + run.out() + run.err();
  if (from_guest != "hello from the test guest")
    return "the TAP got '" + from_guest + "', expected 'hello from the test guest'";
  auto [status, nets] = http(api, "GET", "/api/v1/vm.nets");
  if (status != 200) return "GET vm.nets: " + std::to_string(status) + " " + nets;
  const json listed = json::parse(nets);
  if (listed[0]["tap"] != kTap || listed[0]["tx_rate_limiter"]["ops"]["size"] != 100)
    return "vm.nets: " + nets;
  if (!send_to_guest(fd, "hello from the host")) return os("send to the guest");
  const int exit = run.wait(120);
  ::close(fd);
  const std::string out = run.out();
  if (exit != 0) return "cloister-vmm exited " + std::to_string(exit) + "\n" + out + run.err();
  if (out.find("virtio-net: mac 52:54:00:12:34:56, the host said 'hello from the host'\n") ==
      std::string::npos)
    return "the guest did not report the host's frame:\n" + out;
  const json metrics = run.last_log()["metrics"];
  if (metrics["net_tx_frames"] != 1 || metrics["net_rx_frames"].get<int>() < 1)
    return "metrics: " + metrics.dump();
  return "";
}

TEST(VirtioNetIntegrationTest, FramesCrossTheTapBothWays) {
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/net/tun";
  const fs::path report = fs::temp_directory_path() / ("cloister-net-" + std::to_string(getpid()));
  const fs::path api = report.string() + ".sock";
  const pid_t child = ::fork();
  if (child == 0) {
    std::string result;
    int code = 0;
    if (::unshare(CLONE_NEWNET) != 0) {
      result = os("unshare(CLONE_NEWNET) (needs CAP_SYS_ADMIN: run as root)");
      code = kSkip;
    } else {
      result = exchange_frames(std::string(CLOISTER_TEST_GUEST_DIR) + "/test-guest.bin", api);
      code = result.empty() ? 0 : 1;
    }
    std::ofstream(report) << result;
    ::_exit(code);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  const std::string result = slurp(report);
  fs::remove(report);
  if (WIFEXITED(status) && WEXITSTATUS(status) == kSkip) GTEST_SKIP() << result;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << result;
}

}  // namespace
