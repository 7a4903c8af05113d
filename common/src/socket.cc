#include "cloister/common/socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace cloister {

Result<Fd> listen_unix(const std::string& path, int backlog) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    return Error("socket " + path + ": path is " + std::to_string(path.size()) +
                 " bytes; expected 1 to " + std::to_string(sizeof addr.sun_path - 1));
  std::memcpy(addr.sun_path, path.data(), path.size());
  Fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener.valid()) return os_error("socket " + path);
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Error("socket " + path + ": exists and is not a socket");
    Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe.valid() &&
        ::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
      return Error("socket " + path + ": another process is serving it");
    ::unlink(path.c_str());
  }
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    return os_error("bind socket " + path);
  if (::listen(listener.get(), backlog) < 0) return os_error("listen on socket " + path);
  return listener;
}

}  // namespace cloister
