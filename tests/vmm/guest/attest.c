/* See attest.h. The pages handed to the secure processor come first in .bss (firmware.ld), so
 * their guest-physical addresses are fixed: GHCB 0x20000, request 0x21000, response 0x22000,
 * certificate buffer 0x23000 (8 pages), TDCALL block 0x2b000, TDREPORT 0x2c000, GetQuote buffer
 * 0x2d000 (32 KiB), CC event log 0x35000. */
#include "attest.h"

#include "console.h"
#include "evidence_stream.h"
#include "guest_layout.h"
#include "snp_attest.h"
#include "tdx_attest.h"
#include "virtio.h"

#define CERT_PAGES_MAX 8
#define QUOTE_BUFFER_SIZE (32 * 1024)
#define EVENT_LOG_SIZE 4096
#define CERT_TABLE_EMPTY 24 /* just the all-zero terminator */

static struct {
  uint8_t ghcb[SNP_PAGE_SIZE];
  uint8_t request[SNP_PAGE_SIZE];
  uint8_t response[SNP_PAGE_SIZE];
  uint8_t certs[CERT_PAGES_MAX * SNP_PAGE_SIZE];
  struct cloister_sim_tdcall tdcall __attribute__((aligned(4096)));
  uint8_t tdreport[CLOISTER_TDREPORT_SIZE] __attribute__((aligned(4096)));
  uint8_t digest[64] __attribute__((aligned(64)));
  uint8_t report_data[64] __attribute__((aligned(64)));
  uint8_t quote[QUOTE_BUFFER_SIZE] __attribute__((aligned(4096)));
  uint8_t event_log[EVENT_LOG_SIZE];
} pages __attribute__((aligned(4096), section(".bss.tee")));

static struct cc_event_log event_log;
static struct snp_evidence snp_evidence;
static struct tee_error error;

/* ---- the platform side of tee_platform.h: identity-mapped memory, port I/O ---- */
uint64_t tee_gpa(const void* p) {
  return (uint64_t)(uintptr_t)p;
}

void tee_doorbell(uint16_t port, uint32_t value) {
  __asm__ volatile("outl %0, %1" ::"a"(value), "Nd"(port) : "memory");
}

void tee_pause(void) {
  for (int i = 0; i < 1000000; ++i) __asm__ volatile("pause");
}

static const struct tdx_pages tdx_pages = {
    &pages.tdcall, pages.digest, pages.report_data, pages.tdreport, pages.quote, QUOTE_BUFFER_SIZE,
};

static int failed(const char* what) {
  print("attest: failed: ");
  print(what);
  print("\n");
  return -1;
}

int attest_measure_boot(enum attest_tee tee, const char* cmdline) {
  if (tee != ATTEST_TDX) return 0;
  uint32_t size = 0;
  while (cmdline[size]) ++size;
  if (cc_event_log_init(&event_log, pages.event_log, EVENT_LOG_SIZE, &error) != 0 ||
      tdx_measure_cmdline(&tdx_pages, cmdline, size, &event_log, &error) != 0)
    return failed(error.text);
  print("attest: command line measured into RTMR2\n");
  return 0;
}

static const char* write_vsock(void* ctx, const void* data, uint32_t len) {
  (void)ctx;
  return vsock_write(data, len);
}

/* The evidence frames for `report_data`; returns how many, 0 when there is no evidence (the
 * reason is in `error`). */
static int collect(enum attest_tee tee, const uint8_t* report_data, struct evidence_frame* f) {
  if (tee == ATTEST_SNP) {
    const struct snp_request_pages snp = {(uint8_t*)GUEST_SNP_SECRETS,
                                          pages.ghcb,
                                          pages.request,
                                          pages.response,
                                          pages.certs,
                                          CERT_PAGES_MAX};
    if (snp_get_extended_report(&snp, report_data, &snp_evidence, &error) != 0) return 0;
    f[0] = (struct evidence_frame){CLOISTER_EVIDENCE_SNP_REPORT, snp_evidence.report,
                                   CLOISTER_SNP_REPORT_SIZE};
    f[1] = (struct evidence_frame){CLOISTER_EVIDENCE_SNP_CERT_TABLE, pages.certs,
                                   snp_evidence.cert_table_size};
    return snp_evidence.cert_table_size > CERT_TABLE_EMPTY ? 2 : 1;
  }
  uint32_t quote_size;
  if (tdx_get_quote(&tdx_pages, report_data, &quote_size, &error) != 0) return 0;
  f[0] = (struct evidence_frame){CLOISTER_EVIDENCE_TDX_QUOTE,
                                 pages.quote + CLOISTER_QUOTE_BUFFER_HEADER_SIZE, quote_size};
  f[1] = (struct evidence_frame){CLOISTER_EVIDENCE_CC_EVENT_LOG, event_log.buf, event_log.size};
  return 2;
}

static void print_frame(const struct evidence_frame* f) {
  static const char* const names[] = {"", "report", "certificate table", "quote", "event log"};
  print(names[f->kind]);
  print(" ");
  print_dec(f->size);
  print(" bytes");
}

int attest_serve(enum attest_tee tee, uint64_t vsock_base, uint32_t port) {
  const char* tee_name = tee == ATTEST_SNP ? "snp" : "tdx";
  uint64_t cid;
  const char* io = vsock_listen(vsock_base, port, &cid);
  if (io) return failed(io);
  print("attest: ");
  print(tee_name);
  print(", listening on vsock port ");
  print_dec(port);
  print("\n");
  flush();
  static uint8_t report_data[CLOISTER_EVIDENCE_REPORT_DATA_SIZE];
  io = vsock_accept(0);
  if (!io) io = vsock_read_exact(report_data, sizeof report_data);
  if (io) return failed(io);

  struct evidence_frame frames[2];
  int count = collect(tee, report_data, frames);
  if (count == 0)
    frames[count++] =
        (struct evidence_frame){CLOISTER_EVIDENCE_ERROR, error.text, (uint32_t)error.len};
  io = evidence_send(write_vsock, NULL, frames, count);
  if (!io) io = vsock_close();
  /* The reason there is no evidence matters more than whether it reached the host, which may
   * close the connection as soon as it has read it. */
  if (frames[0].kind == CLOISTER_EVIDENCE_ERROR) return failed(error.text);
  if (io) return failed(io);
  print("attest: sent ");
  print(tee_name);
  print(" evidence: ");
  for (int i = 0; i < count; ++i) {
    if (i) print(", ");
    print_frame(&frames[i]);
  }
  print("\n");
  return 0;
}
