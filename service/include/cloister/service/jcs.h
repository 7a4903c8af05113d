// RFC 8785 JSON Canonicalization Scheme (JCS): the one serializer whose bytes are hashed or
// signed. Not nlohmann's dump(): JCS sorts object members by their UTF-16 code units (§3.2.3),
// formats numbers as ECMAScript's Number.prototype.toString does (§3.2.2.3) and escapes
// strings as ECMAScript's JSON.stringify does (§3.2.2.2).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "cloister/common/result.h"

namespace cloister::service {

// The canonical UTF-8 text of `value`, without whitespace. Fails, naming the JSON pointer of
// the offending value, for what I-JSON (RFC 7493) cannot carry: NaN or infinite numbers,
// integers beyond ±2^53 (not exactly representable as the IEEE-754 doubles JCS serializes),
// strings or keys that are not valid UTF-8, and binary values.
Result<std::string> canonical_json(const nlohmann::json& value);

// `text` with every byte that is not part of a well-formed UTF-8 sequence (a stray or
// truncated sequence, an overlong form, a surrogate, a code point past U+10FFFF) replaced by
// U+FFFD, so that text quoting a client's bytes can be canonicalized; valid UTF-8 comes back
// unchanged.
std::string replace_invalid_utf8(std::string_view text);

// ECMAScript's Number.prototype.toString for a finite double ("1e+21", "0.000001", "5e-324";
// -0 is "0"): the number serialization of RFC 8785 §3.2.2.3. Fails for NaN and infinities.
Result<std::string> ecmascript_number(double value);

}  // namespace cloister::service
