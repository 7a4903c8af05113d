// Running a command line the way a user's shell would, for tests of the tools.
#pragma once

#include <string>

namespace cloister::testing {

struct CommandResult {
  int status = -1;  // exit status; -1 when the command did not exit normally
  std::string out;  // stdout and stderr, interleaved
};

// Runs `command_line` through /bin/sh with stderr folded into stdout.
CommandResult run_command(const std::string& command_line);

}  // namespace cloister::testing
