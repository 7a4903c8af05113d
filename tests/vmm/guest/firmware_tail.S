/* The last 4 KiB of the firmware image, laid out as edk2's OvmfPkg/ResetVector (ResetVectorVtf0,
 * OvmfSevMetadata, IntelTdxMetadata) lays them out, so that firmware-loader's OVMF parser and
 * every VMM that launches OVMF read this image the same way (research/vmm.md §c.1):
 *
 *   0xfffff000   SEV metadata "ASEV" and, after the TDX metadata GUID, the "TDVF" descriptor
 *   0xffffff8c   the footer GUID table: {data, u16 size, GUID} entries, the u16 table size and
 *                the footer GUID at image end - 48
 *   0xffffffe0   the SEV-ES AP reset vector (real mode, CS.base 0xffff0000, IP 0xffe0)
 *   0xfffffff0   the reset vector, for real mode and for TDX's 32-bit protected mode
 *
 * GUIDs are stored in EFI byte order (the first three fields little-endian). */
#include "guest_asm.inc"

/* SEV metadata section types (OvmfSevMetadata.nasm.inc). */
#define SEV_SNP_SEC_MEM 1
#define SEV_SNP_SECRETS 2
#define SEV_CPUID 3
/* TDVF section types and attributes (IntelTdxMetadata.nasm.inc). */
#define TDVF_BFV 0
#define TDVF_TD_HOB 2
#define TDVF_TEMP_MEM 3
#define TDVF_MR_EXTEND 1

#define FOOTER_ENTRY_SIZE (4 + 2 + 16) /* u32 data, u16 size, GUID */
#define FOOTER_ENTRIES 3
#define FOOTER_TABLE_SIZE (FOOTER_ENTRIES * FOOTER_ENTRY_SIZE + 2 + 16)
#define AP_ENTRY 0xfe0 /* offsets in this 4 KiB section */
#define RESET_VECTOR 0xff0
#define AP_RESET_EIP 0xffffffe0 /* AP_ENTRY in the image, which ends at 4 GiB */

.macro EFI_GUID d1, d2, d3, b0, b1, b2, b3, b4, b5, b6, b7
        .long \d1
        .word \d2, \d3
        .byte \b0, \b1, \b2, \b3, \b4, \b5, \b6, \b7
.endm

.macro SEV_SECTION base, size, type
        .long \base, \size, \type
.endm

.macro TDVF_SECTION data_offset, raw_size, base, size, type, attributes
        .long \data_offset, \raw_size
        .quad \base, \size
        .long \type, \attributes
.endm

        .section .vtf, "ax"
vtf:
sev_metadata:
        .ascii "ASEV"
        .long sev_metadata_end - sev_metadata
        .long 1                                  /* version */
        .long (sev_metadata_end - sev_sections) / 12
sev_sections:
        SEV_SECTION GUEST_LOW_RAM, (GUEST_SNP_SECRETS-GUEST_LOW_RAM), SEV_SNP_SEC_MEM
        SEV_SECTION GUEST_SNP_SECRETS, 0x1000, SEV_SNP_SECRETS
        SEV_SECTION GUEST_SNP_CPUID, 0x1000, SEV_CPUID
        SEV_SECTION GUEST_TD_HOB, (GUEST_LOW_RAM_END-GUEST_TD_HOB), SEV_SNP_SEC_MEM
        SEV_SECTION AP_STACK_BASE, AP_STACKS_SIZE, SEV_SNP_SEC_MEM
sev_metadata_end:

        .balign 16
        EFI_GUID 0xe9eaf9f3, 0x168e, 0x44d5, 0xa8, 0xeb, 0x7f, 0x4d, 0x87, 0x38, 0xf6, 0xae
tdvf_metadata:
        .ascii "TDVF"
        .long tdvf_metadata_end - tdvf_metadata
        .long 1                                  /* version */
        .long (tdvf_metadata_end - tdvf_sections) / 32
tdvf_sections:
        /* The whole image is the boot firmware volume, measured into MRTD. */
        TDVF_SECTION 0, GUEST_IMAGE_SIZE, GUEST_IMAGE_BASE, GUEST_IMAGE_SIZE, TDVF_BFV, TDVF_MR_EXTEND
        TDVF_SECTION 0, 0, GUEST_LOW_RAM, (GUEST_TD_HOB-GUEST_LOW_RAM), TDVF_TEMP_MEM, 0
        /* MR.EXTEND: the HOB the VMM writes (vCPU count, memory) enters MRTD. */
        TDVF_SECTION 0, 0, GUEST_TD_HOB, GUEST_TD_HOB_SIZE, TDVF_TD_HOB, TDVF_MR_EXTEND
        TDVF_SECTION 0, 0, (GUEST_TD_HOB+GUEST_TD_HOB_SIZE), (GUEST_LOW_RAM_END-GUEST_TD_HOB-GUEST_TD_HOB_SIZE), TDVF_TEMP_MEM, 0
        TDVF_SECTION 0, 0, AP_STACK_BASE, AP_STACKS_SIZE, TDVF_TEMP_MEM, 0
tdvf_metadata_end:

        .org AP_ENTRY - FOOTER_TABLE_SIZE, 0xff
footer_table:
        /* SEV-ES reset block: where APs start under SEV-ES/SNP (bits 31:16 CS.base >> 16,
         * bits 15:0 IP), as QEMU's sev_es_save_reset_vector reads it. */
        .long AP_RESET_EIP
        .word FOOTER_ENTRY_SIZE
        EFI_GUID 0x00f771de, 0x1a7e, 0x4fcb, 0x89, 0x0e, 0x68, 0xc7, 0x7e, 0x2f, 0xb4, 0x4e
        /* SEV metadata: offset of "ASEV" from the end of the image. */
        .long vtf_end - sev_metadata
        .word FOOTER_ENTRY_SIZE
        EFI_GUID 0xdc886566, 0x984a, 0x4798, 0xa7, 0x5e, 0x55, 0x85, 0xa7, 0xbf, 0x67, 0xcc
        /* TDX metadata: offset of "TDVF" from the end of the image. */
        .long vtf_end - tdvf_metadata
        .word FOOTER_ENTRY_SIZE
        EFI_GUID 0xe47a6535, 0x984a, 0x4798, 0x86, 0x5e, 0x46, 0x85, 0xa7, 0xbf, 0x8e, 0xc2
        .word FOOTER_TABLE_SIZE
        EFI_GUID 0x96b582de, 0x1fb2, 0x45f7, 0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d
footer_table_end:
        .if footer_table_end - footer_table != FOOTER_TABLE_SIZE
        .error "FOOTER_TABLE_SIZE does not match the footer table"
        .endif

        .code16
        /* SEV-ES/SNP APs start here in real mode (the VMSA from the reset block). */
        jmp ap_reset16
        .org RESET_VECTOR, 0xf4

        /* The reset vector. A TDX vCPU starts here in 32-bit flat protected mode, every other
         * one in real mode with CS.base 0xffff0000: the first three instructions decode the
         * same in both modes, and CR0.PE tells them apart (as in edk2's ResetVectorVtf0). */
        .globl reset_vector
reset_vector:
        movl %cr0, %eax
        testb $1, %al
        jz 1f
        .code32
        jmp tdx_entry32
1:
        .code16
        jmp reset16
        .org 0x1000, 0xf4
vtf_end:
