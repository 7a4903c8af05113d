// Structured logging: one line per event, human text or JSON lines, to stderr or a file.
// Thread-safe; each line is written with a single write(2) so lines never interleave.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "cloister/common/result.h"
#include "cloister/vmm/fd.h"

namespace cloister::vmm {

enum class LogLevel { kDebug, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson };

std::string_view log_level_name(LogLevel level);

class Logger {
 public:
  // Logs to stderr.
  Logger(LogFormat format, LogLevel level);
  // Logs to `path`, appending; fails if it cannot be opened.
  static Result<Logger> to_file(const std::string& path, LogFormat format, LogLevel level);

  Logger(Logger&&) noexcept;
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  // `event` is a stable dotted name ("vm.started", "vcpu.fault"); `fields` a JSON object of
  // details. Text lines read "cloister-vmm: LEVEL EVENT: MESSAGE key=value ...".
  void log(LogLevel level, std::string_view event, std::string_view message,
           const nlohmann::json& fields = nlohmann::json::object());
  void debug(std::string_view e, std::string_view m,
             const nlohmann::json& f = nlohmann::json::object()) {
    log(LogLevel::kDebug, e, m, f);
  }
  void info(std::string_view e, std::string_view m,
            const nlohmann::json& f = nlohmann::json::object()) {
    log(LogLevel::kInfo, e, m, f);
  }
  void warn(std::string_view e, std::string_view m,
            const nlohmann::json& f = nlohmann::json::object()) {
    log(LogLevel::kWarn, e, m, f);
  }
  void error(std::string_view e, std::string_view m,
             const nlohmann::json& f = nlohmann::json::object()) {
    log(LogLevel::kError, e, m, f);
  }
  bool enabled(LogLevel level) const { return level >= level_; }
  int fd() const { return fd_.valid() ? fd_.get() : 2; }

 private:
  Logger(Fd fd, LogFormat format, LogLevel level);
  Fd fd_;  // invalid: stderr
  LogFormat format_;
  LogLevel level_;
  std::mutex mutex_;
};

// Lines of one kind that a guest can cause as often as it likes (refused doorbells, requests,
// connections): the first kRepeatLoggedFirst are logged, then one in kRepeatLoggedEvery, each
// with "refused_so_far", so a guest cannot fill the host's log. Safe from any thread.
inline constexpr std::uint64_t kRepeatLoggedFirst = 10;
inline constexpr std::uint64_t kRepeatLoggedEvery = 1000;

class RepeatBudget {
 public:
  // Counts one more occurrence and logs it when the budget admits it.
  void log(Logger& log, LogLevel level, std::string_view event, std::string_view message,
           nlohmann::json fields = nlohmann::json::object());

 private:
  std::atomic<std::uint64_t> seen_{0};
};

}  // namespace cloister::vmm
