#include "cloister/service/audit.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "cloister/common/json.h"
#include "cloister/common/sha.h"
#include "cloister/service/jcs.h"
#include "json_input.h"

namespace cloister::service::audit {
namespace {

const std::string kZeroDigest(64, '0');

std::filesystem::path head_path(const std::filesystem::path& log) {
  return log.string() + ".head";
}

std::string digest_of(std::string_view line) {
  return to_hex(sha256(as_bytes(line)));
}

std::string shortened(const std::string& hex) {
  return hex.substr(0, 12) + "…";
}

Result<Record> record_from_json(const nlohmann::json& doc, const std::string& where) {
  Record r;
  CLOISTER_TRY(const std::string time, detail::string_member(doc, "time", where));
  auto parsed = parse_rfc3339(time);
  if (!parsed) return parsed.error().with_context(where + ".time");
  r.time = *parsed;
  CLOISTER_TRY(r.client, detail::string_member(doc, "client", where));
  CLOISTER_TRY(r.tee, detail::string_member(doc, "tee", where));
  CLOISTER_TRY(r.measurement, detail::string_member(doc, "measurement", where));
  CLOISTER_TRY(r.evidence_digest, detail::string_member(doc, "evidence_digest", where));
  CLOISTER_TRY(r.policy_digest, detail::string_member(doc, "policy_digest", where));
  CLOISTER_TRY(r.resource, detail::string_member(doc, "resource", where));
  CLOISTER_TRY(r.outcome, detail::string_member(doc, "outcome", where));
  CLOISTER_TRY(r.reason, detail::string_member(doc, "reason", where));
  return r;
}

Result<Head> parse_head(std::string_view text) {
  CLOISTER_TRY(const nlohmann::json doc, parse_json_strict(text, "audit head"));
  CLOISTER_TRY(const nlohmann::json* records,
               detail::required_member(doc, "records", "audit head"));
  if (!records->is_number_unsigned()) return Error("audit head.records: expected a count");
  Head head;
  head.records = records->get<std::size_t>();
  CLOISTER_TRY(head.digest, detail::string_member(doc, "digest", "audit head"));
  return head;
}

Status write_head(const std::filesystem::path& log, const Head& head) {
  const std::string text =
      nlohmann::json{{"records", head.records}, {"digest", head.digest}}.dump();
  return write_file_atomic(head_path(log), as_bytes(text), 0600);
}

}  // namespace

Result<std::string> canonical_record(const Record& r, std::size_t seq, const std::string& prev) {
  return canonical_json({{"seq", seq},
                         {"time", format_rfc3339(r.time)},
                         {"client", replace_invalid_utf8(r.client)},
                         {"tee", replace_invalid_utf8(r.tee)},
                         {"measurement", replace_invalid_utf8(r.measurement)},
                         {"evidence_digest", replace_invalid_utf8(r.evidence_digest)},
                         {"policy_digest", replace_invalid_utf8(r.policy_digest)},
                         {"resource", replace_invalid_utf8(r.resource)},
                         {"outcome", replace_invalid_utf8(r.outcome)},
                         {"reason", replace_invalid_utf8(r.reason)},
                         {"prev", prev}});
}

Verification verify_text(std::string_view text, const std::optional<Head>& head) {
  Verification v;
  v.last_digest = kZeroDigest;
  auto broken = [&](std::size_t n, std::string problem) {
    v.first_broken = n;
    v.problem = "record " + std::to_string(n) + ": " + std::move(problem);
    return v;
  };
  std::string prev = kZeroDigest;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t n = v.records + 1;
    const std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) {
      return broken(n, "truncated (the last line has no newline)");
    }
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    auto doc = parse_json_strict(line, "line");
    if (!doc) return broken(n, doc.error().message());
    if (!doc->is_object() || !doc->contains("seq") || !(*doc)["seq"].is_number_unsigned()) {
      return broken(n, "no \"seq\" member");
    }
    const auto seq = (*doc)["seq"].get<std::size_t>();
    if (seq != n) {
      return broken(n, "seq is " + std::to_string(seq) + ", expected " + std::to_string(n) +
                           " (records deleted or reordered)");
    }
    auto record = record_from_json(*doc, "line");
    if (!record) return broken(n, record.error().message());
    auto found_prev = detail::string_member(*doc, "prev", "line");
    if (!found_prev) return broken(n, found_prev.error().message());
    if (*found_prev != prev) {
      if (n == 1) return broken(1, "prev is " + shortened(*found_prev) + ", expected zeros");
      // The chain recorded another digest for the record before: that record was changed.
      --v.records;
      return broken(n - 1, "its SHA-256 " + shortened(prev) + " differs from the prev " +
                               shortened(*found_prev) + " that record " + std::to_string(n) +
                               " carries (the record was changed)");
    }
    auto canonical = canonical_record(*record, seq, prev);
    if (!canonical || *canonical != line) {
      return broken(n, "not in canonical form or carries unknown members (the line was edited)");
    }
    prev = digest_of(line);
    v.last_digest = prev;
    ++v.records;
  }
  if (head) {
    if (head->records > v.records) {
      return broken(v.records + 1, "missing: the head names " + std::to_string(head->records) +
                                       " records, the log ends after " + std::to_string(v.records) +
                                       " (truncated)");
    }
    if (head->records < v.records) {
      return broken(head->records + 1,
                    "not in the head, which names " + std::to_string(head->records) + " records");
    }
    if (head->digest != prev) {
      return broken(v.records, "its SHA-256 " + shortened(prev) + " differs from the head's " +
                                   shortened(head->digest) + " (the last record was changed)");
    }
  }
  return v;
}

Result<Verification> verify(const std::filesystem::path& path) {
  CLOISTER_TRY(const std::string text, read_text_file(path, kAuditLogFileLimit));
  std::optional<Head> head;
  if (std::filesystem::exists(head_path(path))) {
    CLOISTER_TRY(const std::string head_text, read_text_file(head_path(path), kAuditHeadFileLimit));
    auto parsed = parse_head(head_text);
    if (!parsed) return parsed.error().with_context(head_path(path).string());
    head = *parsed;
  }
  return verify_text(text, head);
}

Writer::Writer(std::filesystem::path path, int fd, Head head)
    : path_(std::move(path)), fd_(fd), head_(std::move(head)) {}

Writer::~Writer() {
  ::close(fd_);
}

Result<std::unique_ptr<Writer>> Writer::open(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return Error("audit log " + path.string() + ": " + std::strerror(errno));
  auto existing = verify(path);
  if (!existing) {
    ::close(fd);
    return existing.error();
  }
  if (!existing->intact()) {
    ::close(fd);
    return Error("audit log " + path.string() + " is not intact: " + existing->problem);
  }
  return std::unique_ptr<Writer>(
      new Writer(path, fd, Head{existing->records, existing->last_digest}));
}

Status Writer::append(const Record& record) {
  std::lock_guard lock(mutex_);
  CLOISTER_TRY(const std::string line, canonical_record(record, head_.records + 1, head_.digest));
  const std::string with_newline = line + "\n";
  const ssize_t written = ::write(fd_, with_newline.data(), with_newline.size());
  if (written != static_cast<ssize_t>(with_newline.size())) {
    return Error("audit log " + path_.string() + ": short write: " + std::strerror(errno));
  }
  if (::fsync(fd_) != 0) {
    return Error("audit log " + path_.string() + ": fsync: " + std::strerror(errno));
  }
  head_ = Head{head_.records + 1, digest_of(line)};
  return write_head(path_, head_);
}

Head Writer::head() const {
  std::lock_guard lock(mutex_);
  return head_;
}

}  // namespace cloister::service::audit
