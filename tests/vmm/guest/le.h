/* Little-endian loads and stores of 1..8-byte fields, for the test guest's hardware and wire
 * formats (any alignment). */
#pragma once
#include <stdint.h>

static inline uint64_t le_get(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

static inline void le_put(uint8_t* p, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) p[i] = (uint8_t)(v >> (8 * i));
}
