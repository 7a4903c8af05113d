/* The guest-visible interface of Cloister's simulated secure processor (`--tee sim-snp` and
 * `--tee sim-tdx`), shared by cloister-vmm and the test guest (C and C++).
 *
 * On hardware a guest reaches its secure processor with an instruction the host cannot emulate
 * under plain KVM: VMGEXIT after writing the GHCB (SEV-SNP) or TDCALL (TDX). The simulator keeps
 * every data structure in its hardware format and replaces only that instruction with a 32-bit
 * OUT to a doorbell port, so that the guest code on either side of the doorbell is the code a
 * real guest runs:
 *
 *   SEV-SNP  The guest fills a GHCB page exactly as for VMGEXIT (GHCB specification 56421 v2,
 *            "GHCB Layout"): SW_EXITCODE, SW_EXITINFO1/2, RAX/RBX for extended
 *            requests, and the valid bitmap. It then writes the GHCB's page frame number
 *            (GPA >> 12) to CLOISTER_SIM_SNP_DOORBELL. The simulator handles SVM_VMGEXIT_GUEST_
 *            REQUEST and SVM_VMGEXIT_EXT_GUEST_REQUEST as the PSP and KVM do together: the
 *            request page holds an snp_guest_msg (SNP firmware ABI 56860, "Guest Messages")
 *            encrypted with AES-256-GCM under a VMPCK from the secrets page, the response page
 *            receives the encrypted response, and SW_EXITINFO2 receives the status
 *            (upper 32 bits: VMM error, lower 32 bits: firmware error; 0 = success).
 *            SW_EXITINFO1 is set to 0, the GHCB's "no action" answer (the simulator never asks
 *            for an exception to be injected), as KVM does; a guest checks its low 32 bits.
 *            For SVM_VMGEXIT_EXT_GUEST_REQUEST, RAX is the GPA of the certificate buffer and
 *            RBX its size in 4 KiB pages. On success the buffer holds the certificate table
 *            (GHCB specification, "certificate table": 24-byte {GUID, u32 offset, u32 length}
 *            entries ending with an all-zero entry, then the certificates; only the zero entry
 *            when there are none). When the buffer is too small the status is
 *            CLOISTER_SNP_VMM_ERR_INVALID_LEN and RBX receives the number of pages needed. With
 *            INVALID_LEN and with CLOISTER_SNP_VMM_ERR_BUSY the message did not reach the
 *            firmware: its sequence number is not spent, and the guest sends the same message
 *            again.
 *
 *   TDX      The guest fills a cloister_sim_tdcall block with the TDCALL's input registers and
 *            writes the block's page frame number to CLOISTER_SIM_TDX_DOORBELL; the simulated
 *            TDX module writes the output registers back into the block. Supported leaves:
 *            TDG.MR.REPORT, TDG.MR.RTMR.EXTEND and TDG.VP.VMCALL<GetQuote> (the GHCI 1.5
 *            shared-buffer format, struct cloister_sim_quote_buffer). GetQuote completes before
 *            the doorbell write returns; a guest still polls the buffer's status as on
 *            hardware.
 *
 * All multi-byte fields are little-endian. A malformed request never stops the VM: the guest
 * gets the error status the hardware would give, and the VMM logs it. */
#ifndef CLOISTER_VMM_TEE_SIM_ABI_H
#define CLOISTER_VMM_TEE_SIM_ABI_H

#include <stdint.h>

/* ---- doorbells (port I/O, 32-bit OUT of a page frame number) ---- */
#define CLOISTER_SIM_SNP_DOORBELL 0x0580
#define CLOISTER_SIM_TDX_DOORBELL 0x0584
#define CLOISTER_SIM_DOORBELL_PORTS 8 /* 0x580-0x587 */

/* ---- SEV-SNP ---- */

/* GHCB save-area offsets (GHCB specification 56421 v2, "GHCB Layout"; Linux struct ghcb). */
#define CLOISTER_GHCB_RAX 0x01f8
#define CLOISTER_GHCB_RBX 0x0318
#define CLOISTER_GHCB_SW_EXIT_CODE 0x0390
#define CLOISTER_GHCB_SW_EXIT_INFO_1 0x0398
#define CLOISTER_GHCB_SW_EXIT_INFO_2 0x03a0
#define CLOISTER_GHCB_VALID_BITMAP 0x03f0
#define CLOISTER_GHCB_PROTOCOL_VERSION 0x0ffa
#define CLOISTER_GHCB_USAGE 0x0ffc

/* NAE exit codes (Linux arch/x86/include/uapi/asm/svm.h). */
#define CLOISTER_SVM_VMGEXIT_GUEST_REQUEST 0x80000011u
#define CLOISTER_SVM_VMGEXIT_EXT_GUEST_REQUEST 0x80000012u

/* SW_EXITINFO2 upper half: VMM errors (GHCB specification v2 §4.1.8). */
#define CLOISTER_SNP_VMM_ERR_INVALID_LEN 1u
#define CLOISTER_SNP_VMM_ERR_BUSY 2u

/* Firmware status codes used by the simulator (SNP ABI 56860, "Status Codes"; Linux
 * include/uapi/linux/psp-sev.h). */
#define CLOISTER_SNP_FW_INVALID_PARAM 0x16u
#define CLOISTER_SNP_FW_AEAD_OFLOW 0x1du /* message sequence number out of order or exhausted */

/* Secrets page (SNP ABI 56860, "Secrets Page Format"; Linux struct snp_secrets_page). */
#define CLOISTER_SNP_SECRETS_VERSION 0x000
#define CLOISTER_SNP_SECRETS_VMPCK0 0x020  /* VMPCK0..3: 32 bytes each */
#define CLOISTER_SNP_SECRETS_OS_AREA 0x0a0 /* guest OS area: msg_seqno_0..3 (u32 each) */

/* snp_guest_msg header (SNP ABI 56860, "Message Header Format"; Linux struct snp_guest_msg_hdr). */
#define CLOISTER_SNP_MSG_AUTHTAG 0x00     /* 32 bytes; AES-256-GCM uses the first 16 */
#define CLOISTER_SNP_MSG_SEQNO 0x20       /* u64 */
#define CLOISTER_SNP_MSG_ALGO 0x30        /* u8: 1 = AES-256-GCM */
#define CLOISTER_SNP_MSG_HDR_VERSION 0x31 /* u8: 1 */
#define CLOISTER_SNP_MSG_HDR_SIZE 0x32    /* u16: 0x60 */
#define CLOISTER_SNP_MSG_TYPE 0x34        /* u8 */
#define CLOISTER_SNP_MSG_VERSION 0x35     /* u8: 1 */
#define CLOISTER_SNP_MSG_SIZE 0x36        /* u16: payload bytes */
#define CLOISTER_SNP_MSG_VMPCK 0x3c       /* u8: which VMPCK encrypts the message */
#define CLOISTER_SNP_MSG_HEADER_SIZE 0x60
/* The AAD is the header from ALGO to its end; the IV is the u64 SEQNO followed by four zero
 * bytes; the ciphertext is the payload. */
#define CLOISTER_SNP_MSG_AAD_OFFSET 0x30
#define CLOISTER_SNP_MSG_AAD_SIZE 0x30

#define CLOISTER_SNP_MSG_REPORT_REQ 5
#define CLOISTER_SNP_MSG_REPORT_RSP 6
#define CLOISTER_SNP_REPORT_REQ_SIZE 96   /* report_data[64], vmpl u32, key_sel u32, rsvd */
#define CLOISTER_SNP_REPORT_RSP_SIZE 1216 /* status u32, report_size u32, rsvd[24], report */
#define CLOISTER_SNP_REPORT_SIZE 1184

/* ---- TDX ---- */

/* TDCALL leaves (Intel TDX Module ABI specification, "TDCALL Leaf Functions"). */
#define CLOISTER_TDCALL_VP_VMCALL 0
#define CLOISTER_TDCALL_MR_RTMR_EXTEND 2
#define CLOISTER_TDCALL_MR_REPORT 4
/* TDG.VP.VMCALL sub-functions in R11 (GHCI 1.5) and their status codes in R10. */
#define CLOISTER_TDVMCALL_GET_QUOTE 0x10002u
#define CLOISTER_TDVMCALL_SUCCESS 0ull
#define CLOISTER_TDVMCALL_INVALID_OPERAND 0x8000000000000000ull
/* TDCALL completion status in RAX (TDX Module ABI: TDX_SUCCESS, TDX_OPERAND_INVALID). */
#define CLOISTER_TDX_SUCCESS 0ull
#define CLOISTER_TDX_OPERAND_INVALID 0xC000010000000000ull

/* One TDCALL: the input registers, and RAX and the outputs written back. */
struct cloister_sim_tdcall {
  uint64_t rax; /* in: leaf; out: completion status */
  uint64_t rcx;
  uint64_t rdx;
  uint64_t r8;
  uint64_t r9;
  uint64_t r10; /* TDG.VP.VMCALL: in 0 (GHCI standard), out: TDVMCALL status */
  uint64_t r11; /* TDG.VP.VMCALL: sub-function */
  uint64_t r12;
  uint64_t r13;
  uint64_t r14;
  uint64_t r15;
};

/*   TDG.MR.REPORT        RCX = GPA of the 1024-byte TDREPORT_STRUCT (1024-aligned) to write,
 *                        RDX = GPA of the 64-byte REPORTDATA (64-aligned), R8 = subtype 0.
 *   TDG.MR.RTMR.EXTEND   RCX = GPA of the 48-byte digest (64-aligned), RDX = RTMR index 0..3.
 *   TDG.VP.VMCALL        R10 = 0, R11 = CLOISTER_TDVMCALL_GET_QUOTE, R12 = GPA of a
 *                        cloister_sim_quote_buffer (4 KiB aligned), R13 = its size in bytes. */
#define CLOISTER_TDREPORT_SIZE 1024

/* GetQuote shared buffer (GHCI 1.5, TDG.VP.VMCALL<GetQuote>; Linux struct tdx_quote_buf). */
struct cloister_sim_quote_buffer {
  uint64_t version; /* 1 */
  uint64_t status;  /* CLOISTER_GET_QUOTE_* */
  uint32_t in_len;  /* bytes of data[] holding the TDREPORT */
  uint32_t out_len; /* bytes of data[] holding the quote on success */
  /* uint8_t data[]; follows */
};
#define CLOISTER_GET_QUOTE_SUCCESS 0ull
#define CLOISTER_GET_QUOTE_IN_FLIGHT 0xffffffffffffffffull
#define CLOISTER_GET_QUOTE_ERROR 0x8000000000000000ull
#define CLOISTER_GET_QUOTE_SERVICE_UNAVAILABLE 0x8000000000000001ull
#define CLOISTER_QUOTE_BUFFER_HEADER_SIZE 24

#endif /* CLOISTER_VMM_TEE_SIM_ABI_H */
