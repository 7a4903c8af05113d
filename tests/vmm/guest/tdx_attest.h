/* TDX attestation as a guest does it: measure into an RTMR with TDG.MR.RTMR.EXTEND and log the
 * event in the CC event log (TCG PC Client crypto-agile format, as TDVF's CCEL), then
 * TDG.MR.REPORT and TDG.VP.VMCALL<GetQuote> (Intel TDX Module ABI and GHCI 1.5; Linux
 * drivers/virt/coco/tdx-guest). The TDCALL instruction is replaced by the simulated TDX
 * module's doorbell (vmm/tee/sim_abi.h). Freestanding C, also compiled for host tests. */
#pragma once
#include <stdint.h>

#include "cloister/vmm/tee/sim_abi.h"
#include "sha384.h"
#include "tee_platform.h"

/* TCG PC Client Platform Firmware Profile event types used here (§10.4.1). */
#define TCG_EV_NO_ACTION 0x3u
#define TCG_EV_EVENT_TAG 0x6u
#define TCG_ALG_SHA384 0x000cu

/* The command line is measured as Linux's EFI stub measures its load options (PCR 9,
 * EV_EVENT_TAG, TCG_PCClientTaggedEvent with id LOAD_OPTIONS_EVENT_TAG_ID and the description
 * "LOADED_IMAGE::LoadOptions"; drivers/firmware/efi/libstub/efi-stub-helper.c). TDVF maps PCR 9
 * to CC measurement register index 3, which is RTMR2 (TdxMeasurementMapPcrToMrIndex). */
#define TDX_CMDLINE_RTMR 2
#define TDX_CMDLINE_EVENT_TAG_ID 0x8f3b22edu
#define TDX_CMDLINE_EVENT_DESCRIPTION "LOADED_IMAGE::LoadOptions"

/* How often GetQuote's status is polled (with tee_pause() in between) while it is IN_FLIGHT. */
#define TDX_QUOTE_POLLS 100

/* A CC event log being written into `buf`. */
struct cc_event_log {
  uint8_t* buf;
  uint32_t capacity;
  uint32_t size; /* bytes written: the Spec ID header and the events */
};

/* Starts a log with the "Spec ID Event03" header (SHA-384 only). Returns 0, or -1 with `err`
 * when `capacity` cannot hold it. */
int cc_event_log_init(struct cc_event_log* log, uint8_t* buf, uint32_t capacity,
                      struct tee_error* err);

/* Appends a TCG_PCR_EVENT2 with MR index `rtmr` + 1, its SHA-384 `digest` and `data`. */
int cc_event_log_append(struct cc_event_log* log, uint32_t rtmr, uint32_t type,
                        const uint8_t digest[SHA384_DIGEST_SIZE], const uint8_t* data,
                        uint32_t data_size, struct tee_error* err);

/* Aligned scratch the TDCALLs point at. */
struct tdx_pages {
  struct cloister_sim_tdcall* tdcall; /* 4 KiB aligned (the doorbell takes its page number) */
  uint8_t* digest;                    /* 48 bytes, 64-byte aligned */
  uint8_t* report_data;               /* 64 bytes, 64-byte aligned */
  uint8_t* tdreport;                  /* 1024 bytes, 1024-byte aligned */
  uint8_t* quote;                     /* the GetQuote shared buffer, 4 KiB aligned */
  uint32_t quote_capacity;            /* its size in bytes, header included */
};

/* Extends RTMR2 with SHA-384(cmdline) and logs the event (see TDX_CMDLINE_RTMR). `cmdline` is the
 * command line as the guest received it, without a terminating NUL. */
int tdx_measure_cmdline(const struct tdx_pages* pages, const char* cmdline, uint32_t size,
                        struct cc_event_log* log, struct tee_error* err);

/* TDG.MR.REPORT with `report_data`, then GetQuote on that TDREPORT; on success the quote is
 * the *quote_size bytes at pages->quote + CLOISTER_QUOTE_BUFFER_HEADER_SIZE. */
int tdx_get_quote(const struct tdx_pages* pages, const uint8_t report_data[64],
                  uint32_t* quote_size, struct tee_error* err);
