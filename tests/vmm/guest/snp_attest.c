/* SEV-SNP extended guest request (GHCB specification 56421 v2 §4.1.8, SNP firmware ABI 56860
 * "Guest Messages"), see snp_attest.h. */
#include "snp_attest.h"

#include "aes_gcm.h"
#include "le.h"

#define SNP_AEAD_AES_256_GCM 1
#define SNP_MSG_HDR_VERSION 1
#define SNP_MSG_VERSION 1
#define GHCB_PROTOCOL_VERSION 2
#define REPORT_RSP_STATUS 0x00
#define REPORT_RSP_REPORT_SIZE 0x04
#define REPORT_RSP_REPORT 0x20
#define CERT_ENTRY_SIZE 24 /* {GUID, u32 offset, u32 length} (GHCB spec, "certificate table") */
#define SEQNO_LIMIT 0xffffffffu /* the OS area keeps the counter in 32 bits (Linux) */

/* msg_seqno_0, the first u32 of the secrets page's OS area. */
static uint32_t msg_seqno_0(const struct snp_request_pages* p) {
  return (uint32_t)le_get(p->secrets + CLOISTER_SNP_SECRETS_OS_AREA, 4);
}

static const uint8_t* vmpck0(const struct snp_request_pages* p) {
  return p->secrets + CLOISTER_SNP_SECRETS_VMPCK0;
}

/* Linux snp_disable_vmpck(): after an unexplained failure the counter may be out of step with
 * the firmware's, and a message under a reused sequence number would reuse an AES-GCM IV. */
static void disable_vmpck0(const struct snp_request_pages* p) {
  __builtin_memset(p->secrets + CLOISTER_SNP_SECRETS_VMPCK0, 0, AES256_KEY_SIZE);
}

static void seqno_iv(uint64_t seqno, uint8_t iv[AES_GCM_IV_SIZE]) {
  __builtin_memset(iv, 0, AES_GCM_IV_SIZE);
  le_put(iv, seqno, 8);
}

/* The request page: snp_guest_msg header, MSG_REPORT_REQ payload encrypted in place. */
static void build_request(const struct snp_request_pages* p, uint64_t seqno,
                          const uint8_t report_data[64]) {
  uint8_t* m = p->request;
  __builtin_memset(m, 0, SNP_PAGE_SIZE);
  le_put(m + CLOISTER_SNP_MSG_SEQNO, seqno, 8);
  m[CLOISTER_SNP_MSG_ALGO] = SNP_AEAD_AES_256_GCM;
  m[CLOISTER_SNP_MSG_HDR_VERSION] = SNP_MSG_HDR_VERSION;
  le_put(m + CLOISTER_SNP_MSG_HDR_SIZE, CLOISTER_SNP_MSG_HEADER_SIZE, 2);
  m[CLOISTER_SNP_MSG_TYPE] = CLOISTER_SNP_MSG_REPORT_REQ;
  m[CLOISTER_SNP_MSG_VERSION] = SNP_MSG_VERSION;
  le_put(m + CLOISTER_SNP_MSG_SIZE, CLOISTER_SNP_REPORT_REQ_SIZE, 2);
  m[CLOISTER_SNP_MSG_VMPCK] = 0;
  uint8_t* payload = m + CLOISTER_SNP_MSG_HEADER_SIZE;
  for (int i = 0; i < 64; ++i) payload[i] = report_data[i]; /* then VMPL 0, reserved zero */
  uint8_t iv[AES_GCM_IV_SIZE];
  seqno_iv(seqno, iv);
  aes256gcm_encrypt(vmpck0(p), iv, m + CLOISTER_SNP_MSG_AAD_OFFSET, CLOISTER_SNP_MSG_AAD_SIZE,
                    payload, CLOISTER_SNP_REPORT_REQ_SIZE, payload, m + CLOISTER_SNP_MSG_AUTHTAG);
}

static void set_valid(uint8_t* ghcb, uint32_t offset) {
  const uint32_t bit = offset / 8;
  ghcb[CLOISTER_GHCB_VALID_BITMAP + bit / 8] |= (uint8_t)(1u << (bit % 8));
}

static void ghcb_set(uint8_t* ghcb, uint32_t offset, uint64_t value) {
  le_put(ghcb + offset, value, 8);
  set_valid(ghcb, offset);
}

/* One SVM_VMGEXIT_EXT_GUEST_REQUEST through the doorbell; returns -1 with `err` set when the
 * hypervisor did not handle the exit at all, else 0 with SW_EXITINFO2 in *status. */
static int ext_guest_request(const struct snp_request_pages* p, uint32_t cert_pages,
                             uint64_t* status, struct tee_error* err) {
  uint8_t* g = p->ghcb;
  __builtin_memset(g, 0, SNP_PAGE_SIZE);
  __builtin_memset(p->response, 0, SNP_PAGE_SIZE);
  __builtin_memset(p->certs, 0, (size_t)cert_pages * SNP_PAGE_SIZE);
  ghcb_set(g, CLOISTER_GHCB_RAX, tee_gpa(p->certs));
  ghcb_set(g, CLOISTER_GHCB_RBX, cert_pages);
  ghcb_set(g, CLOISTER_GHCB_SW_EXIT_CODE, CLOISTER_SVM_VMGEXIT_EXT_GUEST_REQUEST);
  ghcb_set(g, CLOISTER_GHCB_SW_EXIT_INFO_1, tee_gpa(p->request));
  ghcb_set(g, CLOISTER_GHCB_SW_EXIT_INFO_2, tee_gpa(p->response));
  le_put(g + CLOISTER_GHCB_PROTOCOL_VERSION, GHCB_PROTOCOL_VERSION, 2);
  le_put(g + CLOISTER_GHCB_USAGE, 0, 4);
  tee_doorbell(CLOISTER_SIM_SNP_DOORBELL, (uint32_t)(tee_gpa(g) >> 12));
  const uint64_t info1 = le_get(g + CLOISTER_GHCB_SW_EXIT_INFO_1, 8);
  if ((uint32_t)info1 != 0) {
    tee_fail(err, "the hypervisor did not complete the guest request: SW_EXITINFO1 ");
    tee_error_hex(err, info1);
    tee_error_add(err, " (expected 0); is the VM running with --tee sim-snp?");
    return -1;
  }
  *status = le_get(g + CLOISTER_GHCB_SW_EXIT_INFO_2, 8);
  return 0;
}

static const char* firmware_error_name(uint32_t code) {
  switch (code) {
    case CLOISTER_SNP_FW_INVALID_PARAM:
      return " (INVALID_PARAM)";
    case CLOISTER_SNP_FW_AEAD_OFLOW:
      return " (AEAD_OFLOW: message sequence number out of order or exhausted)";
    default:
      return "";
  }
}

/* Sends the request until the host stops answering INVALID_LEN or BUSY. On success the
 * certificate buffer holds *cert_pages pages. */
static int send_request(const struct snp_request_pages* p, uint32_t* cert_pages,
                        struct tee_error* err) {
  int invalid_len = 0, busy = 0;
  for (;;) {
    uint64_t status;
    if (ext_guest_request(p, *cert_pages, &status, err) != 0) return -1;
    if (status == 0) return 0;
    const uint32_t vmm_error = (uint32_t)(status >> 32), fw_error = (uint32_t)status;
    if (vmm_error == CLOISTER_SNP_VMM_ERR_INVALID_LEN && fw_error == 0) {
      const uint64_t needed = le_get(p->ghcb + CLOISTER_GHCB_RBX, 8);
      if (++invalid_len > SNP_INVALID_LEN_RETRIES || needed <= *cert_pages ||
          needed > p->cert_pages_max) {
        tee_fail(err, "the certificate table needs ");
        tee_error_dec(err, needed);
        tee_error_add(err, " pages (offered ");
        tee_error_dec(err, *cert_pages);
        tee_error_add(err, ", at most ");
        tee_error_dec(err, p->cert_pages_max);
        tee_error_add(err, " and ");
        tee_error_dec(err, SNP_INVALID_LEN_RETRIES);
        tee_error_add(err, " retries)");
        return -1;
      }
      *cert_pages = (uint32_t)needed;
      continue;
    }
    if (vmm_error == CLOISTER_SNP_VMM_ERR_BUSY && fw_error == 0) {
      if (++busy > SNP_BUSY_RETRIES) {
        tee_fail(err, "the host stayed busy (VMM error BUSY) for ");
        tee_error_dec(err, SNP_BUSY_RETRIES);
        tee_error_add(err, " retries");
        return -1;
      }
      tee_pause();
      continue;
    }
    disable_vmpck0(p);
    tee_fail(err, "the guest request failed: SW_EXITINFO2 ");
    tee_error_hex(err, status);
    tee_error_add(err, ", VMM error ");
    tee_error_hex(err, vmm_error);
    tee_error_add(err, ", firmware error ");
    tee_error_hex(err, fw_error);
    tee_error_add(err, firmware_error_name(fw_error));
    return -1;
  }
}

/* Linux verify_and_dec_payload(), then the MSG_REPORT_RSP fields. */
static int check_response(const struct snp_request_pages* p, uint64_t request_seqno,
                          struct snp_evidence* out, struct tee_error* err) {
  uint8_t* m = p->response;
  const uint64_t seqno = le_get(m + CLOISTER_SNP_MSG_SEQNO, 8);
  const uint32_t size = (uint32_t)le_get(m + CLOISTER_SNP_MSG_SIZE, 2);
  if (seqno != request_seqno + 1) {
    tee_fail(err, "response sequence number ");
    tee_error_dec(err, seqno);
    tee_error_add(err, ", expected ");
    tee_error_dec(err, request_seqno + 1);
    return -1;
  }
  if (m[CLOISTER_SNP_MSG_TYPE] != CLOISTER_SNP_MSG_REPORT_RSP ||
      m[CLOISTER_SNP_MSG_VERSION] != SNP_MSG_VERSION ||
      m[CLOISTER_SNP_MSG_ALGO] != SNP_AEAD_AES_256_GCM) {
    tee_fail(err, "response message type ");
    tee_error_dec(err, m[CLOISTER_SNP_MSG_TYPE]);
    tee_error_add(err, " version ");
    tee_error_dec(err, m[CLOISTER_SNP_MSG_VERSION]);
    tee_error_add(err, " algorithm ");
    tee_error_dec(err, m[CLOISTER_SNP_MSG_ALGO]);
    tee_error_add(err, ", expected MSG_REPORT_RSP (6) version 1 AES-256-GCM (1)");
    return -1;
  }
  if (size < CLOISTER_SNP_REPORT_RSP_SIZE || size > SNP_PAGE_SIZE - CLOISTER_SNP_MSG_HEADER_SIZE) {
    tee_fail(err, "response payload of ");
    tee_error_dec(err, size);
    tee_error_add(err, " bytes, expected ");
    tee_error_dec(err, CLOISTER_SNP_REPORT_RSP_SIZE);
    tee_error_add(err, " to one page");
    return -1;
  }
  uint8_t iv[AES_GCM_IV_SIZE];
  seqno_iv(seqno, iv);
  uint8_t* payload = m + CLOISTER_SNP_MSG_HEADER_SIZE;
  if (aes256gcm_decrypt(vmpck0(p), iv, m + CLOISTER_SNP_MSG_AAD_OFFSET, CLOISTER_SNP_MSG_AAD_SIZE,
                        payload, size, m + CLOISTER_SNP_MSG_AUTHTAG, payload) != 0)
    return tee_fail(err,
                    "the response does not decrypt under VMPCK0 (authentication tag mismatch)");
  const uint32_t status = (uint32_t)le_get(payload + REPORT_RSP_STATUS, 4);
  const uint32_t report_size = (uint32_t)le_get(payload + REPORT_RSP_REPORT_SIZE, 4);
  if (status != 0) {
    tee_fail(err, "MSG_REPORT_RSP status ");
    tee_error_hex(err, status);
    tee_error_add(err, firmware_error_name(status));
    return -1;
  }
  if (report_size != CLOISTER_SNP_REPORT_SIZE) {
    tee_fail(err, "MSG_REPORT_RSP report_size ");
    tee_error_dec(err, report_size);
    tee_error_add(err, ", expected 1184");
    return -1;
  }
  for (int i = 0; i < CLOISTER_SNP_REPORT_SIZE; ++i)
    out->report[i] = payload[REPORT_RSP_REPORT + i];
  return 0;
}

/* The bytes of the certificate buffer the table uses: its entries up to the all-zero one, and
 * every entry's data. A table without a terminator or with data outside the buffer is passed
 * on whole, for the host's parser to reject. */
static uint32_t cert_table_size(const uint8_t* certs, uint32_t capacity) {
  uint32_t end = 0;
  for (uint32_t at = 0; at + CERT_ENTRY_SIZE <= capacity; at += CERT_ENTRY_SIZE) {
    int zero = 1;
    for (int i = 0; i < CERT_ENTRY_SIZE; ++i) zero &= certs[at + i] == 0;
    if (end < at + CERT_ENTRY_SIZE) end = at + CERT_ENTRY_SIZE;
    if (zero) return end;
    const uint64_t data_end = le_get(certs + at + 16, 4) + le_get(certs + at + 20, 4);
    if (data_end > capacity) return capacity;
    if (data_end > end) end = (uint32_t)data_end;
  }
  return capacity;
}

int snp_get_extended_report(const struct snp_request_pages* pages, const uint8_t report_data[64],
                            struct snp_evidence* out, struct tee_error* err) {
  int key_set = 0;
  for (int i = 0; i < AES256_KEY_SIZE; ++i) key_set |= vmpck0(pages)[i] != 0;
  if (!key_set)
    return tee_fail(err,
                    "VMPCK0 in the secrets page is empty (disabled, or the VM does not run with "
                    "--tee sim-snp)");
  const uint32_t counter = msg_seqno_0(pages);
  if (counter >= SEQNO_LIMIT - 1) return tee_fail(err, "the message sequence number is exhausted");
  const uint64_t seqno = (uint64_t)counter + 1;
  build_request(pages, seqno, report_data);
  uint32_t cert_pages = SNP_CERT_PAGES_FIRST;
  if (cert_pages > pages->cert_pages_max) cert_pages = pages->cert_pages_max;
  if (send_request(pages, &cert_pages, err) != 0) return -1;
  /* The firmware consumed seqno and seqno + 1. */
  le_put(pages->secrets + CLOISTER_SNP_SECRETS_OS_AREA, counter + 2, 4);
  if (check_response(pages, seqno, out, err) != 0) {
    disable_vmpck0(pages);
    return -1;
  }
  out->cert_table_size = cert_table_size(pages->certs, cert_pages * SNP_PAGE_SIZE);
  return 0;
}
