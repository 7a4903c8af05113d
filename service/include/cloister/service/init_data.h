// Init-data (Trustee kbs/docs/initdata.md): a TOML document the host hands a guest at launch —
// the guest's agent policy, its KBS and CDH configuration — whose digest the host puts in the
// hardware evidence (SEV-SNP HOST_DATA, TDX MRCONFIGID), so that the document the guest sends
// with its attestation is the one it was launched with. As Trustee's attestation service:
//
//   version = "0.1.0"
//   algorithm = "sha384"              # sha256 | sha384 | sha512
//   [data]
//   "aa.toml" = '''…'''               # name → text
//
// The digest is `algorithm` over the document's bytes exactly as sent (no canonical form).
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

#include "cloister/common/bytes.h"
#include "cloister/common/file.h"
#include "cloister/common/result.h"
#include "cloister/service/kbs.h"

namespace cloister::service::init_data {

// Outside strings and comments, a document may hold at most kMaxDots dots (each dot of a dotted
// key or table header nests one more table) and kMaxOpenBrackets brackets or braces open at once,
// so its tables nest a few hundred levels at most.
inline constexpr std::size_t kMaxDots = 256;
inline constexpr std::size_t kMaxOpenBrackets = 32;
// "aa.toml", "cdh.toml" or a policy_data nested deeper stays text in the claims: the token that
// carries them is read with 64 levels of JSON nesting in all.
inline constexpr std::size_t kMaxClaimsDepth = 32;

// An init-data file read for the KBS client: the KBS takes attest bodies of up to 2 MiB.
inline constexpr FileLimit kFileLimit{
    1 << 20, "init-data document can be (a KBS takes attest bodies of at most 2 MiB)"};

struct Document {
  std::string version;
  std::string algorithm;  // "sha256", "sha384" or "sha512"
  Bytes digest;           // `algorithm` over the document's bytes as sent
  // The [data] table as a JSON object of strings, as Trustee's token carries it: "cdh.toml" and
  // "aa.toml" replaced by their TOML as JSON when they parse, and "policy.rego" replaced by
  // "agent_policy_claims" (the JSON after its "policy_data := ") when that parses; each only
  // when it is ASCII within the limits above and nests at most kMaxClaimsDepth levels.
  nlohmann::json claims;
};

// Parses Attestation.init-data. Errors (kInvalidArgument) name the member: a format other than
// "toml" (the only one Trustee's attestation service takes), a byte outside ASCII (Trustee takes
// any UTF-8; the TOML parser here is not safe beyond ASCII), more dots or open brackets than the
// limits above, a document that is not TOML (with its line and column), a missing or non-string
// version or algorithm, an unknown algorithm, a missing [data] table or a value in it that is not a
// string.
Result<Document> parse(const kbs::InitData& wire);

// The digest as a hardware field of `length` bytes holds it: truncated, or padded with zero
// bytes (Trustee's regularize_data: HOST_DATA takes 32 bytes, MRCONFIGID 48).
Bytes regularize(ByteView digest, std::size_t length);

// Whether `report` (a verdict's report as JSON, signed and checked) holds the document's digest in
// the field the host set at launch: SEV-SNP "host_data" (32 bytes), TDX "mr_config_id" (48), as
// regularize() makes it. Fails (kInvalidArgument) naming the field, both values and the
// document's algorithm.
Status check_binding(kbs::Tee tee, const Document& document, const nlohmann::json& report);

}  // namespace cloister::service::init_data
