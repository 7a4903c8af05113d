/* AES-256 (FIPS 197 §5) and GCM (NIST SP 800-38D §6-7). See aes_gcm.h for what is not
 * constant-time. */
#include "aes_gcm.h"

#define AES256_ROUNDS 14

struct aes256 {
  uint8_t round_key[16 * (AES256_ROUNDS + 1)];
};

/* FIPS 197 Figure 7. */
static const uint8_t sbox[256] = {
    0x63, 0x7c, 0x77, 0x7b, 0xf2, 0x6b, 0x6f, 0xc5, 0x30, 0x01, 0x67, 0x2b, 0xfe, 0xd7, 0xab, 0x76,
    0xca, 0x82, 0xc9, 0x7d, 0xfa, 0x59, 0x47, 0xf0, 0xad, 0xd4, 0xa2, 0xaf, 0x9c, 0xa4, 0x72, 0xc0,
    0xb7, 0xfd, 0x93, 0x26, 0x36, 0x3f, 0xf7, 0xcc, 0x34, 0xa5, 0xe5, 0xf1, 0x71, 0xd8, 0x31, 0x15,
    0x04, 0xc7, 0x23, 0xc3, 0x18, 0x96, 0x05, 0x9a, 0x07, 0x12, 0x80, 0xe2, 0xeb, 0x27, 0xb2, 0x75,
    0x09, 0x83, 0x2c, 0x1a, 0x1b, 0x6e, 0x5a, 0xa0, 0x52, 0x3b, 0xd6, 0xb3, 0x29, 0xe3, 0x2f, 0x84,
    0x53, 0xd1, 0x00, 0xed, 0x20, 0xfc, 0xb1, 0x5b, 0x6a, 0xcb, 0xbe, 0x39, 0x4a, 0x4c, 0x58, 0xcf,
    0xd0, 0xef, 0xaa, 0xfb, 0x43, 0x4d, 0x33, 0x85, 0x45, 0xf9, 0x02, 0x7f, 0x50, 0x3c, 0x9f, 0xa8,
    0x51, 0xa3, 0x40, 0x8f, 0x92, 0x9d, 0x38, 0xf5, 0xbc, 0xb6, 0xda, 0x21, 0x10, 0xff, 0xf3, 0xd2,
    0xcd, 0x0c, 0x13, 0xec, 0x5f, 0x97, 0x44, 0x17, 0xc4, 0xa7, 0x7e, 0x3d, 0x64, 0x5d, 0x19, 0x73,
    0x60, 0x81, 0x4f, 0xdc, 0x22, 0x2a, 0x90, 0x88, 0x46, 0xee, 0xb8, 0x14, 0xde, 0x5e, 0x0b, 0xdb,
    0xe0, 0x32, 0x3a, 0x0a, 0x49, 0x06, 0x24, 0x5c, 0xc2, 0xd3, 0xac, 0x62, 0x91, 0x95, 0xe4, 0x79,
    0xe7, 0xc8, 0x37, 0x6d, 0x8d, 0xd5, 0x4e, 0xa9, 0x6c, 0x56, 0xf4, 0xea, 0x65, 0x7a, 0xae, 0x08,
    0xba, 0x78, 0x25, 0x2e, 0x1c, 0xa6, 0xb4, 0xc6, 0xe8, 0xdd, 0x74, 0x1f, 0x4b, 0xbd, 0x8b, 0x8a,
    0x70, 0x3e, 0xb5, 0x66, 0x48, 0x03, 0xf6, 0x0e, 0x61, 0x35, 0x57, 0xb9, 0x86, 0xc1, 0x1d, 0x9e,
    0xe1, 0xf8, 0x98, 0x11, 0x69, 0xd9, 0x8e, 0x94, 0x9b, 0x1e, 0x87, 0xe9, 0xce, 0x55, 0x28, 0xdf,
    0x8c, 0xa1, 0x89, 0x0d, 0xbf, 0xe6, 0x42, 0x68, 0x41, 0x99, 0x2d, 0x0f, 0xb0, 0x54, 0xbb, 0x16,
};

/* Multiplication by x in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1 (FIPS 197 §4.2.1). */
static uint8_t xtime(uint8_t b) {
  return (uint8_t)((b << 1) ^ ((b >> 7) * 0x1b));
}

/* FIPS 197 §5.2, Nk = 8. */
static void aes256_expand(struct aes256* a, const uint8_t key[AES256_KEY_SIZE]) {
  uint8_t* w = a->round_key;
  for (int i = 0; i < AES256_KEY_SIZE; ++i) w[i] = key[i];
  uint8_t rcon = 1;
  for (int i = 8; i < 4 * (AES256_ROUNDS + 1); ++i) {
    uint8_t t[4] = {w[4 * i - 4], w[4 * i - 3], w[4 * i - 2], w[4 * i - 1]};
    if (i % 8 == 0) {
      const uint8_t first = t[0];
      t[0] = (uint8_t)(sbox[t[1]] ^ rcon);
      t[1] = sbox[t[2]];
      t[2] = sbox[t[3]];
      t[3] = sbox[first];
      rcon = xtime(rcon);
    } else if (i % 8 == 4) {
      for (int j = 0; j < 4; ++j) t[j] = sbox[t[j]];
    }
    for (int j = 0; j < 4; ++j) w[4 * i + j] = (uint8_t)(w[4 * (i - 8) + j] ^ t[j]);
  }
}

/* FIPS 197 §5.1: the state is column-major, s[4 * column + row]. */
static void aes256_encrypt_block(const struct aes256* a, const uint8_t in[16], uint8_t out[16]) {
  uint8_t s[16];
  for (int i = 0; i < 16; ++i) s[i] = (uint8_t)(in[i] ^ a->round_key[i]);
  for (int round = 1; round <= AES256_ROUNDS; ++round) {
    uint8_t t[16];
    for (int c = 0; c < 4; ++c) /* SubBytes and ShiftRows */
      for (int r = 0; r < 4; ++r) t[4 * c + r] = sbox[s[4 * ((c + r) % 4) + r]];
    if (round != AES256_ROUNDS) {
      for (int c = 0; c < 4; ++c) { /* MixColumns */
        const uint8_t* col = t + 4 * c;
        const uint8_t all = (uint8_t)(col[0] ^ col[1] ^ col[2] ^ col[3]);
        uint8_t mixed[4];
        for (int r = 0; r < 4; ++r)
          mixed[r] = (uint8_t)(col[r] ^ all ^ xtime((uint8_t)(col[r] ^ col[(r + 1) % 4])));
        for (int r = 0; r < 4; ++r) t[4 * c + r] = mixed[r];
      }
    }
    for (int i = 0; i < 16; ++i) s[i] = (uint8_t)(t[i] ^ a->round_key[16 * round + i]);
  }
  for (int i = 0; i < 16; ++i) out[i] = s[i];
}

/* GF(2^128) with GCM's bit order (SP 800-38D §6.3, Algorithm 1), on two big-endian halves. */
struct gf128 {
  uint64_t hi, lo;
};

static struct gf128 gf128_load(const uint8_t b[16]) {
  struct gf128 v = {0, 0};
  for (int i = 0; i < 8; ++i) {
    v.hi = (v.hi << 8) | b[i];
    v.lo = (v.lo << 8) | b[8 + i];
  }
  return v;
}

static void gf128_store(struct gf128 v, uint8_t b[16]) {
  for (int i = 0; i < 8; ++i) {
    b[i] = (uint8_t)(v.hi >> (56 - 8 * i));
    b[8 + i] = (uint8_t)(v.lo >> (56 - 8 * i));
  }
}

static struct gf128 gf128_mul(struct gf128 x, struct gf128 y) {
  struct gf128 z = {0, 0};
  struct gf128 v = y;
  for (int i = 0; i < 128; ++i) {
    const uint64_t bit = i < 64 ? (x.hi >> (63 - i)) & 1 : (x.lo >> (127 - i)) & 1;
    if (bit) {
      z.hi ^= v.hi;
      z.lo ^= v.lo;
    }
    const uint64_t carry = v.lo & 1;
    v.lo = (v.lo >> 1) | (v.hi << 63);
    v.hi >>= 1;
    if (carry) v.hi ^= 0xe100000000000000ull; /* R = 11100001 || 0^120 */
  }
  return z;
}

struct gcm {
  struct aes256 aes;
  struct gf128 h;     /* the hash subkey E(K, 0^128) */
  struct gf128 ghash; /* running GHASH */
  uint8_t j0[16];     /* the pre-counter block IV || 0^31 || 1 */
};

static void gcm_init(struct gcm* g, const uint8_t key[AES256_KEY_SIZE],
                     const uint8_t iv[AES_GCM_IV_SIZE]) {
  aes256_expand(&g->aes, key);
  uint8_t zero[16] = {0};
  uint8_t h[16];
  aes256_encrypt_block(&g->aes, zero, h);
  g->h = gf128_load(h);
  g->ghash.hi = g->ghash.lo = 0;
  for (int i = 0; i < AES_GCM_IV_SIZE; ++i) g->j0[i] = iv[i];
  g->j0[12] = g->j0[13] = g->j0[14] = 0;
  g->j0[15] = 1;
}

/* GHASH over `data`, zero-padded to whole blocks (SP 800-38D §6.4). */
static void gcm_hash(struct gcm* g, const uint8_t* data, size_t len) {
  for (size_t at = 0; at < len; at += 16) {
    uint8_t block[16] = {0};
    for (size_t i = 0; i < 16 && at + i < len; ++i) block[i] = data[at + i];
    const struct gf128 x = gf128_load(block);
    g->ghash.hi ^= x.hi;
    g->ghash.lo ^= x.lo;
    g->ghash = gf128_mul(g->ghash, g->h);
  }
}

/* GCTR with the counter starting at inc32(J0) (SP 800-38D §6.5). */
static void gcm_ctr(const struct gcm* g, const uint8_t* in, size_t len, uint8_t* out) {
  uint8_t counter[16];
  for (int i = 0; i < 16; ++i) counter[i] = g->j0[i];
  for (size_t at = 0; at < len; at += 16) {
    for (int i = 15; i >= 12 && ++counter[i] == 0; --i) { /* inc32 */
    }
    uint8_t keystream[16];
    aes256_encrypt_block(&g->aes, counter, keystream);
    for (size_t i = 0; i < 16 && at + i < len; ++i)
      out[at + i] = (uint8_t)(in[at + i] ^ keystream[i]);
  }
}

/* T = E(K, J0) xor GHASH(A || C || [len(A)]64 || [len(C)]64) (SP 800-38D §7.1 steps 5-6). */
static void gcm_tag(struct gcm* g, size_t aad_len, size_t len, uint8_t tag[AES_GCM_TAG_SIZE]) {
  uint8_t lengths[16];
  const uint64_t aad_bits = (uint64_t)aad_len * 8, bits = (uint64_t)len * 8;
  for (int i = 0; i < 8; ++i) {
    lengths[i] = (uint8_t)(aad_bits >> (56 - 8 * i));
    lengths[8 + i] = (uint8_t)(bits >> (56 - 8 * i));
  }
  gcm_hash(g, lengths, sizeof lengths);
  uint8_t s[16], ek0[16];
  gf128_store(g->ghash, s);
  aes256_encrypt_block(&g->aes, g->j0, ek0);
  for (int i = 0; i < AES_GCM_TAG_SIZE; ++i) tag[i] = (uint8_t)(s[i] ^ ek0[i]);
}

void aes256gcm_encrypt(const uint8_t key[AES256_KEY_SIZE], const uint8_t iv[AES_GCM_IV_SIZE],
                       const uint8_t* aad, size_t aad_len, const uint8_t* plaintext, size_t len,
                       uint8_t* ciphertext, uint8_t tag[AES_GCM_TAG_SIZE]) {
  struct gcm g;
  gcm_init(&g, key, iv);
  gcm_ctr(&g, plaintext, len, ciphertext);
  gcm_hash(&g, aad, aad_len);
  gcm_hash(&g, ciphertext, len);
  gcm_tag(&g, aad_len, len, tag);
}

int aes256gcm_decrypt(const uint8_t key[AES256_KEY_SIZE], const uint8_t iv[AES_GCM_IV_SIZE],
                      const uint8_t* aad, size_t aad_len, const uint8_t* ciphertext, size_t len,
                      const uint8_t tag[AES_GCM_TAG_SIZE], uint8_t* plaintext) {
  struct gcm g;
  gcm_init(&g, key, iv);
  gcm_hash(&g, aad, aad_len);
  gcm_hash(&g, ciphertext, len);
  uint8_t expected[AES_GCM_TAG_SIZE];
  gcm_tag(&g, aad_len, len, expected);
  uint8_t diff = 0;
  for (int i = 0; i < AES_GCM_TAG_SIZE; ++i) diff |= (uint8_t)(expected[i] ^ tag[i]);
  if (diff != 0) return -1;
  gcm_ctr(&g, ciphertext, len, plaintext);
  return 0;
}
