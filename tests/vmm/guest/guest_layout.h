/* Where the test guest keeps things in guest-physical memory when it boots as firmware, for C,
 * the assembly files and the image's SEV and TDX metadata (firmware_tail.S). firmware.ld places
 * .bss (which starts with attest.c's pages) in [GUEST_BSS, GUEST_BSS_END).
 *
 *   0x008000            AP SIPI trampoline
 *   0x010000-0x013fff   boot page tables
 *   0x014000            SEV-SNP secrets page           (SEV metadata SNP_SECRETS)
 *   0x015000            SEV-SNP CPUID page             (SEV metadata CPUID)
 *   0x016000-0x017fff   TD HOB, written by the VMM     (TDX metadata TD_HOB, MR.EXTEND)
 *   0x020000-0x07ffff   .bss: GHCB, guest-message and certificate pages, TDCALL and GetQuote
 *                       buffers, CC event log, virtio rings and buffers, page-table pool
 *   0x080000-0x09efff   BSP stack (grows down from 0x9f000)
 *   0x200000-0x2fffff   AP stacks, 4 KiB per APIC ID
 *   0xffff0000-         the image (64 KiB, ends at 4 GiB)
 *
 * Everything the guest touches in RAM is in the SNP_SEC_MEM and TempMem ranges below, so it is
 * pre-validated (SNP) or accepted (TDX) at launch: the guest never validates or accepts memory
 * itself. */
#pragma once

#define GUEST_IMAGE_BASE 0xffff0000
#define GUEST_IMAGE_SIZE 0x10000

#define GUEST_AP_TRAMPOLINE 0x8000
#define GUEST_PML4 0x10000
#define GUEST_PDPT 0x11000
#define GUEST_PD_LOW 0x12000
#define GUEST_PD_TOP 0x13000
#define GUEST_SNP_SECRETS 0x14000
#define GUEST_SNP_CPUID 0x15000
#define GUEST_TD_HOB 0x16000
#define GUEST_TD_HOB_SIZE 0x2000
#define GUEST_BSS 0x20000
#define GUEST_BSS_END 0x80000
#define BSP_STACK_TOP 0x9f000
#define AP_STACK_BASE 0x200000
#define AP_STACKS_SIZE 0x100000
/* mode=memwrite's buffer (firmware boot): from 4 MiB up, memwrite_kib= KiB of it. */
#define GUEST_MEMWRITE_BUF 0x400000

/* Low RAM in use from the reset vector on: [0x8000, 0xa0000) and the AP stacks. */
#define GUEST_LOW_RAM 0x8000
#define GUEST_LOW_RAM_END 0xa0000
