// encode_tdx_quote() is the exact inverse of decode_tdx_quote(): every input that decodes without
// format problems must encode back to its quote bytes (the input up to the end of the signature
// data), byte for byte.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "cloister/attestation/tdx/quote.h"
#include "fuzz/fuzz_target.h"

using namespace cloister::attestation::tdx;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cloister::ByteView bytes(data, size);
  auto quote = decode_tdx_quote(bytes);
  if (!quote || !quote->format_problems.empty()) return 0;
  auto encoded = encode_tdx_quote(*quote);
  const auto quote_bytes = bytes.first(size - quote->trailing_bytes);
  if (!encoded ||
      !std::equal(encoded->begin(), encoded->end(), quote_bytes.begin(), quote_bytes.end()))
    std::abort();
  return 0;
}
