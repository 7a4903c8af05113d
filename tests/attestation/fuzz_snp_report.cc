// Fuzzes the SNP report decoder and everything the verifier does with a report it cannot
// trust: product detection, TCB decoding, KDS URL derivation, JSON rendering.
#include <cstddef>
#include <cstdint>

#include "cloister/attestation/snp/report_json.h"
#include "cloister/attestation/snp/verify.h"
#include "fuzz/fuzz_target.h"

using namespace cloister::attestation::snp;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cloister::ByteView bytes(data, size);
  static const SnpVerifier verifier;
  SnpEvidence evidence;
  evidence.report.assign(bytes.begin(), bytes.end());
  SnpVerifyOptions options;
  options.time = 1761955200;
  for (auto product : {std::optional<Product>(), std::optional<Product>(Product::kTurin)}) {
    options.product = product;
    SnpVerification v = verifier.verify(evidence, options);
    if (v.report) {
      snp_report_to_json(*v.report, v.product).dump();
      for (Product p : {Product::kMilan, Product::kTurin})
        v.report->reported_tcb.parts(p).to_string();
    }
  }
  (void)parse_snp_report(bytes);
  return 0;
}
