/* Constants and macros shared by the test guest's assembly files. */
#define CODE32_SEL 0x08
#define CODE64_SEL 0x10
#define DATA_SEL 0x18
#define GDT_LIMIT (4 * 8 - 1)
#define BSP_STACK_TOP 0x9f000
#define AP_STACK_BASE 0x200000

.macro LOAD_DATA_SEGMENTS
        movw $DATA_SEL, %ax
        movw %ax, %ds
        movw %ax, %es
        movw %ax, %ss
        movw %ax, %fs
        movw %ax, %gs
.endm

/* 32-bit code; CR3 must already hold the PML4. Enables PAE, EFER.LME and paging, then
 * far-jumps to the 64-bit code at \target. */
.macro ENTER_LONG_MODE target
        movl %cr4, %eax
        orl $0x20, %eax                  /* CR4.PAE */
        movl %eax, %cr4
        movl $0xc0000080, %ecx           /* IA32_EFER */
        rdmsr
        orl $0x100, %eax                 /* LME */
        wrmsr
        movl %cr0, %eax
        orl $0x80000001, %eax            /* PG | PE */
        movl %eax, %cr0
        ljmpl $CODE64_SEL, $\target
.endm
