// The guest's freestanding SHA-384 and AES-256-GCM against published test vectors and OpenSSL.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <string>

#include "cloister/common/bytes.h"
#include "cloister/common/hex.h"

extern "C" {
#include "aes_gcm.h"
#include "sha384.h"
}

namespace cloister::testing {
namespace {

Bytes hex(const std::string& text) {
  return *from_hex(text);
}

Bytes random_bytes(std::size_t n) {
  Bytes b(n);
  if (n > 0) {
    EXPECT_EQ(RAND_bytes(b.data(), static_cast<int>(n)), 1);
  }
  return b;
}

std::string guest_sha384(ByteView data) {
  std::uint8_t d[SHA384_DIGEST_SIZE];
  ::sha384(data.data(), data.size(), d);
  return to_hex(ByteView(d, sizeof d));
}

// FIPS 180-4 examples (NIST CSRC "SHA-384" example values).
TEST(GuestSha384, NistExamples) {
  EXPECT_EQ(guest_sha384(as_bytes("abc")),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358bae"
            "ca134c825a7");
  EXPECT_EQ(guest_sha384({}),
            "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad"
            "2f14898b95b");
  EXPECT_EQ(guest_sha384(as_bytes("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                                  "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu")),
            "09330c33f71147e83d192fc782cd1b4753111b173b3b05d22fa08086e3b0f712fcc7c71a557e2db966c3e"
            "9fa91746039");
}

TEST(GuestSha384, MatchesOpenSslAcrossBlockBoundariesAndInPieces) {
  for (std::size_t n : {1, 55, 111, 112, 113, 127, 128, 129, 255, 256, 1000, 4096}) {
    const Bytes data = random_bytes(n);
    std::uint8_t want[48];
    unsigned int len = 0;
    ASSERT_EQ(EVP_Digest(data.data(), n, want, &len, EVP_sha384(), nullptr), 1);
    EXPECT_EQ(guest_sha384(data), to_hex(ByteView(want, len))) << n;
    struct sha384_ctx s;
    sha384_init(&s);
    for (std::size_t at = 0; at < n; at += 1 + at % 37)
      sha384_update(&s, data.data() + at, std::min(n - at, 1 + at % 37));
    std::uint8_t pieces[48];
    sha384_final(&s, pieces);
    EXPECT_EQ(to_hex(ByteView(pieces, 48)), to_hex(ByteView(want, len))) << n;
  }
}

struct GcmCase {
  std::string key, iv, plaintext, aad, ciphertext, tag;
};

// The GCM specification's AES-256 test cases 13-16 (McGrew and Viega, "The Galois/Counter Mode
// of Operation", appendix B).
TEST(GuestAesGcm, SpecificationTestCases) {
  const std::string k = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
  const std::string p =
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6"
      "b525b16aedf5aa0de657ba637b39";
  const std::string c =
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b105682"
      "8838c5f61e6393ba7a0abcc9f662";
  const GcmCase cases[] = {
      {std::string(64, '0'), std::string(24, '0'), "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
      {std::string(64, '0'), std::string(24, '0'), std::string(32, '0'), "",
       "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
      {k, "cafebabefacedbaddecaf888", p + "1aafd255", "", c + "898015ad",
       "b094dac5d93471bdec1a502270e3cc6c"},
      {k, "cafebabefacedbaddecaf888", p, "feedfacedeadbeeffeedfacedeadbeefabaddad2", c,
       "76fc6ece0f4e1768cddf8853bb2d551b"},
  };
  for (const GcmCase& t : cases) {
    const Bytes key = hex(t.key), iv = hex(t.iv), pt = hex(t.plaintext), aad = hex(t.aad);
    Bytes ct(pt.size());
    std::uint8_t tag[16];
    aes256gcm_encrypt(key.data(), iv.data(), aad.data(), aad.size(), pt.data(), pt.size(),
                      ct.data(), tag);
    EXPECT_EQ(to_hex(ct), t.ciphertext);
    EXPECT_EQ(to_hex(ByteView(tag, 16)), t.tag);
    Bytes back(pt.size());
    ASSERT_EQ(aes256gcm_decrypt(key.data(), iv.data(), aad.data(), aad.size(), ct.data(), ct.size(),
                                tag, back.data()),
              0);
    EXPECT_EQ(back, pt);
  }
}

// OpenSSL's AES-256-GCM with a 96-bit IV and a 16-byte tag.
void openssl_encrypt(const Bytes& key, const Bytes& iv, const Bytes& aad, const Bytes& pt,
                     Bytes& ct, std::uint8_t tag[16]) {
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  int n = 0;
  ct.assign(pt.size() + 16, 0);
  ASSERT_EQ(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), nullptr, key.data(), iv.data()), 1);
  ASSERT_EQ(EVP_EncryptUpdate(c, nullptr, &n, aad.data(), static_cast<int>(aad.size())), 1);
  ASSERT_EQ(EVP_EncryptUpdate(c, ct.data(), &n, pt.data(), static_cast<int>(pt.size())), 1);
  ASSERT_EQ(EVP_EncryptFinal_ex(c, ct.data() + n, &n), 1);
  ASSERT_EQ(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag), 1);
  ct.resize(pt.size());
  EVP_CIPHER_CTX_free(c);
}

TEST(GuestAesGcm, RandomRoundTripsAgreeWithOpenSsl) {
  for (int round = 0; round < 200; ++round) {
    const Bytes key = random_bytes(32), iv = random_bytes(12);
    const Bytes aad = random_bytes(static_cast<std::size_t>(round % 64));
    const Bytes pt = random_bytes(static_cast<std::size_t>(round * 13 % 1300));
    Bytes want;
    std::uint8_t want_tag[16];
    openssl_encrypt(key, iv, aad, pt, want, want_tag);
    Bytes ct = pt;  // in place
    std::uint8_t tag[16];
    aes256gcm_encrypt(key.data(), iv.data(), aad.data(), aad.size(), ct.data(), ct.size(),
                      ct.data(), tag);
    ASSERT_EQ(ct, want) << round;
    ASSERT_EQ(Bytes(tag, tag + 16), Bytes(want_tag, want_tag + 16)) << round;
    Bytes back = ct;
    ASSERT_EQ(aes256gcm_decrypt(key.data(), iv.data(), aad.data(), aad.size(), back.data(),
                                back.size(), tag, back.data()),
              0);
    ASSERT_EQ(back, pt) << round;
  }
}

TEST(GuestAesGcm, TamperingFailsTheTagAndLeavesThePlaintextUntouched) {
  const Bytes key = random_bytes(32), iv = random_bytes(12), aad = random_bytes(48),
              pt = random_bytes(96);
  Bytes ct(pt.size());
  std::uint8_t tag[16];
  aes256gcm_encrypt(key.data(), iv.data(), aad.data(), aad.size(), pt.data(), pt.size(), ct.data(),
                    tag);
  auto decrypts = [&](Bytes k, Bytes v, Bytes a, Bytes c, Bytes t) {
    Bytes out(c.size(), 0xee);
    const int r = aes256gcm_decrypt(k.data(), v.data(), a.data(), a.size(), c.data(), c.size(),
                                    t.data(), out.data());
    if (r != 0) {
      EXPECT_EQ(out, Bytes(c.size(), 0xee));
    }
    return r == 0;
  };
  const Bytes t(tag, tag + 16);
  EXPECT_TRUE(decrypts(key, iv, aad, ct, t));
  for (auto flip : {0, 1, 2, 3, 4}) {
    Bytes k = key, v = iv, a = aad, c = ct, tt = t;
    Bytes& target = flip == 0 ? k : flip == 1 ? v : flip == 2 ? a : flip == 3 ? c : tt;
    target[target.size() / 2] ^= 0x01;
    EXPECT_FALSE(decrypts(k, v, a, c, tt)) << "flipped input " << flip;
  }
}

}  // namespace
}  // namespace cloister::testing
