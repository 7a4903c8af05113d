// A loopback HTTP/1.1 server for tests of clients (KDS, PCS): serves canned responses by path
// (query included), one request per connection, and records the paths requested.
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cloister/common/bytes.h"

namespace cloister::testing {

struct CannedResponse {
  int status = 200;
  Bytes body;
  std::string extra_headers;  // e.g. "Retry-After: 0\r\n"
};

class LoopbackHttpServer {
 public:
  LoopbackHttpServer();
  ~LoopbackHttpServer();
  LoopbackHttpServer(const LoopbackHttpServer&) = delete;
  LoopbackHttpServer& operator=(const LoopbackHttpServer&) = delete;

  // "http://127.0.0.1:PORT"
  std::string base_url() const;
  // Responses for a path are served in order; the last one repeats. Unknown paths get 404.
  void on(const std::string& path_and_query, std::vector<CannedResponse> responses);
  std::vector<std::string> requests() const;

 private:
  void serve();

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::map<std::string, std::deque<CannedResponse>> routes_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

}  // namespace cloister::testing
