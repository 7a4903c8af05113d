#include "cloister/vmm/devices/vsock.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string_view>

#include "cloister/vmm/seccomp/seccomp.h"

namespace cloister::vmm {

namespace vsock {

Header parse_header(ByteView b) {
  Header h;
  h.src_cid = load_le64(b, 0);
  h.dst_cid = load_le64(b, 8);
  h.src_port = load_le32(b, 16);
  h.dst_port = load_le32(b, 20);
  h.len = load_le32(b, 24);
  h.type = load_le16(b, 28);
  h.op = load_le16(b, 30);
  h.flags = load_le32(b, 32);
  h.buf_alloc = load_le32(b, 36);
  h.fwd_cnt = load_le32(b, 40);
  return h;
}

void write_header(const Header& h, std::span<std::uint8_t> out) {
  store_le64(out, 0, h.src_cid);
  store_le64(out, 8, h.dst_cid);
  store_le32(out, 16, h.src_port);
  store_le32(out, 20, h.dst_port);
  store_le32(out, 24, h.len);
  store_le16(out, 28, h.type);
  store_le16(out, 30, h.op);
  store_le32(out, 32, h.flags);
  store_le32(out, 36, h.buf_alloc);
  store_le32(out, 40, h.fwd_cnt);
}

}  // namespace vsock

namespace {

using namespace vsock;
constexpr std::size_t kMaxControlBacklog = 256;
constexpr std::size_t kMaxHandshakeLine = 32;  // "CONNECT 4294967295" is 18 bytes

// "CONNECT <port>" (the line without its newline): the port, or nullopt.
std::optional<std::uint32_t> parse_connect(std::string_view line) {
  constexpr std::string_view kPrefix = "CONNECT ";
  if (!line.starts_with(kPrefix) || line.size() == kPrefix.size()) return std::nullopt;
  std::uint64_t port = 0;
  for (char ch : line.substr(kPrefix.size())) {
    if (ch < '0' || ch > '9') return std::nullopt;
    port = port * 10 + static_cast<std::uint64_t>(ch - '0');
    if (port > 0xffffffffu) return std::nullopt;
  }
  return static_cast<std::uint32_t>(port);
}

}  // namespace

Result<std::unique_ptr<VirtioVsock>> VirtioVsock::create(const VsockConfig& config, Logger& log,
                                                         Metrics& metrics) {
  const std::string& uds_path = config.uds_path;
  if (config.guest_cid < 3 || config.guest_cid > 0xffffffffu)
    return Error("vsock guest_cid: expected 3..4294967295, found " +
                 std::to_string(config.guest_cid));
  Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) return os_error("epoll_create1 for virtio-vsock");
  Fd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return os_error("eventfd for virtio-vsock");
  epoll_event ev{};
  ev.events = EPOLLIN;
  if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, wake.get(), &ev) < 0) return os_error("epoll_ctl");
  Fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listener.valid()) return os_error("vsock socket " + uds_path);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, uds_path.c_str(), sizeof addr.sun_path - 1);
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    return os_error("bind vsock socket " + uds_path + " (remove a stale file?)");
  if (::listen(listener.get(), 16) < 0) return os_error("listen on vsock socket " + uds_path);
  if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, listener.get(), &ev) < 0)
    return os_error("epoll_ctl");
  return std::unique_ptr<VirtioVsock>(new VirtioVsock(config, std::move(epoll), std::move(wake),
                                                      std::move(listener), log, metrics));
}

VirtioVsock::VirtioVsock(const VsockConfig& config, Fd epoll, Fd wake, Fd listener, Logger& log,
                         Metrics& metrics)
    : guest_cid_(config.guest_cid),
      uds_path_(config.uds_path),
      handshake_timeout_(config.handshake_timeout_ms),
      host_send_timeout_(config.host_send_timeout_ms),
      epoll_(std::move(epoll)),
      wake_(std::move(wake)),
      listener_(std::move(listener)),
      log_(log),
      metrics_(metrics) {}

VirtioVsock::~VirtioVsock() {
  stop();
  if (listener_.valid()) ::unlink(uds_path_.c_str());
}

void VirtioVsock::read_config(std::uint64_t offset, std::span<std::uint8_t> data) const {
  std::uint8_t config[8];  // struct virtio_vsock_config { le64 guest_cid; }
  store_le64(config, 0, guest_cid_);
  for (std::size_t i = 0; i < data.size(); ++i)
    data[i] = offset + i < sizeof config ? config[offset + i] : 0;
}

Status VirtioVsock::start(VirtqueueLink& link, const DeviceSandbox& sandbox) {
  link_ = &link;
  SeccompScope scope;
  scope.ioctls = sandbox.irq_ioctls;
  scope.socket_families = {AF_UNIX};
  CLOISTER_TRY(thread_, start_sandboxed_thread(ThreadClass::kVsock, sandbox.seccomp,
                                               std::move(scope), [this] {
                                                 run();
                                                 parking_.release();
                                               }));
  return {};
}

void VirtioVsock::park() {
  parking_.park([this] { kick(); });
}

VirtioDeviceSpecificState VirtioVsock::save() {
  return VsockDeviceState{guest_cid_};
}

void VirtioVsock::kick() {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_.get(), &one, sizeof one);
}

void VirtioVsock::stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true);
  parking_.release();
  kick();
  thread_.join();
}

void VirtioVsock::run() {
  epoll_event events[16];
  Clock::time_point next = Clock::time_point::max();
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), events, 16, epoll_timeout_until(next));
    if (n < 0 && errno != EINTR) {
      log_.error("vsock.epoll", os_error("epoll_wait").message());
      return;
    }
    std::uint64_t drained;
    while (::read(wake_.get(), &drained, sizeof drained) > 0) {
    }
    parking_.checkpoint();
    if (stopping_.load()) return;
    next = round();
  }
}

VirtioVsock::Clock::time_point VirtioVsock::round() {
  const std::uint64_t generation = link_->generation();
  if (generation != generation_) {  // the driver reset the device: nothing is left to reset
    drop_all();
    transport_reset_pending_ = false;
    generation_ = generation;
  }
  deliver_transport_reset(generation);
  const Clock::time_point now = Clock::now();
  accept_host_connections();
  advance_handshakes(now);
  handle_tx(generation);
  flush_to_host(now);
  expire_connects(now);
  deliver_rx(generation);

  Clock::time_point next = Clock::time_point::max();
  for (const HostHandshake& hs : handshakes_) next = std::min(next, hs.deadline);
  for (const auto& [key, c] : connections_) {
    if (c.connecting) next = std::min(next, c.connect_deadline);
    if (!c.to_host.empty()) next = std::min(next, c.to_host.front().deadline);
  }
  return next;
}

void VirtioVsock::deliver_transport_reset(std::uint64_t generation) {
  if (!transport_reset_pending_) return;
  auto chain = link_->pop(generation, kEventQueue);
  if (!chain) return;     // the driver has no event buffer yet: its next notification brings one
  std::uint8_t event[4];  // struct virtio_vsock_event { le32 id; }
  store_le32(event, 0, kEventTransportReset);
  if (auto st = chain->scatter(link_->memory(), event, "virtio-vsock event buffer"); !st)
    return link_->fail(generation, st.error().message());
  link_->push(generation, kEventQueue, chain->head, sizeof event);
  transport_reset_pending_ = false;
  log_.info("vsock.transport_reset", "restored: the guest was sent a transport reset",
            {{"guest_cid", guest_cid_}});
}

void VirtioVsock::drop_all() {
  connections_.clear();
  control_.clear();
  handshakes_.clear();
}

void VirtioVsock::watch(int fd) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev);
}

std::size_t VirtioVsock::pending_host_connections() const {
  return handshakes_.size() + static_cast<std::size_t>(std::count_if(
                                  connections_.begin(), connections_.end(),
                                  [](const auto& kv) { return kv.second.connecting; }));
}

// Host connections over either cap are accepted and closed at once: the peer reads EOF and may
// retry, and no number of idle peers keeps a later one from getting in once theirs time out.
void VirtioVsock::accept_host_connections() {
  for (;;) {
    Fd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!conn.valid()) return;
    if (pending_host_connections() >= kMaxPendingHostConnections ||
        handshakes_.size() + connections_.size() >= kMaxConnections) {
      metrics_.vsock_refused.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    watch(conn.get());
    handshakes_.push_back({std::move(conn), Clock::now() + handshake_timeout_});
  }
}

// Reads "CONNECT <port>\n" from host connections, leaving whatever follows the line in the
// socket; a complete line becomes a connection in the connecting state and a REQUEST to the
// guest. Malformed lines, closed sockets and lines not complete by the deadline close the
// socket.
void VirtioVsock::advance_handshakes(Clock::time_point now) {
  for (std::size_t i = 0; i < handshakes_.size();) {
    HostHandshake& hs = handshakes_[i];
    char buf[kMaxHandshakeLine + 1];
    const ssize_t n = ::recv(hs.socket.get(), buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
    const bool closed = n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
    const std::string_view seen(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    const std::size_t nl = seen.find('\n');
    if (!closed && nl == std::string_view::npos && seen.size() <= kMaxHandshakeLine) {
      if (now < hs.deadline) {
        ++i;  // wait for the rest of the line
        continue;
      }
      metrics_.vsock_handshake_timeouts.fetch_add(1, std::memory_order_relaxed);
      log_.info("vsock.handshake_timeout", "host connection closed: no CONNECT line in time",
                {{"timeout_ms", handshake_timeout_.count()}, {"bytes_received", seen.size()}});
      handshakes_.erase(handshakes_.begin() + static_cast<std::ptrdiff_t>(i));
      continue;
    }
    std::optional<std::uint32_t> port;
    if (!closed && nl != std::string_view::npos) port = parse_connect(seen.substr(0, nl));
    if (port &&
        ::recv(hs.socket.get(), buf, nl + 1, MSG_DONTWAIT) == static_cast<ssize_t>(nl + 1)) {
      while (connections_.count({*port, next_host_port_})) ++next_host_port_;
      const std::uint32_t host_port = next_host_port_++;
      Connection conn;
      conn.socket = std::move(hs.socket);
      conn.guest_port = *port;
      conn.host_port = host_port;
      conn.connecting = true;
      conn.connect_deadline = hs.deadline;  // the guest must answer within the same deadline
      auto [pos, inserted] = connections_.emplace(Key{*port, host_port}, std::move(conn));
      queue_control(&pos->second, *port, host_port, kOpRequest);
    }
    handshakes_.erase(handshakes_.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

// Host-initiated connections the guest did not answer by the handshake deadline: RST, so that a
// late answer finds no connection, and the host socket closed.
void VirtioVsock::expire_connects(Clock::time_point now) {
  for (auto it = connections_.begin(); it != connections_.end();) {
    const Key key = it->first;
    const bool expired = it->second.connecting && it->second.connect_deadline <= now;
    ++it;
    if (!expired) continue;
    metrics_.vsock_handshake_timeouts.fetch_add(1, std::memory_order_relaxed);
    log_.info("vsock.handshake_timeout", "host connection closed: the guest did not accept in time",
              {{"port", key.first}, {"timeout_ms", handshake_timeout_.count()}});
    reset_connection(key);
  }
}

void VirtioVsock::handle_tx(std::uint64_t generation) {
  const GuestMemory& memory = link_->memory();
  while (auto chain = link_->pop(generation, 1)) {
    Bytes packet;
    for (const auto& b : chain->buffers) {
      if (b.device_writable) continue;
      if (packet.size() + b.len > kHeaderSize + kMaxPayload)
        return link_->fail(generation, "virtio-vsock tx packet " + std::to_string(chain->head) +
                                           ": longer than " +
                                           std::to_string(kHeaderSize + kMaxPayload) + " bytes");
      const std::size_t at = packet.size();
      packet.resize(at + b.len);
      if (auto st = memory.read(b.addr, std::span(packet).subspan(at), "virtio-vsock tx buffer");
          !st)
        return link_->fail(generation, st.error().message());
    }
    link_->push(generation, 1, chain->head, 0);
    if (packet.size() < kHeaderSize)
      return link_->fail(generation, "virtio-vsock tx packet " + std::to_string(chain->head) +
                                         ": " + std::to_string(packet.size()) +
                                         " bytes, shorter than the 44-byte header");
    const Header h = parse_header(packet);
    ByteView payload = ByteView(packet).subspan(kHeaderSize);
    if (h.len != payload.size())
      return link_->fail(generation, "virtio-vsock tx packet: header len " + std::to_string(h.len) +
                                         ", found " + std::to_string(payload.size()) +
                                         " payload bytes");
    handle_packet(h, payload);
  }
}

void VirtioVsock::queue_control(const Connection* c, std::uint32_t guest_port,
                                std::uint32_t host_port, std::uint16_t op, std::uint32_t flags) {
  if (control_.size() >= kMaxControlBacklog) return;  // a guest not reading its rx queue
  Header h;
  h.src_cid = kHostCid;
  h.dst_cid = guest_cid_;
  h.src_port = host_port;
  h.dst_port = guest_port;
  h.type = kTypeStream;
  h.op = op;
  h.flags = flags;
  h.buf_alloc = kBufAlloc;
  h.fwd_cnt = c ? c->fwd_cnt : 0;
  control_.push_back(h);
}

void VirtioVsock::reset_connection(Key key) {
  auto it = connections_.find(key);
  if (it == connections_.end()) return;
  queue_control(nullptr, it->second.guest_port, it->second.host_port, kOpRst);
  close_connection(key);
}

void VirtioVsock::close_connection(Key key) {
  auto it = connections_.find(key);
  if (it == connections_.end()) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.socket.get(), nullptr);
  connections_.erase(it);
}

void VirtioVsock::handle_packet(const Header& h, ByteView payload) {
  metrics_.vsock_packets_tx.fetch_add(1, std::memory_order_relaxed);
  const Key key{h.src_port, h.dst_port};
  if (h.type != kTypeStream || h.src_cid != guest_cid_ || h.dst_cid != kHostCid) {
    if (h.op != kOpRst) queue_control(nullptr, h.src_port, h.dst_port, kOpRst);
    return;
  }
  auto it = connections_.find(key);
  Connection* c = it == connections_.end() ? nullptr : &it->second;
  if (c) {
    c->peer_buf_alloc = h.buf_alloc;
    c->peer_fwd_cnt = h.fwd_cnt;
  }
  switch (h.op) {
    case kOpRequest: {
      // Connections and host handshakes share the cap: a handshake becomes a connection.
      if (c || connections_.size() + handshakes_.size() >= kMaxConnections) {
        queue_control(nullptr, h.src_port, h.dst_port, kOpRst);
        return;
      }
      const std::string path = uds_path_ + "_" + std::to_string(h.dst_port);
      Fd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
      if (!sock.valid() || path.size() >= sizeof addr.sun_path ||
          ::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
        guest_refusals_.log(log_, LogLevel::kInfo, "vsock.refused",
                            "guest connection refused: nothing listens on the host socket",
                            {{"port", h.dst_port}, {"socket", path}});
        queue_control(nullptr, h.src_port, h.dst_port, kOpRst);
        return;
      }
      watch(sock.get());
      Connection conn;
      conn.socket = std::move(sock);
      conn.guest_port = h.src_port;
      conn.host_port = h.dst_port;
      conn.peer_buf_alloc = h.buf_alloc;
      conn.peer_fwd_cnt = h.fwd_cnt;
      auto [pos, inserted] = connections_.emplace(key, std::move(conn));
      metrics_.vsock_connections.fetch_add(1, std::memory_order_relaxed);
      queue_control(&pos->second, h.src_port, h.dst_port, kOpResponse);
      return;
    }
    case kOpRw:
      if (!c) return queue_control(nullptr, h.src_port, h.dst_port, kOpRst);
      // Data before the connection is up, after the guest shut its sending side, or past the
      // credit it was given (§5.10.6.3) breaks the stream.
      if (c->connecting || c->guest_shut_send || c->guest_closed ||
          c->to_host_bytes + payload.size() > kBufAlloc)
        return reset_connection(key);
      if (!payload.empty()) {
        // Packets that arrive together share one buffer (and one send()): a guest sending a byte
        // per packet must not make each byte cost a heap block and a queue slot. Merged bytes
        // keep the buffer's deadline, at most kCoalesceWindow earlier than their own.
        const auto deadline = Clock::now() + host_send_timeout_;
        if (!c->to_host.empty() && c->to_host.back().data.size() < kCoalesceBytes &&
            deadline - c->to_host.back().deadline <= kCoalesceWindow) {
          Bytes& data = c->to_host.back().data;
          data.insert(data.end(), payload.begin(), payload.end());
        } else {
          c->to_host.push_back({Bytes(payload.begin(), payload.end()), 0, deadline});
        }
        c->to_host_bytes += payload.size();
      }
      return;  // flush_to_host() writes it
    case kOpShutdown:
      if (!c) return;
      // Both directions: the guest expects RST once the host side is done, which
      // flush_to_host() sends when the bytes on their way to the host are written.
      if ((h.flags & (kShutdownRcv | kShutdownSend)) == (kShutdownRcv | kShutdownSend))
        c->guest_closed = true;
      if (h.flags & kShutdownSend) c->guest_shut_send = true;
      return;
    case kOpResponse: {
      if (!c || !c->connecting) return queue_control(nullptr, h.src_port, h.dst_port, kOpRst);
      c->connecting = false;
      metrics_.vsock_connections.fetch_add(1, std::memory_order_relaxed);
      // Nothing was written to this socket yet: the line fits its buffer, or the peer is gone.
      const std::string ok = "OK " + std::to_string(c->host_port) + "\n";
      if (::send(c->socket.get(), ok.data(), ok.size(), MSG_NOSIGNAL | MSG_DONTWAIT) !=
          static_cast<ssize_t>(ok.size()))
        reset_connection(key);
      return;
    }
    case kOpRst:
      return close_connection(key);
    case kOpCreditUpdate:
      return;
    case kOpCreditRequest:
      if (c) {
        c->last_fwd_cnt_sent = c->fwd_cnt;
        queue_control(c, h.src_port, h.dst_port, kOpCreditUpdate);
      }
      return;
    default:
      queue_control(nullptr, h.src_port, h.dst_port, kOpRst);
      if (c) close_connection(key);
      return;
  }
}

// Writes what each connection holds for its host peer, as far as the host socket takes it
// without blocking, then applies the deadline: bytes that arrived more than host_send_timeout
// ago and are still not written reset the connection.
void VirtioVsock::flush_to_host(Clock::time_point now) {
  for (auto it = connections_.begin(); it != connections_.end();) {
    const Key key = it->first;
    Connection& c = it->second;
    ++it;
    bool host_gone = false;
    while (!c.to_host.empty()) {
      ToHost& chunk = c.to_host.front();
      const ssize_t n = ::send(c.socket.get(), chunk.data.data() + chunk.sent,
                               chunk.data.size() - chunk.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        const auto sent = static_cast<std::size_t>(n);
        chunk.sent += sent;
        c.to_host_bytes -= sent;
        c.fwd_cnt += static_cast<std::uint32_t>(sent);
        metrics_.vsock_bytes_to_host.fetch_add(sent, std::memory_order_relaxed);
        if (chunk.sent == chunk.data.size()) c.to_host.pop_front();
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      host_gone = !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
      break;
    }
    if (host_gone) {
      reset_connection(key);
      continue;
    }
    if (!c.to_host.empty() && c.to_host.front().deadline <= now) {
      metrics_.vsock_host_timeouts.fetch_add(1, std::memory_order_relaxed);
      log_.warn("vsock.host_stalled", "connection reset: the host peer did not read in time",
                {{"guest_port", c.guest_port},
                 {"host_port", c.host_port},
                 {"unwritten_bytes", c.to_host_bytes},
                 {"timeout_ms", host_send_timeout_.count()}});
      reset_connection(key);
      continue;
    }
    if (c.to_host.empty() && c.guest_closed) {
      reset_connection(key);
      continue;
    }
    if (c.to_host.empty() && c.guest_shut_send && !c.host_shut) {
      ::shutdown(c.socket.get(), SHUT_WR);
      c.host_shut = true;
    }
    if (c.fwd_cnt - c.last_fwd_cnt_sent >= kBufAlloc / 4) {
      c.last_fwd_cnt_sent = c.fwd_cnt;
      queue_control(&c, c.guest_port, c.host_port, kOpCreditUpdate);
    }
  }
}

void VirtioVsock::deliver_rx(std::uint64_t generation) {
  const GuestMemory& memory = link_->memory();
  std::uint8_t header[kHeaderSize];
  while (!control_.empty()) {
    auto chain = link_->pop(generation, 0);
    if (!chain) return;
    write_header(control_.front(), header);
    control_.pop_front();
    if (auto st = chain->scatter(memory, header, "virtio-vsock rx buffer"); !st)
      return link_->fail(generation, st.error().message());
    link_->push(generation, 0, chain->head, kHeaderSize);
  }
  for (auto& [key, c] : connections_) {
    while (!c.host_eof && !c.connecting && !c.guest_closed) {
      const std::uint32_t in_flight = c.rx_cnt - c.peer_fwd_cnt;
      if (in_flight >= c.peer_buf_alloc) break;  // the guest's window is full
      std::uint8_t probe;
      ssize_t peek = ::recv(c.socket.get(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
      if (peek < 0 && (errno == EAGAIN || errno == EINTR)) break;
      auto chain = link_->pop(generation, 0);
      if (!chain) return;  // more data waits in the socket until the guest posts buffers
      const std::size_t room = chain->writable_bytes();
      if (room <= kHeaderSize)
        return link_->fail(generation,
                           "virtio-vsock rx buffer: at most 44 bytes, no room for data");
      Header h;
      h.src_cid = kHostCid;
      h.dst_cid = guest_cid_;
      h.src_port = c.host_port;
      h.dst_port = c.guest_port;
      h.type = kTypeStream;
      h.buf_alloc = kBufAlloc;
      h.fwd_cnt = c.fwd_cnt;
      Bytes packet(kHeaderSize);
      ssize_t n = -1;
      if (peek > 0) {
        const std::size_t want =
            std::min<std::size_t>({room - kHeaderSize, kMaxPayload, c.peer_buf_alloc - in_flight});
        packet.resize(kHeaderSize + want);
        n = ::recv(c.socket.get(), packet.data() + kHeaderSize, want, MSG_DONTWAIT);
      }
      if (n > 0) {
        packet.resize(kHeaderSize + static_cast<std::size_t>(n));
        h.op = kOpRw;
        h.len = static_cast<std::uint32_t>(n);
        c.rx_cnt += static_cast<std::uint32_t>(n);
        metrics_.vsock_bytes_to_guest.fetch_add(static_cast<std::uint64_t>(n),
                                                std::memory_order_relaxed);
      } else {
        // End of stream or a socket error: tell the guest the host will neither send nor
        // receive any more; the guest answers with RST, which closes the connection.
        packet.resize(kHeaderSize);
        h.op = kOpShutdown;
        h.flags = kShutdownRcv | kShutdownSend;
        c.host_eof = true;
      }
      write_header(h, packet);
      c.last_fwd_cnt_sent = c.fwd_cnt;
      if (auto st = chain->scatter(memory, packet, "virtio-vsock rx buffer"); !st)
        return link_->fail(generation, st.error().message());
      link_->push(generation, 0, chain->head, static_cast<std::uint32_t>(packet.size()));
    }
  }
}

}  // namespace cloister::vmm
