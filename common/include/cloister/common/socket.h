// Listening sockets for the project's servers (http_server.h serves any of them).
#pragma once

#include <string>

#include "cloister/common/fd.h"
#include "cloister/common/result.h"

namespace cloister {

// Connections the kernel queues before the server accepts them. The server accepts in a loop, so
// the queue only absorbs bursts; Linux caps it at net.core.somaxconn.
inline constexpr int kListenBacklog = 128;

// A UNIX stream socket bound at `path` and listening with `backlog`, close-on-exec. A stale
// socket file at `path` (nothing accepts on it) is replaced; a live socket, any other kind of
// file, or a path longer than sockaddr_un holds is an error naming the path.
Result<Fd> listen_unix(const std::string& path, int backlog = kListenBacklog);

}  // namespace cloister
