// The tamper-evident audit log of releases and denials: append-only JSON lines, each record
// carrying the SHA-256 of the previous record's canonical bytes, so that changing, deleting or
// reordering records breaks the chain at the first record touched.
//
// Line n (1-based) is the RFC 8785 canonical JSON of
//   {"seq": n, "time": RFC 3339, "client", "tee", "measurement", "evidence_digest",
//    "policy_digest", "resource", "outcome", "reason", "prev": hex SHA-256 of line n-1
//    (without its newline; 64 zeros for line 1)}
// followed by "\n". A chain cannot show that records were cut from its end, so the writer also
// keeps the head (record count and last record's digest) in "<log>.head"; verify() checks the
// log against it. The head is only as trustworthy as where it is kept: copy it off the host
// (or sign it) to make truncation evident to someone who does not trust the host.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "cloister/common/file.h"
#include "cloister/common/result.h"
#include "cloister/common/time.h"

namespace cloister::service::audit {

struct Record {
  UnixTime time = 0;
  std::string client;           // who asked (address, or the admin key's name)
  std::string tee;              // "snp", "tdx", …
  std::string measurement;      // hex launch measurement / MRTD
  std::string evidence_digest;  // hex SHA-256 of the evidence as received
  std::string policy_digest;    // hex SHA-256 of the policy applied
  std::string resource;         // "repo/type/tag", or "" for an attestation without release
  std::string outcome;          // "released", "denied", "attested", …
  std::string reason;           // why: the failed checks with expected and found, or "ok"
  bool operator==(const Record&) const = default;
};

struct Head {
  std::size_t records = 0;
  std::string digest;  // hex SHA-256 of the last record's canonical bytes; 64 zeros when empty
  bool operator==(const Head&) const = default;
};

// An open log. Thread-safe: append() serializes writers. Each record is written with one
// write() on an O_APPEND descriptor and fsync()ed, then the head file is replaced atomically.
class Writer {
 public:
  // Opens (creating) the log; an existing log must verify intact, or opening fails naming the
  // first broken record, so that a writer never extends a chain it cannot vouch for.
  static Result<std::unique_ptr<Writer>> open(const std::filesystem::path& path);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  Status append(const Record& record);
  Head head() const;

 private:
  Writer(std::filesystem::path path, int fd, Head head);
  std::filesystem::path path_;
  int fd_;
  mutable std::mutex mutex_;
  Head head_;
};

// verify() reads the whole log into memory: export and start a new log before it reaches this.
inline constexpr FileLimit kAuditLogFileLimit{
    std::uint64_t{1} << 30,
    "audit log verify() reads whole (about 3 million records; export and rotate it sooner)"};

// "<log>.head": a record count and a hex SHA-256.
inline constexpr FileLimit kAuditHeadFileLimit{
    4096, "audit log head can be (a record count and a SHA-256, under 200 bytes)"};

struct Verification {
  std::size_t records = 0;  // records that verified, in order
  std::string last_digest;  // hex SHA-256 of the last record that verified; zeros for none
  // Set when the log is not intact: the 1-based number of the first broken record (for a
  // truncated log, the first record the head says is missing) and what is wrong with it.
  std::optional<std::size_t> first_broken;
  std::string problem;
  bool intact() const { return !first_broken; }
};

// Verifies the chain in `log_text` and, when given, its agreement with `head`. Problems name the
// record and the member: "record 3: prev is 5f…, expected the SHA-256 of record 2 (9a…)".
Verification verify_text(std::string_view log_text, const std::optional<Head>& head);

// verify_text() of the file and its "<log>.head" (when that exists). Fails only when the files
// cannot be read.
Result<Verification> verify(const std::filesystem::path& path);

// The canonical line (without newline) of `record` as number `seq` after `prev`. A member that
// is not valid UTF-8 (a reason quoting a client's bytes) is written with U+FFFD in place of
// each byte outside a well-formed sequence (replace_invalid_utf8()): JSON cannot carry those
// bytes, and a record is never refused for the text it carries.
Result<std::string> canonical_record(const Record& record, std::size_t seq,
                                     const std::string& prev);

}  // namespace cloister::service::audit
