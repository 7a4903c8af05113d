// Snapshot benchmark: for each guest size, boots the counting test guest ("mode=count") under
// cloister-vmm, then per round measures
//   - snapshot: PUT vm.snapshot from request to answer (the VM pauses, the files are written);
//   - restore to running: from just before fork() of `cloister-vmm restore` to the restored
//     guest's first serial byte (the snapshot is opened and checked, memory mapped, vCPUs
//     restored, and the guest counts again).
// Prints one machine-readable line per size: "SIZE snapshot_ms=… restore_ms=… …" (medians,
// minimum and maximum).
//   snapshot-bench VMM IMAGE RUNS WORKDIR SIZE...      (SIZE as cloister-vmm --memory takes it)
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

double now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// One HTTP/1.1 request with Connection: close; the status, or -1.
int http(const fs::path& socket_path, const std::string& method, const std::string& path,
         const std::string& body = "") {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    ::close(fd);
    return -1;
  }
  const std::string request = method + " " + path +
                              " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                              "Content-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return -1;
  }
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) reply.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  if (reply.size() < 12) return -1;
  return std::atoi(reply.c_str() + 9);
}

pid_t spawn(const std::vector<std::string>& args, int stdout_fd) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (stdout_fd >= 0) ::dup2(stdout_fd, 1);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

bool reaped(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, 0) == pid;
}

struct Stats {
  double median, min, max;
};

Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

// One round: a fresh counting VM is snapshotted, stopped, and restored; false on any failure.
bool round(const std::string& vmm, const std::string& image, const fs::path& work,
           const std::string& size, double& snapshot_ms, double& restore_ms) {
  const fs::path sock = work / "api.sock", dir = work / "snap";
  fs::remove_all(dir);
  fs::remove(sock);
  const pid_t original =
      spawn({vmm, "run", "--firmware", image, "--memory", size, "--cmdline", "mode=count",
             "--api-socket", sock.string(), "--console", "none", "--log-level", "warn"},
            -1);
  const double deadline = now_ms() + 30'000;
  while (http(sock, "GET", "/api/v1/vm.info") != 200) {
    if (now_ms() > deadline) {
      ::kill(original, SIGKILL);
      reaped(original);
      return false;
    }
    ::usleep(2000);
  }
  ::usleep(100'000);  // the guest counts
  const double before = now_ms();
  const int status =
      http(sock, "PUT", "/api/v1/vm.snapshot", "{\"dir\": \"" + dir.string() + "\"}");
  snapshot_ms = now_ms() - before;
  http(sock, "PUT", "/api/v1/vm.shutdown");
  reaped(original);
  if (status != 204) {
    std::fprintf(stderr, "snapshot-bench: vm.snapshot answered %d\n", status);
    return false;
  }
  int pipefd[2];
  if (::pipe(pipefd) < 0) return false;
  const double start = now_ms();
  const pid_t restored =
      spawn({vmm, "restore", "--snapshot", dir.string(), "--log-level", "warn"}, pipefd[1]);
  ::close(pipefd[1]);
  char byte;
  const bool running = ::read(pipefd[0], &byte, 1) == 1;
  restore_ms = now_ms() - start;
  ::kill(restored, SIGTERM);
  reaped(restored);
  ::close(pipefd[0]);
  fs::remove_all(dir);
  return running;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: snapshot-bench VMM IMAGE RUNS WORKDIR SIZE...\n");
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  const std::string vmm = argv[1], image = argv[2];
  const int runs = std::atoi(argv[3]);
  const fs::path work = argv[4];
  fs::create_directories(work);
  for (int s = 5; s < argc; ++s) {
    std::vector<double> snapshots, restores;
    double snapshot_ms = 0, restore_ms = 0;
    if (!round(vmm, image, work, argv[s], snapshot_ms, restore_ms)) return 1;  // warm-up
    for (int r = 0; r < runs; ++r) {
      if (!round(vmm, image, work, argv[s], snapshot_ms, restore_ms)) return 1;
      snapshots.push_back(snapshot_ms);
      restores.push_back(restore_ms);
    }
    const Stats a = stats(snapshots), b = stats(restores);
    std::printf(
        "%s snapshot_ms=%.2f snapshot_min=%.2f snapshot_max=%.2f restore_ms=%.2f "
        "restore_min=%.2f restore_max=%.2f\n",
        argv[s], a.median, a.min, a.max, b.median, b.min, b.max);
    std::fflush(stdout);
  }
  return 0;
}
