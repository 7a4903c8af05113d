// Running the cloister-vmm binary in tests: a child process with its output in files, the
// hypervisor choice for this host, and the small socket and HTTP helpers the end-to-end tests
// share.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace cloister::testing {

// `args` for a `cloister-vmm run`: unchanged where /dev/kvm can create a VM, otherwise with
// --hypervisor emu appended (docs/operator.md, "Hypervisors").
std::vector<std::string> run_args(std::vector<std::string> args);

std::string slurp(const std::filesystem::path& p);

// A UNIX stream socket at `path`, connected or bound and listening; -1 with errno set on
// failure.
int unix_connect(const std::filesystem::path& path);
int unix_listen(const std::filesystem::path& path);

// One HTTP/1.1 request over the control API socket: the status and the body (-1 when the
// socket does not connect).
std::pair<int, std::string> http(const std::filesystem::path& socket, const std::string& method,
                                 const std::string& path);

class VmmProcess {
 public:
  // Starts cloister-vmm with `args`; stdout and stderr go to files in a fresh directory.
  explicit VmmProcess(std::vector<std::string> args);
  ~VmmProcess();
  VmmProcess(const VmmProcess&) = delete;
  VmmProcess& operator=(const VmmProcess&) = delete;

  // Waits up to `seconds`; returns the exit code, or -signal, or -1000 on timeout (killed).
  int wait(int seconds = 60);
  bool wait_for_output(const std::string& text, int seconds = 30);
  std::string out() const { return slurp(dir_ / "stdout"); }
  std::string err() const { return slurp(dir_ / "stderr"); }
  pid_t pid() const { return pid_; }
  std::filesystem::path dir() const { return dir_; }
  // The last JSON log line (run with --log-format json), and the first whose "event" is `event`.
  nlohmann::json last_log() const;
  nlohmann::json log_event(const std::string& event) const;

 private:
  static inline int counter_ = 0;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  bool exited_ = false;
};

}  // namespace cloister::testing
