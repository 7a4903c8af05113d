/* Wraps the kernel-style payload (test-guest-payload.bin, PAYLOAD) in a Linux bzImage: a
 * one-sector real-mode setup part holding the setup header (boot protocol 2.15,
 * Documentation/arch/x86/boot.rst) followed by the protected-mode payload. The real-mode part
 * is never run: the test guest only supports the 64-bit entry at payload offset 0x200. */
#define SETUP_SECTS 1
#define LOAD_ADDRESS 0x100000

        .section .image, "a"
        .code16
start:
        .fill 0x1f1, 1, 0
        .byte SETUP_SECTS               /* 0x1f1 setup_sects */
        .word 0                         /* 0x1f2 root_flags */
        .long (payload_end - payload + 15) / 16 /* 0x1f4 syssize */
        .word 0                         /* 0x1f8 ram_size */
        .word 0xffff                    /* 0x1fa vid_mode: normal */
        .word 0                         /* 0x1fc root_dev */
        .word 0xaa55                    /* 0x1fe boot_flag */
        .byte 0xeb, header_end - start - 0x202  /* 0x200 jump; header length = 0x202 + this byte */
        .ascii "HdrS"                   /* 0x202 header */
        .word 0x020f                    /* 0x206 version 2.15 */
        .long 0                         /* 0x208 realmode_swtch */
        .word 0                         /* 0x20c start_sys_seg */
        .word kernel_version - start - 0x200   /* 0x20e kernel_version */
        .byte 0                         /* 0x210 type_of_loader */
        .byte 0x01                      /* 0x211 loadflags: LOADED_HIGH */
        .word 0                         /* 0x212 setup_move_size */
        .long LOAD_ADDRESS              /* 0x214 code32_start */
        .long 0                         /* 0x218 ramdisk_image */
        .long 0                         /* 0x21c ramdisk_size */
        .long 0                         /* 0x220 bootsect_kludge */
        .word 0                         /* 0x224 heap_end_ptr */
        .byte 0                         /* 0x226 ext_loader_ver */
        .byte 0                         /* 0x227 ext_loader_type */
        .long 0                         /* 0x228 cmd_line_ptr */
        .long 0x37ffffff                /* 0x22c initrd_addr_max */
        .long 0x100000                  /* 0x230 kernel_alignment: 1 MiB */
        .byte 0                         /* 0x234 relocatable_kernel: no, load at pref_address */
        .byte 20                        /* 0x235 min_alignment: 1 MiB */
        .word 0x0001                    /* 0x236 xloadflags: XLF_KERNEL_64 */
        .long 2047                      /* 0x238 cmdline_size */
        .long 0                         /* 0x23c hardware_subarch */
        .quad 0                         /* 0x240 hardware_subarch_data */
        .long 0                         /* 0x248 payload_offset */
        .long 0                         /* 0x24c payload_length */
        .quad 0                         /* 0x250 setup_data */
        .quad LOAD_ADDRESS              /* 0x258 pref_address */
        .long INIT_SIZE                 /* 0x260 init_size */
        .long 0                         /* 0x264 handover_offset */
        .long 0                         /* 0x268 kernel_info_offset */
header_end:
kernel_version:
        .asciz "cloister-test-guest"
        .org (SETUP_SECTS + 1) * 512
payload:
        .incbin PAYLOAD
payload_end:
