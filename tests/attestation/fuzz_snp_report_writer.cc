// encode_snp_report() is the exact inverse of decode_snp_report(): every input that decodes
// without format problems must encode back to itself, byte for byte.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "cloister/attestation/snp/report.h"
#include "fuzz/fuzz_target.h"

using namespace cloister::attestation::snp;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cloister::ByteView bytes(data, size);
  auto report = decode_snp_report(bytes);
  if (!report || !report->format_problems.empty()) return 0;
  auto encoded = encode_snp_report(*report);
  if (!encoded || !std::equal(encoded->begin(), encoded->end(), bytes.begin(), bytes.end()))
    std::abort();
  return 0;
}
