// Fuzz target: the guest-evidence stream parser, the bytes a hostile guest sends. The input is
// parsed whole and again fed in pieces of input-derived sizes; both must agree on the outcome
// and the evidence.
#include <cstddef>
#include <cstdint>

#include "cloister/sdk/guest_evidence.h"
#include "fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cloister::sdk;
  const cloister::ByteView input(data, size);
  const auto whole = parse_guest_evidence(input);
  GuestEvidenceParser parser;
  cloister::Status fed;
  std::size_t step = size > 0 ? 1 + data[0] % 61 : 1;
  for (std::size_t at = 0; at < size && fed.ok(); at += step, step = 1 + (step * 7) % 97)
    fed = parser.feed(input.subspan(at, std::min(step, size - at)));
  if ((fed.ok() && parser.done()) != whole.ok()) __builtin_trap();
  if (!whole.ok()) return 0;
  const GuestEvidence pieces = std::move(parser).take();
  if (pieces.pieces.size() != whole->pieces.size()) __builtin_trap();
  for (std::size_t i = 0; i < pieces.pieces.size(); ++i) {
    if (pieces.pieces[i].kind != whole->pieces[i].kind ||
        pieces.pieces[i].bytes != whole->pieces[i].bytes)
      __builtin_trap();
  }
  return 0;
}
