#include "cloister/attestation/tdx/qgs.h"

#include <linux/vm_sockets.h>
#include <netdb.h>
#include <poll.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <span>

#include "cloister/common/fd.h"
#include "cloister/common/hex.h"

namespace cloister::attestation::tdx {
namespace {

constexpr std::uint16_t kQgsMajor = 1;
constexpr std::uint16_t kQgsMinor = 1;
constexpr std::uint32_t kQgsGetQuoteReq = 0;
constexpr std::uint32_t kQgsGetQuoteResp = 1;
constexpr std::size_t kQgsHeaderSize = 16;
constexpr std::size_t kQgsResponseFixed = kQgsHeaderSize + 8;  // + selected_id_size, quote_size

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(left.count());
}

// Waits until `fd` is ready for `events` or the deadline passes.
Status wait_for(int fd, short events, Clock::time_point deadline, const std::string& what) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, remaining_ms(deadline));
    if (rc > 0) return {};
    if (rc == 0) return Error(ErrorCode::kUnavailable, what + ": timed out");
    if (errno != EINTR) return os_error(what);
  }
}

Status send_all(int fd, ByteView data, Clock::time_point deadline, const std::string& what) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      CLOISTER_CHECK_OK(wait_for(fd, POLLOUT, deadline, what));
    } else {
      return os_error(what);
    }
  }
  return {};
}

Status recv_exact(int fd, std::span<std::uint8_t> out, Clock::time_point deadline,
                  const std::string& what) {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::recv(fd, out.data() + done, out.size() - done, 0);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (n == 0) {
      return Error(ErrorCode::kUnavailable, what + ": the service closed the connection after " +
                                                std::to_string(done) + " of " +
                                                std::to_string(out.size()) + " bytes");
    } else if (errno == EAGAIN || errno == EINTR) {
      CLOISTER_CHECK_OK(wait_for(fd, POLLIN, deadline, what));
    } else {
      return os_error(what);
    }
  }
  return {};
}

Result<std::uint32_t> parse_u32(std::string_view text, const std::string& what) {
  std::uint32_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    return Error(ErrorCode::kInvalidArgument,
                 what + ": '" + std::string(text) + "' is not a number");
  return v;
}

}  // namespace

Result<QgsClient> QgsClient::create(const std::string& address) {
  const std::string what = "quote generation socket '" + address + "'";
  QgsClient out;
  out.address_ = address;
  if (address.starts_with("unix:")) {
    const std::string path = address.substr(5);
    if (path.empty() || path.size() >= sizeof(sockaddr_un{}.sun_path))
      return Error(ErrorCode::kInvalidArgument,
                   what + ": expected unix:PATH with a path shorter than 108 bytes");
    auto* un = reinterpret_cast<sockaddr_un*>(&out.storage_);
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.c_str(), path.size() + 1);
    out.length_ = sizeof(sockaddr_un);
    return out;
  }
  if (address.starts_with("vsock:")) {
    const std::string rest = address.substr(6);
    const auto colon = rest.find(':');
    if (colon == std::string::npos)
      return Error(ErrorCode::kInvalidArgument, what + ": expected vsock:CID:PORT");
    auto* vm = reinterpret_cast<sockaddr_vm*>(&out.storage_);
    vm->svm_family = AF_VSOCK;
    CLOISTER_TRY(vm->svm_cid, parse_u32(std::string_view(rest).substr(0, colon), what));
    CLOISTER_TRY(vm->svm_port, parse_u32(std::string_view(rest).substr(colon + 1), what));
    out.family_ = AF_VSOCK;
    out.length_ = sizeof(sockaddr_vm);
    return out;
  }
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size())
    return Error(ErrorCode::kInvalidArgument,
                 what + ": expected unix:PATH, vsock:CID:PORT or HOST:PORT");
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const std::string service = address.substr(colon + 1);
  CLOISTER_TRY([[maybe_unused]] auto port, parse_u32(service, what));
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
  if (rc != 0 || found == nullptr)
    return Error(ErrorCode::kUnavailable,
                 what + ": cannot resolve " + host + ": " + ::gai_strerror(rc));
  std::memcpy(&out.storage_, found->ai_addr, found->ai_addrlen);
  out.length_ = found->ai_addrlen;
  out.family_ = found->ai_family;
  ::freeaddrinfo(found);
  return out;
}

Result<Bytes> QgsClient::get_quote(ByteView tdreport, std::chrono::milliseconds timeout) const {
  const auto deadline = Clock::now() + timeout;
  const std::string what = "QGS at " + address_;
  Fd fd(::socket(family_, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return os_error(what + ": socket");
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&storage_), length_) < 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) return os_error(what + ": connect");
    CLOISTER_CHECK_OK(wait_for(fd.get(), POLLOUT, deadline, what + ": connect"));
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return os_error(what + ": connect", err);
  }
  const std::uint32_t body = static_cast<std::uint32_t>(kQgsHeaderSize + 8 + tdreport.size());
  Bytes message(4 + body);
  for (int i = 0; i < 4; ++i) message[i] = static_cast<std::uint8_t>(body >> (24 - 8 * i));
  store_le16(message, 4, kQgsMajor);
  store_le16(message, 6, kQgsMinor);
  store_le32(message, 8, kQgsGetQuoteReq);
  store_le32(message, 12, body);
  store_le32(message, 16, 0);  // error_code
  store_le32(message, 20, static_cast<std::uint32_t>(tdreport.size()));
  store_le32(message, 24, 0);  // id_list_size: let the QGS choose the attestation key
  std::copy(tdreport.begin(), tdreport.end(), message.begin() + 4 + kQgsHeaderSize + 8);
  CLOISTER_CHECK_OK(send_all(fd.get(), message, deadline, what + ": send"));
  std::uint8_t prefix[4];
  CLOISTER_CHECK_OK(recv_exact(fd.get(), prefix, deadline, what + ": response length"));
  const std::uint32_t size = static_cast<std::uint32_t>(prefix[0]) << 24 |
                             static_cast<std::uint32_t>(prefix[1]) << 16 |
                             static_cast<std::uint32_t>(prefix[2]) << 8 | prefix[3];
  if (size > kQgsMaxMessage)
    return Error(ErrorCode::kUnavailable, what + ": response of " + std::to_string(size) +
                                              " bytes exceeds the limit of " +
                                              std::to_string(kQgsMaxMessage));
  Bytes response(size);
  CLOISTER_CHECK_OK(recv_exact(fd.get(), response, deadline, what + ": response"));
  auto quote = parse_qgs_response(response);
  if (!quote) return quote.error().with_context(what);
  return quote;
}

Result<Bytes> parse_qgs_response(ByteView r) {
  if (r.size() < kQgsResponseFixed)
    return Error("QGS response: " + std::to_string(r.size()) + " bytes, expected at least " +
                 std::to_string(kQgsResponseFixed));
  const std::uint32_t major = load_le16(r, 0);
  const std::uint32_t type = load_le32(r, 4);
  const std::uint32_t size = load_le32(r, 8);
  const std::uint32_t error = load_le32(r, 12);
  if (major != kQgsMajor)
    return Error("QGS response: major version " + std::to_string(major) + ", expected 1");
  if (type != kQgsGetQuoteResp)
    return Error("QGS response: message type " + std::to_string(type) +
                 ", expected 1 (GET_QUOTE_RESP)");
  if (size != r.size())
    return Error("QGS response: header size " + std::to_string(size) + " but " +
                 std::to_string(r.size()) + " bytes were framed");
  if (error != 0)
    return Error("QGS response: error code " + hex_number(error) +
                 " (the service could not produce a quote; see its log)");
  const std::uint64_t id_size = load_le32(r, 16);
  const std::uint64_t quote_size = load_le32(r, 20);
  if (quote_size == 0 || kQgsResponseFixed + id_size + quote_size != r.size())
    return Error("QGS response: selected_id_size " + std::to_string(id_size) + " + quote_size " +
                 std::to_string(quote_size) + " do not fill the " +
                 std::to_string(r.size() - kQgsResponseFixed) + " bytes after the header");
  const auto quote = r.subspan(kQgsResponseFixed + id_size);
  return Bytes(quote.begin(), quote.end());
}

}  // namespace cloister::attestation::tdx
