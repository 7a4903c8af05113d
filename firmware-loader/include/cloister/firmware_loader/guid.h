// GUIDs as UEFI firmware stores them.
//
// edk2 binaries (the OVMF footer table, the SEV hashes table) store a GUID in the EFI
// "mixed-endian" form: the first three fields little-endian, the last eight bytes as written
// (UEFI spec, Appendix A; Python's uuid.UUID.bytes_le). Guid keeps exactly those 16 stored
// bytes, so comparing a Guid with bytes read from an image is a plain byte comparison.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"

namespace cloister::fw {

class Guid {
 public:
  static constexpr std::size_t kSize = 16;
  using Stored = std::array<std::uint8_t, kSize>;

  constexpr Guid() = default;
  constexpr explicit Guid(const Stored& stored) : stored_(stored) {}

  // A GUID constant from its canonical text, checked at compile time:
  //   constexpr Guid kFooter = Guid::literal("96b582de-1fb2-45f7-baea-a366c55a082d");
  static consteval Guid literal(const char (&text)[37]) {
    Stored out{};
    // Canonical field layout: 8-4-4-4-12 hex digits. The first three fields are stored
    // little-endian, the remaining eight bytes in text order.
    constexpr int kTextPos[kSize] = {6, 4, 2, 0, 11, 9, 16, 14, 19, 21, 24, 26, 28, 30, 32, 34};
    for (std::size_t i = 0; i < kSize; ++i) {
      out[i] = static_cast<std::uint8_t>(literal_nibble(text[kTextPos[i]]) << 4 |
                                         literal_nibble(text[kTextPos[i] + 1]));
    }
    if (text[8] != '-' || text[13] != '-' || text[18] != '-' || text[23] != '-')
      throw "Guid::literal: dashes must be at positions 8, 13, 18 and 23";
    return Guid(out);
  }

  // Parses the canonical text form (either case); the error names the offending position.
  static Result<Guid> parse(std::string_view text);

  // The 16 bytes as stored in firmware (mixed-endian); `stored` must hold exactly 16 bytes.
  static Guid from_stored(ByteView stored);

  const Stored& stored() const { return stored_; }
  ByteView bytes() const { return stored_; }

  // Canonical lower-case text, e.g. "96b582de-1fb2-45f7-baea-a366c55a082d".
  std::string to_string() const;

  friend constexpr bool operator==(const Guid&, const Guid&) = default;

 private:
  static consteval std::uint8_t literal_nibble(char c) {
    if (c >= '0' && c <= '9') return static_cast<std::uint8_t>(c - '0');
    if (c >= 'a' && c <= 'f') return static_cast<std::uint8_t>(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return static_cast<std::uint8_t>(c - 'A' + 10);
    throw "Guid::literal: not a hex digit";
  }

  Stored stored_{};
};

}  // namespace cloister::fw
