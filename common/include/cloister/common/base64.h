// The project's one base64 codec (RFC 4648): the standard alphabet with padding (§4) and the
// URL-safe alphabet without padding (§5, as JOSE uses it, RFC 7515 §2).
#pragma once

#include <string>
#include <string_view>

#include "cloister/common/bytes.h"

namespace cloister {

// Standard alphabet, '=' padding to a multiple of 4 characters.
std::string to_base64(ByteView bytes);

// URL-safe alphabet ('-', '_'), no padding.
std::string to_base64url(ByteView bytes);

// Strict decoding of to_base64() output: the standard alphabet, the padding present and
// correct, no whitespace, and the unused low bits of the last character zero (so every byte
// string has exactly one accepted text). Errors name the position and the character.
Result<Bytes> from_base64(std::string_view text);

// Whether from_base64url accepts '=' padding. JOSE (RFC 7515 §2) forbids it; Trustee's Azure
// evidence JSON (serde's URL_SAFE engine) writes it.
enum class Base64UrlPadding { kForbidden, kOptional };

// Strict decoding of to_base64url() output: the URL-safe alphabet, unused bits zero, and no
// padding, or with kOptional padding that, when present, completes the last quantum.
Result<Bytes> from_base64url(std::string_view text,
                             Base64UrlPadding padding = Base64UrlPadding::kForbidden);

}  // namespace cloister
