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

#include "support/process.h"

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

// A PUT with a JSON body over the control API socket: the status and the body.
std::pair<int, std::string> put(const std::filesystem::path& socket, const std::string& path,
                                const std::string& body);

class VmmProcess {
 public:
  // Starts cloister-vmm with `args`; stdout and stderr go to files in a fresh directory.
  explicit VmmProcess(std::vector<std::string> args);

  // Waits up to `seconds`; returns the exit code, or -signal, or -1000 on timeout (killed).
  int wait(int seconds = 60) { return process_.wait(seconds); }
  bool wait_for_output(const std::string& text, int seconds = 30) const {
    return process_.wait_for(text, /*in_stderr=*/false, seconds);
  }
  std::string out() const { return process_.out(); }
  std::string err() const { return process_.err(); }
  pid_t pid() const { return process_.pid(); }
  std::filesystem::path dir() const { return process_.dir(); }
  // The last JSON log line (run with --log-format json), and the first whose "event" is `event`.
  nlohmann::json last_log() const;
  nlohmann::json log_event(const std::string& event) const;

 private:
  ChildProcess process_;
};

}  // namespace cloister::testing
