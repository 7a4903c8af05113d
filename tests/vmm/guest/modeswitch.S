/* Code shared by both test-guest images: the GDT, the kernel-image 64-bit entry, and the
 * application-processor path (SIPI trampoline -> protected mode -> long mode -> ap_main). */
#include "guest_asm.inc"

        .section .rodata.gdt, "a"
        .balign 16
        .globl gdt
gdt:
        /* Accessed bits are preset: the GDT sits in read-only memory in the firmware image, and
         * a CPU setting the bit on a segment load would write to it. */
        .quad 0                          /* null */
        .quad 0x00cf9b000000ffff         /* 0x08: 32-bit code, flat */
        .quad 0x00af9b000000ffff         /* 0x10: 64-bit code */
        .quad 0x00cf93000000ffff         /* 0x18: data, flat */
gdt_end:
        .if gdt_end - gdt - 1 != GDT_LIMIT
        .error "GDT_LIMIT in guest_asm.inc does not match the GDT"
        .endif

        .section .text32, "ax"
        .code32
        .globl ap32
ap32:
        LOAD_DATA_SEGMENTS
        movl ap_boot_cr3, %eax
        movl %eax, %cr3
        ENTER_LONG_MODE ap64

        .section .text, "ax"
        .code64
        /* Linux 64-bit boot protocol entry: paging on, RSI = boot_params. */
        .globl kernel64
kernel64:
        cli
        movl $BSP_STACK_TOP, %esp
        movl $1, %edi                    /* boot kind 1: Linux boot protocol */
        movabsq $guest_main, %rax
        call *%rax
        jmp halt_forever

ap64:
        movl $DATA_SEL, %eax
        movl %eax, %ds
        movl %eax, %es
        movl %eax, %ss
        movl $1, %eax
        cpuid
        shrl $24, %ebx                   /* initial APIC ID (CPUID.01H:EBX[31:24]) */
        movl %ebx, %edi
        leal 1(%ebx), %eax
        shll $12, %eax
        addl $AP_STACK_BASE, %eax        /* one 4 KiB stack per AP */
        movl %eax, %esp
        movabsq $ap_main, %rax
        call *%rax
        .globl halt_forever
halt_forever:
        cli
        hlt
        jmp halt_forever

/* SIPI trampoline: the C code copies it to 0x8000 and sends SIPI vector 0x08, so APs start here
 * in real mode with CS = 0x0800, IP = 0 (SDM vol. 3A §8.4.4.1). */
        .section .rodata.trampoline, "a"
        .code16
        .globl ap_trampoline_start, ap_trampoline_end
ap_trampoline_start:
        ENTER_PROTECTED_MODE (ap_trampoline_gdt_desc-ap_trampoline_start), ap32
ap_trampoline_gdt_desc:
        .word GDT_LIMIT
        .long gdt
ap_trampoline_end:
