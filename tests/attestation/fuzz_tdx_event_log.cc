// Fuzzes the CC event log parser, RTMR replay and the CCEL ACPI table parser.
#include <cstddef>
#include <cstdint>

#include "cloister/attestation/tdx/event_log.h"
#include "fuzz/fuzz_target.h"

using namespace cloister::attestation::tdx;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cloister::ByteView bytes(data, size);
  if (auto log = parse_cc_event_log(bytes)) {
    (void)replay_rtmrs(*log);
    for (const auto& e : log->events) (void)event_type_name(e.type);
  }
  (void)parse_ccel_table(bytes);
  return 0;
}
