/* SEV-SNP attestation as a guest driver does it (Linux drivers/virt/coco/sev-guest and
 * arch/x86/coco/sev/core.c): an extended MSG_REPORT_REQ guest message encrypted under VMPCK0,
 * sent with SVM_VMGEXIT_EXT_GUEST_REQUEST through the GHCB; here the GHCB is handed to the
 * simulated secure processor through its doorbell instead of VMGEXIT (vmm/tee/sim_abi.h).
 * Freestanding C, also compiled for host tests. */
#pragma once
#include <stdint.h>

#include "cloister/vmm/tee/sim_abi.h"
#include "tee_platform.h"

#define SNP_PAGE_SIZE 4096
/* The certificate buffer offered first: 4 pages, Linux's SEV_FW_BLOB_MAX_SIZE. */
#define SNP_CERT_PAGES_FIRST 4
/* How often a request is repeated when the host answers INVALID_LEN (with a larger buffer) or
 * BUSY, before the guest gives up. */
#define SNP_INVALID_LEN_RETRIES 2
#define SNP_BUSY_RETRIES 16

/* The pages of one request; every pointer is 4 KiB aligned and `certs` holds `cert_pages_max`
 * pages. On hardware all but the secrets page would be shared (unencrypted) pages. */
struct snp_request_pages {
  uint8_t* secrets;  /* the SNP secrets page: VMPCK0 and the OS area's message counter */
  uint8_t* ghcb;     /* the GHCB */
  uint8_t* request;  /* snp_guest_msg carrying MSG_REPORT_REQ */
  uint8_t* response; /* snp_guest_msg receiving MSG_REPORT_RSP */
  uint8_t* certs;    /* the certificate table */
  uint32_t cert_pages_max;
};

struct snp_evidence {
  uint8_t report[CLOISTER_SNP_REPORT_SIZE]; /* ATTESTATION_REPORT */
  uint32_t cert_table_size;                 /* bytes of the certificate table at pages->certs */
};

/* Asks for an attestation report with REPORT_DATA `report_data` at VMPL 0 and the certificate
 * table. Message sequence numbers follow Linux: the request carries OS-area msg_seqno_0 + 1,
 * the response must carry the request's + 1, and the OS-area counter advances by 2 once the
 * firmware has answered. INVALID_LEN is retried with the page count the host returns in RBX
 * (the same message: the firmware has not seen it), BUSY after a pause; both a bounded number
 * of times. A firmware error or a response that fails its checks (tag, sequence number, type,
 * status, report size) clears VMPCK0 in the secrets page, as Linux disables the key, so that no
 * later message can reuse an IV. Returns 0, or -1 with the reason in `err`. */
int snp_get_extended_report(const struct snp_request_pages* pages, const uint8_t report_data[64],
                            struct snp_evidence* out, struct tee_error* err);
