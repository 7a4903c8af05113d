// Fuzzes the TDREPORT_STRUCT parser the simulated Quoting Enclave runs on reports from guest
// memory: whatever parses must encode back to the same 1024 bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "cloister/attestation/tdx/tdreport.h"
#include "fuzz/fuzz_target.h"

using namespace cloister::attestation::tdx;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cloister::ByteView bytes(data, size);
  auto report = parse_tdreport(bytes);
  if (!report) return 0;
  const auto encoded = encode_tdreport(*report);
  if (!std::equal(encoded.begin(), encoded.end(), bytes.begin(), bytes.end())) std::abort();
  return 0;
}
