#include "cloister/service/init_data.h"

#include <gtest/gtest.h>

#include <string>

#include "cloister/common/hex.h"

namespace cloister::service::init_data {
namespace {

// An init-data document as Kata hands it to guest-components (Trustee kbs/docs/initdata.md),
// with the digests sha384sum and sha256sum give for these bytes.
const std::string kDocument =
    "algorithm = \"sha384\"\nversion = \"0.1.0\"\n\n[data]\n\"aa.toml\" = '''\n"
    "[token_configs.kbs]\nurl = \"https://kbs.example:8443\"\n'''\n\"policy.rego\" = '''\n"
    "package agent_policy\ndefault ExecProcessRequest := false\n"
    "policy_data := {\"allow_exec\": false}\n'''\n";
constexpr const char* kSha384 =
    "6417c141f834479b683a51c764824df8f8d285e175ce29c1263674d76507c334d6fd855cc3488e504b74969bc56d65"
    "d6";

TEST(InitData, TheDigestIsTheDocumentsAlgorithmOverItsBytesAsSent) {
  const auto doc = parse({"toml", kDocument});
  ASSERT_TRUE(doc) << doc.error().message();
  EXPECT_EQ(doc->version, "0.1.0");
  EXPECT_EQ(doc->algorithm, "sha384");
  EXPECT_EQ(to_hex(doc->digest), kSha384);

  std::string as_sha256 = kDocument;
  as_sha256.replace(as_sha256.find("sha384"), 6, "sha256");
  const auto other = parse({"toml", as_sha256});
  ASSERT_TRUE(other) << other.error().message();
  EXPECT_EQ(to_hex(other->digest),
            "33a5d9db924a32cb1ed49f534e053d33aa1576ba1fd5caf630e120a662bf02d5");
}

// Trustee's token claims: the data strings, aa.toml and cdh.toml as JSON, the agent policy's
// data in place of the policy text.
TEST(InitData, ClaimsAreTheDataTableAsTrusteeGivesThem) {
  const auto doc = parse({"toml", kDocument});
  ASSERT_TRUE(doc) << doc.error().message();
  EXPECT_EQ(doc->claims, nlohmann::json::parse(R"({"aa.toml":{"token_configs":{"kbs":{"url":
                "https://kbs.example:8443"}}},"agent_policy_claims":{"allow_exec":false}})"));
  // What does not parse stays text.
  const auto plain =
      parse({"toml",
             "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"aa.toml\" = \"[x\"\n"
             "\"policy.rego\" = \"policy_data := {1}\"\nother = \"caf\\u00e9\"\n"});
  ASSERT_TRUE(plain) << plain.error().message();
  EXPECT_EQ(plain->claims,
            nlohmann::json::parse(
                R"({"aa.toml":"[x","policy.rego":"policy_data := {1}","other":"caf\u00e9"})"));
}

TEST(InitData, MalformedDocumentsAreRefusedNamingTheMember) {
  const std::string head = "version = \"0.1.0\"\nalgorithm = \"sha384\"\n";
  const std::pair<kbs::InitData, std::string> cases[] = {
      {{"json", "{}"}, "init-data: format: expected \"toml\", found \"json\""},
      {{"toml", "version = \n"},
       "init-data: the TOML document does not parse at line 1, column 11: "},
      {{"toml", "algorithm = \"sha384\"\n[data]\n"}, "init-data: the document has no 'version'"},
      {{"toml", "version = 1\nalgorithm = \"sha384\"\n[data]\n"},
       "init-data: 'version': expected a string, found a TOML integer"},
      {{"toml", "version = \"0.1.0\"\nalgorithm = \"md5\"\n[data]\n"},
       "init-data: algorithm: expected sha256, sha384 or sha512, found \"md5\""},
      {{"toml", head}, "init-data: the document has no [data] table"},
      {{"toml", head + "[data]\nx = \"caf\xc3\xa9\"\n"},
       "init-data: byte 0xc3 at offset 54: only ASCII documents are taken (the parser here is "
       "unsafe beyond ASCII; write the document in ASCII before the guest is launched with it)"},
      {{"toml", head + "data = \"x\"\n"}, "init-data: the document has no [data] table"},
      {{"toml", head + "[data]\n\"aa.toml\" = 3\n"},
       "init-data: data.\"aa.toml\": expected a string, found a TOML integer"},
      {{"toml", head + "[data]\nx = [\"a\"]\n"},
       "init-data: data.\"x\": expected a string, found a TOML array"},
  };
  for (const auto& [wire, message] : cases) {
    const auto doc = parse(wire);
    ASSERT_FALSE(doc) << wire.body;
    EXPECT_EQ(doc.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(doc.error().message().substr(0, message.size()), message) << wire.body;
  }
}

// The shape check runs before toml++ sees a byte: no non-ASCII character (toml++ 3.3.0's
// undefined behaviour), no more tables than a recursive free can take. Dots and brackets inside
// strings and comments do not count.
TEST(InitData, WhatTheParserMustNotSeeIsRefusedFirst) {
  const std::string head = "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n";
  const auto refused = [](const std::string& body) {
    const auto doc = parse({"toml", body});
    return doc ? std::string("parsed") : doc.error().message();
  };
  std::string deep = "[a";
  for (int i = 0; i < 100000; ++i) deep += ".a";
  EXPECT_EQ(refused(head + deep + "]\n"),
            "init-data: more than 256 dots outside strings (each dot of a key nests a table)");
  EXPECT_EQ(refused(head + "x = " + std::string(33, '[') + std::string(33, ']') + "\n"),
            "init-data: more than 32 brackets or braces open at once");
  // Also the byte an escape's backslash would have the lexer step over.
  EXPECT_EQ(refused(head + "x = \"\\\xc3\"\n"),
            "init-data: byte 0xc3 at offset 52: only ASCII documents are taken (the parser here "
            "is unsafe beyond ASCII; write the document in ASCII before the guest is launched "
            "with it)");
  // Dots and brackets in strings and comments are text.
  const std::string dots(5000, '.');
  const std::string brackets(100, '[');
  const auto text =
      parse({"toml", head + "a = \"" + dots + brackets + "\"\nb = '" + dots + "'\nc = '''" + dots +
                         "\n" + brackets + "'''\nd = \"\"\"" + dots + "\\\"\"\"" + dots +
                         "\"\"\"\"\n# " + dots + brackets + "\n"});
  ASSERT_TRUE(text) << text.error().message();
  EXPECT_EQ(text->claims["d"], dots + "\"\"\"" + dots + "\"");
  // A configuration file whose escapes decode to non-ASCII, or that nests deeper than a token
  // takes, stays text: toml++ never sees it.
  std::string nested = "a";
  for (int i = 0; i < 40; ++i) nested += ".a";
  const auto inner = parse({"toml", head + "\"aa.toml\" = \"x = \\u00e9\"\n\"cdh.toml\" = \"" +
                                        nested + " = 1\"\nother = \"x = nan\"\n"});
  ASSERT_TRUE(inner) << inner.error().message();
  EXPECT_EQ(inner->claims["aa.toml"], "x = \xc3\xa9");
  EXPECT_EQ(inner->claims["cdh.toml"], nested + " = 1");
  const auto nan = parse({"toml", head + "\"aa.toml\" = \"x = nan\\ny = [1.5]\"\n"});
  ASSERT_TRUE(nan) << nan.error().message();
  EXPECT_EQ(nan->claims["aa.toml"], nlohmann::json::parse(R"({"x":null,"y":[1.5]})"));
}

// The binding, for both fields: HOST_DATA takes the digest's first 32 bytes, MRCONFIGID the
// whole of a SHA-384 digest, a SHA-256 one zero-padded.
TEST(InitData, TheBindingNamesTheFieldAndBothValues) {
  const std::string head = "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n";
  const auto doc = parse({"toml", head}).value();
  const std::string padded = to_hex(doc.digest) + std::string(32, '0');
  EXPECT_TRUE(check_binding(kbs::Tee::kTdx, doc, {{"mr_config_id", padded}}));
  EXPECT_TRUE(check_binding(kbs::Tee::kSnp, doc, {{"host_data", to_hex(doc.digest)}}));
  const auto other = check_binding(kbs::Tee::kTdx, doc, {{"mr_config_id", std::string(96, '0')}});
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().message(), "init-data: MRCONFIGID expected " + padded +
                                         " (the document's sha256 digest in 48 bytes), found " +
                                         std::string(96, '0') +
                                         " (the guest was launched with other init-data, or none)");
  const auto none = check_binding(kbs::Tee::kSnp, doc, nlohmann::json::array());
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message().find("found none"), std::string::npos);
}

// HOST_DATA holds 32 bytes, MRCONFIGID 48: a longer digest is cut, a shorter one padded.
TEST(InitData, TheDigestIsCutOrPaddedToTheHardwareField) {
  const Bytes digest = from_hex(kSha384).value();
  EXPECT_EQ(to_hex(regularize(digest, 32)), std::string(kSha384).substr(0, 64));
  EXPECT_EQ(to_hex(regularize(digest, 48)), kSha384);
  EXPECT_EQ(to_hex(regularize(Bytes(32, 0xab), 48)),
            to_hex(Bytes(32, 0xab)) + std::string(32, '0'));
}

}  // namespace
}  // namespace cloister::service::init_data
