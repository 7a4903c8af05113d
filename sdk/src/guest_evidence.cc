#include "cloister/sdk/guest_evidence.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "cloister/common/hex.h"

namespace cloister::sdk {
namespace {

constexpr std::size_t kHandshakeLineMax = 32;  // "OK 4294967295\n" and room to spare

std::string kind_name(std::uint32_t kind) {
  switch (kind) {
    case CLOISTER_EVIDENCE_END:
      return "END";
    case CLOISTER_EVIDENCE_ERROR:
      return "ERROR";
    case CLOISTER_EVIDENCE_SNP_REPORT:
    case CLOISTER_EVIDENCE_SNP_CERT_TABLE:
    case CLOISTER_EVIDENCE_TDX_QUOTE:
    case CLOISTER_EVIDENCE_CC_EVENT_LOG:
      return std::string(to_string(static_cast<EvidenceKind>(kind)));
    default:
      return "unknown kind " + std::to_string(kind);
  }
}

// The kinds allowed after `previous` (the last frame's kind; END means "no frame yet").
bool allowed_after(std::uint32_t previous, std::uint32_t kind) {
  switch (previous) {
    case CLOISTER_EVIDENCE_END:
      return kind == CLOISTER_EVIDENCE_SNP_REPORT || kind == CLOISTER_EVIDENCE_TDX_QUOTE ||
             kind == CLOISTER_EVIDENCE_ERROR;
    case CLOISTER_EVIDENCE_SNP_REPORT:
      return kind == CLOISTER_EVIDENCE_SNP_CERT_TABLE || kind == CLOISTER_EVIDENCE_END;
    case CLOISTER_EVIDENCE_TDX_QUOTE:
      return kind == CLOISTER_EVIDENCE_CC_EVENT_LOG || kind == CLOISTER_EVIDENCE_END;
    default:  // after the second frame of a pair
      return kind == CLOISTER_EVIDENCE_END;
  }
}

std::uint32_t max_length(std::uint32_t kind) {
  switch (kind) {
    case CLOISTER_EVIDENCE_END:
      return 0;
    case CLOISTER_EVIDENCE_SNP_REPORT:
      return CLOISTER_EVIDENCE_SNP_REPORT_SIZE;
    case CLOISTER_EVIDENCE_ERROR:
      return CLOISTER_EVIDENCE_MAX_ERROR;
    default:
      return CLOISTER_EVIDENCE_MAX_FRAME;
  }
}

std::string printable(ByteView text) {
  std::string out;
  for (std::uint8_t c : text) out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  return out;
}

}  // namespace

std::string_view to_string(EvidenceKind kind) {
  switch (kind) {
    case EvidenceKind::kSnpReport:
      return "snp-report";
    case EvidenceKind::kSnpCertTable:
      return "snp-cert-table";
    case EvidenceKind::kTdxQuote:
      return "tdx-quote";
    case EvidenceKind::kCcEventLog:
      return "cc-event-log";
  }
  return "?";
}

std::string_view to_string(EvidenceFailure failure) {
  switch (failure) {
    case EvidenceFailure::kUnavailable:
      return "unavailable";
    case EvidenceFailure::kDeadlineExceeded:
      return "deadline-exceeded";
    case EvidenceFailure::kLimitExceeded:
      return "limit-exceeded";
    case EvidenceFailure::kMalformed:
      return "malformed";
    case EvidenceFailure::kGuestFailed:
      return "guest-failed";
  }
  return "?";
}

const Bytes* GuestEvidence::find(EvidenceKind kind) const {
  for (const EvidencePiece& p : pieces)
    if (p.kind == kind) return &p.bytes;
  return nullptr;
}

Status GuestEvidenceParser::fail(EvidenceFailure failure, std::string message) {
  stage_ = Stage::kFailed;
  failure_ = failure;
  error_ = "guest evidence stream: " + std::move(message);
  return Error(error_);
}

Status GuestEvidenceParser::frame_header() {
  const std::uint32_t kind = load_le32(header_, 0);
  const std::uint32_t length = load_le32(header_, 4);
  const std::uint32_t previous = frames_ == 0 ? CLOISTER_EVIDENCE_END : kind_;
  const std::string where = "frame " + std::to_string(frames_) + " at offset " +
                            hex_number(frame_offset_) + " (" + kind_name(kind) + ")";
  if (!allowed_after(previous, kind)) {
    return fail(EvidenceFailure::kMalformed,
                where + ": not allowed " +
                    (frames_ == 0 ? "first" : "after " + kind_name(previous)) +
                    "; a stream is SNP_REPORT [SNP_CERT_TABLE] | TDX_QUOTE [CC_EVENT_LOG] | "
                    "ERROR, then END");
  }
  if (length > max_length(kind)) {
    return fail(kind == CLOISTER_EVIDENCE_END ? EvidenceFailure::kMalformed
                                              : EvidenceFailure::kLimitExceeded,
                where + ": length " + std::to_string(length) + " exceeds the limit of " +
                    std::to_string(max_length(kind)) + " bytes");
  }
  if (kind == CLOISTER_EVIDENCE_SNP_REPORT && length != CLOISTER_EVIDENCE_SNP_REPORT_SIZE) {
    return fail(EvidenceFailure::kMalformed,
                where + ": length " + std::to_string(length) + ", expected exactly 1184 bytes");
  }
  kind_ = kind;
  ++frames_;
  if (kind == CLOISTER_EVIDENCE_END) {
    stage_ = Stage::kDone;
    return {};
  }
  body_.assign(length, 0);
  body_used_ = 0;
  stage_ = Stage::kFrameBody;
  return length == 0 ? frame_body() : Status();
}

Status GuestEvidenceParser::frame_body() {
  if (kind_ == CLOISTER_EVIDENCE_ERROR) {
    return fail(EvidenceFailure::kGuestFailed,
                "the guest reported no evidence: \"" + printable(body_) + "\"");
  }
  evidence_.pieces.push_back({static_cast<EvidenceKind>(kind_), std::move(body_)});
  body_.clear();
  stage_ = Stage::kFrameHeader;
  header_used_ = 0;
  frame_offset_ = offset_;
  return {};
}

Status GuestEvidenceParser::feed(ByteView bytes) {
  while (!bytes.empty()) {
    switch (stage_) {
      case Stage::kFailed:
        return Error(error_);
      case Stage::kDone:
        return fail(EvidenceFailure::kMalformed, std::to_string(bytes.size()) +
                                                     " bytes after the END frame at offset " +
                                                     hex_number(frame_offset_));
      case Stage::kStreamHeader:
      case Stage::kFrameHeader: {
        const std::size_t take = std::min(bytes.size(), header_.size() - header_used_);
        std::copy_n(bytes.begin(), take,
                    header_.begin() + static_cast<std::ptrdiff_t>(header_used_));
        header_used_ += take;
        offset_ += take;
        bytes = bytes.subspan(take);
        if (header_used_ < header_.size()) break;
        if (stage_ == Stage::kFrameHeader) {
          CLOISTER_CHECK_OK(frame_header());
          break;
        }
        const std::uint32_t magic = load_le32(header_, 0), version = load_le32(header_, 4);
        if (magic != CLOISTER_EVIDENCE_MAGIC) {
          return fail(EvidenceFailure::kMalformed,
                      "magic " + hex_number(magic) +
                          ", expected 0x56454c43 (\"CLEV\"): not a guest-evidence stream");
        }
        if (version != CLOISTER_EVIDENCE_VERSION) {
          return fail(EvidenceFailure::kMalformed,
                      "version " + std::to_string(version) + ", this client speaks version 1");
        }
        stage_ = Stage::kFrameHeader;
        header_used_ = 0;
        frame_offset_ = offset_;
        break;
      }
      case Stage::kFrameBody: {
        const std::size_t take = std::min(bytes.size(), body_.size() - body_used_);
        std::copy_n(bytes.begin(), take, body_.begin() + static_cast<std::ptrdiff_t>(body_used_));
        body_used_ += take;
        offset_ += take;
        bytes = bytes.subspan(take);
        if (body_used_ == body_.size()) CLOISTER_CHECK_OK(frame_body());
        break;
      }
    }
  }
  return stage_ == Stage::kFailed ? Status(Error(error_)) : Status();
}

std::string GuestEvidenceParser::truncation() const {
  const std::string at = "the stream ended after " + std::to_string(offset_) + " bytes, ";
  switch (stage_) {
    case Stage::kStreamHeader:
      return at + "inside the stream header";
    case Stage::kFrameHeader:
      return at + "before the END frame";
    case Stage::kFrameBody:
      return at + "inside frame " + std::to_string(frames_ - 1) + " (" + kind_name(kind_) + "), " +
             std::to_string(body_.size() - body_used_) + " of its bytes missing";
    case Stage::kDone:
    case Stage::kFailed:
      break;
  }
  return at + "after its end";
}

Result<GuestEvidence> parse_guest_evidence(ByteView stream, EvidenceFailure* failure) {
  GuestEvidenceParser parser;
  Status fed = parser.feed(stream);
  EvidenceFailure why = parser.failure();
  if (fed && !parser.done()) {
    fed = Error("guest evidence stream: " + parser.truncation());
    why = EvidenceFailure::kMalformed;
  }
  if (!fed) {
    if (failure) *failure = why;
    return fed.error();
  }
  return std::move(parser).take();
}

namespace {

// One exchange with the VMM's socket; every wait ends at the deadline.
class Exchange {
 public:
  Exchange(std::chrono::steady_clock::time_point deadline, EvidenceFailure* failure)
      : deadline_(deadline), failure_(failure) {}
  ~Exchange() {
    if (fd_ >= 0) ::close(fd_);
  }
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  Error fail(EvidenceFailure failure, const std::string& message) {
    if (failure_) *failure_ = failure;
    return Error(message);
  }

  Status connect(const std::filesystem::path& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string p = path.string();
    if (p.size() >= sizeof addr.sun_path) {
      return fail(EvidenceFailure::kUnavailable,
                  "vsock socket " + p + ": " + std::to_string(p.size()) +
                      " bytes is too long for a UNIX socket path (at most " +
                      std::to_string(sizeof addr.sun_path - 1) + ")");
    }
    std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) return fail(EvidenceFailure::kUnavailable, "socket: " + errno_text());
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0) {
      return fail(EvidenceFailure::kUnavailable,
                  "cannot connect to the VMM's vsock socket " + p + ": " + errno_text());
    }
    return {};
  }

  Status send_all(ByteView data, const std::string& what) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data = data.subspan(static_cast<std::size_t>(n));
      } else if (errno == EAGAIN || errno == EINTR) {
        CLOISTER_CHECK_OK(wait(POLLOUT, what));
      } else {
        return fail(EvidenceFailure::kUnavailable, "sending " + what + ": " + errno_text());
      }
    }
    return {};
  }

  // Up to `cap` bytes; 0 at the end of the stream.
  Result<std::size_t> receive(std::uint8_t* buf, std::size_t cap, const std::string& what) {
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, cap, 0);
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno != EAGAIN && errno != EINTR) {
        return fail(EvidenceFailure::kUnavailable, "reading " + what + ": " + errno_text());
      }
      CLOISTER_CHECK_OK(wait(POLLIN, what));
    }
  }

 private:
  static std::string errno_text() { return std::strerror(errno); }

  Status wait(short events, const std::string& what) {
    for (;;) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(
          deadline_ - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        return fail(EvidenceFailure::kDeadlineExceeded,
                    "the deadline passed while waiting for " + what);
      }
      pollfd p{fd_, events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 60000)));
      if (r > 0 || (r < 0 && errno != EINTR)) return {};
    }
  }

  std::chrono::steady_clock::time_point deadline_;
  EvidenceFailure* failure_;
  int fd_ = -1;
};

}  // namespace

Result<GuestEvidence> fetch_guest_evidence(const std::filesystem::path& uds_path,
                                           std::uint32_t port, const ReportData& report_data,
                                           std::chrono::steady_clock::time_point deadline,
                                           EvidenceFailure* failure) {
  Exchange x(deadline, failure);
  CLOISTER_CHECK_OK(x.connect(uds_path));
  const std::string connect = "CONNECT " + std::to_string(port) + "\n";
  CLOISTER_CHECK_OK(x.send_all(as_bytes(connect), "the CONNECT line"));

  // The answer line, a byte at a time so that nothing of the guest's stream is taken with it.
  const std::string answer_what = "the VMM's answer to CONNECT " + std::to_string(port);
  std::string line;
  while (line.empty() || line.back() != '\n') {
    std::uint8_t c;
    CLOISTER_TRY(const std::size_t n, x.receive(&c, 1, answer_what));
    if (n == 0) {
      return x.fail(
          EvidenceFailure::kUnavailable,
          "the VMM closed the connection without accepting guest port " + std::to_string(port) +
              ": is the guest listening there (attest_port=" + std::to_string(port) + ")?");
    }
    line.push_back(static_cast<char>(c));
    if (line.size() > kHandshakeLineMax) break;
  }
  if (line.rfind("OK ", 0) != 0 || line.back() != '\n') {
    return x.fail(EvidenceFailure::kMalformed, answer_what + ": expected \"OK <port>\", found \"" +
                                                   printable(as_bytes(line)) + "\"");
  }
  CLOISTER_CHECK_OK(x.send_all(report_data, "REPORT_DATA"));

  GuestEvidenceParser parser;
  std::array<std::uint8_t, 4096> buf;
  while (!parser.done()) {
    CLOISTER_TRY(const std::size_t n, x.receive(buf.data(), buf.size(), "the guest's evidence"));
    if (n == 0) {
      return x.fail(EvidenceFailure::kMalformed, "guest evidence stream: " + parser.truncation());
    }
    if (auto fed = parser.feed(ByteView(buf.data(), n)); !fed)
      return x.fail(parser.failure(), fed.error().message());
  }
  return std::move(parser).take();
}

}  // namespace cloister::sdk
