// Fuzzes the HCL report parser and the Azure evidence containers (Trustee's JSON, the vTPM
// quote's bincode and JSON forms).
#include <cstddef>
#include <cstdint>

#include "cloister/attestation/azure/evidence.h"
#include "cloister/attestation/azure/hcl.h"
#include "fuzz/fuzz_target.h"

using namespace cloister::attestation::azure;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cloister::ByteView bytes(data, size);
  (void)parse_hcl_report(bytes);
  if (looks_like_azure_evidence(bytes)) {
    if (auto e = parse_azure_evidence(bytes)) (void)parse_hcl_report(e->hcl_report);
  }
  (void)parse_vtpm_quote({bytes});
  if (size > 1) (void)parse_vtpm_quote({bytes.first(size / 2), bytes.subspan(size / 2)});
  return 0;
}
