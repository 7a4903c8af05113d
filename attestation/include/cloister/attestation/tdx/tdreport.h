// TDREPORT_STRUCT, the 1024-byte report the TDX module writes for TDG.MR.REPORT and the Quoting
// Enclave turns into a quote (Intel TDX Module ABI; constants in tdx/abi.h). It travels from
// guest memory to the host's quote generation, so parse_tdreport() treats it as hostile.
#pragma once

#include <array>
#include <cstdint>

#include "cloister/attestation/tdx/abi.h"
#include "cloister/attestation/tdx/quote.h"
#include "cloister/common/bytes.h"

namespace cloister::attestation::tdx {

struct ReportMacStruct {
  std::uint8_t report_subtype = 0;
  std::uint8_t report_version = 0;  // 0: TDX 1.0 TDINFO; 1: SERVTD_HASH in use (TDX 1.5)
  std::array<std::uint8_t, 16> cpu_svn{};
  Bytes48 tee_tcb_info_hash{};
  Bytes48 tee_info_hash{};
  std::array<std::uint8_t, 64> report_data{};
  std::array<std::uint8_t, 32> mac{};
  bool operator==(const ReportMacStruct&) const = default;
};

// The TDX module's identity and TCB.
struct TeeTcbInfo {
  std::array<std::uint8_t, 8> valid{};  // bit i: the 8 bytes at offset 8*i are valid
  std::array<std::uint8_t, 16> tee_tcb_svn{};
  Bytes48 mr_seam{};
  Bytes48 mr_signer_seam{};
  std::array<std::uint8_t, 8> attributes{};  // SEAM attributes
  std::array<std::uint8_t, 16> tee_tcb_svn2{};
  bool operator==(const TeeTcbInfo&) const = default;
};

// The TD's measurements and attributes: the state TDG.MR.RTMR.EXTEND changes.
struct TdInfo {
  std::uint64_t attributes = 0;  // TD_ATTRIBUTES
  std::uint64_t xfam = 0;
  Bytes48 mr_td{};
  Bytes48 mr_config_id{};
  Bytes48 mr_owner{};
  Bytes48 mr_owner_config{};
  std::array<Bytes48, 4> rtmr{};
  Bytes48 servtd_hash{};
  bool operator==(const TdInfo&) const = default;
};

struct TdReportStruct {
  ReportMacStruct mac;  // REPORTTYPE.TYPE is 0x81 (TDX)
  TeeTcbInfo tee_tcb_info;
  TdInfo td_info;
  bool operator==(const TdReportStruct&) const = default;
};

// Decodes exactly 1024 bytes. Fails, naming the field and offset, on another size, a REPORTTYPE
// other than TDX (0x81) subtype 0 version 0 or 1, or a non-zero reserved byte. The MAC and the
// two hashes are decoded, not checked: only the TDX module that made a report can check its
// MAC.
Result<TdReportStruct> parse_tdreport(ByteView bytes);

// The inverse of parse_tdreport().
std::array<std::uint8_t, kTdReportStructSize> encode_tdreport(const TdReportStruct& report);

// The encoded TEE_TCB_INFO (239 bytes) and TDINFO_STRUCT (512 bytes), whose SHA-384 digests
// REPORTMACSTRUCT carries.
std::array<std::uint8_t, kTeeTcbInfoSize> encode_tee_tcb_info(const TeeTcbInfo& info);
std::array<std::uint8_t, kTdInfoSize> encode_td_info(const TdInfo& info);

}  // namespace cloister::attestation::tdx
