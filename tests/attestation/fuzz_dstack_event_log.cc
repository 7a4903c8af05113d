// Fuzzes dstack's JSON event log parser and its RTMR replay.
#include <cstddef>
#include <cstdint>

#include "cloister/attestation/tdx/dstack_event_log.h"
#include "fuzz/fuzz_target.h"

using namespace cloister::attestation::tdx;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (auto log = parse_dstack_event_log(cloister::ByteView(data, size)))
    (void)replay_dstack_rtmrs(*log);
  return 0;
}
