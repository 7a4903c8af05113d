#include "cloister/attestation/tdx/tdreport.h"

#include <algorithm>

#include "cloister/common/hex.h"

namespace cloister::attestation::tdx {
namespace {

namespace off = tdreport_offset;

template <std::size_t N>
std::array<std::uint8_t, N> field(ByteView raw, std::size_t offset) {
  std::array<std::uint8_t, N> out{};
  std::copy_n(raw.begin() + static_cast<std::ptrdiff_t>(offset), N, out.begin());
  return out;
}

void put(std::span<std::uint8_t> out, std::size_t offset, ByteView value) {
  std::copy(value.begin(), value.end(), out.begin() + static_cast<std::ptrdiff_t>(offset));
}

Status require_zero(ByteView raw, std::size_t begin, std::size_t end, const char* what) {
  for (std::size_t i = begin; i < end; ++i) {
    if (raw[i] != 0) {
      return Error(std::string("TDREPORT ") + what + " (bytes " + hex_number(begin) + "-" +
                   hex_number(end - 1) + ") must be zero, found " + hex_number(raw[i]) + " at " +
                   hex_number(i));
    }
  }
  return {};
}

}  // namespace

Result<TdReportStruct> parse_tdreport(ByteView raw) {
  if (raw.size() != kTdReportStructSize) {
    return Error("TDREPORT is " + std::to_string(raw.size()) +
                 " bytes, expected 1024 (TDREPORT_STRUCT)");
  }
  const std::uint8_t type = raw[off::kReportType];
  if (type != kReportTypeTdx)
    return Error("TDREPORT REPORTTYPE.TYPE: expected 0x81 (TDX), found " + hex_number(type));
  TdReportStruct r;
  ReportMacStruct& m = r.mac;
  m.report_subtype = raw[off::kReportType + 1];
  m.report_version = raw[off::kReportType + 2];
  if (m.report_subtype != 0)
    return Error("TDREPORT REPORTTYPE.SUBTYPE: expected 0, found " + hex_number(m.report_subtype));
  if (m.report_version > 1) {
    return Error("TDREPORT REPORTTYPE.VERSION: expected 0 or 1, found " +
                 hex_number(m.report_version));
  }
  CLOISTER_CHECK_OK(require_zero(raw, off::kReportType + 3, off::kCpuSvn, "reserved field"));
  CLOISTER_CHECK_OK(require_zero(raw, off::kReportData + 64, off::kMac, "reserved field"));
  const std::size_t tcb = off::kTeeTcbInfo;
  CLOISTER_CHECK_OK(require_zero(raw, tcb + off::kTeeTcbInfoReserved, off::kTdInfo,
                                 "TEE_TCB_INFO reserved field and padding"));
  const std::size_t td = off::kTdInfo;
  CLOISTER_CHECK_OK(
      require_zero(raw, td + off::kTdInfoReserved, kTdReportStructSize, "TDINFO reserved field"));

  m.cpu_svn = field<16>(raw, off::kCpuSvn);
  m.tee_tcb_info_hash = field<48>(raw, off::kTeeTcbInfoHash);
  m.tee_info_hash = field<48>(raw, off::kTeeInfoHash);
  m.report_data = field<64>(raw, off::kReportData);
  m.mac = field<32>(raw, off::kMac);
  TeeTcbInfo& t = r.tee_tcb_info;
  t.valid = field<8>(raw, tcb + off::kValid);
  t.tee_tcb_svn = field<16>(raw, tcb + off::kTeeTcbSvn);
  t.mr_seam = field<48>(raw, tcb + off::kMrSeam);
  t.mr_signer_seam = field<48>(raw, tcb + off::kMrSignerSeam);
  t.attributes = field<8>(raw, tcb + off::kSeamAttributes);
  t.tee_tcb_svn2 = field<16>(raw, tcb + off::kTeeTcbSvn2);
  TdInfo& i = r.td_info;
  i.attributes = load_le64(raw, td + off::kAttributes);
  i.xfam = load_le64(raw, td + off::kXfam);
  i.mr_td = field<48>(raw, td + off::kMrTd);
  i.mr_config_id = field<48>(raw, td + off::kMrConfigId);
  i.mr_owner = field<48>(raw, td + off::kMrOwner);
  i.mr_owner_config = field<48>(raw, td + off::kMrOwnerConfig);
  for (std::size_t n = 0; n < 4; ++n) i.rtmr[n] = field<48>(raw, td + off::kRtmr + 48 * n);
  i.servtd_hash = field<48>(raw, td + off::kServTdHash);
  return r;
}

std::array<std::uint8_t, kTeeTcbInfoSize> encode_tee_tcb_info(const TeeTcbInfo& t) {
  std::array<std::uint8_t, kTeeTcbInfoSize> out{};
  put(out, off::kValid, t.valid);
  put(out, off::kTeeTcbSvn, t.tee_tcb_svn);
  put(out, off::kMrSeam, t.mr_seam);
  put(out, off::kMrSignerSeam, t.mr_signer_seam);
  put(out, off::kSeamAttributes, t.attributes);
  put(out, off::kTeeTcbSvn2, t.tee_tcb_svn2);
  return out;
}

std::array<std::uint8_t, kTdInfoSize> encode_td_info(const TdInfo& i) {
  std::array<std::uint8_t, kTdInfoSize> out{};
  store_le64(out, off::kAttributes, i.attributes);
  store_le64(out, off::kXfam, i.xfam);
  put(out, off::kMrTd, i.mr_td);
  put(out, off::kMrConfigId, i.mr_config_id);
  put(out, off::kMrOwner, i.mr_owner);
  put(out, off::kMrOwnerConfig, i.mr_owner_config);
  for (std::size_t n = 0; n < 4; ++n) put(out, off::kRtmr + 48 * n, i.rtmr[n]);
  put(out, off::kServTdHash, i.servtd_hash);
  return out;
}

std::array<std::uint8_t, kTdReportStructSize> encode_tdreport(const TdReportStruct& r) {
  std::array<std::uint8_t, kTdReportStructSize> out{};
  const ReportMacStruct& m = r.mac;
  out[off::kReportType] = kReportTypeTdx;
  out[off::kReportType + 1] = m.report_subtype;
  out[off::kReportType + 2] = m.report_version;
  put(out, off::kCpuSvn, m.cpu_svn);
  put(out, off::kTeeTcbInfoHash, m.tee_tcb_info_hash);
  put(out, off::kTeeInfoHash, m.tee_info_hash);
  put(out, off::kReportData, m.report_data);
  put(out, off::kMac, m.mac);
  put(out, off::kTeeTcbInfo, encode_tee_tcb_info(r.tee_tcb_info));
  put(out, off::kTdInfo, encode_td_info(r.td_info));
  return out;
}

}  // namespace cloister::attestation::tdx
