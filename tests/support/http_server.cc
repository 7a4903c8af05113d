#include "support/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace cloister::testing {

LoopbackHttpServer::LoopbackHttpServer() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0) {
    throw std::runtime_error(std::string("loopback server: ") + std::strerror(errno));
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { serve(); });
}

LoopbackHttpServer::~LoopbackHttpServer() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

std::string LoopbackHttpServer::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

void LoopbackHttpServer::on(const std::string& path, std::vector<CannedResponse> responses) {
  std::lock_guard lock(mutex_);
  routes_[path] = std::deque<CannedResponse>(responses.begin(), responses.end());
}

std::vector<std::string> LoopbackHttpServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

void LoopbackHttpServer::serve() {
  while (!stop_) {
    pollfd pfd{listen_fd_, POLLIN, 0};
    if (::poll(&pfd, 1, 50) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      request.append(buf, static_cast<std::size_t>(n));
    }
    std::string path;
    if (auto sp = request.find(' '); sp != std::string::npos)
      path = request.substr(sp + 1, request.find(' ', sp + 1) - sp - 1);
    CannedResponse response{404, {}, {}};
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(path);
      if (auto it = routes_.find(path); it != routes_.end() && !it->second.empty()) {
        response = it->second.front();
        if (it->second.size() > 1) it->second.pop_front();
      }
    }
    std::string head = "HTTP/1.1 " + std::to_string(response.status) +
                       " X\r\nContent-Length: " + std::to_string(response.body.size()) + "\r\n" +
                       response.extra_headers + "Connection: close\r\n\r\n";
    std::string out = head + std::string(response.body.begin(), response.body.end());
    std::size_t done = 0;
    while (done < out.size()) {
      ssize_t n = ::write(fd, out.data() + done, out.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::close(fd);
  }
}

}  // namespace cloister::testing
