/* See evidence_stream.h. */
#include "evidence_stream.h"

#include "le.h"

static const char* send_pair(evidence_write_fn write, void* ctx, uint32_t a, uint32_t b) {
  uint8_t header[8];
  le_put(header, a, 4);
  le_put(header + 4, b, 4);
  return write(ctx, header, sizeof header);
}

const char* evidence_send(evidence_write_fn write, void* ctx, const struct evidence_frame* frames,
                          int count) {
  const char* error = send_pair(write, ctx, CLOISTER_EVIDENCE_MAGIC, CLOISTER_EVIDENCE_VERSION);
  for (int i = 0; !error && i < count; ++i) {
    error = send_pair(write, ctx, frames[i].kind, frames[i].size);
    if (!error && frames[i].size > 0) error = write(ctx, frames[i].data, frames[i].size);
  }
  if (!error) error = send_pair(write, ctx, CLOISTER_EVIDENCE_END, 0);
  return error;
}
