// The control API (HTTP/1.1 + JSON on a UNIX socket; OpenAPI in docs/vmm-api.yaml):
//   GET /api/v1/vmm.ping          version
//   GET /api/v1/vm.info           state, config, measurement (null for tee=none), stop reason
//   GET /api/v1/vm.measurement    the launch measurement and what it covers
//   PUT /api/v1/vm.pause | vm.resume | vm.shutdown
//   GET /api/v1/metrics           counters as JSON, or ?format=prometheus
// route() is pure request -> response over an ApiController, so it is unit-tested without a
// VM; ApiServer is the socket loop around it.
#pragma once

#include <atomic>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "cloister/common/result.h"
#include "cloister/vmm/api/http.h"
#include "cloister/vmm/fd.h"
#include "cloister/vmm/log.h"
#include "cloister/vmm/metrics.h"

namespace cloister::vmm {

class Vmm;

class ApiController {
 public:
  virtual ~ApiController() = default;
  virtual nlohmann::json info() = 0;
  virtual Status pause() = 0;
  virtual Status resume() = 0;
  virtual void shutdown() = 0;  // asynchronous: the VM stops soon after
  virtual Metrics& metrics() = 0;
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string extra_headers;
};

ApiResponse route(const http::Request& request, ApiController& controller);

// Serves the API on a UNIX socket from its own thread, which has installed the API seccomp
// filter (when `seccomp` is set) by the time start() returns. A stale socket file at `path` is
// replaced; a live one is an error.
class ApiServer {
 public:
  static Result<std::unique_ptr<ApiServer>> start(const std::string& path,
                                                  ApiController& controller, Logger& log,
                                                  bool seccomp);
  ~ApiServer();  // stops the thread and removes the socket file
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

 private:
  ApiServer(std::string path, Fd listener, Fd wake, ApiController& controller, Logger& log);
  void serve();
  void serve_connection(int fd);

  std::string path_;
  Fd listener_;
  Fd wake_;
  ApiController& controller_;
  Logger& log_;
  std::thread thread_;
};

// The ApiController of a running Vmm.
class VmmApiController final : public ApiController {
 public:
  explicit VmmApiController(Vmm& vmm) : vmm_(vmm) {}
  nlohmann::json info() override;
  Status pause() override;
  Status resume() override;
  void shutdown() override;
  Metrics& metrics() override;

 private:
  Vmm& vmm_;
};

}  // namespace cloister::vmm
