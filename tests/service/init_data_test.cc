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
       "init-data: byte 0xc3 at offset 54: only ASCII documents are taken (write other "
       "characters as \\uXXXX escapes)"},
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
