// A program run by a test in the background: stdout and stderr in files of a fresh directory,
// killed (SIGKILL) and reaped when the object goes, so a failing test leaves nothing running.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace cloister::testing {

class ChildProcess {
 public:
  ChildProcess(std::string binary, std::vector<std::string> args);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Waits up to `seconds` for the exit; the exit code, -signal, or -1000 when it had to be
  // killed at the deadline.
  int wait(int seconds = 60);
  // Sends `signal` (when still running).
  void signal(int signal);
  // Waits up to `seconds` until `text` appears in stderr (`in_stderr`) or stdout.
  bool wait_for(const std::string& text, bool in_stderr, int seconds = 30) const;
  std::string out() const;
  std::string err() const;
  pid_t pid() const { return pid_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  bool exited_ = false;
};

}  // namespace cloister::testing
