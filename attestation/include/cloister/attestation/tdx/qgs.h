// A client of Intel's Quote Generation Service (QGS: DCAP's qgs, tdx-qgs), which turns a
// TDREPORT into a signed quote. Two users: the VMM on the host (a TDX guest's GetQuote TDVMCALL,
// as QEMU's quote-generation-socket) and the agent inside a TD without configfs-tsm (Linux's
// /dev/tdx_guest gives only the TDREPORT; DCAP's libtdx_attest reaches the host's QGS over vsock
// CID 2, port 4050).
//
// The protocol (DCAP QuoteGeneration/quote_wrapper/qgs_msg_lib): one connection per quote; the
// request is a 4-byte big-endian length, then qgs_msg_get_quote_req (header {u16 major 1,
// u16 minor 1, u32 type GET_QUOTE_REQ 0, u32 size, u32 error_code 0}, u32 report_size,
// u32 id_list_size 0, the TDREPORT); the answer is framed the same way and carries
// qgs_msg_get_quote_resp (header with type GET_QUOTE_RESP 1, u32 selected_id_size,
// u32 quote_size, the id, the quote).
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <string>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"

namespace cloister::attestation::tdx {

// Where DCAP's libtdx_attest finds the host's QGS from inside a TD.
inline constexpr const char* kQgsGuestAddress = "vsock:2:4050";

// Responses larger than this are refused before they are read.
inline constexpr std::uint32_t kQgsMaxMessage = 4 * 1024 * 1024;

class QgsClient {
 public:
  // `address` is unix:PATH, vsock:CID:PORT or HOST:PORT; a host name is resolved here, once, so
  // get_quote() opens no files (the VMM calls it under seccomp).
  static Result<QgsClient> create(const std::string& address);

  // The quote for `tdreport` (a 1024-byte TDREPORT_STRUCT), within `timeout` for the whole
  // exchange. Errors start with "QGS at ADDRESS" and name the step.
  Result<Bytes> get_quote(ByteView tdreport, std::chrono::milliseconds timeout) const;

  const std::string& address() const { return address_; }
  // The socket(2) family get_quote() creates its socket in (AF_UNIX, AF_VSOCK, AF_INET, …).
  int socket_family() const { return family_; }

 private:
  QgsClient() = default;

  std::string address_;
  sockaddr_storage storage_{};
  socklen_t length_ = 0;
  int family_ = AF_UNIX;
};

// Parses a QGS response (after the length prefix) and returns the quote; every length is checked
// against `response`. Exposed for its fuzz target.
Result<Bytes> parse_qgs_response(ByteView response);

}  // namespace cloister::attestation::tdx
