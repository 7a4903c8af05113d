// Evidence from the TEE this process runs in (the agent inside a confidential guest):
//
// 1. Linux configfs-tsm (6.7+): a report directory under /sys/kernel/config/tsm/report; the
//    REPORT_DATA goes to `inblob`, the evidence comes from `outblob` (an SEV-SNP report or a TDX
//    quote, as `provider` says: "sev_guest" or "tdx_guest") and `auxblob` (SEV-SNP: the
//    certificate table, when the host supplies one). `generation` is read before and after, so
//    that a report written by a concurrent user of the same directory is never taken as ours.
// 2. /dev/sev-guest: SNP_GET_EXT_REPORT (report and certificate table), then SNP_GET_REPORT
//    when the host gives no certificates.
// 3. /dev/tdx_guest: TDX_CMD_GET_REPORT0 gives the TDREPORT (Linux 6.2+), which only the
//    host's Quote Generation Service turns into a quote: it is sent to the QGS over vsock
//    (CID 2, port 4050, as DCAP's libtdx_attest does; attestation/tdx/qgs.h), and the quote is
//    the evidence.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "cloister/attestation/tdx/qgs.h"
#include "cloister/common/result.h"
#include "cloister/sdk/guest_evidence.h"

namespace cloister::sdk {

inline constexpr const char* kConfigfsTsmReportDir = "/sys/kernel/config/tsm/report";
inline constexpr const char* kSevGuestDevice = "/dev/sev-guest";
inline constexpr const char* kTdxGuestDevice = "/dev/tdx_guest";

// Evidence through configfs-tsm under `tsm_report_dir`. Fails with kNotFound when the directory
// does not exist (no configfs-tsm), naming it.
Result<GuestEvidence> configfs_tsm_evidence(
    const ReportData& report_data,
    const std::filesystem::path& tsm_report_dir = kConfigfsTsmReportDir);

// Evidence through the SEV-SNP guest device. Fails with kNotFound when there is no such device.
Result<GuestEvidence> sev_guest_evidence(const ReportData& report_data,
                                         const std::filesystem::path& device = kSevGuestDevice);

// Evidence through the TDX guest device: the TDREPORT for `report_data` (its REPORTDATA checked
// to be `report_data`), then the quote from the QGS at `qgs_address`, the whole exchange within
// `timeout`. Fails with kNotFound when there is no such device.
Result<GuestEvidence> tdx_guest_evidence(
    const ReportData& report_data, const std::filesystem::path& device = kTdxGuestDevice,
    const std::string& qgs_address = attestation::tdx::kQgsGuestAddress,
    std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Where local_evidence() looks, in this order.
struct LocalEvidenceSources {
  std::filesystem::path tsm_report_dir = kConfigfsTsmReportDir;
  std::filesystem::path sev_guest = kSevGuestDevice;
  std::filesystem::path tdx_guest = kTdxGuestDevice;
  std::string qgs_address = attestation::tdx::kQgsGuestAddress;
};

// configfs-tsm, falling back to /dev/sev-guest and then /dev/tdx_guest when the one before is
// absent (any other failure of a source that exists is returned as it is). The error names all
// three when none exists.
Result<GuestEvidence> local_evidence(const ReportData& report_data,
                                     const LocalEvidenceSources& sources = {});

}  // namespace cloister::sdk
