/* The test guest's attestation mode, "attest=snp" or "attest=tdx" on the command line (firmware
 * boot only): evidence from the simulated secure processor, bound to REPORT_DATA the host sends
 * over vsock, and sent back over vsock (sdk/guest_evidence_protocol.h). docs/simulated-tee.md
 * describes it. */
#pragma once
#include <stdint.h>

enum attest_tee { ATTEST_NONE, ATTEST_SNP, ATTEST_TDX };

/* What the guest measures at boot, before it acts on anything: on TDX, the command line into
 * RTMR2 and the CC event log (tdx_attest.h). Returns 0, or -1 after printing why. */
int attest_measure_boot(enum attest_tee tee, const char* cmdline);

/* Waits (without a time limit) for one host connection to vsock port `port` of the virtio-vsock
 * device at `vsock_base`, reads the 64-byte REPORT_DATA, asks for a report (SNP) or a quote
 * (TDX) and sends the evidence, or the reason there is none, back; closes and prints a one-line
 * summary. Returns 0, or -1 after printing what went wrong. */
int attest_serve(enum attest_tee tee, uint64_t vsock_base, uint32_t port);
