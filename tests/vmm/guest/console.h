/* The test guest's serial console and exit (guest.c). */
#pragma once
#include <stdint.h>

/* Buffered output to COM1; a line goes out at its '\n' (or when flush() is called). */
void print(const char* s);
void print_dec(uint64_t v);
void flush(void);

/* Flushes the console and exits through the isa-debug-exit port with `status`. */
__attribute__((noreturn)) void guest_exit(uint8_t status);
