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

VmmProcess::VmmProcess(std::vector<std::string> args) {
  static const std::string vmm = CLOISTER_VMM_BIN;
  dir_ = fs::temp_directory_path() /
         ("cloister-vmm-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
  fs::create_directories(dir_);
  pid_ = ::fork();
  if (pid_ == 0) {
    int out = ::open((dir_ / "stdout").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open((dir_ / "stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int in = ::open("/dev/null", O_RDONLY);
    ::dup2(out, 1), ::dup2(err, 2), ::dup2(in, 0);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(vmm.c_str()));
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(vmm.c_str(), argv.data());
    ::_exit(127);
  }
}

VmmProcess::~VmmProcess() {
  if (pid_ > 0 && !exited_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

int VmmProcess::wait(int seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      exited_ = true;
      return -1000;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool VmmProcess::wait_for_output(const std::string& text, int seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (out().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

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
