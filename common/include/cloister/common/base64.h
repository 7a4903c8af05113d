// The project's one base64 codec (RFC 4648).
#pragma once

#include <string_view>

#include "cloister/common/bytes.h"

namespace cloister {

// Decodes base64url (RFC 4648 §5: '-' and '_' for '+' and '/'), as JWKs (RFC 7517) and
// Trustee's Azure evidence carry it. Padding is optional; when present it must complete the
// last quantum. Rejects other characters (naming the position), a length that leaves a single
// character in the last quantum, and non-zero bits left over in the last character (a
// non-canonical encoding).
Result<Bytes> from_base64url(std::string_view text);

}  // namespace cloister
