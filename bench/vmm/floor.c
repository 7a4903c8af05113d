/* The benchmark floor: the least a KVM program must do to run the test guest. It creates the
 * VM, one RAM region (plus the read-only firmware image the guest is), one vCPU with the host's
 * CPUID, and runs KVM_RUN, handling only the UART transmit register (to stdout), UART status
 * reads, the debug-exit port, and MMIO reads of empty space (all ones). No irqchip, no threads, no
 * devices beyond those, no checks beyond what it needs to fail loudly.
 *
 * On exit it reports on stderr how much guest memory the guest touched ("guest-resident-kib=N",
 * RAM pages resident per mincore(2) plus the firmware image), which the benchmark subtracts
 * from every VMM's peak RSS to get the VMM's own overhead.
 *
 * usage: vmm-floor test-guest.bin [memory-MiB]          exit status: the guest's debug-exit value
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char* what) {
  fprintf(stderr, "vmm-floor: %s: %s\n", what, strerror(errno));
  exit(125);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s IMAGE [MEMORY_MIB]\n", argv[0]);
    return 125;
  }
  const uint64_t ram_size = (argc > 2 ? strtoull(argv[2], NULL, 10) : 64) << 20;
  int image_fd = open(argv[1], O_RDONLY);
  struct stat st;
  if (image_fd < 0 || fstat(image_fd, &st) < 0) die("open image");
  const uint64_t rom_size = (uint64_t)st.st_size;

  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("open /dev/kvm");
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) die("KVM_CREATE_VM");

  void* ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  void* rom = mmap(NULL, rom_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ram == MAP_FAILED || rom == MAP_FAILED) die("mmap");
  if (read(image_fd, rom, rom_size) != (ssize_t)rom_size) die("read image");
  struct kvm_userspace_memory_region slot = {0, 0, 0, ram_size, (uint64_t)(uintptr_t)ram};
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot) < 0) die("KVM_SET_USER_MEMORY_REGION ram");
  struct kvm_userspace_memory_region rom_slot = {1, KVM_MEM_READONLY, (1ull << 32) - rom_size,
                                                 rom_size, (uint64_t)(uintptr_t)rom};
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &rom_slot) < 0) die("KVM_SET_USER_MEMORY_REGION rom");

  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) die("KVM_CREATE_VCPU");
  /* Long mode needs LM/PAE in the guest CPUID; a kvm_cpuid2 with room for 256 entries. */
  struct kvm_cpuid2* cpuid =
      calloc(1, sizeof(struct kvm_cpuid2) + 256 * sizeof(struct kvm_cpuid_entry2));
  if (cpuid == NULL) die("calloc");
  cpuid->nent = 256;
  if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) die("KVM_GET_SUPPORTED_CPUID");
  if (ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0) die("KVM_SET_CPUID2");
  int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  struct kvm_run* run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die("mmap kvm_run");

  for (;;) {
    if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
    if (run->exit_reason == KVM_EXIT_MMIO) {
      if (!run->mmio.is_write) memset(run->mmio.data, 0xff, sizeof run->mmio.data);
      continue;
    }
    if (run->exit_reason != KVM_EXIT_IO) {
      fprintf(stderr, "vmm-floor: unexpected exit reason %u\n", run->exit_reason);
      return 126;
    }
    uint8_t* data = (uint8_t*)run + run->io.data_offset;
    const uint32_t bytes = run->io.size * run->io.count;
    if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == 0x3f8) {
      if (write(1, data, bytes) < 0) die("write");
    } else if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == 0xf4) {
      const size_t pages = ram_size / 4096;
      unsigned char* resident = malloc(pages);
      size_t touched = 0;
      if (resident && mincore(ram, ram_size, resident) == 0)
        for (size_t i = 0; i < pages; ++i) touched += resident[i] & 1;
      fprintf(stderr, "guest-resident-kib=%zu\n", touched * 4 + (size_t)(rom_size / 1024));
      return data[0];
    } else if (run->io.direction == KVM_EXIT_IO_IN) {
      memset(data, run->io.port == 0x3fd ? 0x60 : 0xff, bytes); /* LSR: THRE | TEMT */
    }
  }
}
