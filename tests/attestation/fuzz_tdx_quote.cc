// Fuzzes the TDX quote decoder and everything the verifier does with a quote it cannot trust:
// the PEM PCK chain, the SGX extension, the signatures and binding, the JSON rendering.
#include <cstddef>
#include <cstdint>

#include "cloister/attestation/tdx/report_json.h"
#include "cloister/attestation/tdx/verify.h"
#include "fuzz/fuzz_target.h"

using namespace cloister::attestation::tdx;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cloister::ByteView bytes(data, size);
  static const TdxVerifier verifier;
  TdxEvidence evidence;
  evidence.quote.assign(bytes.begin(), bytes.end());
  TdxVerifyOptions options;
  options.time = 1767225600;
  TdxVerification v = verifier.verify(evidence, options);
  tdx_report_to_json(v).dump();
  (void)looks_like_tdx_quote(bytes);
  (void)parse_tdx_quote(bytes);
  return 0;
}
