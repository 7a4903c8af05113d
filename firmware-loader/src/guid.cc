#include "cloister/firmware_loader/guid.h"

#include <algorithm>
#include <cassert>

#include "cloister/common/hex.h"

namespace cloister::fw {
namespace {

// Where each stored byte's two hex digits sit in the canonical text (see Guid::literal).
constexpr std::size_t kTextPos[Guid::kSize] = {6,  4,  2,  0,  11, 9,  16, 14,
                                               19, 21, 24, 26, 28, 30, 32, 34};

int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

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
  Stored out{};
  for (std::size_t i = 0; i < kSize; ++i) {
    const int hi = nibble(text[kTextPos[i]]);
    const int lo = nibble(text[kTextPos[i] + 1]);
    if (hi < 0 || lo < 0)
      return Error("GUID '" + std::string(text) + "': expected hex digits at position " +
                   std::to_string(kTextPos[i]));
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return Guid(out);
}

Guid Guid::from_stored(ByteView stored) {
  assert(stored.size() == kSize);
  Stored out{};
  std::copy_n(stored.begin(), kSize, out.begin());
  return Guid(out);
}

std::string Guid::to_string() const {
  std::string text(36, '-');
  for (std::size_t i = 0; i < kSize; ++i) {
    const std::string digits = to_hex(ByteView(&stored_[i], 1));
    text[kTextPos[i]] = digits[0];
    text[kTextPos[i] + 1] = digits[1];
  }
  return text;
}

}  // namespace cloister::fw
