// A one-connection Intel QGS on a UNIX socket, for tests of the QGS client (the VMM's GetQuote
// and the agent's /dev/tdx_guest path): reads one framed request, hands its body to `answer`
// and sends back what `answer` returns, byte for byte.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "cloister/common/bytes.h"

namespace cloister::testing {

// A qgs_msg_get_quote_resp: header {1, 1, type, size, error}, selected_id_size, quote_size, the
// id, the quote.
Bytes qgs_response(ByteView quote, std::uint32_t error = 0, std::uint32_t type = 1,
                   ByteView id = {});

// `body` after its 4-byte big-endian length, as QGS frames messages.
Bytes qgs_framed(ByteView body);

class FakeQgs {
 public:
  explicit FakeQgs(std::function<Bytes(const Bytes&)> answer);
  ~FakeQgs();
  FakeQgs(const FakeQgs&) = delete;
  FakeQgs& operator=(const FakeQgs&) = delete;

  std::string address() const { return "unix:" + path_; }
  // The request body (after the length prefix); complete once the answer was sent.
  const Bytes& request() const { return request_; }

 private:
  static inline std::atomic<int> counter_{0};
  std::string path_;
  int listener_ = -1;
  Bytes request_;
  std::thread thread_;
};

}  // namespace cloister::testing
