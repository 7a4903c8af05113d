// Fuzzes the QGS response parser (a quote generation service is outside the VMM's and the agent's
// trust): any input parses or fails with a message; a parsed quote lies inside the input.
#include <cstdlib>

#include "cloister/attestation/tdx/qgs.h"
#include "fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto quote = cloister::attestation::tdx::parse_qgs_response(cloister::ByteView(data, size));
  if (quote.ok() && (quote->empty() || quote->size() > size)) std::abort();
  return 0;
}
