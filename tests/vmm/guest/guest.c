/* The Cloister test guest: a freestanding 64-bit program that boots as firmware (reset vector)
 * or as a Linux-protocol kernel (bzImage / ELF), prints over the 16550 UART, reads its command
 * line and the vCPU count from the fw_cfg paravirt channel (or boot_params), starts the other
 * vCPUs with INIT-SIPI-SIPI, probes virtio-mmio devices (reading the first sector of a
 * virtio-blk disk; sending "ping from the test guest" over virtio-vsock to host port
 * "vsock_port=N", default 1234, and printing the answer, or with "vsock_listen=N" accepting
 * one host connection on port N and echoing it, or with "vsock_echo=N" accepting one host
 * connection on port N and echoing every byte until the host closes or resets it), and exits
 * through the isa-debug-exit port with a status.
 *
 * Command-line words: "mode=hello" (default), "mode=garbage" (write garbage to every I/O port
 * and MMIO hole, then triple-fault on purpose), "mode=idle" (print "idle", then halt with
 * interrupts off until the VMM stops the VM), "mode=count" (print "count N" lines, N = 0, 1,
 * 2, ..., until the VMM stops the VM: a snapshot taken mid-count and restored continues the
 * sequence), "mode=memwrite" (firmware boot: keep rewriting a buffer of "memwrite_kib=N" KiB,
 * default 256, at GUEST_MEMWRITE_BUF with a counter pattern, checking every word still holds the
 * previous pass's value before overwriting it, and print "checksum ok N" after pass N, or
 * "checksum bad N at WORD" and exit with status 1: a live migration that loses a write shows),
 * "mode=blkcount" (after reading sector 0 of the virtio-blk disk, keep reading sector N mod the
 * disk's sector count with one request each, N = 1, 2, ..., printing "blk N 'the sector's first
 * 16 bytes'", or "blk N: failed: why" and exit with status 1: a snapshot taken mid-run and
 * restored continues the numbering and the reads), "mode=vsockreset" (listen on vsock port 5000
 * with event buffers posted, print "virtio-vsock: waiting for events", then print
 * "virtio-vsock: event ID (transport reset|other), cid C" for the first event the device
 * sends and exit with status 0: a restored vsock device sends TRANSPORT_RESET),
 * "exit=N" (exit status for mode=hello),
 * "attest=snp" / "attest=tdx" with "attest_port=N" (firmware boot: serve one attestation
 * request from the host on vsock port N, default 9000, instead of the vsock ping or echo, and
 * exit with 0 once the evidence is sent; attest.h). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest.h"
#include "cloister/sdk/guest_evidence_protocol.h"
#include "console.h"
#include "guest_layout.h"
#include "virtio.h"

#define COM1 0x3f8
#define DEBUG_EXIT_PORT 0xf4
#define FW_CFG_SELECTOR 0x510
#define FW_CFG_DATA 0x511
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_RAM_SIZE 0x03
#define FW_CFG_NB_CPUS 0x05
#define FW_CFG_CMDLINE_SIZE 0x14
#define FW_CFG_CMDLINE_DATA 0x15
#define LAPIC_BASE 0xfee00000ull
#define IOAPIC_BASE 0xfec00000ull
#define VIRTIO_MMIO_BASE 0xd0000000ull
#define VIRTIO_MMIO_SLOTS 8
#define VIRTIO_MMIO_STRIDE 0x1000

/* boot_params offsets (Documentation/arch/x86/zero-page.rst, boot.rst). */
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_CMD_LINE_PTR 0x228
#define BP_E820_TABLE 0x2d0

void* memcpy(void* dst, const void* src, size_t n);
void* memset(void* dst, int c, size_t n);
void guest_main(uint64_t boot_kind, const uint8_t* boot_params);
void ap_main(uint32_t apic_id);

extern const uint8_t ap_trampoline_start[], ap_trampoline_end[];
uint32_t ap_boot_cr3; /* read by the AP 32-bit code */
static volatile uint32_t cpus_online;

void* memcpy(void* dst, const void* src, size_t n) {
  uint8_t* d = dst;
  const uint8_t* s = src;
  while (n--) *d++ = *s++;
  return dst;
}

void* memset(void* dst, int c, size_t n) {
  uint8_t* d = dst;
  while (n--) *d++ = (uint8_t)c;
  return dst;
}

/* ---- port and memory access ---- */
static inline void outb(uint16_t port, uint8_t v) {
  __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port));
}
static inline void outw(uint16_t port, uint16_t v) {
  __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port));
}
static inline void outl(uint16_t port, uint32_t v) {
  __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port) {
  uint8_t v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline uint32_t inl(uint16_t port) {
  uint32_t v;
  __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline void outsb(uint16_t port, const void* buf, size_t n) {
  __asm__ volatile("rep outsb" : "+S"(buf), "+c"(n) : "d"(port) : "memory");
}
static inline void insb(uint16_t port, void* buf, size_t n) {
  __asm__ volatile("rep insb" : "+D"(buf), "+c"(n) : "d"(port) : "memory");
}
static inline uint32_t mmio_read32(uint64_t addr) {
  return *(volatile uint32_t*)addr;
}
static inline void mmio_write32(uint64_t addr, uint32_t v) {
  *(volatile uint32_t*)addr = v;
}
static inline uint64_t read_cr3(void) {
  uint64_t v;
  __asm__ volatile("mov %%cr3, %0" : "=r"(v));
  return v;
}
static inline uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

/* ---- console: 16550 UART, 16-byte FIFO filled with one string instruction ---- */
static char line[128];
static size_t line_len;

static void serial_init(void) {
  outb(COM1 + 1, 0x00); /* IER: no interrupts */
  outb(COM1 + 3, 0x80); /* LCR: DLAB */
  outb(COM1 + 0, 0x01); /* DLL: 115200 baud */
  outb(COM1 + 1, 0x00); /* DLM */
  outb(COM1 + 3, 0x03); /* LCR: 8N1 */
  outb(COM1 + 2, 0x07); /* FCR: enable and clear FIFOs */
  outb(COM1 + 4, 0x03); /* MCR: DTR | RTS */
}

void flush(void) {
  size_t done = 0;
  while (done < line_len) {
    while (!(inb(COM1 + 5) & 0x20)) { /* LSR.THRE */
    }
    size_t chunk = line_len - done < 16 ? line_len - done : 16;
    outsb(COM1, line + done, chunk);
    done += chunk;
  }
  line_len = 0;
}

static void putc(char c) {
  line[line_len++] = c;
  if (c == '\n' || line_len == sizeof line) flush();
}

void print(const char* s) {
  while (*s) putc(*s++);
}

void print_dec(uint64_t v) {
  char buf[20];
  int n = 0;
  do buf[n++] = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  while (n) putc(buf[--n]);
}

static void print_hex(uint64_t v) {
  static const char digits[] = "0123456789abcdef";
  print("0x");
  int shift = 60;
  while (shift > 0 && ((v >> shift) & 0xf) == 0) shift -= 4;
  for (; shift >= 0; shift -= 4) putc(digits[(v >> shift) & 0xf]);
}

static void print_printable(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n && p[i]; ++i) putc(p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '.');
}

void guest_exit(uint8_t status) {
  flush();
  outb(DEBUG_EXIT_PORT, status);
  for (;;) __asm__ volatile("cli; hlt");
}

/* ---- paging: map 2 MiB pages on demand, page-table pages from a pool ---- */
static uint64_t pt_pool[12][512] __attribute__((aligned(4096)));
static size_t pt_pool_used;

static uint64_t* next_table(uint64_t* table, size_t index) {
  if (!(table[index] & 1)) {
    if (pt_pool_used == sizeof pt_pool / sizeof pt_pool[0]) {
      print("page-table pool exhausted\n");
      guest_exit(0x7f);
    }
    table[index] = (uint64_t)(uintptr_t)pt_pool[pt_pool_used++] | 0x3;
  }
  return (uint64_t*)(uintptr_t)(table[index] & 0x000ffffffffff000ull);
}

/* Identity-maps the 2 MiB page holding `addr`, uncached (device memory or holes). */
static void map_2m(uint64_t addr) {
  uint64_t page = addr & ~0x1fffffull;
  uint64_t* pml4 = (uint64_t*)(uintptr_t)(read_cr3() & 0x000ffffffffff000ull);
  uint64_t* pdpt = next_table(pml4, (page >> 39) & 511);
  uint64_t* pd = next_table(pdpt, (page >> 30) & 511);
  pd[(page >> 21) & 511] = page | 0x9b; /* P | RW | PWT | PCD | PS */
  __asm__ volatile("invlpg (%0)" ::"r"(page) : "memory");
}

/* ---- fw_cfg (QEMU docs/specs/fw_cfg.rst, traditional I/O interface) ---- */
static bool fw_cfg_present;

static void fw_cfg_read(uint16_t key, void* buf, size_t n) {
  outw(FW_CFG_SELECTOR, key);
  insb(FW_CFG_DATA, buf, n);
}

static uint64_t fw_cfg_read_le(uint16_t key, size_t n) {
  uint8_t bytes[8] = {0};
  fw_cfg_read(key, bytes, n);
  uint64_t v = 0;
  for (size_t i = n; i-- > 0;) v = (v << 8) | bytes[i];
  return v;
}

/* ---- command line ---- */
static char cmdline[256];

static bool cmdline_word(const char* key, const char** value) {
  size_t klen = 0;
  while (key[klen]) ++klen;
  const char* p = cmdline;
  while (*p) {
    while (*p == ' ') ++p;
    size_t i = 0;
    while (i < klen && p[i] == key[i]) ++i;
    if (i == klen) {
      *value = p + klen;
      return true;
    }
    while (*p && *p != ' ') ++p;
  }
  return false;
}

static bool cmdline_is(const char* key, const char* want) {
  const char* v;
  if (!cmdline_word(key, &v)) return false;
  size_t i = 0;
  for (; want[i]; ++i)
    if (v[i] != want[i]) return false;
  return v[i] == 0 || v[i] == ' ';
}

static uint64_t cmdline_number(const char* key, uint64_t fallback) {
  const char* v;
  if (!cmdline_word(key, &v) || *v < '0' || *v > '9') return fallback;
  uint64_t n = 0;
  while (*v >= '0' && *v <= '9') n = n * 10 + (uint64_t)(*v++ - '0');
  return n;
}

/* ---- MP tables (Intel MultiProcessor Specification 1.4, §4): the Linux-protocol boot path's
 * CPU list. Returns the number of enabled processors, 0 if there is no valid table. ---- */
static uint8_t byte_sum(const uint8_t* p, uint32_t n) {
  uint8_t sum = 0;
  while (n--) sum = (uint8_t)(sum + *p++);
  return sum;
}

static uint32_t read_mptable(uint32_t* ioapic) {
  const uint8_t* fp = (const uint8_t*)0x9fc00; /* start of the EBDA */
  if (fp[0] != '_' || fp[1] != 'M' || fp[2] != 'P' || fp[3] != '_' || byte_sum(fp, 16) != 0)
    return 0;
  const uint8_t* table = (const uint8_t*)(uintptr_t)(*(const uint32_t*)(fp + 4));
  if (table[0] != 'P' || table[1] != 'C' || table[2] != 'M' || table[3] != 'P') return 0;
  const uint16_t length = *(const uint16_t*)(table + 4);
  if (byte_sum(table, length) != 0) return 0;
  const uint16_t count = *(const uint16_t*)(table + 34);
  const uint8_t* e = table + 44;
  uint32_t cpus = 0;
  for (uint16_t i = 0; i < count && e < table + length; ++i) {
    if (e[0] == 0) {
      if (e[3] & 1) ++cpus;
      e += 20;
    } else {
      if (e[0] == 2) *ioapic = *(const uint32_t*)(e + 4);
      e += 8;
    }
  }
  return cpus;
}

/* ---- SMP bring-up with the local APIC (SDM vol. 3A §8.4.4, §10.6.1) ---- */
void ap_main(uint32_t apic_id) {
  (void)apic_id;
  __atomic_fetch_add(&cpus_online, 1, __ATOMIC_SEQ_CST);
}

static void lapic_send_ipi(uint32_t icr_low) {
  mmio_write32(LAPIC_BASE + 0x310, 0);
  mmio_write32(LAPIC_BASE + 0x300, icr_low);
  while (mmio_read32(LAPIC_BASE + 0x300) & (1u << 12)) { /* delivery status: pending */
  }
}

static uint32_t start_aps(uint32_t cpus) {
  memcpy((void*)GUEST_AP_TRAMPOLINE, ap_trampoline_start,
         (size_t)(ap_trampoline_end - ap_trampoline_start));
  map_2m(LAPIC_BASE);
  lapic_send_ipi(0x000c4500); /* INIT, all excluding self */
  /* Published after the INIT: TDX APs wait at the reset vector for it instead (firmware_entry.S),
   * and one that left that wait before an INIT reached it would come online twice. */
  ap_boot_cr3 = (uint32_t)read_cr3();
  lapic_send_ipi(0x000c4600 | (GUEST_AP_TRAMPOLINE >> 12)); /* SIPI */
  lapic_send_ipi(0x000c4600 | (GUEST_AP_TRAMPOLINE >> 12)); /* second SIPI, as the MP spec asks */
  uint64_t deadline = rdtsc() + 20000000000ull;
  while (__atomic_load_n(&cpus_online, __ATOMIC_SEQ_CST) < cpus - 1 && rdtsc() < deadline)
    __asm__ volatile("pause");
  return __atomic_load_n(&cpus_online, __ATOMIC_SEQ_CST) + 1;
}

/* ---- virtio-mmio probing ---- */
static uint64_t blk_base; /* the first virtio-blk device, once sector 0 was read */

/* ---- mode=vsockreset ---- */
#define VSOCK_EVENT_TRANSPORT_RESET 0
static __attribute__((noreturn)) void run_vsockreset(uint64_t base) {
  uint64_t cid = 0;
  uint32_t event = 0;
  const char* error = vsock_listen(base, 5000, &cid);
  if (!error) {
    print("virtio-vsock: waiting for events\n");
    flush();
    error = vsock_wait_event(&event, &cid);
  }
  if (error) {
    print("virtio-vsock: failed: ");
    print(error);
    print("\n");
    guest_exit(1);
  }
  print("virtio-vsock: event ");
  print_dec(event);
  print(event == VSOCK_EVENT_TRANSPORT_RESET ? " (transport reset), cid " : " (other), cid ");
  print_dec(cid);
  print("\n");
  guest_exit(0);
}

static void probe_virtio(enum attest_tee attest) {
  map_2m(VIRTIO_MMIO_BASE);
  unsigned found = 0;
  for (unsigned slot = 0; slot < VIRTIO_MMIO_SLOTS; ++slot) {
    uint64_t base = VIRTIO_MMIO_BASE + slot * VIRTIO_MMIO_STRIDE;
    if (mmio_read32(base + VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC) continue;
    uint32_t device = mmio_read32(base + VIRTIO_MMIO_DEVICE_ID);
    if (device == 0) continue;
    ++found;
    print("virtio-mmio@");
    print_hex(base);
    print(": device ");
    print_dec(device);
    print(" version ");
    print_dec(mmio_read32(base + VIRTIO_MMIO_VERSION));
    print("\n");
    if (device == VIRTIO_ID_VSOCK && attest != ATTEST_NONE) {
      const uint64_t port = cmdline_number("attest_port=", CLOISTER_EVIDENCE_DEFAULT_PORT);
      guest_exit(attest_serve(attest, base, (uint32_t)port) == 0 ? 0 : 1);
    }
    if (device == VIRTIO_ID_VSOCK && cmdline_is("mode=", "vsockreset")) run_vsockreset(base);
    if (device == VIRTIO_ID_VSOCK) {
      static char text[128];
      uint64_t cid = 0;
      const char* error;
      const uint64_t listen = cmdline_number("vsock_listen=", 0);
      const uint64_t echo = cmdline_number("vsock_echo=", 0);
      if (echo) {
        uint64_t echoed = 0;
        error = vsock_listen(base, (uint32_t)echo, &cid);
        if (!error) {
          print("virtio-vsock: echoing on port ");
          print_dec(echo);
          print("\n");
          flush();
          error = virtio_vsock_echo_stream(&echoed);
        }
        print("virtio-vsock: cid ");
        print_dec(cid);
        print(", echoed ");
        print_dec(echoed);
        print(" bytes, ");
        print(error ? error : "the host closed the connection");
        print("\n");
      } else if (listen) {
        error = vsock_listen(base, (uint32_t)listen, &cid);
        if (!error) {
          print("virtio-vsock: listening on port ");
          print_dec(listen);
          print("\n");
          flush();
          error = virtio_vsock_serve(text, sizeof text);
        }
        print("virtio-vsock: cid ");
        print_dec(cid);
        print(error ? ": " : ", the host said '");
        print(error ? error : text);
        print(error ? "\n" : "'\n");
      } else {
        uint32_t port = (uint32_t)cmdline_number("vsock_port=", 1234);
        error = virtio_vsock_echo(base, port, "ping from the test guest", text, sizeof text, &cid);
        print("virtio-vsock: cid ");
        print_dec(cid);
        print(", host port ");
        print_dec(port);
        print(error ? ": " : " answered '");
        print(error ? error : text);
        print(error ? "\n" : "'\n");
      }
    }
    if (device == VIRTIO_ID_NET) {
      static char reply[128];
      uint8_t mac[6];
      const char* error =
          virtio_net_exchange(base, "hello from the test guest", mac, reply, sizeof reply);
      print("virtio-net: mac ");
      for (int i = 0; i < 6; ++i) {
        static const char digits[] = "0123456789abcdef";
        char byte[4] = {digits[mac[i] >> 4], digits[mac[i] & 15], i < 5 ? ':' : 0, 0};
        print(byte);
      }
      print(error ? ": " : ", the host said '");
      print(error ? error : reply);
      print(error ? "\n" : "'\n");
    }
    if (device == VIRTIO_ID_BLOCK) {
      static uint8_t sector[512];
      const char* error = virtio_blk_read_sector0(base, sector);
      if (error) {
        print("virtio-blk: ");
        print(error);
        print("\n");
      } else {
        print("virtio-blk: sector 0 says '");
        print_printable(sector, 64);
        print("'\n");
        if (!blk_base) blk_base = base;
      }
    }
  }
  if (!found) print("virtio-mmio: no devices\n");
}

/* ---- mode=garbage ---- */
static uint32_t garbage_state; /* seeded in run_garbage (.bss only: see firmware.ld) */
static uint32_t garbage(void) {
  garbage_state ^= garbage_state << 13;
  garbage_state ^= garbage_state >> 17;
  garbage_state ^= garbage_state << 5;
  return garbage_state;
}

static void poke_hole(uint64_t addr) {
  map_2m(addr);
  mmio_write32(addr, garbage());
  (void)mmio_read32(addr);
}

static __attribute__((noreturn)) void run_garbage(uint64_t ram_size) {
  garbage_state = 0x12345678;
  print("garbage: every I/O port\n");
  for (uint32_t port = 0; port <= 0xffff; ++port) {
    if (port >= DEBUG_EXIT_PORT && port < DEBUG_EXIT_PORT + 4) continue; /* would just exit */
    uint8_t v = (uint8_t)garbage();
    if (port == 0x64 && v == 0xfe) v = 0xfd; /* i8042 reset would end the run cleanly */
    outb((uint16_t)port, v);
    (void)inb((uint16_t)port);
    if ((port & 3) == 0) {
      outl((uint16_t)port, garbage());
      (void)inl((uint16_t)port);
    }
  }
  serial_init();
  print("garbage: every virtio-mmio register\n");
  map_2m(VIRTIO_MMIO_BASE);
  for (int pass = 0; pass < 2; ++pass)
    for (unsigned slot = 0; slot < VIRTIO_MMIO_SLOTS; ++slot)
      for (uint64_t off = 0; off < 0x200; off += 4) {
        uint64_t reg = VIRTIO_MMIO_BASE + slot * VIRTIO_MMIO_STRIDE + off;
        mmio_write32(reg, garbage());
        (void)mmio_read32(reg);
      }
  print("garbage: MMIO holes\n");
  uint64_t low_top = ram_size < 0xc0000000ull ? ram_size : 0xc0000000ull;
  for (uint64_t a = (low_top + 0x1fffff) & ~0x1fffffull; a < 0xc0000000ull; a += 0x4000000)
    poke_hole(a);
  for (uint64_t a = 0xc0000000ull; a < 0x100000000ull; a += 0x1000000) {
    if (a >> 21 == IOAPIC_BASE >> 21 || a >> 21 == LAPIC_BASE >> 21) continue;
    if (a >= VIRTIO_MMIO_BASE && a < VIRTIO_MMIO_BASE + 0x200000) continue;
    poke_hole(a);
  }
  poke_hole(0xffff0000ull); /* the read-only firmware image itself */
  uint64_t high_top = 0x100000000ull + (ram_size > 0xc0000000ull ? ram_size - 0xc0000000ull : 0);
  for (int i = 0; i < 4; ++i) poke_hole(high_top + (uint64_t)i * 0x10000000ull);
  print("garbage: survived; triple-faulting on purpose\n");
  flush();
  struct __attribute__((packed)) {
    uint16_t limit;
    uint64_t base;
  } idtr = {0, 0};
  __asm__ volatile("lidt %0; ud2" ::"m"(idtr));
  for (;;) {
  }
}

/* ---- mode=count ---- */
static uint64_t count_next; /* .bss only: see firmware.ld */
static __attribute__((noreturn)) void run_count(void) {
  print("count: start\n");
  for (count_next = 0;; ++count_next) {
    print("count ");
    print_dec(count_next);
    print("\n");
  }
}

/* ---- mode=blkcount ---- */
static uint8_t blk_sector[512];
static uint64_t blk_next; /* .bss only: see firmware.ld */
static __attribute__((noreturn)) void run_blkcount(void) {
  if (!blk_base) {
    print("blk: failed: no virtio-blk disk was read\n");
    guest_exit(1);
  }
  /* struct virtio_blk_config: capacity (le64, in 512-byte sectors). */
  const uint64_t sectors = mmio_read32(blk_base + 0x100) | (uint64_t)mmio_read32(blk_base + 0x104)
                                                               << 32;
  print("blk: start\n");
  for (blk_next = 1;; ++blk_next) {
    const char* error = virtio_blk_read_sector(blk_base, blk_next % sectors, blk_sector);
    print("blk ");
    print_dec(blk_next);
    if (error) {
      print(": failed: ");
      print(error);
      print("\n");
      guest_exit(1);
    }
    print(" '");
    print_printable(blk_sector, 16);
    print("'\n");
  }
}

/* ---- mode=memwrite ---- */
static uint64_t memwrite_pattern(uint64_t pass, uint64_t word) {
  return (pass << 40) ^ (word * 0x9e3779b97f4a7c15ull);
}

static __attribute__((noreturn)) void run_memwrite(uint64_t ram_size) {
  uint64_t words = cmdline_number("memwrite_kib=", 256) * 1024 / 8;
  if (GUEST_MEMWRITE_BUF + words * 8 > ram_size) {
    print("memwrite: failed: the buffer does not fit in RAM\n");
    guest_exit(1);
  }
  /* Above the 4 MiB the boot page tables map (uncached, which only KVM guests notice). */
  for (uint64_t a = GUEST_MEMWRITE_BUF; a < GUEST_MEMWRITE_BUF + words * 8; a += 0x200000)
    map_2m(a);
  volatile uint64_t* buf = (volatile uint64_t*)GUEST_MEMWRITE_BUF;
  print("memwrite: start\n");
  for (uint64_t w = 0; w < words; ++w) buf[w] = memwrite_pattern(0, w);
  for (uint64_t pass = 1;; ++pass) {
    for (uint64_t w = 0; w < words; ++w) {
      if (buf[w] != memwrite_pattern(pass - 1, w)) {
        print("checksum bad ");
        print_dec(pass);
        print(" at ");
        print_dec(w);
        print("\n");
        guest_exit(1);
      }
      buf[w] = memwrite_pattern(pass, w);
    }
    print("checksum ok ");
    print_dec(pass);
    print("\n");
  }
}

void guest_main(uint64_t boot_kind, const uint8_t* boot_params) {
  serial_init();
  print("cloister test guest: boot=");
  print(boot_kind == 0 ? "firmware" : "linux");
  print("\n");

  char sig[4] = {0};
  fw_cfg_read(FW_CFG_SIGNATURE, sig, 4);
  fw_cfg_present = sig[0] == 'Q' && sig[1] == 'E' && sig[2] == 'M' && sig[3] == 'U';
  uint32_t cpus = 1;
  uint64_t ram_size = 0;
  if (fw_cfg_present) {
    cpus = (uint32_t)fw_cfg_read_le(FW_CFG_NB_CPUS, 2);
    if (cpus == 0) cpus = 1;
    ram_size = fw_cfg_read_le(FW_CFG_RAM_SIZE, 8);
  }

  if (boot_kind == 0 && fw_cfg_present) {
    uint32_t size = (uint32_t)fw_cfg_read_le(FW_CFG_CMDLINE_SIZE, 4);
    if (size >= sizeof cmdline) size = sizeof cmdline - 1;
    fw_cfg_read(FW_CFG_CMDLINE_DATA, cmdline, size);
    cmdline[size] = 0;
  } else if (boot_kind == 1) {
    uint64_t ptr = *(const uint32_t*)(boot_params + BP_CMD_LINE_PTR) |
                   (uint64_t) * (const uint32_t*)(boot_params + BP_EXT_CMD_LINE_PTR) << 32;
    const char* src = (const char*)(uintptr_t)ptr;
    size_t i = 0;
    for (; ptr && i + 1 < sizeof cmdline && src[i]; ++i) cmdline[i] = src[i];
    cmdline[i] = 0;
  }
  print("fw_cfg: ");
  print(fw_cfg_present ? "present" : "absent");
  print(", cpus ");
  print_dec(cpus);
  print(", ram ");
  print_dec(ram_size >> 20);
  print(" MiB\ncmdline: '");
  print(cmdline);
  print("'\n");

  if (boot_kind == 1) {
    uint8_t entries = boot_params[BP_E820_ENTRIES];
    print("e820: ");
    print_dec(entries);
    print(" entries\n");
    for (uint8_t i = 0; i < entries && i < 128; ++i) {
      const uint8_t* e = boot_params + BP_E820_TABLE + 20 * i;
      print("  ");
      print_hex(*(const uint64_t*)e);
      print(" +");
      print_hex(*(const uint64_t*)(e + 8));
      print(" type ");
      print_dec(*(const uint32_t*)(e + 16));
      print("\n");
    }
    uint32_t ioapic = 0;
    uint32_t mp_cpus = read_mptable(&ioapic);
    print("mptable: ");
    if (mp_cpus) {
      print_dec(mp_cpus);
      print(" cpus, ioapic ");
      print_hex(ioapic);
      cpus = mp_cpus;
    } else {
      print("none");
    }
    print("\n");
    uint32_t initrd = *(const uint32_t*)(boot_params + BP_RAMDISK_IMAGE);
    uint32_t initrd_size = *(const uint32_t*)(boot_params + BP_RAMDISK_SIZE);
    if (initrd_size) {
      print("initrd: ");
      print_dec(initrd_size);
      print(" bytes at ");
      print_hex(initrd);
      print(", starts '");
      print_printable((const uint8_t*)(uintptr_t)initrd, initrd_size < 32 ? initrd_size : 32);
      print("'\n");
    }
    if (ram_size == 0)
      for (uint8_t i = 0; i < entries && i < 128; ++i) {
        const uint8_t* e = boot_params + BP_E820_TABLE + 20 * i;
        if (*(const uint32_t*)(e + 16) == 1) ram_size += *(const uint64_t*)(e + 8);
      }
  }

  const enum attest_tee attest = cmdline_is("attest=", "snp")   ? ATTEST_SNP
                                 : cmdline_is("attest=", "tdx") ? ATTEST_TDX
                                                                : ATTEST_NONE;
  const char* attest_value;
  if (attest == ATTEST_NONE && cmdline_word("attest=", &attest_value)) {
    print("attest: failed: attest= takes snp or tdx\n");
    guest_exit(1);
  }
  if (attest != ATTEST_NONE && boot_kind != 0) {
    /* The image's SEV metadata is what places the secrets page. */
    print("attest: failed: attestation needs the firmware boot (test-guest.bin)\n");
    guest_exit(1);
  }
  if (attest_measure_boot(attest, cmdline) != 0) guest_exit(1);

  if (cmdline_is("mode=", "garbage")) run_garbage(ram_size);

  if (cpus > 1) {
    uint32_t online = start_aps(cpus);
    print("smp: ");
    print_dec(online);
    print(" of ");
    print_dec(cpus);
    print(" cpus online\n");
    if (online != cpus) guest_exit(0x7e);
  }

  probe_virtio(attest);
  if (attest != ATTEST_NONE) {
    print("attest: failed: no virtio-vsock device (run cloister-vmm with --vsock-uds)\n");
    guest_exit(1);
  }

  if (cmdline_is("mode=", "count")) run_count();
  if (cmdline_is("mode=", "blkcount")) run_blkcount();
  if (cmdline_is("mode=", "memwrite")) run_memwrite(ram_size);

  if (cmdline_is("mode=", "idle")) {
    print("idle\n");
    flush();
    for (;;) __asm__ volatile("cli; hlt");
  }

  uint8_t status = (uint8_t)cmdline_number("exit=", 0);
  print("test guest: done, status ");
  print_dec(status);
  print("\n");
  guest_exit(status);
}
