/* SHA-384 (FIPS 180-4 §5.3.4 initial hash value, §6.4 SHA-512 computation). */
#include "sha384.h"

static const uint64_t k[80] = {
    0x428a2f98d728ae22ull, 0x7137449123ef65cdull, 0xb5c0fbcfec4d3b2full, 0xe9b5dba58189dbbcull,
    0x3956c25bf348b538ull, 0x59f111f1b605d019ull, 0x923f82a4af194f9bull, 0xab1c5ed5da6d8118ull,
    0xd807aa98a3030242ull, 0x12835b0145706fbeull, 0x243185be4ee4b28cull, 0x550c7dc3d5ffb4e2ull,
    0x72be5d74f27b896full, 0x80deb1fe3b1696b1ull, 0x9bdc06a725c71235ull, 0xc19bf174cf692694ull,
    0xe49b69c19ef14ad2ull, 0xefbe4786384f25e3ull, 0x0fc19dc68b8cd5b5ull, 0x240ca1cc77ac9c65ull,
    0x2de92c6f592b0275ull, 0x4a7484aa6ea6e483ull, 0x5cb0a9dcbd41fbd4ull, 0x76f988da831153b5ull,
    0x983e5152ee66dfabull, 0xa831c66d2db43210ull, 0xb00327c898fb213full, 0xbf597fc7beef0ee4ull,
    0xc6e00bf33da88fc2ull, 0xd5a79147930aa725ull, 0x06ca6351e003826full, 0x142929670a0e6e70ull,
    0x27b70a8546d22ffcull, 0x2e1b21385c26c926ull, 0x4d2c6dfc5ac42aedull, 0x53380d139d95b3dfull,
    0x650a73548baf63deull, 0x766a0abb3c77b2a8ull, 0x81c2c92e47edaee6ull, 0x92722c851482353bull,
    0xa2bfe8a14cf10364ull, 0xa81a664bbc423001ull, 0xc24b8b70d0f89791ull, 0xc76c51a30654be30ull,
    0xd192e819d6ef5218ull, 0xd69906245565a910ull, 0xf40e35855771202aull, 0x106aa07032bbd1b8ull,
    0x19a4c116b8d2d0c8ull, 0x1e376c085141ab53ull, 0x2748774cdf8eeb99ull, 0x34b0bcb5e19b48a8ull,
    0x391c0cb3c5c95a63ull, 0x4ed8aa4ae3418acbull, 0x5b9cca4f7763e373ull, 0x682e6ff3d6b2b8a3ull,
    0x748f82ee5defb2fcull, 0x78a5636f43172f60ull, 0x84c87814a1f0ab72ull, 0x8cc702081a6439ecull,
    0x90befffa23631e28ull, 0xa4506cebde82bde9ull, 0xbef9a3f7b2c67915ull, 0xc67178f2e372532bull,
    0xca273eceea26619cull, 0xd186b8c721c0c207ull, 0xeada7dd6cde0eb1eull, 0xf57d4f7fee6ed178ull,
    0x06f067aa72176fbaull, 0x0a637dc5a2c898a6ull, 0x113f9804bef90daeull, 0x1b710b35131c471bull,
    0x28db77f523047d84ull, 0x32caab7b40c72493ull, 0x3c9ebe0a15c9bebcull, 0x431d67c49c100d4cull,
    0x4cc5d4becb3e42b6ull, 0x597f299cfc657e2aull, 0x5fcb6fab3ad6faecull, 0x6c44198c4a475817ull,
};

static uint64_t ror(uint64_t x, unsigned n) {
  return (x >> n) | (x << (64 - n));
}

static void compress(uint64_t h[8], const uint8_t block[128]) {
  uint64_t w[80];
  for (int i = 0; i < 16; ++i) {
    uint64_t v = 0;
    for (int j = 0; j < 8; ++j) v = (v << 8) | block[8 * i + j];
    w[i] = v;
  }
  for (int i = 16; i < 80; ++i) {
    const uint64_t s0 = ror(w[i - 15], 1) ^ ror(w[i - 15], 8) ^ (w[i - 15] >> 7);
    const uint64_t s1 = ror(w[i - 2], 19) ^ ror(w[i - 2], 61) ^ (w[i - 2] >> 6);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint64_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int i = 0; i < 80; ++i) {
    const uint64_t t1 =
        hh + (ror(e, 14) ^ ror(e, 18) ^ ror(e, 41)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
    const uint64_t t2 = (ror(a, 28) ^ ror(a, 34) ^ ror(a, 39)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += hh;
}

void sha384_init(struct sha384_ctx* s) {
  static const uint64_t iv[8] = {
      0xcbbb9d5dc1059ed8ull, 0x629a292a367cd507ull, 0x9159015a3070dd17ull, 0x152fecd8f70e5939ull,
      0x67332667ffc00b31ull, 0x8eb44a8768581511ull, 0xdb0c2e0d64f98fa7ull, 0x47b5481dbefa4fa4ull,
  };
  for (int i = 0; i < 8; ++i) s->h[i] = iv[i];
  s->total = 0;
  s->used = 0;
}

void sha384_update(struct sha384_ctx* s, const void* data, size_t len) {
  const uint8_t* p = data;
  s->total += len;
  while (len > 0) {
    size_t take = sizeof s->block - s->used;
    if (take > len) take = len;
    for (size_t i = 0; i < take; ++i) s->block[s->used + i] = p[i];
    s->used += take;
    p += take;
    len -= take;
    if (s->used == sizeof s->block) {
      compress(s->h, s->block);
      s->used = 0;
    }
  }
}

void sha384_final(struct sha384_ctx* s, uint8_t digest[SHA384_DIGEST_SIZE]) {
  const uint64_t bits = s->total * 8;
  static const uint8_t pad = 0x80;
  static const uint8_t zero = 0;
  sha384_update(s, &pad, 1);
  while (s->used != sizeof s->block - 16) sha384_update(s, &zero, 1);
  uint8_t length[16] = {0}; /* a 128-bit big-endian bit count; the top 64 bits are zero */
  for (int i = 0; i < 8; ++i) length[15 - i] = (uint8_t)(bits >> (8 * i));
  sha384_update(s, length, sizeof length);
  for (int i = 0; i < SHA384_DIGEST_SIZE; ++i)
    digest[i] = (uint8_t)(s->h[i / 8] >> (56 - 8 * (i % 8)));
}

void sha384(const void* data, size_t len, uint8_t digest[SHA384_DIGEST_SIZE]) {
  struct sha384_ctx s;
  sha384_init(&s);
  sha384_update(&s, data, len);
  sha384_final(&s, digest);
}
