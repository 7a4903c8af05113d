// Fuzzes the TPMS_ATTEST (TPM 2.0 quote) parser and its PCR selection.
#include <cstddef>
#include <cstdint>

#include "cloister/attestation/tpm/attest.h"
#include "fuzz/fuzz_target.h"

using namespace cloister::attestation::tpm;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (auto a = parse_tpms_attest(cloister::ByteView(data, size))) {
    for (const auto& [alg, pcr] : a->selected_pcrs()) (void)alg_name(alg);
  }
  return 0;
}
