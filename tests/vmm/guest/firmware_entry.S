/* Firmware image entry: the x86 reset vector (real mode, CS.base = 0xffff0000, IP = 0xfff0).
 * reset16 switches to protected mode, builds minimal identity page tables in guest RAM (which
 * every VMM hands over zeroed) and enters long mode (Intel SDM vol. 3A §9.8, §9.9.1). */
#include "guest_asm.inc"

/* Page tables, one zeroed 4 KiB page of guest RAM each. */
#define PML4 0x10000
#define PDPT 0x11000
#define PD_LOW 0x12000
#define PD_TOP 0x13000
#define PTE_PRESENT_RW 0x003
#define PTE_LARGE 0x083

#define ROM_BASE 0xffff0000

        .section .text16, "ax"
        .code16
reset16:
        cli
        cld
        lgdtl %cs:(fw_gdt_desc - ROM_BASE) /* real mode: address relative to CS.base */
        movl %cr0, %eax
        orl $1, %eax
        movl %eax, %cr0
        ljmpl $CODE32_SEL, $bsp32
fw_gdt_desc:
        .word GDT_LIMIT
        .long gdt

        .section .reset, "ax"
        .code16
        .globl reset_vector
reset_vector:
        jmp reset16
        .balign 16, 0xf4

        .section .text32, "ax"
        .code32
bsp32:
        LOAD_DATA_SEGMENTS
        /* Identity-map 0-4 MiB (stacks, page tables, .bss) and the top 2 MiB below 4 GiB (this
         * image) with 2 MiB pages. The C code maps whatever else it touches. */
        movl $(PDPT + PTE_PRESENT_RW), PML4
        movl $(PD_LOW + PTE_PRESENT_RW), PDPT
        movl $(PD_TOP + PTE_PRESENT_RW), PDPT + 3 * 8
        movl $(0x000000 + PTE_LARGE), PD_LOW
        movl $(0x200000 + PTE_LARGE), PD_LOW + 8
        movl $(0xffe00000 + PTE_LARGE), PD_TOP + 511 * 8
        movl $PML4, %eax
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
