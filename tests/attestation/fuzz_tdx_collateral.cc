// Fuzzes collateral recognition and parsing (TCB Info and QE Identity responses, bundles, PEM
// chains, CRLs) and runs the TCB status algorithm over whatever parses.
#include <cstddef>
#include <cstdint>

#include "cloister/attestation/tdx/tcb.h"
#include "fuzz/fuzz_target.h"

using namespace cloister::attestation::tdx;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cloister::ByteView bytes(data, size);
  TdxCollateral collateral;
  (void)add_collateral(bytes, "fuzz", collateral);
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)parse_tcb_info(text);
  (void)parse_qe_identity(text);
  // The algorithm over each parsed TCB Info, for a platform at a few TCB points.
  TdxQuote quote;
  PckExtensions pck;
  for (const auto& info : collateral.tcb_infos) {
    const QeIdentity* qe =
        collateral.qe_identities.empty() ? nullptr : &collateral.qe_identities[0].value.value;
    for (std::uint8_t svn : {0, 3, 255}) {
      pck.tcb_components.fill(svn);
      pck.pcesvn = svn;
      quote.td_report.tee_tcb_svn.fill(svn);
      quote.td_report.tee_tcb_svn[1] = static_cast<std::uint8_t>(svn & 3);
      quote.td_report.tee_tcb_svn2 = quote.td_report.tee_tcb_svn;
      quote.qe_report.isv_svn = svn;
      (void)evaluate_tdx_tcb(info.value.value, qe, pck, quote);
    }
  }
  return 0;
}
