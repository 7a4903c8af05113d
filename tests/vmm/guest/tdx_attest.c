/* TDX RTMR measurement, CC event log, TDREPORT and quote; see tdx_attest.h. */
#include "tdx_attest.h"

#include "le.h"

#define SPEC_ID_EVENT_SIZE 33        /* TCG_EfiSpecIDEvent with one algorithm and no vendor info */
#define TDVMCALL_EXPOSE_REGS 0xfc00u /* R10-R15 go to the VMM (Linux TDVMCALL_EXPOSE_REGS_MASK) */
#define QUOTE_BUFFER_VERSION 1

static int log_room(struct cc_event_log* log, uint64_t bytes, struct tee_error* err) {
  if (bytes <= (uint64_t)(log->capacity - log->size)) return 0;
  tee_fail(err, "the CC event log needs ");
  tee_error_dec(err, log->size + bytes);
  tee_error_add(err, " bytes, it has ");
  tee_error_dec(err, log->capacity);
  return -1;
}

static void log_put(struct cc_event_log* log, uint64_t v, int n) {
  le_put(log->buf + log->size, v, n);
  log->size += (uint32_t)n;
}

static void log_bytes(struct cc_event_log* log, const uint8_t* p, uint32_t n) {
  for (uint32_t i = 0; i < n; ++i) log->buf[log->size++] = p[i];
}

/* TCG PC Client PFP §10.4.5.1: a SHA-1-format TCG_PCClientPCREvent carrying "Spec ID Event03",
 * laid out as TDVF writes it (MR index 1, platform class 0, spec version 2.0 errata 0, UINTN of
 * 8 bytes, SHA-384 only). */
int cc_event_log_init(struct cc_event_log* log, uint8_t* buf, uint32_t capacity,
                      struct tee_error* err) {
  static const char signature[16] = "Spec ID Event03";
  log->buf = buf;
  log->capacity = capacity;
  log->size = 0;
  if (log_room(log, 32 + SPEC_ID_EVENT_SIZE, err) != 0) return -1;
  log_put(log, 1, 4); /* MR index */
  log_put(log, TCG_EV_NO_ACTION, 4);
  for (int i = 0; i < 20; ++i) log_put(log, 0, 1); /* SHA-1 digest */
  log_put(log, SPEC_ID_EVENT_SIZE, 4);
  log_bytes(log, (const uint8_t*)signature, sizeof signature);
  log_put(log, 0, 4); /* platformClass */
  log_put(log, 0, 1); /* specVersionMinor */
  log_put(log, 2, 1); /* specVersionMajor */
  log_put(log, 0, 1); /* specErrata */
  log_put(log, 2, 1); /* uintnSize: UINT64 */
  log_put(log, 1, 4); /* numberOfAlgorithms */
  log_put(log, TCG_ALG_SHA384, 2);
  log_put(log, SHA384_DIGEST_SIZE, 2);
  log_put(log, 0, 1); /* vendorInfoSize */
  return 0;
}

/* TCG_PCR_EVENT2 (TCG PC Client PFP §10.2.2) with one SHA-384 digest. */
int cc_event_log_append(struct cc_event_log* log, uint32_t rtmr, uint32_t type,
                        const uint8_t digest[SHA384_DIGEST_SIZE], const uint8_t* data,
                        uint32_t data_size, struct tee_error* err) {
  if (log_room(log, 18 + SHA384_DIGEST_SIZE + (uint64_t)data_size, err) != 0) return -1;
  log_put(log, rtmr + 1, 4); /* MR index: 1..4 are RTMR0..3 */
  log_put(log, type, 4);
  log_put(log, 1, 4); /* digest count */
  log_put(log, TCG_ALG_SHA384, 2);
  log_bytes(log, digest, SHA384_DIGEST_SIZE);
  log_put(log, data_size, 4);
  log_bytes(log, data, data_size);
  return 0;
}

/* One TDCALL through the doorbell; returns -1 with `err` unless RAX comes back TDX_SUCCESS. */
static int tdcall(const struct tdx_pages* p, const char* leaf, struct tee_error* err) {
  const uint64_t rax = p->tdcall->rax;
  tee_doorbell(CLOISTER_SIM_TDX_DOORBELL, (uint32_t)(tee_gpa(p->tdcall) >> 12));
  __asm__ volatile("" ::: "memory"); /* the simulated TDX module wrote the block */
  if (p->tdcall->rax == CLOISTER_TDX_SUCCESS) return 0;
  tee_fail(err, leaf);
  tee_error_add(err, " failed: RAX ");
  tee_error_hex(err, p->tdcall->rax);
  if (p->tdcall->rax == rax)
    tee_error_add(err, " (unchanged: is the VM running with --tee sim-tdx?)");
  else if (p->tdcall->rax == CLOISTER_TDX_OPERAND_INVALID)
    tee_error_add(err, " (TDX_OPERAND_INVALID)");
  return -1;
}

static void tdcall_clear(const struct tdx_pages* p, uint64_t leaf) {
  __builtin_memset(p->tdcall, 0, sizeof *p->tdcall);
  p->tdcall->rax = leaf;
}

int tdx_measure_cmdline(const struct tdx_pages* pages, const char* cmdline, uint32_t size,
                        struct cc_event_log* log, struct tee_error* err) {
  sha384(cmdline, size, pages->digest);
  tdcall_clear(pages, CLOISTER_TDCALL_MR_RTMR_EXTEND);
  pages->tdcall->rcx = tee_gpa(pages->digest);
  pages->tdcall->rdx = TDX_CMDLINE_RTMR;
  if (tdcall(pages, "TDG.MR.RTMR.EXTEND", err) != 0) return -1;
  /* TCG_PCClientTaggedEvent {u32 taggedEventID, u32 taggedEventDataSize, data} */
  static const char description[] = TDX_CMDLINE_EVENT_DESCRIPTION;
  uint8_t event[8 + sizeof description];
  le_put(event, TDX_CMDLINE_EVENT_TAG_ID, 4);
  le_put(event + 4, sizeof description, 4);
  for (uint32_t i = 0; i < sizeof description; ++i) event[8 + i] = (uint8_t)description[i];
  return cc_event_log_append(log, TDX_CMDLINE_RTMR, TCG_EV_EVENT_TAG, pages->digest, event,
                             sizeof event, err);
}

static const char* quote_status_name(uint64_t status) {
  switch (status) {
    case CLOISTER_GET_QUOTE_IN_FLIGHT:
      return " (still IN_FLIGHT)";
    case CLOISTER_GET_QUOTE_ERROR:
      return " (ERROR)";
    case CLOISTER_GET_QUOTE_SERVICE_UNAVAILABLE:
      return " (SERVICE_UNAVAILABLE)";
    default:
      return "";
  }
}

int tdx_get_quote(const struct tdx_pages* pages, const uint8_t report_data[64],
                  uint32_t* quote_size, struct tee_error* err) {
  for (int i = 0; i < 64; ++i) pages->report_data[i] = report_data[i];
  tdcall_clear(pages, CLOISTER_TDCALL_MR_REPORT);
  pages->tdcall->rcx = tee_gpa(pages->tdreport);
  pages->tdcall->rdx = tee_gpa(pages->report_data);
  pages->tdcall->r8 = 0; /* subtype */
  if (tdcall(pages, "TDG.MR.REPORT", err) != 0) return -1;

  uint8_t* q = pages->quote;
  __builtin_memset(q, 0, pages->quote_capacity);
  le_put(q, QUOTE_BUFFER_VERSION, 8);
  le_put(q + 16, CLOISTER_TDREPORT_SIZE, 4); /* in_len */
  for (int i = 0; i < CLOISTER_TDREPORT_SIZE; ++i)
    q[CLOISTER_QUOTE_BUFFER_HEADER_SIZE + i] = pages->tdreport[i];
  tdcall_clear(pages, CLOISTER_TDCALL_VP_VMCALL);
  pages->tdcall->rcx = TDVMCALL_EXPOSE_REGS;
  pages->tdcall->r10 = 0; /* GHCI standard TDVMCALL */
  pages->tdcall->r11 = CLOISTER_TDVMCALL_GET_QUOTE;
  pages->tdcall->r12 = tee_gpa(q);
  pages->tdcall->r13 = pages->quote_capacity;
  if (tdcall(pages, "TDG.VP.VMCALL<GetQuote>", err) != 0) return -1;
  if (pages->tdcall->r10 != CLOISTER_TDVMCALL_SUCCESS) {
    tee_fail(err, "TDG.VP.VMCALL<GetQuote> failed: R10 ");
    tee_error_hex(err, pages->tdcall->r10);
    if (pages->tdcall->r10 == CLOISTER_TDVMCALL_INVALID_OPERAND)
      tee_error_add(err, " (TDG.VP.VMCALL_INVALID_OPERAND)");
    return -1;
  }
  uint64_t status = le_get(q + 8, 8);
  for (int polls = 0; status == CLOISTER_GET_QUOTE_IN_FLIGHT && polls < TDX_QUOTE_POLLS; ++polls) {
    tee_pause();
    __asm__ volatile("" ::: "memory"); /* the host writes the buffer asynchronously */
    status = le_get(q + 8, 8);
  }
  if (status != CLOISTER_GET_QUOTE_SUCCESS) {
    tee_fail(err, "GetQuote status ");
    tee_error_hex(err, status);
    tee_error_add(err, quote_status_name(status));
    return -1;
  }
  const uint32_t out_len = (uint32_t)le_get(q + 20, 4);
  if (out_len == 0 || out_len > pages->quote_capacity - CLOISTER_QUOTE_BUFFER_HEADER_SIZE) {
    tee_fail(err, "GetQuote out_len ");
    tee_error_dec(err, out_len);
    tee_error_add(err, ", expected 1..");
    tee_error_dec(err, pages->quote_capacity - CLOISTER_QUOTE_BUFFER_HEADER_SIZE);
    return -1;
  }
  *quote_size = out_len;
  return 0;
}
