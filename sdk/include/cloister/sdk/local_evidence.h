// Evidence from the TEE this process runs in (the agent inside a confidential guest):
//
// 1. Linux configfs-tsm (6.7+): a report directory under /sys/kernel/config/tsm/report; the
//    REPORT_DATA goes to `inblob`, the evidence comes from `outblob` (an SEV-SNP report or a TDX
//    quote, as `provider` says: "sev_guest" or "tdx_guest") and `auxblob` (SEV-SNP: the
//    certificate table, when the host supplies one). `generation` is read before and after, so
//    that a report written by a concurrent user of the same directory is never taken as ours.
// 2. /dev/sev-guest: SNP_GET_EXT_REPORT (report and certificate table), then SNP_GET_REPORT
//    when the host gives no certificates.
// TDX without configfs-tsm is not supported: /dev/tdx_guest yields a TDREPORT, which only the
// host's quoting enclave turns into a quote (the kernel's configfs-tsm does that).
#pragma once

#include <filesystem>

#include "cloister/common/result.h"
#include "cloister/sdk/guest_evidence.h"

namespace cloister::sdk {

inline constexpr const char* kConfigfsTsmReportDir = "/sys/kernel/config/tsm/report";
inline constexpr const char* kSevGuestDevice = "/dev/sev-guest";

// Evidence through configfs-tsm under `tsm_report_dir`. Fails with kNotFound when the directory
// does not exist (no configfs-tsm), naming it.
Result<GuestEvidence> configfs_tsm_evidence(
    const ReportData& report_data,
    const std::filesystem::path& tsm_report_dir = kConfigfsTsmReportDir);

// Evidence through the SEV-SNP guest device. Fails with kNotFound when there is no such device.
Result<GuestEvidence> sev_guest_evidence(const ReportData& report_data,
                                         const std::filesystem::path& device = kSevGuestDevice);

// configfs-tsm, falling back to /dev/sev-guest when configfs-tsm is absent. The error names
// both when neither exists.
Result<GuestEvidence> local_evidence(const ReportData& report_data);

}  // namespace cloister::sdk
