// Fuzzes the TCG PC Client event log parser and the SHA-256 PCR replay.
#include <cstddef>
#include <cstdint>

#include "cloister/attestation/tpm/event_log.h"
#include "fuzz/fuzz_target.h"

using namespace cloister::attestation::tpm;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (auto log = parse_tpm_event_log(cloister::ByteView(data, size)))
    (void)replay_sha256_pcrs(*log);
  return 0;
}
