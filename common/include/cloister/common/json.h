// The one strict JSON parser: every JSON document Cloister reads from outside (policies, VM
// configs, Intel collateral) goes through it, so no input means one thing to Cloister and another
// to a parser that keeps a different duplicate.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "cloister/common/result.h"

namespace cloister {

// Nesting deeper than this is refused: no document Cloister reads nests beyond a handful of
// levels, and a deep one only costs memory and stack in whoever walks it next.
inline constexpr int kMaxJsonDepth = 64;

// Parses `text` as one JSON value. Fails on invalid JSON ("<what>: not valid JSON (parse error
// at line 1, column 9: …)"), on an object that repeats a key at any depth, naming the repeated
// member by its JSON Pointer (RFC 6901): "<what>: duplicate key \"snp\" at /snp", and on
// nesting deeper than kMaxJsonDepth ("<what>: nesting deeper than 64 levels at /a/0/…"). `what`
// names the document.
Result<nlohmann::json> parse_json_strict(std::string_view text, const std::string& what);

// Serializes `value` (`indent` as nlohmann's dump()). A string holding bytes that are not UTF-8
// (a client's, a guest's or an evidence file's, quoted into a message) gets U+FFFD in their
// place instead of throwing: for every document written from values that outsiders shaped.
// DEL and the C1 controls (U+0080 to U+009F) are written as \u00XX escapes, as the C0 ones
// are, so no control character reaches a terminal that shows the document.
std::string dump_json(const nlohmann::json& value, int indent = -1);

}  // namespace cloister
