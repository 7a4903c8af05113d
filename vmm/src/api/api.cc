#include "cloister/vmm/api/api.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "cloister/vmm/seccomp/seccomp.h"
#include "cloister/vmm/vmm.h"

namespace cloister::vmm {
namespace {

constexpr const char* kVersion = "0.1.0";
constexpr int kIdleTimeoutMs = 5000;

ApiResponse json_response(int status, const nlohmann::json& body) {
  return {status, "application/json", body.dump() + "\n", ""};
}

ApiResponse error_response(int status, const std::string& message) {
  return json_response(status, {{"error", message}});
}

ApiResponse no_content() {
  return {204, "application/json", "", ""};
}

sockaddr_un socket_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  return addr;
}

bool send_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

ApiResponse route(const http::Request& req, ApiController& controller) {
  controller.metrics().api_requests.fetch_add(1, std::memory_order_relaxed);
  struct Route {
    const char* path;
    const char* method;
  };
  static constexpr Route routes[] = {
      {"/api/v1/vmm.ping", "GET"},       {"/api/v1/vm.info", "GET"},
      {"/api/v1/vm.measurement", "GET"}, {"/api/v1/metrics", "GET"},
      {"/api/v1/vm.pause", "PUT"},       {"/api/v1/vm.resume", "PUT"},
      {"/api/v1/vm.shutdown", "PUT"},
  };
  const Route* found = nullptr;
  for (const auto& r : routes)
    if (req.path == r.path) found = &r;
  ApiResponse response;
  if (!found) {
    response = error_response(404, "no such endpoint: " + req.path);
  } else if (req.method != found->method) {
    response = error_response(
        405, req.method + " is not allowed on " + req.path + "; use " + found->method);
    response.extra_headers = std::string("Allow: ") + found->method + "\r\n";
  } else if (req.path == "/api/v1/vmm.ping") {
    response = json_response(200, {{"version", kVersion}});
  } else if (req.path == "/api/v1/vm.info") {
    response = json_response(200, controller.info());
  } else if (req.path == "/api/v1/vm.measurement") {
    auto info = controller.info();
    response = json_response(200, {{"tee", info["tee"]},
                                   {"measurement", info["measurement"]},
                                   {"note", info["measurement_note"]}});
  } else if (req.path == "/api/v1/metrics") {
    if (req.query == "format=prometheus")
      response = {200, "text/plain; version=0.0.4", controller.metrics().to_prometheus(), ""};
    else if (req.query.empty() || req.query == "format=json")
      response = json_response(200, controller.metrics().to_json());
    else
      response = error_response(400, "metrics: unknown query \"" + req.query +
                                         "\" (use format=json or format=prometheus)");
  } else if (req.path == "/api/v1/vm.pause") {
    auto st = controller.pause();
    response = st ? no_content() : error_response(409, st.error().message());
  } else if (req.path == "/api/v1/vm.resume") {
    auto st = controller.resume();
    response = st ? no_content() : error_response(409, st.error().message());
  } else {
    controller.shutdown();
    response = no_content();
  }
  if (response.status >= 400)
    controller.metrics().api_errors.fetch_add(1, std::memory_order_relaxed);
  return response;
}

Result<std::unique_ptr<ApiServer>> ApiServer::start(const std::string& path,
                                                    ApiController& controller, Logger& log,
                                                    bool seccomp) {
  int raw = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (raw < 0) return os_error("API socket");
  Fd listener(raw);
  sockaddr_un addr = socket_address(path);
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Error("API socket " + path + ": exists and is not a socket");
    Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe.valid() &&
        ::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
      return Error("API socket " + path + ": another process is serving it");
    ::unlink(path.c_str());
  }
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    return os_error("bind API socket " + path);
  if (::listen(listener.get(), 8) < 0) return os_error("listen on API socket " + path);
  Fd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return os_error("eventfd for the API server");
  std::unique_ptr<ApiServer> server(
      new ApiServer(path, std::move(listener), std::move(wake), controller, log));
  CLOISTER_TRY(server->thread_, start_sandboxed_thread(ThreadClass::kApi, seccomp, {},
                                                       [s = server.get()] { s->serve(); }));
  log.info("api.listening", "control API ready", {{"socket", path}});
  return server;
}

ApiServer::ApiServer(std::string path, Fd listener, Fd wake, ApiController& controller, Logger& log)
    : path_(std::move(path)),
      listener_(std::move(listener)),
      wake_(std::move(wake)),
      controller_(controller),
      log_(log) {}

ApiServer::~ApiServer() {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  ::unlink(path_.c_str());
}

void ApiServer::serve() {
  for (;;) {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      log_.error("api.poll", std::strerror(errno));
      return;
    }
    if (fds[1].revents) return;
    if (!(fds[0].revents & POLLIN)) continue;
    Fd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) continue;
    serve_connection(conn.get());
  }
}

void ApiServer::serve_connection(int fd) {
  std::string buffer;
  char chunk[4096];
  for (;;) {
    auto parsed = http::parse_request(buffer);
    if (!parsed) {
      controller_.metrics().api_errors.fetch_add(1, std::memory_order_relaxed);
      send_all(fd, http::format_response(
                       400, "application/json",
                       nlohmann::json{{"error", parsed.error().message()}}.dump() + "\n", false));
      return;
    }
    if (*parsed) {
      const auto& req = (*parsed)->request;
      ApiResponse response = route(req, controller_);
      log_.debug("api.request", req.method + " " + req.path, {{"status", response.status}});
      buffer.erase(0, (*parsed)->consumed);
      if (!send_all(fd, http::format_response(response.status, response.content_type, response.body,
                                              req.keep_alive, response.extra_headers)) ||
          !req.keep_alive)
        return;
      continue;
    }
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    int ready = ::poll(fds, 2, kIdleTimeoutMs);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0 || fds[1].revents) return;
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return;
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
}

nlohmann::json VmmApiController::info() {
  return vmm_.info();
}
Status VmmApiController::pause() {
  return vmm_.pause();
}
Status VmmApiController::resume() {
  return vmm_.resume();
}
void VmmApiController::shutdown() {
  vmm_.request_stop({StopKind::kRequested, 0, "shutdown requested through the API"});
}
Metrics& VmmApiController::metrics() {
  return vmm_.metrics();
}

}  // namespace cloister::vmm
