/* SHA-384 (FIPS 180-4 §6.5: SHA-512's compression with its own initial hash value, truncated to
 * 48 bytes), freestanding: the test guest hashes RTMR event data with it. Also compiled for the
 * host, where tests compare it with OpenSSL. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define SHA384_DIGEST_SIZE 48

struct sha384_ctx {
  uint64_t h[8];
  uint64_t total; /* bytes hashed so far (inputs stay far below 2^61 bytes) */
  uint8_t block[128];
  size_t used; /* bytes waiting in `block` */
};

void sha384_init(struct sha384_ctx* s);
void sha384_update(struct sha384_ctx* s, const void* data, size_t len);
void sha384_final(struct sha384_ctx* s, uint8_t digest[SHA384_DIGEST_SIZE]);

/* The digest of one buffer. */
void sha384(const void* data, size_t len, uint8_t digest[SHA384_DIGEST_SIZE]);
