/* The guest-evidence protocol: how a guest hands the host its attestation evidence over vsock.
 * Shared by the test guest (tests/vmm/guest, C) and the SDK's client (guest_evidence.h, C++).
 *
 * The host connects to the guest's vsock port (with cloister-vmm's hybrid vsock: connect to the
 * VMM's UNIX socket, write "CONNECT <port>\n", read "OK <host port>\n") and then:
 *
 *   host -> guest   REPORT_DATA: 64 bytes, bound into the evidence unchanged
 *   guest -> host   stream header: u32 magic 'CLEV' (0x56454c43), u32 version (1)
 *                   frames:        u32 kind, u32 length, `length` bytes
 *                   the END frame (kind 0, length 0); then the guest closes the connection
 *
 * All integers are little-endian. A stream carries either evidence or an ERROR frame:
 *   SEV-SNP   SNP_REPORT (the 1184-byte ATTESTATION_REPORT), then SNP_CERT_TABLE if the host
 *             supplied certificates (the GHCB extended-request certificate table)
 *   TDX       TDX_QUOTE, then CC_EVENT_LOG (the guest's CC event log, TCG crypto-agile format)
 *   failure   ERROR: what went wrong, in printable ASCII
 * Every kind appears at most once. A receiver refuses frames longer than the limits below,
 * unknown kinds, repeated kinds, SNP and TDX frames in one stream, a stream without a report,
 * quote or error, and bytes after END. */
#ifndef CLOISTER_SDK_GUEST_EVIDENCE_PROTOCOL_H
#define CLOISTER_SDK_GUEST_EVIDENCE_PROTOCOL_H

#define CLOISTER_EVIDENCE_DEFAULT_PORT 9000
#define CLOISTER_EVIDENCE_REPORT_DATA_SIZE 64

#define CLOISTER_EVIDENCE_MAGIC 0x56454c43u /* "CLEV" */
#define CLOISTER_EVIDENCE_VERSION 1u
#define CLOISTER_EVIDENCE_STREAM_HEADER_SIZE 8
#define CLOISTER_EVIDENCE_FRAME_HEADER_SIZE 8

/* Frame kinds. */
#define CLOISTER_EVIDENCE_END 0u
#define CLOISTER_EVIDENCE_SNP_REPORT 1u
#define CLOISTER_EVIDENCE_SNP_CERT_TABLE 2u
#define CLOISTER_EVIDENCE_TDX_QUOTE 3u
#define CLOISTER_EVIDENCE_CC_EVENT_LOG 4u
#define CLOISTER_EVIDENCE_ERROR 5u

/* Limits a receiver enforces. */
#define CLOISTER_EVIDENCE_SNP_REPORT_SIZE 1184u   /* SNP_REPORT is exactly this long */
#define CLOISTER_EVIDENCE_MAX_FRAME (64u * 1024u) /* any other evidence frame */
#define CLOISTER_EVIDENCE_MAX_ERROR 1024u         /* ERROR text */

#endif /* CLOISTER_SDK_GUEST_EVIDENCE_PROTOCOL_H */
