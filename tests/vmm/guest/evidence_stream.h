/* The guest's side of the guest-evidence protocol (sdk/guest_evidence_protocol.h): the stream
 * header, the frames, END. Freestanding C, also compiled for host tests, which parse what it
 * writes with the SDK's client. */
#pragma once
#include <stdint.h>

#include "cloister/sdk/guest_evidence_protocol.h"

/* Sends `len` bytes to the host; returns NULL or what went wrong. */
typedef const char* (*evidence_write_fn)(void* ctx, const void* data, uint32_t len);

struct evidence_frame {
  uint32_t kind; /* CLOISTER_EVIDENCE_* */
  const void* data;
  uint32_t size;
};

/* Writes the stream header, `frames` in order and the END frame. Returns NULL or the first
 * error of `write`. */
const char* evidence_send(evidence_write_fn write, void* ctx, const struct evidence_frame* frames,
                          int count);
