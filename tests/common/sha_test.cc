#include "cloister/common/sha.h"

#include <gtest/gtest.h>

#include "cloister/common/hex.h"

namespace cloister {
namespace {

// FIPS 180-2 Appendix examples for "abc".
TEST(Sha, KnownAnswersForAbc) {
  EXPECT_EQ(to_hex(sha256(as_bytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(to_hex(sha384(as_bytes("abc"))),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
            "8086072ba1e7cc2358baeca134c825a7");
  EXPECT_EQ(to_hex(sha512(as_bytes("abc"))),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
}

TEST(Sha, IncrementalEqualsOneShotAndResetsAfterFinish) {
  Hasher h(HashAlgorithm::kSha384);
  EXPECT_EQ(h.digest_size(), 48u);
  h.update(as_bytes("a"));
  h.update(as_bytes("bc"));
  auto first = h.finish();
  auto expected = sha384(as_bytes("abc"));
  EXPECT_EQ(first, Bytes(expected.begin(), expected.end()));
  h.update(as_bytes("abc"));
  EXPECT_EQ(h.finish(), first);
}

TEST(Sha, EmptyInput) {
  EXPECT_EQ(to_hex(sha256({})), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

}  // namespace
}  // namespace cloister
