// The one strict JSON parser: every JSON document Cloister reads from outside (policies, VM
// configs, Intel collateral) goes through it, so no input means one thing to Cloister and another
// to a parser that keeps a different duplicate.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "cloister/common/result.h"

namespace cloister {

// Parses `text` as one JSON value. Fails on invalid JSON ("<what>: not valid JSON (parse error
// at line 1, column 9: …)") and on an object that repeats a key at any depth, naming the repeated
// member by its JSON Pointer (RFC 6901): "<what>: duplicate key \"snp\" at /snp". `what` names the
// document.
Result<nlohmann::json> parse_json_strict(std::string_view text, const std::string& what);

}  // namespace cloister
