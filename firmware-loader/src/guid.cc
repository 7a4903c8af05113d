#include "cloister/firmware_loader/guid.h"

#include <algorithm>
#include <cassert>

#include "cloister/common/hex.h"

namespace cloister::fw {
namespace {

// For each stored byte, its index among the bytes as the canonical text lists them: the
// first three fields (4, 2 and 2 bytes) are stored little-endian, the rest in text order.
constexpr std::size_t kTextByte[Guid::kSize] = {3, 2, 1,  0,  5,  4,  7,  6,
                                                8, 9, 10, 11, 12, 13, 14, 15};

}  // namespace

Result<Guid> Guid::parse(std::string_view text) {
  if (text.size() != 36)
    return Error("GUID '" + std::string(text) + "': expected 36 characters, found " +
                 std::to_string(text.size()));
  for (std::size_t pos : {8u, 13u, 18u, 23u}) {
    if (text[pos] != '-')
      return Error("GUID '" + std::string(text) + "': expected '-' at position " +
                   std::to_string(pos));
  }
  std::string digits(text);
  std::erase(digits, '-');
  auto bytes = from_hex_exact(digits, kSize);
  if (!bytes) return bytes.error().with_context("GUID '" + std::string(text) + "'");
  Stored out{};
  for (std::size_t i = 0; i < kSize; ++i) out[i] = (*bytes)[kTextByte[i]];
  return Guid(out);
}

Guid Guid::from_stored(ByteView stored) {
  assert(stored.size() == kSize);
  Stored out{};
  std::copy_n(stored.begin(), kSize, out.begin());
  return Guid(out);
}

std::string Guid::to_string() const {
  Stored text_order{};
  for (std::size_t i = 0; i < kSize; ++i) text_order[kTextByte[i]] = stored_[i];
  std::string text = to_hex(text_order);
  for (std::size_t pos : {8u, 13u, 18u, 23u}) text.insert(pos, 1, '-');
  return text;
}

}  // namespace cloister::fw
