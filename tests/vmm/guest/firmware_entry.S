/* Firmware image entry. The reset vector (firmware_tail.S) comes here in real mode
 * (CS.base = 0xffff0000) or, on TDX, in 32-bit flat protected mode. reset16 switches to
 * protected mode; bsp32 builds minimal identity page tables in guest RAM (which every VMM hands
 * over zeroed) and enters long mode (Intel SDM vol. 3A §9.8, §9.9.1). */
#include "guest_asm.inc"

#define PTE_PRESENT_RW 0x003
#define PTE_LARGE 0x083

        .section .text16, "ax"
        .code16
        .globl reset16
reset16:
        ENTER_PROTECTED_MODE (fw_gdt_desc-GUEST_IMAGE_BASE), bsp32
        /* SEV-ES/SNP application processors, from the AP reset vector. */
        .globl ap_reset16
ap_reset16:
        ENTER_PROTECTED_MODE (fw_gdt_desc-GUEST_IMAGE_BASE), ap32
fw_gdt_desc:
        .word GDT_LIMIT
        .long gdt

        .section .text32, "ax"
        .code32
        /* TDX: every vCPU starts at the reset vector in 32-bit mode, with the TDX module's
         * segments. Load ours, then tell the BSP (initial APIC ID 0) from the APs, which wait
         * until the BSP publishes its page tables (start_aps) and take the AP path. */
        .globl tdx_entry32
tdx_entry32:
        lgdtl fw_gdt_desc
        ljmpl $CODE32_SEL, $1f
1:      LOAD_DATA_SEGMENTS
        movl $1, %eax
        cpuid
        shrl $24, %ebx                   /* initial APIC ID (CPUID.01H:EBX[31:24]) */
        jz bsp32
2:      pause
        movl ap_boot_cr3, %eax
        testl %eax, %eax
        jz 2b
        jmp ap32

bsp32:
        LOAD_DATA_SEGMENTS
        /* Identity-map 0-4 MiB (stacks, page tables, .bss) and the top 2 MiB below 4 GiB (this
         * image) with 2 MiB pages. The C code maps whatever else it touches. */
        movl $(GUEST_PDPT + PTE_PRESENT_RW), GUEST_PML4
        movl $(GUEST_PD_LOW + PTE_PRESENT_RW), GUEST_PDPT
        movl $(GUEST_PD_TOP + PTE_PRESENT_RW), GUEST_PDPT + 3 * 8
        movl $(0x000000 + PTE_LARGE), GUEST_PD_LOW
        movl $(0x200000 + PTE_LARGE), GUEST_PD_LOW + 8
        movl $(0xffe00000 + PTE_LARGE), GUEST_PD_TOP + 511 * 8
        movl $GUEST_PML4, %eax
        movl %eax, %cr3
        ENTER_LONG_MODE bsp64

        .section .text, "ax"
        .code64
bsp64:
        movl $DATA_SEL, %eax
        movl %eax, %ds
        movl %eax, %es
        movl %eax, %ss
        movl $BSP_STACK_TOP, %esp
        xorl %edi, %edi                  /* boot kind 0: firmware */
        xorl %esi, %esi                  /* no boot_params */
        movabsq $guest_main, %rax
        call *%rax
        movabsq $halt_forever, %rax
        jmp *%rax
