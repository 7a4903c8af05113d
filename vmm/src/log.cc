#include "cloister/vmm/log.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "cloister/common/json.h"
#include "cloister/common/time.h"

namespace cloister::vmm {
namespace {

std::string timestamp() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  std::string base = format_rfc3339(now.tv_sec);  // "…T12:00:00Z"
  char millis[24];
  std::snprintf(millis, sizeof millis, ".%03ldZ", now.tv_nsec / 1000000);
  base.pop_back();
  return base + millis;
}

void write_all(int fd, const std::string& line) {
  std::size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // a full FIFO, a failing sink: nowhere left to report it
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

std::string_view log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "unknown";
}

Logger::Logger(LogFormat format, LogLevel level) : format_(format), level_(level) {}
Logger::Logger(Fd fd, LogFormat format, LogLevel level)
    : fd_(std::move(fd)), format_(format), level_(level) {}
Logger::Logger(Logger&& other) noexcept
    : fd_(std::move(other.fd_)), format_(other.format_), level_(other.level_) {}

Result<Logger> Logger::to_file(const std::string& path, LogFormat format, LogLevel level) {
  // O_NONBLOCK: a FIFO with no reader is an error here (ENXIO), not a wait; and a line its
  // reader is not ready for is dropped rather than stalling the thread that logs it.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK, 0640);
  if (fd < 0 && errno == ENXIO)
    return Error("log file " + path +
                 ": a FIFO that no process is reading; start its reader first");
  if (fd < 0) return os_error("log file " + path);
  return Logger(Fd(fd), format, level);
}

void Logger::log(LogLevel level, std::string_view event, std::string_view message,
                 const nlohmann::json& fields) {
  if (!enabled(level)) return;
  std::string line;
  if (format_ == LogFormat::kJson) {
    nlohmann::json j = {
        {"ts", timestamp()}, {"level", log_level_name(level)}, {"event", event}, {"msg", message}};
    if (fields.is_object())
      for (const auto& [key, value] : fields.items()) j[key] = value;
    line = dump_json(j) + "\n";
  } else {
    line = "cloister-vmm: " + std::string(log_level_name(level)) + " " + std::string(event) + ": " +
           std::string(message);
    if (fields.is_object())
      for (const auto& [key, value] : fields.items())
        line += " " + key + "=" + (value.is_string() ? value.get<std::string>() : dump_json(value));
    line += "\n";
  }
  std::lock_guard lock(mutex_);
  write_all(fd(), line);
}

void RepeatBudget::log(Logger& log, LogLevel level, std::string_view event,
                       std::string_view message, nlohmann::json fields) {
  const std::uint64_t n = seen_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n > kRepeatLoggedFirst && n % kRepeatLoggedEvery != 0) return;
  fields["refused_so_far"] = n;
  log.log(level, event, message, fields);
}

}  // namespace cloister::vmm
