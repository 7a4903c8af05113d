// The guest-agent client's evidence fetch: attestation evidence from a guest over vsock, bound to
// REPORT_DATA the caller chooses (the guest-evidence protocol, guest_evidence_protocol.h).
//
// The guest is untrusted: the parser checks every frame header against the protocol's grammar
// and limits before it buffers a byte of the frame, and the whole exchange ends by a deadline.
// Nothing here verifies the evidence; hand the pieces to Verifier (verifier.h).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string_view>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"
#include "cloister/sdk/guest_evidence_protocol.h"

namespace cloister::sdk {

enum class EvidenceKind : std::uint32_t {
  kSnpReport = CLOISTER_EVIDENCE_SNP_REPORT,         // the 1184-byte ATTESTATION_REPORT
  kSnpCertTable = CLOISTER_EVIDENCE_SNP_CERT_TABLE,  // the extended-report certificate table
  kTdxQuote = CLOISTER_EVIDENCE_TDX_QUOTE,           // the TDX quote
  kCcEventLog = CLOISTER_EVIDENCE_CC_EVENT_LOG,      // the guest's CC event log (RTMR events)
};

// "snp-report", "snp-cert-table", "tdx-quote", "cc-event-log".
std::string_view to_string(EvidenceKind kind);

struct EvidencePiece {
  EvidenceKind kind = EvidenceKind::kSnpReport;
  Bytes bytes;
};

struct GuestEvidence {
  // SNP: the report, then the certificate table if the host supplied one. TDX: the quote, then
  // the event log.
  std::vector<EvidencePiece> pieces;

  // The piece of `kind`, or nullptr.
  const Bytes* find(EvidenceKind kind) const;
};

// Why there is no evidence, for a caller that reacts differently to each (retry while the guest
// is not up yet, alert on a misbehaving guest, show the guest's own reason).
enum class EvidenceFailure {
  kUnavailable,       // the VMM's socket or the guest's port cannot be reached
  kDeadlineExceeded,  // the deadline passed first
  kLimitExceeded,     // a frame longer than the protocol allows (CLOISTER_EVIDENCE_MAX_*)
  kMalformed,         // bytes that do not follow the protocol, or a truncated stream
  kGuestFailed,       // the guest sent an ERROR frame; the message quotes it
};

// "unavailable", "deadline-exceeded", "limit-exceeded", "malformed", "guest-failed".
std::string_view to_string(EvidenceFailure failure);

// The guest's side of the stream, parsed as it arrives:
//   header: magic "CLEV", version 1
//   frames: SNP_REPORT [SNP_CERT_TABLE] | TDX_QUOTE [CC_EVENT_LOG] | ERROR
//   END
// Rejected, naming the frame, its offset and the reason: a wrong magic or version, a frame kind
// that is unknown or not allowed at its place, a length over its limit (kLimitExceeded: 1184
// exactly for SNP_REPORT, CLOISTER_EVIDENCE_MAX_ERROR for ERROR, CLOISTER_EVIDENCE_MAX_FRAME
// for the rest) or an SNP_REPORT shorter than 1184 bytes, END with a length, and bytes after
// END. An ERROR frame fails the stream with kGuestFailed and its text, non-printable bytes
// replaced by '?'.
class GuestEvidenceParser {
 public:
  // Consumes the next bytes of the stream. After a failure the parser stays failed and every
  // further call returns the same error.
  Status feed(ByteView bytes);
  // The END frame has been consumed.
  bool done() const { return stage_ == Stage::kDone; }
  // Bytes consumed so far.
  std::size_t offset() const { return offset_; }
  // What the failed feed() was: kLimitExceeded, kMalformed or kGuestFailed.
  EvidenceFailure failure() const { return failure_; }
  // A sentence for a stream that ended here: what the parser was waiting for.
  std::string truncation() const;
  // The evidence, once done().
  GuestEvidence take() && { return std::move(evidence_); }

 private:
  enum class Stage { kStreamHeader, kFrameHeader, kFrameBody, kDone, kFailed };

  Status fail(EvidenceFailure failure, std::string message);
  Status frame_header();
  Status frame_body();

  Stage stage_ = Stage::kStreamHeader;
  std::array<std::uint8_t, 8> header_{};
  std::size_t header_used_ = 0;
  std::uint32_t kind_ = 0;
  Bytes body_;
  std::size_t body_used_ = 0;
  std::size_t frames_ = 0;
  std::size_t frame_offset_ = 0;
  std::size_t offset_ = 0;
  EvidenceFailure failure_ = EvidenceFailure::kMalformed;
  std::string error_;
  GuestEvidence evidence_;
};

// The evidence in a complete stream (one that ends without END is kMalformed).
Result<GuestEvidence> parse_guest_evidence(ByteView stream, EvidenceFailure* failure = nullptr);

using ReportData = std::array<std::uint8_t, CLOISTER_EVIDENCE_REPORT_DATA_SIZE>;

// Connects to the VMM's hybrid vsock socket `uds_path` (cloister-vmm --vsock-uds), asks for
// guest port `port` ("CONNECT <port>\n", answered "OK <host port>\n" once the guest accepted),
// sends `report_data` and reads the guest's evidence. Every step - connecting, the handshake,
// the guest's attestation, the transfer - must finish by `deadline`. On failure the error says
// which step failed and why, and `*failure` (when given) receives its kind.
Result<GuestEvidence> fetch_guest_evidence(const std::filesystem::path& uds_path,
                                           std::uint32_t port, const ReportData& report_data,
                                           std::chrono::steady_clock::time_point deadline,
                                           EvidenceFailure* failure = nullptr);

}  // namespace cloister::sdk
