#include "cloister/vmm/hypervisor/kvm.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

#include "cloister/vmm/fd.h"
#include "cloister/vmm/hypervisor/kvm_abi.h"

namespace cloister::vmm {
namespace {

// Addresses KVM needs for real-mode emulation on Intel hosts, inside the MMIO gap and clear of
// firmware, the LAPIC and the IOAPIC (QEMU uses the same pair).
constexpr std::uint64_t kIdentityMapAddr = 0xfeffc000;
constexpr std::uint64_t kTssAddr = 0xfeffd000;

template <typename Arg>
int do_ioctl(int fd, unsigned long request, Arg arg) {
  int rc;
  do {
    rc = ::ioctl(fd, request, arg);
  } while (rc < 0 && errno == EINTR && request != KVM_RUN);
  return rc;
}

struct RequiredCap {
  int cap;
  const char* name;
  const char* consequence;
};

constexpr RequiredCap kRequiredCaps[] = {
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "this host cannot map guest memory"},
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "this host cannot emulate the interrupt controllers"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "this host cannot set the guest CPUID"},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "this host cannot run real-mode guest code"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT",
     "this host cannot stop vCPUs reliably (Linux >= 4.11 is required)"},
    {KVM_CAP_READONLY_MEM, "KVM_CAP_READONLY_MEM",
     "this host cannot map firmware read-only at the top of 4 GiB"},
};

x86::Segment from_kvm(const kvm_segment& s) {
  x86::Segment out;
  out.base = s.base;
  out.limit = s.limit;
  out.selector = s.selector;
  out.type = s.type;
  out.present = s.present != 0;
  out.dpl = s.dpl;
  out.db = s.db != 0;
  out.s = s.s != 0;
  out.l = s.l != 0;
  out.g = s.g != 0;
  out.unusable = s.unusable != 0;
  return out;
}

kvm_segment to_kvm(const x86::Segment& s) {
  kvm_segment out{};
  out.base = s.base;
  out.limit = s.limit;
  out.selector = s.selector;
  out.type = s.type;
  out.present = s.present;
  out.dpl = s.dpl;
  out.db = s.db;
  out.s = s.s;
  out.l = s.l;
  out.g = s.g;
  out.unusable = s.unusable;
  return out;
}

class KvmVcpu final : public Vcpu {
 public:
  KvmVcpu(std::uint32_t id, Fd fd, kvm_run* run, std::size_t run_size)
      : id_(id), fd_(std::move(fd)), run_(run), run_size_(run_size) {}
  ~KvmVcpu() override { ::munmap(run_, run_size_); }

  std::uint32_t id() const override { return id_; }

  Result<VcpuExit> run() override {
    if (do_ioctl(fd_.get(), KVM_RUN, 0) < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        VcpuExit interrupted;
        interrupted.reason = ExitReason::kInterrupted;
        return interrupted;
      }
      return os_error("KVM_RUN (vCPU " + std::to_string(id_) + ")");
    }
    VcpuExit exit;
    exit.raw_reason = run_->exit_reason;
    auto* base = reinterpret_cast<std::uint8_t*>(run_);
    switch (run_->exit_reason) {
      case KVM_EXIT_IO: {
        exit.reason = ExitReason::kIo;
        exit.is_write = run_->io.direction == KVM_EXIT_IO_OUT;
        exit.address = run_->io.port;
        exit.size = run_->io.size;
        exit.count = run_->io.count;
        const std::size_t len = std::size_t{exit.size} * exit.count;
        if (run_->io.data_offset > run_size_ || len > run_size_ - run_->io.data_offset)
          return Error("KVM_EXIT_IO: data (offset " + std::to_string(run_->io.data_offset) + ", " +
                       std::to_string(len) + " bytes) lies outside the " +
                       std::to_string(run_size_) + "-byte kvm_run area");
        exit.data = {base + run_->io.data_offset, len};
        break;
      }
      case KVM_EXIT_MMIO:
        exit.reason = ExitReason::kMmio;
        exit.is_write = run_->mmio.is_write != 0;
        exit.address = run_->mmio.phys_addr;
        exit.size = run_->mmio.len;
        if (exit.size > sizeof run_->mmio.data)
          return Error("KVM_EXIT_MMIO: length " + std::to_string(exit.size) +
                       " exceeds the 8-byte data field");
        exit.data = {run_->mmio.data, exit.size};
        break;
      case KVM_EXIT_HLT:
        exit.reason = ExitReason::kHalt;
        break;
      case KVM_EXIT_SHUTDOWN:
        exit.reason = ExitReason::kShutdown;
        break;
      case KVM_EXIT_SYSTEM_EVENT:
        exit.reason = ExitReason::kSystemEvent;
        exit.system_event_type = run_->system_event.type;
        break;
      case KVM_EXIT_INTERNAL_ERROR:
        exit.reason = ExitReason::kInternalError;
        exit.suberror = run_->internal.suberror;
        break;
      case KVM_EXIT_FAIL_ENTRY:
        exit.reason = ExitReason::kFailEntry;
        exit.hardware_reason = run_->fail_entry.hardware_entry_failure_reason;
        break;
      case KVM_EXIT_INTR:
        exit.reason = ExitReason::kInterrupted;
        break;
      default:
        exit.reason = ExitReason::kOther;
        break;
    }
    return exit;
  }

  void request_exit() override {
    std::atomic_ref<std::uint8_t>(run_->immediate_exit).store(1, std::memory_order_release);
  }
  void clear_exit_request() override {
    std::atomic_ref<std::uint8_t>(run_->immediate_exit).store(0, std::memory_order_release);
  }

  Result<x86::Regs> regs() const override {
    kvm_regs r{};
    if (do_ioctl(fd_.get(), KVM_GET_REGS, &r) < 0) return os_error("KVM_GET_REGS");
    x86::Regs out;
    out.rax = r.rax, out.rbx = r.rbx, out.rcx = r.rcx, out.rdx = r.rdx;
    out.rsi = r.rsi, out.rdi = r.rdi, out.rsp = r.rsp, out.rbp = r.rbp;
    out.r8 = r.r8, out.r9 = r.r9, out.r10 = r.r10, out.r11 = r.r11;
    out.r12 = r.r12, out.r13 = r.r13, out.r14 = r.r14, out.r15 = r.r15;
    out.rip = r.rip, out.rflags = r.rflags;
    return out;
  }

  Status set_regs(const x86::Regs& in) override {
    kvm_regs r{};
    r.rax = in.rax, r.rbx = in.rbx, r.rcx = in.rcx, r.rdx = in.rdx;
    r.rsi = in.rsi, r.rdi = in.rdi, r.rsp = in.rsp, r.rbp = in.rbp;
    r.r8 = in.r8, r.r9 = in.r9, r.r10 = in.r10, r.r11 = in.r11;
    r.r12 = in.r12, r.r13 = in.r13, r.r14 = in.r14, r.r15 = in.r15;
    r.rip = in.rip, r.rflags = in.rflags;
    if (do_ioctl(fd_.get(), KVM_SET_REGS, &r) < 0) return os_error("KVM_SET_REGS");
    return {};
  }

  Result<x86::Sregs> sregs() const override {
    kvm_sregs s{};
    if (do_ioctl(fd_.get(), KVM_GET_SREGS, &s) < 0) return os_error("KVM_GET_SREGS");
    x86::Sregs out;
    out.cs = from_kvm(s.cs), out.ds = from_kvm(s.ds), out.es = from_kvm(s.es);
    out.fs = from_kvm(s.fs), out.gs = from_kvm(s.gs), out.ss = from_kvm(s.ss);
    out.tr = from_kvm(s.tr), out.ldt = from_kvm(s.ldt);
    out.gdt = {s.gdt.base, s.gdt.limit};
    out.idt = {s.idt.base, s.idt.limit};
    out.cr0 = s.cr0, out.cr2 = s.cr2, out.cr3 = s.cr3, out.cr4 = s.cr4, out.cr8 = s.cr8;
    out.efer = s.efer, out.apic_base = s.apic_base;
    return out;
  }

  Status set_sregs(const x86::Sregs& in) override {
    // Read first so fields this interface does not model (the interrupt bitmap) stay as KVM
    // has them.
    kvm_sregs s{};
    if (do_ioctl(fd_.get(), KVM_GET_SREGS, &s) < 0) return os_error("KVM_GET_SREGS");
    s.cs = to_kvm(in.cs), s.ds = to_kvm(in.ds), s.es = to_kvm(in.es);
    s.fs = to_kvm(in.fs), s.gs = to_kvm(in.gs), s.ss = to_kvm(in.ss);
    s.tr = to_kvm(in.tr), s.ldt = to_kvm(in.ldt);
    s.gdt.base = in.gdt.base, s.gdt.limit = in.gdt.limit;
    s.idt.base = in.idt.base, s.idt.limit = in.idt.limit;
    s.cr0 = in.cr0, s.cr2 = in.cr2, s.cr3 = in.cr3, s.cr4 = in.cr4, s.cr8 = in.cr8;
    s.efer = in.efer, s.apic_base = in.apic_base;
    if (do_ioctl(fd_.get(), KVM_SET_SREGS, &s) < 0) return os_error("KVM_SET_SREGS");
    return {};
  }

 private:
  std::uint32_t id_;
  Fd fd_;
  kvm_run* run_;
  std::size_t run_size_;
};

// A kvm_cpuid2 (C layout: 8-byte header, then the entries) in one buffer.
struct CpuidTable {
  explicit CpuidTable(std::size_t entries)
      : storage(sizeof(kvm_abi::Cpuid2Header) + entries * sizeof(kvm_cpuid_entry2)) {
    const auto nent = static_cast<std::uint32_t>(entries);
    std::memcpy(storage.data(), &nent, sizeof nent);
  }
  std::uint32_t nent() const {
    std::uint32_t n;
    std::memcpy(&n, storage.data(), sizeof n);
    return n;
  }
  std::uint8_t* entry(std::size_t i) {
    return storage.data() + sizeof(kvm_abi::Cpuid2Header) + i * sizeof(kvm_cpuid_entry2);
  }
  std::vector<std::uint8_t> storage;
};

class KvmVm final : public Vm {
 public:
  KvmVm(Fd fd, std::size_t run_size, std::vector<kvm_cpuid_entry2> cpuid)
      : fd_(std::move(fd)), run_size_(run_size), cpuid_(std::move(cpuid)) {}

  Result<std::unique_ptr<Vcpu>> create_vcpu(std::uint32_t id) override {
    int raw = do_ioctl(fd_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
    if (raw < 0) return os_error("KVM_CREATE_VCPU (vCPU " + std::to_string(id) + ")");
    Fd vcpu_fd(raw);

    CpuidTable table(cpuid_.size());
    for (std::size_t i = 0; i < cpuid_.size(); ++i) {
      kvm_cpuid_entry2 e = cpuid_[i];
      // The APIC ID the guest reads must match the vCPU id KVM uses for IPIs
      // (SDM vol. 2A CPUID leaves 01H EBX[31:24], 0BH/1FH EDX).
      if (e.function == 1) e.ebx = (e.ebx & 0x00ffffffu) | (id << 24);
      if (e.function == 0xb || e.function == 0x1f) e.edx = id;
      if (e.function == 1) e.ecx |= 1u << 31;  // hypervisor present
      std::memcpy(table.entry(i), &e, sizeof e);
    }
    if (do_ioctl(vcpu_fd.get(), kvm_abi::kSetCpuid2, table.storage.data()) < 0)
      return os_error("KVM_SET_CPUID2 (vCPU " + std::to_string(id) + ")");

    void* run = ::mmap(nullptr, run_size_, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd.get(), 0);
    if (run == MAP_FAILED) return os_error("mmap of kvm_run (vCPU " + std::to_string(id) + ")");
    return std::unique_ptr<Vcpu>(
        new KvmVcpu(id, std::move(vcpu_fd), static_cast<kvm_run*>(run), run_size_));
  }

  Status map_memory(const MemorySlot& slot) override {
    if (slot.guest_memfd) {
      if (do_ioctl(fd_.get(), KVM_CHECK_EXTENSION, kvm_abi::kCapUserMemory2) <= 0)
        return Error(
            "KVM_CAP_USER_MEMORY2 missing: this host cannot map guest_memfd-backed memory "
            "(Linux >= 6.8 is required)");
      kvm_abi::UserspaceMemoryRegion2 region{};
      region.slot = slot.slot;
      region.flags = kvm_abi::kMemGuestMemfd | (slot.read_only ? KVM_MEM_READONLY : 0u);
      region.guest_phys_addr = slot.guest_phys_addr;
      region.memory_size = slot.size;
      region.userspace_addr = reinterpret_cast<std::uint64_t>(slot.host_address);
      region.guest_memfd_offset = slot.guest_memfd_offset;
      region.guest_memfd = static_cast<std::uint32_t>(*slot.guest_memfd);
      if (do_ioctl(fd_.get(), kvm_abi::kSetUserMemoryRegion2, &region) < 0)
        return os_error("KVM_SET_USER_MEMORY_REGION2 (slot " + std::to_string(slot.slot) + ")");
      return {};
    }
    kvm_userspace_memory_region region{};
    region.slot = slot.slot;
    region.flags = slot.read_only ? KVM_MEM_READONLY : 0u;
    region.guest_phys_addr = slot.guest_phys_addr;
    region.memory_size = slot.size;
    region.userspace_addr = reinterpret_cast<std::uint64_t>(slot.host_address);
    if (do_ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0)
      return os_error("KVM_SET_USER_MEMORY_REGION (slot " + std::to_string(slot.slot) + ")");
    return {};
  }

  Result<int> create_guest_memfd(std::uint64_t size, std::uint64_t flags) override {
    if (do_ioctl(fd_.get(), KVM_CHECK_EXTENSION, kvm_abi::kCapGuestMemfd) <= 0)
      return Error(
          "KVM_CAP_GUEST_MEMFD missing: this host cannot back confidential guests' private "
          "memory (Linux >= 6.8 is required)");
    kvm_abi::CreateGuestMemfd request{};
    request.size = size;
    request.flags = flags;
    int fd = do_ioctl(fd_.get(), kvm_abi::kCreateGuestMemfd, &request);
    if (fd < 0) return os_error("KVM_CREATE_GUEST_MEMFD");
    return fd;
  }

  Status create_irqchip(bool pit) override {
    if (do_ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0) < 0) return os_error("KVM_CREATE_IRQCHIP");
    if (pit) {
      kvm_pit_config config{};
      if (do_ioctl(fd_.get(), KVM_CREATE_PIT2, &config) < 0) return os_error("KVM_CREATE_PIT2");
    }
    return {};
  }

  Status set_irq_line(std::uint32_t irq, bool level) override {
    kvm_irq_level line{};
    line.irq = irq;
    line.level = level ? 1 : 0;
    if (do_ioctl(fd_.get(), KVM_IRQ_LINE, &line) < 0)
      return os_error("KVM_IRQ_LINE (irq " + std::to_string(irq) + ")");
    return {};
  }

 private:
  Fd fd_;
  std::size_t run_size_;
  std::vector<kvm_cpuid_entry2> cpuid_;
};

class KvmHypervisor final : public Hypervisor {
 public:
  KvmHypervisor(Fd fd, std::size_t run_size) : fd_(std::move(fd)), run_size_(run_size) {}

  std::string_view name() const override { return "kvm"; }

  Result<std::unique_ptr<Vm>> create_vm(const VmOptions& options) override {
    int max_vcpus = do_ioctl(fd_.get(), KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    if (max_vcpus > 0 && options.vcpus > static_cast<std::uint32_t>(max_vcpus))
      return Error("vcpus: this host's KVM allows at most " + std::to_string(max_vcpus) +
                   " vCPUs per VM (KVM_CAP_MAX_VCPUS), found " + std::to_string(options.vcpus));
    if (options.machine_type != kvm_abi::kX86DefaultVm) {
      int types = do_ioctl(fd_.get(), KVM_CHECK_EXTENSION, kvm_abi::kCapVmTypes);
      if (types <= 0 || !(static_cast<unsigned>(types) & (1u << options.machine_type)))
        return Error("KVM VM type " + std::to_string(options.machine_type) +
                     " is not supported by this host (KVM_CAP_VM_TYPES = " +
                     std::to_string(types < 0 ? 0 : types) + ")");
    }
    int raw = do_ioctl(fd_.get(), KVM_CREATE_VM, options.machine_type);
    if (raw < 0) return os_error("KVM_CREATE_VM");
    Fd vm_fd(raw);

    if (do_ioctl(vm_fd.get(), KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0) {
      std::uint64_t addr = kIdentityMapAddr;
      if (do_ioctl(vm_fd.get(), KVM_SET_IDENTITY_MAP_ADDR, &addr) < 0)
        return os_error("KVM_SET_IDENTITY_MAP_ADDR");
    }
    if (do_ioctl(vm_fd.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(kTssAddr)) < 0)
      return os_error("KVM_SET_TSS_ADDR");
    CLOISTER_TRY(auto cpuid, supported_cpuid());
    return std::unique_ptr<Vm>(new KvmVm(std::move(vm_fd), run_size_, std::move(cpuid)));
  }

 private:
  Result<std::vector<kvm_cpuid_entry2>> supported_cpuid() {
    for (std::uint32_t capacity = 128; capacity <= 4096; capacity *= 2) {
      CpuidTable table(capacity);
      if (do_ioctl(fd_.get(), kvm_abi::kGetSupportedCpuid, table.storage.data()) < 0) {
        if (errno == E2BIG) continue;
        return os_error("KVM_GET_SUPPORTED_CPUID");
      }
      std::vector<kvm_cpuid_entry2> entries(table.nent());
      std::memcpy(entries.data(), table.entry(0), entries.size() * sizeof(kvm_cpuid_entry2));
      return entries;
    }
    return Error("KVM_GET_SUPPORTED_CPUID: more than 4096 entries");
  }

  Fd fd_;
  std::size_t run_size_;
};

}  // namespace

std::string_view exit_reason_name(ExitReason reason) {
  switch (reason) {
    case ExitReason::kIo:
      return "io";
    case ExitReason::kMmio:
      return "mmio";
    case ExitReason::kHalt:
      return "hlt";
    case ExitReason::kShutdown:
      return "shutdown";
    case ExitReason::kSystemEvent:
      return "system_event";
    case ExitReason::kInternalError:
      return "internal_error";
    case ExitReason::kFailEntry:
      return "fail_entry";
    case ExitReason::kInterrupted:
      return "interrupted";
    case ExitReason::kOther:
      return "other";
  }
  return "unknown";
}

Result<std::unique_ptr<Hypervisor>> open_kvm(const std::string& device) {
  int raw = ::open(device.c_str(), O_RDWR | O_CLOEXEC);
  if (raw < 0) return os_error("open " + device);
  Fd fd(raw);
  int version = do_ioctl(fd.get(), KVM_GET_API_VERSION, 0);
  if (version < 0) return os_error("KVM_GET_API_VERSION");
  if (version != KVM_API_VERSION)
    return Error("KVM_GET_API_VERSION: expected " + std::to_string(KVM_API_VERSION) + ", found " +
                 std::to_string(version));
  for (const auto& required : kRequiredCaps) {
    if (do_ioctl(fd.get(), KVM_CHECK_EXTENSION, required.cap) <= 0)
      return Error(std::string(required.name) + " missing: " + required.consequence);
  }
  int run_size = do_ioctl(fd.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size < 0) return os_error("KVM_GET_VCPU_MMAP_SIZE");
  if (static_cast<std::size_t>(run_size) < sizeof(kvm_run))
    return Error("KVM_GET_VCPU_MMAP_SIZE: expected at least " + std::to_string(sizeof(kvm_run)) +
                 " bytes, found " + std::to_string(run_size));
  return std::unique_ptr<Hypervisor>(
      new KvmHypervisor(std::move(fd), static_cast<std::size_t>(run_size)));
}

}  // namespace cloister::vmm
