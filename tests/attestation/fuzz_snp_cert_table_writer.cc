// encode_cert_table() against parse_cert_table(): the encoding of any parsed table parses back to
// the same entries, and a table already in the writer's layout (entries packed in order after the
// terminator, zero padding to a whole number of pages) encodes back to itself, byte for byte.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "cloister/attestation/snp/cert_table.h"
#include "fuzz/fuzz_target.h"

using namespace cloister::attestation::snp;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cloister::ByteView bytes(data, size);
  auto entries = parse_cert_table(bytes);
  if (!entries) return 0;
  std::vector<std::pair<Guid, cloister::Bytes>> pairs;
  for (const auto& e : *entries) pairs.emplace_back(e.guid, e.data);
  const cloister::Bytes encoded = encode_cert_table(pairs);
  auto again = parse_cert_table(encoded);
  if (!again || again->size() != entries->size()) std::abort();
  constexpr std::size_t kEntrySize = 24;  // GUID, u32 offset, u32 length
  bool packed = true;
  std::size_t next = (entries->size() + 1) * kEntrySize;
  for (std::size_t i = 0; i < entries->size(); ++i) {
    const auto& a = (*entries)[i];
    const auto& b = (*again)[i];
    if (a.guid != b.guid || a.data != b.data) std::abort();
    packed = packed && a.offset == next;
    next += a.length;
  }
  if (!packed || next > size) return 0;
  const bool padded = size % 4096 == 0 && size - next < 4096 &&
                      std::all_of(bytes.begin() + static_cast<std::ptrdiff_t>(next), bytes.end(),
                                  [](std::uint8_t b) { return b == 0; });
  if (padded && encoded != cloister::Bytes(bytes.begin(), bytes.end())) std::abort();
  return 0;
}
