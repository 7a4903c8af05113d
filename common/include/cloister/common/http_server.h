// The HTTP/1.1 server behind the project's APIs (the VMM's control API over a UNIX socket; the
// attestation service over TCP with TLS). One thread runs an epoll loop over a listening stream
// socket (UNIX or TCP, socket.h) and every connection accepted from it.
//
// Nothing a client does can hold the thread or another client:
// - sockets are non-blocking, and each phase of a connection has a deadline that arriving or
//   departing bytes do not extend: completing the TLS handshake from the accept (request_timeout,
//   then the connection is closed), waiting for a request's first byte (idle_timeout), receiving
//   the whole request from its first byte (request_timeout, then 408), writing the whole response
//   (response_timeout, then the connection is closed);
// - a connection is read only while no response is pending on it (nor a handler running for it),
//   so a client that pipelines requests without reading the answers stalls only itself, and
//   buffers stay bounded by the request limits;
// - requests over the size limits are refused as soon as that is known (431, 413);
// - at max_connections, a new connection closes the connection idle the longest (in its TLS
//   handshake, waiting for a next request, or lingering after its last answer); when none is
//   idle, the one whose request has been arriving (or answer waiting to be taken) the longest, so
//   slow or non-reading clients cannot hold every slot; only when every connection waits for its
//   handler is the new one answered 503 and closed (over TLS: closed, since a refusal is not
//   worth a handshake);
// - stop() writes what pending responses can take without blocking, closes everything and
//   returns: it never waits for a client (it does wait for handlers running on workers; see
//   ServerOptions::workers).
// After a response with "Connection: close" (requested, HTTP/1.0, or a refusal) the server
// half-closes (over TLS: sends close_notify first) and discards what the client still sends for
// up to one second before closing, so the client reads the answer rather than a reset (RFC 9112
// section 9.6).
//
// TLS (ServerOptions::tls) is TLS 1.3 only. The handshake and every record are driven inside the
// same epoll loop, under the same deadlines, limits, pipelining and eviction rules as plain
// connections. The server never raises SIGPIPE: plain sockets are written with MSG_NOSIGNAL and
// TLS connections through a socket BIO that does the same, so the process need not ignore it.
#pragma once

#include <openssl/types.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "cloister/common/fd.h"
#include "cloister/common/http.h"
#include "cloister/common/result.h"

namespace cloister::http {

// Answers one request. With ServerOptions::workers == 0 handlers run on the server thread, one
// request at a time, so they must not wait on clients or slow I/O (the VMM's answer from memory).
// With workers > 0 they run on the worker threads, up to `workers` at once (never two for one
// connection), so they must be safe to call concurrently. An exception from a handler becomes a
// 500 answer whose reason is kHandlerFailedReason, and a kHandlerFailed event naming the request
// and the exception's text (which the client never sees).
using Handler = std::function<Response(const Request&)>;
inline constexpr const char* kHandlerFailedReason =
    "internal error: the request's handler failed (the server's log has the cause)";

// A decision the server made itself, for the owner's logs and metrics.
struct ServerEvent {
  enum class Kind {
    kRejected,       // a request or connection refused without the handler: `status` is 400,
                     // 408, 413, 431 or 503 (over TLS a 503 refusal is a close, not an answer)
    kHandlerFailed,  // the handler threw; the client got 500
    kEvicted,        // a connection closed to admit a new one at max_connections
    kTimedOut,       // a connection closed at its handshake, idle or response deadline
    kTlsFailed,      // a TLS handshake failed (say a client without TLS 1.3, or not TLS at all)
    kAcceptFailed,   // accept() failed (for example no descriptors left); accepting pauses 100 ms
    kFailed,         // epoll_wait() failed; the server stopped serving until stop()
  };
  Kind kind;
  int status = 0;  // the answer sent, when there was one
  std::string message;
};

// TLS for every connection: a server context, or the files to build one from.
struct TlsOptions {
  // Used as it is, except that each connection is held to TLS 1.3 whatever the context allows;
  // make_server_tls_context() (tls.h) builds one. When null, start() builds it from the files.
  std::shared_ptr<SSL_CTX> context;
  std::filesystem::path certificate_chain_pem;  // the server's certificate, then intermediates
  std::filesystem::path private_key_pem;        // unencrypted
};

struct ServerOptions {
  std::string name = "cloister";  // the Server header of every response
  Limits limits;
  std::chrono::milliseconds idle_timeout{30'000};
  std::chrono::milliseconds request_timeout{10'000};
  std::chrono::milliseconds response_timeout{10'000};
  std::size_t max_connections = 64;
  // The body of the server's own refusals (400, 408, 413, 431, 500, 503); plain text by default,
  // and when this throws. Reasons are valid UTF-8: client bytes in them are quoted as \xNN.
  std::function<Response(int status, const std::string& reason)> error_response;
  // Runs first on the server thread, before any client byte is read (the VMM installs the API
  // thread's seccomp filter here); when it fails, start() returns its error.
  std::function<Status()> thread_init;
  // Receives every ServerEvent, on the server thread.
  std::function<void(const ServerEvent&)> on_event;
  // When set, every connection is TLS 1.3 (see the top of this file); start() fails when the
  // certificate or key cannot be loaded.
  std::optional<TlsOptions> tls;
  // 0: handlers run on the server thread (the VMM's choice). N > 0: N worker threads run the
  // handlers; the server thread hands each parsed request to the pool and goes on serving, and
  // the connection is not read until its answer comes back. The pool's queue holds at most one
  // request per connection, so max_connections bounds it. thread_init runs on the server thread
  // only. stop() drops the requests no worker has started (their connections close unanswered),
  // waits for the handlers running then to return — as long as the slowest of them, which the
  // server cannot interrupt, so handlers must bound their own work (database and network
  // timeouts) — writes each of those answers with "Connection: close" as far as the socket takes
  // it without blocking, and closes: such a client gets its answer (a response that fits the
  // socket buffer, as any short one does) or a closed connection, never a partial wait.
  std::size_t workers = 0;
};

class Server {
 public:
  // Serves `listener`, a listening SOCK_STREAM socket (made non-blocking here), with `handler`
  // on a new thread (and `workers` more). Fails when the epoll set cannot be created, the TLS
  // files cannot be loaded, or thread_init fails.
  static Result<std::unique_ptr<Server>> start(Fd listener, Handler handler, ServerOptions options);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Stops serving (see the top of this file and ServerOptions::workers) and joins the threads;
  // the listener is closed. Idempotent; call it from any thread but the server's or a worker's.
  void stop();

 private:
  struct Loop;
  explicit Server(std::unique_ptr<Loop> loop);

  std::unique_ptr<Loop> loop_;
  std::thread thread_;
};

}  // namespace cloister::http
