/* Start of the kernel image's protected-mode payload. The Linux boot protocol's 32-bit entry
 * (code32_start, offset 0) is not supported by the test guest; the 64-bit entry is at offset
 * 0x200 (Documentation/arch/x86/boot.rst, "64-bit BOOT PROTOCOL"). */
        .section .head, "ax"
        .code32
        .globl kernel32
kernel32:
        cli
1:      hlt
        jmp 1b

        .org 0x200
        .code64
        .globl kernel64_entry
kernel64_entry:
        jmp kernel64
