#include "cloister/sdk/local_evidence.h"

#include <fcntl.h>
#include <linux/sev-guest.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>

#include "cloister/attestation/tdx/abi.h"
#include "cloister/common/fd.h"
#include "cloister/common/file.h"
#include "cloister/common/hex.h"

namespace cloister::sdk {
namespace {

namespace fs = std::filesystem;

// An SNP report is 1184 bytes and a TDX quote about 5 KiB; configfs-tsm caps its blobs at 32 KiB
// (TSM_OUTBLOB_MAX), the SEV-SNP certificate table at 16 KiB in practice.
const FileLimit kTsmBlobLimit{64 * 1024, "a configfs-tsm blob can be (TSM_OUTBLOB_MAX is 32 KiB)"};
const FileLimit kTsmAttributeLimit{4096, "a configfs-tsm attribute can be"};

constexpr std::size_t kSnpReportSize = 1184;
constexpr std::size_t kCertPages = 4;  // 16 KiB: what Linux hands a guest at most

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

Status write_blob(const fs::path& path, ByteView data) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return os_error("open " + path.string());
  if (::write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
    return os_error("write " + path.string());
  }
  return {};
}

// Linux include/uapi/linux/tdx-guest.h (6.2+; Debian 12's headers predate it).
struct TdxReportReq {
  std::uint8_t reportdata[64];
  std::uint8_t tdreport[1024];
};
constexpr unsigned long kTdxCmdGetReport0 = _IOWR('T', 1, TdxReportReq);
// REPORTMACSTRUCT.REPORTDATA: after type (8), reserved (8), CPUSVN (16) and two SHA-384 hashes.
constexpr std::size_t kTdReportDataOffset = 128;

// Where an outblob carries REPORT_DATA: the SEV-SNP report at 0x50 (SNP ABI, ATTESTATION_REPORT),
// a TDX quote's TD report body at 520 after the 48-byte header (v4) and the body descriptor (v5).
std::optional<std::size_t> report_data_offset(const std::string& provider, ByteView outblob) {
  if (provider == "sev_guest") return 0x50;
  namespace tdx = attestation::tdx;
  if (outblob.size() < 2) return std::nullopt;
  const unsigned version = outblob[0] | (outblob[1] << 8);
  if (version == 4) return tdx::kHeaderSize + tdx::body_offset::kReportData;
  if (version == 5) {
    return tdx::kHeaderSize + tdx::kBodyDescriptorSize + tdx::body_offset::kReportData;
  }
  return std::nullopt;
}

// Removes the report directory on every path out.
struct ReportDir {
  fs::path path;
  ~ReportDir() { ::rmdir(path.c_str()); }
};

}  // namespace

Result<GuestEvidence> configfs_tsm_evidence(const ReportData& report_data,
                                            const fs::path& tsm_report_dir) {
  std::error_code ec;
  if (!fs::is_directory(tsm_report_dir, ec)) {
    return Error(ErrorCode::kNotFound,
                 "configfs-tsm: " + tsm_report_dir.string() +
                     " does not exist (Linux 6.7+ with configfs mounted at /sys/kernel/config)");
  }
  ReportDir dir{tsm_report_dir / ("cloister-agent-" + std::to_string(::getpid()))};
  if (::mkdir(dir.path.c_str(), 0700) != 0 && errno != EEXIST) {
    return os_error("configfs-tsm: mkdir " + dir.path.string());
  }
  CLOISTER_CHECK_OK(write_blob(dir.path / "inblob", report_data));
  CLOISTER_TRY(const std::string before,
               read_text_file(dir.path / "generation", kTsmAttributeLimit));
  CLOISTER_TRY(const std::string provider,
               read_text_file(dir.path / "provider", kTsmAttributeLimit));
  CLOISTER_TRY(Bytes outblob, read_file(dir.path / "outblob", kTsmBlobLimit));
  std::optional<Bytes> auxblob;
  if (fs::exists(dir.path / "auxblob", ec)) {
    CLOISTER_TRY(auxblob, read_file(dir.path / "auxblob", kTsmBlobLimit));
  }
  CLOISTER_TRY(const std::string after,
               read_text_file(dir.path / "generation", kTsmAttributeLimit));
  if (trimmed(before) != trimmed(after)) {
    return Error(ErrorCode::kUnavailable,
                 "configfs-tsm: generation changed from " + trimmed(before) + " to " +
                     trimmed(after) + " while reading: another writer used " + dir.path.string());
  }
  GuestEvidence evidence;
  const std::string kind = trimmed(provider);
  // Another writer's inblob landing between ours and the read would give evidence for its
  // REPORT_DATA: the outblob must carry the one asked for.
  if (kind == "sev_guest" || kind == "tdx_guest") {
    const auto at = report_data_offset(kind, outblob);
    if (!at || outblob.size() < *at + report_data.size() ||
        !std::equal(report_data.begin(), report_data.end(),
                    outblob.begin() + static_cast<std::ptrdiff_t>(*at))) {
      return Error(ErrorCode::kUnavailable,
                   "configfs-tsm: the " + kind + " outblob of " + std::to_string(outblob.size()) +
                       " bytes does not carry the REPORT_DATA written to " +
                       (dir.path / "inblob").string() + " (another writer used the entry?)");
    }
  }
  if (kind == "sev_guest") {
    evidence.pieces.push_back({EvidenceKind::kSnpReport, std::move(outblob)});
    if (auxblob && !auxblob->empty()) {
      evidence.pieces.push_back({EvidenceKind::kSnpCertTable, std::move(*auxblob)});
    }
  } else if (kind == "tdx_guest") {
    evidence.pieces.push_back({EvidenceKind::kTdxQuote, std::move(outblob)});
  } else {
    return Error(ErrorCode::kUnimplemented,
                 "configfs-tsm: provider: expected sev_guest or tdx_guest, found '" + kind + "'");
  }
  return evidence;
}

Result<GuestEvidence> sev_guest_evidence(const ReportData& report_data, const fs::path& device) {
  Fd fd(::open(device.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return os_error("open " + device.string());
  snp_report_req request{};
  std::memcpy(request.user_data, report_data.data(), report_data.size());
  snp_report_resp response{};
  Bytes certs(kCertPages * 4096);
  snp_ext_report_req ext{};
  ext.data = request;
  ext.certs_address = reinterpret_cast<__u64>(certs.data());
  ext.certs_len = static_cast<__u32>(certs.size());
  snp_guest_request_ioctl io{};
  io.msg_version = 1;
  io.req_data = reinterpret_cast<__u64>(&ext);
  io.resp_data = reinterpret_cast<__u64>(&response);
  bool with_certs = true;
  if (::ioctl(fd.get(), SNP_GET_EXT_REPORT, &io) != 0) {
    // Hosts that supply no certificates refuse the extended request; the plain one still works.
    io = snp_guest_request_ioctl{};
    io.msg_version = 1;
    io.req_data = reinterpret_cast<__u64>(&request);
    io.resp_data = reinterpret_cast<__u64>(&response);
    if (::ioctl(fd.get(), SNP_GET_REPORT, &io) != 0) {
      return Error(ErrorCode::kUnavailable,
                   os_error("SNP_GET_REPORT on " + device.string()).message() +
                       ", firmware error " + hex_number(io.exitinfo2));
    }
    with_certs = false;
  }
  // MSG_REPORT_RSP: status (4), report_size (4), reserved (24), the report.
  std::uint32_t status = 0, size = 0;
  std::memcpy(&status, response.data, 4);
  std::memcpy(&size, response.data + 4, 4);
  if (status != 0) {
    return Error(ErrorCode::kUnavailable,
                 "MSG_REPORT_RSP.status: expected 0, found " + std::to_string(status));
  }
  if (size != kSnpReportSize) {
    return Error(ErrorCode::kUnavailable,
                 "MSG_REPORT_RSP.report_size: expected 1184, found " + std::to_string(size));
  }
  GuestEvidence evidence;
  evidence.pieces.push_back(
      {EvidenceKind::kSnpReport, Bytes(response.data + 32, response.data + 32 + size)});
  if (with_certs) evidence.pieces.push_back({EvidenceKind::kSnpCertTable, std::move(certs)});
  return evidence;
}

Result<GuestEvidence> tdx_guest_evidence(const ReportData& report_data, const fs::path& device,
                                         const std::string& qgs_address,
                                         std::chrono::milliseconds timeout) {
  Fd fd(::open(device.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return os_error("open " + device.string());
  CLOISTER_TRY(const auto qgs, attestation::tdx::QgsClient::create(qgs_address));
  TdxReportReq request{};
  std::memcpy(request.reportdata, report_data.data(), report_data.size());
  if (::ioctl(fd.get(), kTdxCmdGetReport0, &request) != 0) {
    return Error(ErrorCode::kUnavailable,
                 os_error("TDX_CMD_GET_REPORT0 on " + device.string()).message());
  }
  if (std::memcmp(request.tdreport + kTdReportDataOffset, report_data.data(), report_data.size()) !=
      0) {
    return Error(ErrorCode::kUnavailable,
                 "TDX_CMD_GET_REPORT0 on " + device.string() +
                     ": the TDREPORT's REPORTDATA is not the one asked for");
  }
  auto quote = qgs.get_quote(ByteView(request.tdreport, sizeof request.tdreport), timeout);
  if (!quote) return Error(ErrorCode::kUnavailable, quote.error().message());
  GuestEvidence evidence;
  evidence.pieces.push_back({EvidenceKind::kTdxQuote, std::move(*quote)});
  return evidence;
}

Result<GuestEvidence> local_evidence(const ReportData& report_data,
                                     const LocalEvidenceSources& sources) {
  auto tsm = configfs_tsm_evidence(report_data, sources.tsm_report_dir);
  if (tsm || tsm.error().code() != ErrorCode::kNotFound) return tsm;
  auto sev = sev_guest_evidence(report_data, sources.sev_guest);
  if (sev || sev.error().code() != ErrorCode::kNotFound) return sev;
  auto tdx = tdx_guest_evidence(report_data, sources.tdx_guest, sources.qgs_address);
  if (tdx || tdx.error().code() != ErrorCode::kNotFound) return tdx;
  return Error(ErrorCode::kNotFound, "no TEE evidence source: " + tsm.error().message() + "; " +
                                         sev.error().message() + "; " + tdx.error().message());
}

}  // namespace cloister::sdk
