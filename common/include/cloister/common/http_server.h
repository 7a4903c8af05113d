// The HTTP/1.1 server behind the project's APIs (the VMM's control API; the attestation service
// builds on it too). One thread runs an epoll loop over a listening stream socket (UNIX today;
// a TCP listener is served the same way) and every connection accepted from it.
//
// Nothing a client does can hold the thread or another client:
// - sockets are non-blocking, and each phase of a connection has a deadline that arriving or
//   departing bytes do not extend: waiting for a request's first byte (idle_timeout), receiving
//   the whole request from its first byte (request_timeout, then 408), writing the whole response
//   (response_timeout, then the connection is closed);
// - a connection is read only while no response is pending on it, so a client that pipelines
//   requests without reading the answers stalls only itself, and buffers stay bounded by the
//   request limits;
// - requests over the size limits are refused as soon as that is known (431, 413);
// - at max_connections, a new connection closes the connection idle the longest (waiting for a
//   next request, or lingering after its last answer); when none is idle, the new one is
//   answered 503 and closed;
// - stop() writes what pending responses can take without blocking, closes everything and
//   returns: it never waits for a client.
// After a response with "Connection: close" (requested, HTTP/1.0, or a refusal) the server
// half-closes and discards what the client still sends for up to one second before closing, so
// the client reads the answer rather than a reset (RFC 9112 section 9.6).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "cloister/common/fd.h"
#include "cloister/common/http.h"
#include "cloister/common/result.h"

namespace cloister::http {

// Answers one request. Handlers run on the server thread, one request at a time, so they must
// not wait on clients or slow I/O (the VMM's answer from memory). An exception from a handler
// becomes a 500 answer and a kHandlerFailed event.
using Handler = std::function<Response(const Request&)>;

// A decision the server made itself, for the owner's logs and metrics.
struct ServerEvent {
  enum class Kind {
    kRejected,       // a request or connection refused without the handler: `status` is 400,
                     // 408, 413, 431 or 503
    kHandlerFailed,  // the handler threw; the client got 500
    kEvicted,        // an idle connection closed to admit a new one at max_connections
    kTimedOut,       // a connection closed at its idle or response deadline
    kAcceptFailed,   // accept() failed (for example no descriptors left); accepting pauses 100 ms
    kFailed,         // epoll_wait() failed; the server stopped serving until stop()
  };
  Kind kind;
  int status = 0;  // the answer sent, when there was one
  std::string message;
};

struct ServerOptions {
  std::string name = "cloister";  // the Server header of every response
  Limits limits;
  std::chrono::milliseconds idle_timeout{30'000};
  std::chrono::milliseconds request_timeout{10'000};
  std::chrono::milliseconds response_timeout{10'000};
  std::size_t max_connections = 64;
  // The body of the server's own refusals (400, 408, 413, 431, 500, 503); plain text by default.
  std::function<Response(int status, const std::string& reason)> error_response;
  // Runs first on the server thread, before any client byte is read (the VMM installs the API
  // thread's seccomp filter here); when it fails, start() returns its error.
  std::function<Status()> thread_init;
  // Receives every ServerEvent, on the server thread.
  std::function<void(const ServerEvent&)> on_event;
};

class Server {
 public:
  // Serves `listener`, a listening SOCK_STREAM socket (made non-blocking here), with `handler`
  // on a new thread. Fails when the epoll set cannot be created or thread_init fails.
  static Result<std::unique_ptr<Server>> start(Fd listener, Handler handler, ServerOptions options);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Stops serving (see the top of this file) and joins the thread; the listener is closed.
  // Idempotent; call it from any thread but the server's own.
  void stop();

 private:
  struct Loop;
  explicit Server(std::unique_ptr<Loop> loop);

  std::unique_ptr<Loop> loop_;
  std::thread thread_;
};

}  // namespace cloister::http
