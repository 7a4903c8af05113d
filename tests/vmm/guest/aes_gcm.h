/* AES-256-GCM (FIPS 197 AES, NIST SP 800-38D GCM with a 96-bit IV and a 128-bit tag),
 * freestanding: the test guest encrypts and decrypts SEV-SNP guest messages with it (SNP
 * firmware ABI 56860, "Guest Messages"). Also compiled for the host, where tests compare it with
 * OpenSSL.
 *
 * Not constant-time: the S-box is a table lookup and GHASH branches on key bits. That is
 * acceptable for a test guest whose VMPCK the simulated secure processor hands out anyway; a
 * production guest needs a constant-time implementation (or AES-NI and PCLMULQDQ). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define AES256_KEY_SIZE 32
#define AES_GCM_IV_SIZE 12
#define AES_GCM_TAG_SIZE 16

/* Encrypts `len` bytes of `plaintext` into `ciphertext` (which may be the same buffer) and
 * writes the tag over `aad` and the ciphertext. */
void aes256gcm_encrypt(const uint8_t key[AES256_KEY_SIZE], const uint8_t iv[AES_GCM_IV_SIZE],
                       const uint8_t* aad, size_t aad_len, const uint8_t* plaintext, size_t len,
                       uint8_t* ciphertext, uint8_t tag[AES_GCM_TAG_SIZE]);

/* Checks `tag` over `aad` and `ciphertext` first and only then decrypts into `plaintext` (which
 * may be the same buffer). Returns 0, or -1 when the tag does not match (`plaintext` is then
 * untouched). */
int aes256gcm_decrypt(const uint8_t key[AES256_KEY_SIZE], const uint8_t iv[AES_GCM_IV_SIZE],
                      const uint8_t* aad, size_t aad_len, const uint8_t* ciphertext, size_t len,
                      const uint8_t tag[AES_GCM_TAG_SIZE], uint8_t* plaintext);
