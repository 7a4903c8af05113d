#include "vmm_process.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/api_client.h"

namespace cloister::testing {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Whether /dev/kvm opens and can create a VM.
bool kvm_usable() {
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  int vm = ::ioctl(fd, KVM_CREATE_VM, 0);
  ::close(fd);
  if (vm < 0) return false;
  ::close(vm);
  return true;
}

}  // namespace

std::vector<std::string> run_args(std::vector<std::string> args) {
  static const bool kvm = kvm_usable();
  if (!kvm) {
    args.push_back("--hypervisor");
    args.push_back("emu");
  }
  return args;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

int unix_socket(const fs::path& path, bool listen) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const auto* a = reinterpret_cast<const sockaddr*>(&addr);
  const bool ok = listen ? ::bind(fd, a, sizeof addr) == 0 && ::listen(fd, 1) == 0
                         : ::connect(fd, a, sizeof addr) == 0;
  if (!ok) {
    const int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}
}  // namespace

int unix_connect(const fs::path& path) {
  return unix_socket(path, false);
}
int unix_listen(const fs::path& path) {
  return unix_socket(path, true);
}

std::pair<int, std::string> http(const fs::path& socket, const std::string& method,
                                 const std::string& path) {
  int fd = unix_connect(socket);
  if (fd < 0) return {-1, std::strerror(errno)};
  std::string request =
      method + " " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  (void)!::write(fd, request.data(), request.size());
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) response.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  if (response.size() < 12) return {-2, response};
  const std::size_t body = response.find("\r\n\r\n");
  return {std::stoi(response.substr(9, 3)),
          body == std::string::npos ? "" : response.substr(body + 4)};
}

std::pair<int, std::string> put(const fs::path& socket, const std::string& path,
                                const std::string& body) {
  const std::string request = "PUT " + path +
                              " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                              "Content-Length: " +
                              std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  const Reply reply = round_trip(socket, request);
  return {reply.status, reply.body};
}

VmmProcess::VmmProcess(std::vector<std::string> args)
    : process_(CLOISTER_VMM_BIN, std::move(args)) {}

json VmmProcess::last_log() const {
  std::istringstream lines(err());
  std::string line, last;
  while (std::getline(lines, line))
    if (!line.empty()) last = line;
  return json::parse(last, nullptr, false);
}

json VmmProcess::log_event(const std::string& event) const {
  std::istringstream lines(err());
  std::string line;
  while (std::getline(lines, line)) {
    json entry = json::parse(line, nullptr, false);
    if (entry.is_object() && entry.value("event", "") == event) return entry;
  }
  return nullptr;
}

}  // namespace cloister::testing
