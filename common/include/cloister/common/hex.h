// The project's one hex codec.
#pragma once

#include <string>
#include <string_view>

#include "cloister/common/bytes.h"

namespace cloister {

// Lower-case hex, two digits per byte, no prefix.
std::string to_hex(ByteView bytes);

// Outside bytes quoted in a message: at most `max` of them, printable ASCII as it is and every
// other byte (and the backslash) as \xNN, so the message is valid UTF-8 and shows what came.
std::string printable(std::string_view bytes, std::size_t max = std::string_view::npos);

// A number as "0x" and lower-case hex digits without leading zeros ("0x1fffce", "0x0"): how
// addresses, offsets, sizes and bit fields appear in messages and JSON, as in the specs.
std::string hex_number(std::uint64_t value);

// Parses hex digits (either case), optionally prefixed by "0x"/"0X". Rejects odd lengths and
// non-hex characters, naming the position.
Result<Bytes> from_hex(std::string_view text);

// from_hex plus an exact length check: "expected 48 bytes (96 hex digits), found 47 bytes".
Result<Bytes> from_hex_exact(std::string_view text, std::size_t size);

// Exactly two hex digits (either case, no prefix: "0X" is not a byte) as one byte, for fields
// made of single bytes such as a MAC address's pairs or a URL escape.
Result<std::uint8_t> hex_byte(std::string_view digits);

}  // namespace cloister
