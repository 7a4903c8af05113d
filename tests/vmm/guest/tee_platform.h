/* What the attestation code (snp_attest.c, tdx_attest.c) needs from where it runs. The test
 * guest implements it with identity-mapped memory, port I/O and a spin loop (attest.c); host
 * tests implement it with a fake secure processor behind the doorbell. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* The guest-physical address of `p`, a byte of one of the buffers handed to the attestation
 * code. */
uint64_t tee_gpa(const void* p);

/* A 32-bit OUT of `value` to the simulator's doorbell `port` (vmm/tee/sim_abi.h); returns when
 * the simulated secure processor has handled it. */
void tee_doorbell(uint16_t port, uint32_t value);

/* Waits a little before a retry or the next poll (milliseconds, not microseconds: the host is
 * busy or still producing a quote). */
void tee_pause(void);

/* What went wrong, in words with the numbers that matter ("GetQuote status 0x8000000000000001
 * (service unavailable)"). */
struct tee_error {
  char text[200];
  size_t len;
};

static inline void tee_error_add(struct tee_error* e, const char* s) {
  while (*s && e->len + 1 < sizeof e->text) e->text[e->len++] = *s++;
  e->text[e->len] = 0;
}

static inline void tee_error_hex(struct tee_error* e, uint64_t v) {
  static const char digits[] = "0123456789abcdef";
  char buf[19] = "0x";
  int n = 2, shift = 60;
  while (shift > 0 && ((v >> shift) & 0xf) == 0) shift -= 4;
  for (; shift >= 0; shift -= 4) buf[n++] = digits[(v >> shift) & 0xf];
  buf[n] = 0;
  tee_error_add(e, buf);
}

static inline void tee_error_dec(struct tee_error* e, uint64_t v) {
  char buf[21];
  int n = 20;
  buf[n] = 0;
  do buf[--n] = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  tee_error_add(e, buf + n);
}

/* Starts the message over with `s`; returns -1 for `return tee_fail(e, "...")`. */
static inline int tee_fail(struct tee_error* e, const char* s) {
  e->len = 0;
  e->text[0] = 0;
  tee_error_add(e, s);
  return -1;
}
