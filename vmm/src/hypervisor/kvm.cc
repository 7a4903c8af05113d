#include "cloister/vmm/hypervisor/kvm.h"

#include <linux/kvm.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <vector>

#include "cloister/common/hex.h"
#include "cloister/vmm/hypervisor/kvm_abi.h"

namespace cloister::vmm {
namespace {

// Addresses KVM needs for real-mode emulation on Intel hosts, inside the MMIO gap and clear of
// firmware, the LAPIC and the IOAPIC (QEMU uses the same pair).
constexpr std::uint64_t kIdentityMapAddr = 0xfeffc000;
constexpr std::uint64_t kTssAddr = 0xfeffd000;
constexpr std::uint64_t kPage = 0x1000;
constexpr std::uint64_t kMaxGpa = 1ull << 52;  // guest-physical addresses are at most 52 bits

// Bounds on the kernel's "try again" answers (contention with other VMs for the secure
// processor); QEMU retries the same commands without a bound.
constexpr int kMaxRetries = 1000;

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

// PSP firmware status names (include/uapi/linux/psp-sev.h) for error messages.
std::string_view sev_status_name(std::uint32_t code) {
  switch (code) {
    case 0x01:
      return "INVALID_PLATFORM_STATE";
    case 0x02:
      return "INVALID_GUEST_STATE";
    case 0x03:
      return "INVALID_CONFIG";
    case 0x04:
      return "INVALID_LEN";
    case 0x07:
      return "POLICY_FAILURE";
    case 0x0b:
      return "BAD_MEASUREMENT";
    case 0x10:
      return "INVALID_GUEST";
    case 0x11:
      return "INVALID_COMMAND";
    case 0x15:
      return "UNSUPPORTED";
    case 0x16:
      return "INVALID_PARAM";
    case 0x17:
      return "RESOURCE_LIMIT";
    case 0x18:
      return "SECURE_DATA_INVALID";
    case 0x1a:
      return "INVALID_PAGE_STATE";
    case 0x1c:
      return "INVALID_PAGE_OWNER";
    default:
      return "";
  }
}

Error secure_processor_error(const std::string& operation, int err, std::string_view what,
                             std::uint64_t status, std::string_view name) {
  std::string message = os_error(operation, err).message();
  if (status != 0) {
    message += ", " + std::string(what) + " status " + hex_number(status);
    if (!name.empty()) message += " " + std::string(name);
  }
  return Error(message);
}

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
  out.avl = s.avl != 0;
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
  out.avl = s.avl;
  out.unusable = s.unusable;
  return out;
}

// A kvm_cpuid2 (C layout: 8-byte header, then the entries) in one buffer, optionally after a
// fixed-size prefix (kvm_tdx_capabilities and kvm_tdx_init_vm end with a kvm_cpuid2).
struct CpuidBuffer {
  CpuidBuffer(std::size_t prefix, std::size_t entries)
      : prefix_size(prefix),
        storage(prefix + sizeof(kvm_abi::Cpuid2Header) + entries * sizeof(kvm_cpuid_entry2)) {
    const auto nent = static_cast<std::uint32_t>(entries);
    std::memcpy(storage.data() + prefix, &nent, sizeof nent);
  }
  std::uint8_t* prefix() { return storage.data(); }
  std::uint8_t* table() { return storage.data() + prefix_size; }
  std::uint32_t nent() const {
    std::uint32_t n;
    std::memcpy(&n, storage.data() + prefix_size, sizeof n);
    return n;
  }
  std::uint8_t* entry(std::size_t i) {
    return table() + sizeof(kvm_abi::Cpuid2Header) + i * sizeof(kvm_cpuid_entry2);
  }
  kvm_cpuid_entry2 get(std::size_t i) {
    kvm_cpuid_entry2 e;
    std::memcpy(&e, entry(i), sizeof e);
    return e;
  }
  void set(std::size_t i, const kvm_cpuid_entry2& e) { std::memcpy(entry(i), &e, sizeof e); }

  std::size_t prefix_size;
  std::vector<std::uint8_t> storage;
};

std::array<std::uint32_t, 6> cpuid_row(const kvm_cpuid_entry2& e) {
  return {e.function, e.index, e.eax, e.ebx, e.ecx, e.edx};
}

kvm_cpuid_entry2 cpuid_entry(const std::array<std::uint32_t, 6>& row) {
  kvm_cpuid_entry2 e{};
  e.function = row[0];
  e.index = row[1];
  e.eax = row[2];
  e.ebx = row[3];
  e.ecx = row[4];
  e.edx = row[5];
  // Leaves whose output depends on ECX (SDM vol. 2A CPUID): KVM matches them by index.
  if (row[0] == 4 || row[0] == 7 || row[0] == 0xb || row[0] == 0xd || row[0] == 0xf ||
      row[0] == 0x10 || row[0] == 0x12 || row[0] == 0x14 || row[0] == 0x1f || row[0] == 0x8000001d)
    e.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
  return e;
}

// struct kvm_msrs without its flexible array, for the same reason as Cpuid2Header.

// The dirty log's structs and requests (include/uapi/linux/kvm.h, as in this machine's Linux 6.1
// headers): the bitmap pointer sits in a 64-bit union, so the layouts do not depend on the
// caller's pointer size.
static_assert(sizeof(kvm_dirty_log) == 16 && offsetof(kvm_dirty_log, dirty_bitmap) == 8);
static_assert(sizeof(kvm_clear_dirty_log) == 24 && offsetof(kvm_clear_dirty_log, num_pages) == 4 &&
              offsetof(kvm_clear_dirty_log, first_page) == 8 &&
              offsetof(kvm_clear_dirty_log, dirty_bitmap) == 16);
// struct kvm_vcpu_events (arch/x86/include/uapi/asm/kvm.h): 64 bytes since Linux 2.6.32, the
// fields read here at their original offsets.
static_assert(sizeof(kvm_vcpu_events) == 64 && offsetof(kvm_vcpu_events, interrupt) == 8 &&
              offsetof(kvm_vcpu_events, nmi) == 12 &&
              offsetof(kvm_vcpu_events, sipi_vector) == 16 &&
              offsetof(kvm_vcpu_events, flags) == 20);
static_assert(KVM_GET_VCPU_EVENTS == 0x8040ae9f && KVM_SET_VCPU_EVENTS == 0x4040aea0 &&
              KVM_GET_TSC_KHZ == 0xaea3 && KVM_SET_TSC_KHZ == 0xaea2);

// MSR_IA32_TSC (SDM vol. 4 table 2-2).
constexpr std::uint32_t kMsrTsc = 0x10;

static_assert(KVM_GET_DIRTY_LOG == 0x4010ae42 && KVM_CLEAR_DIRTY_LOG == 0xc018aec0 &&
              KVM_SET_USER_MEMORY_REGION == 0x4020ae46);

class KvmVm;

class KvmVcpu final : public Vcpu {
 public:
  KvmVcpu(KvmSys& sys, KvmVm& vm, std::uint32_t id, Fd fd, kvm_run* run, std::size_t run_size)
      : sys_(sys), vm_(vm), id_(id), fd_(std::move(fd)), run_(run), run_size_(run_size) {}
  ~KvmVcpu() override { sys_.unmap_run(run_, run_size_); }

  std::uint32_t id() const override { return id_; }

  Result<VcpuExit> run() override;

  void request_exit() override {
    std::atomic_ref<std::uint8_t>(run_->immediate_exit).store(1, std::memory_order_release);
  }
  void clear_exit_request() override {
    std::atomic_ref<std::uint8_t>(run_->immediate_exit).store(0, std::memory_order_release);
  }
  std::vector<Ioctl> run_ioctls() const override;

  Status complete_exit(std::uint64_t ret, std::uint64_t value) override {
    switch (pending_) {
      case ExitReason::kTdxVmcall: {
        auto* tdx = exit_union<kvm_abi::RunTdx>();
        tdx->ret = ret;
        pending_ = ExitReason::kOther;
        return {};
      }
      case ExitReason::kSnpCertificates: {
        auto* certs = exit_union<kvm_abi::RunSnpReqCerts>();
        certs->ret = ret;
        if (ret == ENOSPC) certs->npages = value;
        pending_ = ExitReason::kOther;
        return {};
      }
      default:
        return Error("complete_exit (vCPU " + std::to_string(id_) +
                     "): the last exit was not a TDX VMCALL or an SNP certificate request");
    }
  }

  Result<x86::Regs> regs() const override {
    kvm_regs r{};
    if (ioctl(KVM_GET_REGS, &r) < 0) return os_error("KVM_GET_REGS");
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
    if (ioctl(KVM_SET_REGS, &r) < 0) return os_error("KVM_SET_REGS");
    return {};
  }

  Result<x86::Sregs> sregs() const override {
    kvm_sregs s{};
    if (ioctl(KVM_GET_SREGS, &s) < 0) return os_error("KVM_GET_SREGS");
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
    if (ioctl(KVM_GET_SREGS, &s) < 0) return os_error("KVM_GET_SREGS");
    s.cs = to_kvm(in.cs), s.ds = to_kvm(in.ds), s.es = to_kvm(in.es);
    s.fs = to_kvm(in.fs), s.gs = to_kvm(in.gs), s.ss = to_kvm(in.ss);
    s.tr = to_kvm(in.tr), s.ldt = to_kvm(in.ldt);
    s.gdt.base = in.gdt.base, s.gdt.limit = in.gdt.limit;
    s.idt.base = in.idt.base, s.idt.limit = in.idt.limit;
    s.cr0 = in.cr0, s.cr2 = in.cr2, s.cr3 = in.cr3, s.cr4 = in.cr4, s.cr8 = in.cr8;
    s.efer = in.efer, s.apic_base = in.apic_base;
    if (ioctl(KVM_SET_SREGS, &s) < 0) return os_error("KVM_SET_SREGS");
    return {};
  }

  Result<x86::Fpu> fpu() const override {
    kvm_fpu f{};
    if (ioctl(KVM_GET_FPU, &f) < 0) return os_error("KVM_GET_FPU");
    x86::Fpu out;
    for (std::size_t i = 0; i < 8; ++i) std::memcpy(out.fpr[i].data(), f.fpr[i], 16);
    for (std::size_t i = 0; i < 16; ++i) std::memcpy(out.xmm[i].data(), f.xmm[i], 16);
    out.fcw = f.fcw, out.fsw = f.fsw, out.ftw = f.ftwx, out.last_opcode = f.last_opcode;
    out.last_ip = f.last_ip, out.last_dp = f.last_dp, out.mxcsr = f.mxcsr;
    return out;
  }

  Status set_fpu(const x86::Fpu& in) override {
    kvm_fpu f{};
    for (std::size_t i = 0; i < 8; ++i) std::memcpy(f.fpr[i], in.fpr[i].data(), 16);
    for (std::size_t i = 0; i < 16; ++i) std::memcpy(f.xmm[i], in.xmm[i].data(), 16);
    f.fcw = in.fcw, f.fsw = in.fsw, f.ftwx = in.ftw, f.last_opcode = in.last_opcode;
    f.last_ip = in.last_ip, f.last_dp = in.last_dp, f.mxcsr = in.mxcsr;
    if (ioctl(KVM_SET_FPU, &f) < 0) return os_error("KVM_SET_FPU");
    return {};
  }

  Result<std::uint64_t> xcr0() const override {
    kvm_xcrs x{};
    if (ioctl(KVM_GET_XCRS, &x) < 0) return os_error("KVM_GET_XCRS");
    for (std::uint32_t i = 0; i < x.nr_xcrs && i < KVM_MAX_XCRS; ++i)
      if (x.xcrs[i].xcr == 0) return std::uint64_t{x.xcrs[i].value};
    return Error("KVM_GET_XCRS: XCR0 missing from the " + std::to_string(x.nr_xcrs) +
                 " registers returned");
  }

  Status set_xcr0(std::uint64_t value) override {
    kvm_xcrs x{};
    x.nr_xcrs = 1;
    x.xcrs[0].xcr = 0;
    x.xcrs[0].value = value;
    if (ioctl(KVM_SET_XCRS, &x) < 0)
      return os_error("KVM_SET_XCRS (XCR0 " + hex_number(value) + ")");
    return {};
  }

  Result<std::vector<x86::Msr>> msrs(std::span<const std::uint32_t> indices) const override {
    std::vector<std::uint8_t> buffer = msr_buffer(indices.size());
    for (std::size_t i = 0; i < indices.size(); ++i) {
      kvm_msr_entry e{};
      e.index = indices[i];
      std::memcpy(buffer.data() + sizeof(kvm_abi::MsrsHeader) + i * sizeof e, &e, sizeof e);
    }
    const int n = ioctl(kvm_abi::kGetMsrs, buffer.data());
    if (n < 0) return os_error("KVM_GET_MSRS");
    if (static_cast<std::size_t>(n) != indices.size())
      return Error("KVM_GET_MSRS: MSR " + hex_number(indices[static_cast<std::size_t>(n)]) +
                   " is not readable on this host");
    std::vector<x86::Msr> out;
    for (std::size_t i = 0; i < indices.size(); ++i) {
      kvm_msr_entry e;
      std::memcpy(&e, buffer.data() + sizeof(kvm_abi::MsrsHeader) + i * sizeof e, sizeof e);
      out.push_back({e.index, e.data});
    }
    return out;
  }

  Status set_msrs(std::span<const x86::Msr> msrs) override {
    std::vector<std::uint8_t> buffer = msr_buffer(msrs.size());
    for (std::size_t i = 0; i < msrs.size(); ++i) {
      kvm_msr_entry e{};
      e.index = msrs[i].index;
      e.data = msrs[i].value;
      std::memcpy(buffer.data() + sizeof(kvm_abi::MsrsHeader) + i * sizeof e, &e, sizeof e);
    }
    const int n = ioctl(kvm_abi::kSetMsrs, buffer.data());
    if (n < 0) return os_error("KVM_SET_MSRS");
    if (static_cast<std::size_t>(n) != msrs.size())
      return Error("KVM_SET_MSRS: MSR " + hex_number(msrs[static_cast<std::size_t>(n)].index) +
                   " = " + hex_number(msrs[static_cast<std::size_t>(n)].value) +
                   " was refused by this host");
    return {};
  }

  Result<x86::DebugRegs> debug_regs() const override {
    kvm_debugregs d{};
    if (ioctl(KVM_GET_DEBUGREGS, &d) < 0) return os_error("KVM_GET_DEBUGREGS");
    x86::DebugRegs out;
    std::copy(std::begin(d.db), std::end(d.db), out.db.begin());
    out.dr6 = d.dr6, out.dr7 = d.dr7;
    return out;
  }

  Status set_debug_regs(const x86::DebugRegs& in) override {
    kvm_debugregs d{};
    std::copy(in.db.begin(), in.db.end(), std::begin(d.db));
    d.dr6 = in.dr6, d.dr7 = in.dr7;
    if (ioctl(KVM_SET_DEBUGREGS, &d) < 0) return os_error("KVM_SET_DEBUGREGS");
    return {};
  }

  Result<MpState> mp_state() const override {
    kvm_mp_state m{};
    if (ioctl(KVM_GET_MP_STATE, &m) < 0) return os_error("KVM_GET_MP_STATE");
    switch (m.mp_state) {
      case KVM_MP_STATE_RUNNABLE:
        return MpState::kRunnable;
      case KVM_MP_STATE_UNINITIALIZED:
        return MpState::kUninitialized;
      case KVM_MP_STATE_INIT_RECEIVED:
        return MpState::kWaitForSipi;
      case KVM_MP_STATE_HALTED:
        return MpState::kHalted;
      default:
        return Error("KVM_GET_MP_STATE (vCPU " + std::to_string(id_) +
                     "): expected RUNNABLE, UNINITIALIZED, INIT_RECEIVED or HALTED, found " +
                     std::to_string(m.mp_state));
    }
  }

  Status set_mp_state(MpState state) override {
    kvm_mp_state m{};
    switch (state) {
      case MpState::kRunnable:
        m.mp_state = KVM_MP_STATE_RUNNABLE;
        break;
      case MpState::kUninitialized:
        m.mp_state = KVM_MP_STATE_UNINITIALIZED;
        break;
      case MpState::kWaitForSipi:
        m.mp_state = KVM_MP_STATE_INIT_RECEIVED;
        break;
      case MpState::kHalted:
        m.mp_state = KVM_MP_STATE_HALTED;
        break;
    }
    if (ioctl(KVM_SET_MP_STATE, &m) < 0)
      return os_error("KVM_SET_MP_STATE (" + std::string(mp_state_name(state)) + ")");
    return {};
  }

  Result<Bytes> lapic_state() const override {
    kvm_lapic_state lapic{};
    if (ioctl(KVM_GET_LAPIC, &lapic) < 0) return os_error("KVM_GET_LAPIC");
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(lapic.regs);
    return Bytes(bytes, bytes + sizeof lapic.regs);
  }

  Status set_lapic_state(ByteView image) override {
    kvm_lapic_state lapic{};
    if (image.size() != sizeof lapic.regs)
      return Error("KVM_SET_LAPIC: expected a " + std::to_string(sizeof lapic.regs) +
                   "-byte register image, found " + std::to_string(image.size()) + " bytes");
    std::memcpy(lapic.regs, image.data(), image.size());
    if (ioctl(KVM_SET_LAPIC, &lapic) < 0) return os_error("KVM_SET_LAPIC");
    return {};
  }

  Result<Bytes> xsave_state() const override {
    kvm_abi::Xsave area{};
    if (ioctl(kvm_abi::kGetXsave, &area) < 0) return os_error("KVM_GET_XSAVE");
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(area.region);
    return Bytes(bytes, bytes + sizeof area.region);
  }

  Status set_xsave_state(ByteView image) override {
    kvm_abi::Xsave area{};
    if (image.size() != sizeof area.region)
      return Error("KVM_SET_XSAVE: expected a " + std::to_string(sizeof area.region) +
                   "-byte XSAVE area, found " + std::to_string(image.size()) + " bytes");
    std::memcpy(area.region, image.data(), image.size());
    if (ioctl(kvm_abi::kSetXsave, &area) < 0) return os_error("KVM_SET_XSAVE");
    return {};
  }

  Result<std::optional<VcpuEvents>> events() const override {
    kvm_vcpu_events e{};
    if (ioctl(KVM_GET_VCPU_EVENTS, &e) < 0) return os_error("KVM_GET_VCPU_EVENTS");
    VcpuEvents out;
    out.exception = {e.exception.injected != 0, e.exception.pending != 0,
                     e.exception.has_error_code != 0, e.exception.nr, e.exception.error_code};
    out.interrupt = {e.interrupt.injected != 0, e.interrupt.nr, e.interrupt.soft != 0,
                     e.interrupt.shadow};
    out.nmi = {e.nmi.injected != 0, e.nmi.pending != 0, e.nmi.masked != 0};
    out.sipi_vector = e.sipi_vector;
    return std::optional<VcpuEvents>(out);
  }

  Status set_events(const VcpuEvents& in) override {
    kvm_vcpu_events e{};
    e.exception.injected = in.exception.injected;
    e.exception.pending = in.exception.pending;
    e.exception.has_error_code = in.exception.has_error_code;
    e.exception.nr = in.exception.vector;
    e.exception.error_code = in.exception.error_code;
    e.interrupt.injected = in.interrupt.injected;
    e.interrupt.nr = in.interrupt.vector;
    e.interrupt.soft = in.interrupt.soft;
    e.interrupt.shadow = in.interrupt.shadow;
    e.nmi.injected = in.nmi.injected;
    e.nmi.pending = in.nmi.pending;
    e.nmi.masked = in.nmi.masked;
    e.sipi_vector = in.sipi_vector;
    // What this sets beyond the exception and interrupt: NMI pending, the SIPI vector, the
    // interrupt shadow. SMM state is left alone (this VMM never enters SMM).
    e.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
              KVM_VCPUEVENT_VALID_SHADOW;
    if (ioctl(KVM_SET_VCPU_EVENTS, &e) < 0) return os_error("KVM_SET_VCPU_EVENTS");
    return {};
  }

  Result<std::optional<VcpuTsc>> tsc() const override {
    const int khz = ioctl(KVM_GET_TSC_KHZ, nullptr);
    if (khz < 0) return os_error("KVM_GET_TSC_KHZ");
    const std::uint32_t index[] = {kMsrTsc};
    CLOISTER_TRY(std::vector<x86::Msr> value, msrs(index));
    return std::optional<VcpuTsc>(VcpuTsc{value.at(0).value, static_cast<std::uint32_t>(khz)});
  }

  // The frequency first: KVM scales the TSC value written next by it. A host without TSC
  // scaling refuses another frequency than its own, which is named.
  Status set_tsc(const VcpuTsc& in) override {
    const int khz = ioctl(KVM_GET_TSC_KHZ, nullptr);
    if (khz < 0) return os_error("KVM_GET_TSC_KHZ");
    if (static_cast<std::uint32_t>(khz) != in.khz &&
        ioctl(KVM_SET_TSC_KHZ, reinterpret_cast<void*>(static_cast<std::uintptr_t>(in.khz))) < 0)
      return os_error("KVM_SET_TSC_KHZ: the guest's TSC runs at " + std::to_string(in.khz) +
                      " kHz, this host's at " + std::to_string(khz) +
                      " kHz and it cannot scale (KVM_CAP_TSC_CONTROL)");
    const x86::Msr value[] = {{kMsrTsc, in.value}};
    return set_msrs(value);
  }

  Status tdx_init_vcpu(std::uint64_t rcx) override {
    kvm_abi::TdxCmd cmd{};
    cmd.id = static_cast<std::uint32_t>(kvm_abi::TdxCommand::kInitVcpu);
    cmd.data = rcx;
    if (ioctl(kvm_abi::kMemoryEncryptOp, &cmd) < 0)
      return secure_processor_error("KVM_TDX_INIT_VCPU (vCPU " + std::to_string(id_) + ")", errno,
                                    "TDX module", cmd.hw_error, "");
    return {};
  }

  Status tdx_init_mem_region(std::uint64_t gpa, ByteView source, bool measure) override {
    if (source.empty() || source.size() % kPage != 0 || gpa % kPage != 0 ||
        reinterpret_cast<std::uintptr_t>(source.data()) % kPage != 0)
      return Error("KVM_TDX_INIT_MEM_REGION (GPA " + hex_number(gpa) +
                   "): the source must be whole, page-aligned 4 KiB pages at a page-aligned GPA");
    kvm_abi::TdxInitMemRegion region{};
    region.source_addr = reinterpret_cast<std::uint64_t>(source.data());
    region.gpa = gpa;
    region.nr_pages = source.size() / kPage;
    // KVM adds pages one at a time and updates `region` in place; -EAGAIN/-EINTR leave the
    // remainder for another call (research/vmm.md §a.7).
    for (int attempt = 0; region.nr_pages > 0; ++attempt) {
      kvm_abi::TdxCmd cmd{};
      cmd.id = static_cast<std::uint32_t>(kvm_abi::TdxCommand::kInitMemRegion);
      cmd.flags = measure ? kvm_abi::kTdxMeasureMemoryRegion : 0;
      cmd.data = reinterpret_cast<std::uint64_t>(&region);
      if (ioctl(kvm_abi::kMemoryEncryptOp, &cmd) == 0) continue;
      if ((errno == EAGAIN || errno == EINTR) && attempt < kMaxRetries) continue;
      return secure_processor_error("KVM_TDX_INIT_MEM_REGION (GPA " + hex_number(region.gpa) + ")",
                                    errno, "TDX module", cmd.hw_error, "");
    }
    return {};
  }

 protected:
  std::string_view hypervisor_name() const override { return "kvm"; }

 private:
  int ioctl(unsigned long request, void* arg) const { return sys_.ioctl(fd_.get(), request, arg); }

  template <typename T>
  T* exit_union() {
    return reinterpret_cast<T*>(reinterpret_cast<std::uint8_t*>(run_) +
                                kvm_abi::kRunExitUnionOffset);
  }

  static std::vector<std::uint8_t> msr_buffer(std::size_t count) {
    std::vector<std::uint8_t> buffer(sizeof(kvm_abi::MsrsHeader) + count * sizeof(kvm_msr_entry));
    const kvm_abi::MsrsHeader header{static_cast<std::uint32_t>(count), 0};
    std::memcpy(buffer.data(), &header, sizeof header);
    return buffer;
  }

  // Exits the KVM implementation answers itself; true to re-enter the guest.
  Result<bool> handle_internally();

  KvmSys& sys_;
  KvmVm& vm_;
  std::uint32_t id_;
  Fd fd_;
  kvm_run* run_;
  std::size_t run_size_;
  ExitReason pending_ = ExitReason::kOther;  // the exit complete_exit() answers
};

class KvmVm final : public Vm {
 public:
  KvmVm(KvmSys& sys, int kvm_fd, unsigned long type, Fd fd, Fd sev_fd, std::size_t run_size,
        std::vector<kvm_cpuid_entry2> cpuid, bool manual_dirty_log_protect)
      : sys_(sys),
        kvm_fd_(kvm_fd),
        type_(type),
        fd_(std::move(fd)),
        sev_fd_(std::move(sev_fd)),
        run_size_(run_size),
        cpuid_(std::move(cpuid)),
        manual_dirty_log_protect_(manual_dirty_log_protect) {}

  Result<std::unique_ptr<Vcpu>> create_vcpu(std::uint32_t id) override {
    int raw = ioctl(KVM_CREATE_VCPU, reinterpret_cast<void*>(static_cast<std::uintptr_t>(id)));
    if (raw < 0) return os_error("KVM_CREATE_VCPU (vCPU " + std::to_string(id) + ")");
    Fd vcpu_fd(raw);

    CpuidBuffer table(0, cpuid_.size());
    for (std::size_t i = 0; i < cpuid_.size(); ++i) {
      kvm_cpuid_entry2 e = cpuid_[i];
      // The APIC ID the guest reads must match the vCPU id KVM uses for IPIs
      // (SDM vol. 2A CPUID leaves 01H EBX[31:24], 0BH/1FH EDX).
      if (e.function == 1) e.ebx = (e.ebx & 0x00ffffffu) | (id << 24);
      if (e.function == 0xb || e.function == 0x1f) e.edx = id;
      if (e.function == 1) e.ecx |= 1u << 31;  // hypervisor present
      table.set(i, e);
    }
    if (sys_.ioctl(vcpu_fd.get(), kvm_abi::kSetCpuid2, table.table()) < 0)
      return os_error("KVM_SET_CPUID2 (vCPU " + std::to_string(id) + ")");

    void* run = sys_.map_run(vcpu_fd.get(), run_size_);
    if (run == MAP_FAILED || run == nullptr)
      return os_error("mmap of kvm_run (vCPU " + std::to_string(id) + ")");
    return std::unique_ptr<Vcpu>(
        new KvmVcpu(sys_, *this, id, std::move(vcpu_fd), static_cast<kvm_run*>(run), run_size_));
  }

  Status map_memory(const MemorySlot& slot) override {
    if (slot.guest_memfd) {
      if (ioctl(KVM_CHECK_EXTENSION, cap(kvm_abi::kCapUserMemory2)) <= 0)
        return Error(
            "KVM_CAP_USER_MEMORY2 missing: this host cannot map guest_memfd-backed memory "
            "(Linux >= 6.8 is required)");
      if (slot.guest_memfd_offset > slot.guest_memfd->size() ||
          slot.size > slot.guest_memfd->size() - slot.guest_memfd_offset)
        return Error("memory slot " + std::to_string(slot.slot) + ": guest_memfd range [" +
                     hex_number(slot.guest_memfd_offset) + ", +" + hex_number(slot.size) +
                     ") exceeds the file's " + hex_number(slot.guest_memfd->size()) + " bytes");
      kvm_abi::UserspaceMemoryRegion2 region{};
      region.slot = slot.slot;
      region.flags = kvm_abi::kMemGuestMemfd | (slot.read_only ? KVM_MEM_READONLY : 0u);
      region.guest_phys_addr = slot.guest_phys_addr;
      region.memory_size = slot.size;
      region.userspace_addr = reinterpret_cast<std::uint64_t>(slot.host_address);
      region.guest_memfd_offset = slot.guest_memfd_offset;
      region.guest_memfd = static_cast<std::uint32_t>(slot.guest_memfd->fd());
      if (ioctl(kvm_abi::kSetUserMemoryRegion2, &region) < 0)
        return os_error("KVM_SET_USER_MEMORY_REGION2 (slot " + std::to_string(slot.slot) + ")");
    } else {
      CLOISTER_CHECK_OK(register_slot(slot, 0));
    }
    std::lock_guard lock(slots_mutex_);
    slots_.push_back(slot);
    return {};
  }

  Result<std::shared_ptr<const GuestMemfd>> create_guest_memfd(std::uint64_t size) override {
    if (ioctl(KVM_CHECK_EXTENSION, cap(kvm_abi::kCapGuestMemfd)) <= 0)
      return Error(
          "KVM_CAP_GUEST_MEMFD missing: this host cannot back confidential guests' private "
          "memory (Linux >= 6.8 is required)");
    kvm_abi::CreateGuestMemfd request{};
    request.size = size;
    int fd = ioctl(kvm_abi::kCreateGuestMemfd, &request);
    if (fd < 0) return os_error("KVM_CREATE_GUEST_MEMFD (" + hex_number(size) + " bytes)");
    return std::make_shared<const GuestMemfd>(Fd(fd), size);
  }

  Status enable_private_memory_conversions() override {
    const int hypercalls = ioctl(KVM_CHECK_EXTENSION, cap(kvm_abi::kCapExitHypercall));
    if (hypercalls < 0 || !(static_cast<unsigned>(hypercalls) & (1u << kvm_abi::kHcMapGpaRange)))
      return Error(
          "KVM_CAP_EXIT_HYPERCALL does not offer KVM_HC_MAP_GPA_RANGE: this host cannot let a "
          "confidential guest convert memory between private and shared (Linux >= 6.8)");
    const int attributes = ioctl(KVM_CHECK_EXTENSION, cap(kvm_abi::kCapMemoryAttributes));
    if (attributes < 0 ||
        !(static_cast<std::uint64_t>(attributes) & kvm_abi::kMemoryAttributePrivate))
      return Error(
          "KVM_CAP_MEMORY_ATTRIBUTES does not offer KVM_MEMORY_ATTRIBUTE_PRIVATE for this VM: "
          "the host cannot back guest memory privately");
    kvm_enable_cap enable{};
    enable.cap = kvm_abi::kCapExitHypercall;
    enable.args[0] = 1ull << kvm_abi::kHcMapGpaRange;
    if (ioctl(KVM_ENABLE_CAP, &enable) < 0)
      return os_error("KVM_ENABLE_CAP (KVM_CAP_EXIT_HYPERCALL, KVM_HC_MAP_GPA_RANGE)");
    return {};
  }

  // Converts whole pages (research/vmm.md §a.2, QEMU kvm_convert_memory): parts of the range no
  // private-capable slot backs are MMIO or holes, which may become "shared" as a no-op and can
  // never become private.
  Status set_memory_private(std::uint64_t gpa, std::uint64_t size, bool is_private) override {
    if (size == 0 || gpa % kPage != 0 || size % kPage != 0 || gpa + size < gpa)
      return Error("memory conversion [" + hex_number(gpa) + ", +" + hex_number(size) +
                   "): expected a non-empty, 4 KiB aligned range");
    std::lock_guard lock(slots_mutex_);
    std::uint64_t covered = 0;
    for (const MemorySlot& slot : slots_) {
      if (!slot.guest_memfd) continue;
      const std::uint64_t begin = std::max(gpa, slot.guest_phys_addr);
      const std::uint64_t end = std::min(gpa + size, slot.guest_phys_addr + slot.size);
      if (begin >= end) continue;
      covered += end - begin;
      kvm_abi::MemoryAttributes attributes{};
      attributes.address = begin;
      attributes.size = end - begin;
      attributes.attributes = is_private ? kvm_abi::kMemoryAttributePrivate : 0;
      if (ioctl(kvm_abi::kSetMemoryAttributes, &attributes) < 0)
        return os_error("KVM_SET_MEMORY_ATTRIBUTES ([" + hex_number(begin) + ", +" +
                        hex_number(end - begin) + ") " + (is_private ? "private" : "shared") + ")");
      // Drop the copy the guest can no longer see, or converted memory is held twice.
      const std::uint64_t offset = begin - slot.guest_phys_addr;
      const int rc =
          is_private
              ? sys_.discard(static_cast<std::uint8_t*>(slot.host_address) + offset, end - begin)
              : sys_.punch_hole(slot.guest_memfd->fd(), slot.guest_memfd_offset + offset,
                                end - begin);
      if (rc < 0)
        return os_error(std::string(is_private ? "madvise(MADV_REMOVE)"
                                               : "fallocate(PUNCH_HOLE) on guest_memfd") +
                        " for [" + hex_number(begin) + ", +" + hex_number(end - begin) + ")");
    }
    if (is_private && covered != size)
      return Error("memory conversion to private of [" + hex_number(gpa) + ", +" +
                   hex_number(size) + "): only " + hex_number(covered) +
                   " bytes of it are guest_memfd-backed RAM");
    return {};
  }

  Status create_irqchip(bool pit) override {
    if (type_ == kvm_abi::kX86TdxVm) {
      // A TD's interrupt controllers: local APICs in KVM, the IOAPIC and PIC in userspace
      // (KVM has no in-kernel IOAPIC for TDX; QEMU requires kernel_irqchip=split).
      kvm_enable_cap split{};
      split.cap = KVM_CAP_SPLIT_IRQCHIP;
      split.args[0] = kIoapicPins;
      if (ioctl(KVM_ENABLE_CAP, &split) < 0)
        return os_error("KVM_ENABLE_CAP (KVM_CAP_SPLIT_IRQCHIP)");
      return {};
    }
    if (ioctl(KVM_CREATE_IRQCHIP, nullptr) < 0) return os_error("KVM_CREATE_IRQCHIP");
    irqchip_ = true;
    if (pit) {
      kvm_pit_config config{};
      if (ioctl(KVM_CREATE_PIT2, &config) < 0) return os_error("KVM_CREATE_PIT2");
      pit_ = true;
    }
    return {};
  }

  Status set_irq_line(std::uint32_t irq, bool level) override {
    if (type_ == kvm_abi::kX86TdxVm)
      return Error("irq " + std::to_string(irq) +
                   ": a TD's IOAPIC lives in userspace, and this VMM has none yet; device "
                   "interrupts are not delivered to TDX guests");
    kvm_irq_level line{};
    line.irq = irq;
    line.level = level ? 1 : 0;
    if (ioctl(KVM_IRQ_LINE, &line) < 0)
      return os_error("KVM_IRQ_LINE (irq " + std::to_string(irq) + ")");
    return {};
  }

  // KVM_GET_IRQCHIP's chips (api.rst 4.27): the two i8259s and the IOAPIC.
  static constexpr std::pair<std::uint32_t, const char*> kIrqchips[] = {
      {KVM_IRQCHIP_PIC_MASTER, "pic_master"},
      {KVM_IRQCHIP_PIC_SLAVE, "pic_slave"},
      {KVM_IRQCHIP_IOAPIC, "ioapic"}};

  Result<VmPlatformState> save_state() const override {
    VmPlatformState state;
    auto put = [&](const char* name, const auto& value) {
      const auto* bytes = reinterpret_cast<const std::uint8_t*>(&value);
      state.components[name] = Bytes(bytes, bytes + sizeof value);
    };
    if (irqchip_) {
      for (const auto& [chip, name] : kIrqchips) {
        kvm_irqchip irqchip{};
        irqchip.chip_id = chip;
        if (const_ioctl(KVM_GET_IRQCHIP, &irqchip) < 0)
          return os_error(std::string("KVM_GET_IRQCHIP (") + name + ")");
        put(name, irqchip);
      }
    }
    if (pit_) {
      kvm_pit_state2 pit{};
      if (const_ioctl(KVM_GET_PIT2, &pit) < 0) return os_error("KVM_GET_PIT2");
      put("pit2", pit);
    }
    kvm_clock_data clock{};
    if (const_ioctl(KVM_GET_CLOCK, &clock) < 0) return os_error("KVM_GET_CLOCK");
    put("clock", clock);
    return state;
  }

  Status restore_state(const VmPlatformState& state) override {
    auto get = [&](const char* name, auto& value) -> Status {
      auto it = state.components.find(name);
      if (it == state.components.end())
        return Error(std::string("VM state: component ") + name + " is missing");
      if (it->second.size() != sizeof value)
        return Error(std::string("VM state: component ") + name + ": expected " +
                     std::to_string(sizeof value) + " bytes, found " +
                     std::to_string(it->second.size()));
      std::memcpy(&value, it->second.data(), sizeof value);
      return {};
    };
    if (pit_) {
      kvm_pit_state2 pit{};
      CLOISTER_CHECK_OK(get("pit2", pit));
      if (ioctl(KVM_SET_PIT2, &pit) < 0) return os_error("KVM_SET_PIT2");
    }
    kvm_clock_data clock{};
    CLOISTER_CHECK_OK(get("clock", clock));
    clock.flags = 0;  // KVM_SET_CLOCK takes only the value (api.rst 4.30)
    if (ioctl(KVM_SET_CLOCK, &clock) < 0) return os_error("KVM_SET_CLOCK");
    if (irqchip_) {
      for (const auto& [chip, name] : kIrqchips) {
        kvm_irqchip irqchip{};
        CLOISTER_CHECK_OK(get(name, irqchip));
        if (irqchip.chip_id != chip)
          return Error(std::string("VM state: component ") + name + ": expected chip id " +
                       std::to_string(chip) + ", found " + std::to_string(irqchip.chip_id));
        if (ioctl(KVM_SET_IRQCHIP, &irqchip) < 0)
          return os_error(std::string("KVM_SET_IRQCHIP (") + name + ")");
      }
    }
    return {};
  }

  std::vector<Ioctl> state_ioctls() const override {
    std::vector<Ioctl> ioctls = {{fd_.get(), KVM_GET_CLOCK}};
    if (irqchip_) ioctls.push_back({fd_.get(), KVM_GET_IRQCHIP});
    if (pit_) ioctls.push_back({fd_.get(), KVM_GET_PIT2});
    return ioctls;
  }

  std::vector<Ioctl> irq_ioctls() const override {
    if (type_ == kvm_abi::kX86TdxVm) return {};  // set_irq_line refuses without an ioctl
    return {{fd_.get(), KVM_IRQ_LINE}};
  }

  // What set_memory_private() issues, when a slot has private memory to convert.
  std::vector<Ioctl> conversion_ioctls() {
    std::lock_guard lock(slots_mutex_);
    const bool private_memory = std::any_of(slots_.begin(), slots_.end(),
                                            [](const MemorySlot& s) { return s.guest_memfd; });
    if (!private_memory) return {};
    return {{fd_.get(), kvm_abi::kSetMemoryAttributes}};
  }

  std::vector<std::array<std::uint32_t, 6>> cpuid() const override {
    std::vector<std::array<std::uint32_t, 6>> out;
    for (const auto& e : cpuid_) out.push_back(cpuid_row(e));
    return out;
  }

  // ---- dirty-page logging (api.rst 4.8 KVM_GET_DIRTY_LOG, 4.117 KVM_CLEAR_DIRTY_LOG) ----

  bool supports_dirty_log() const override { return type_ == kvm_abi::kX86DefaultVm; }

  Status enable_dirty_log() override {
    if (!supports_dirty_log())
      return Error(ErrorCode::kFailedPrecondition,
                   "kvm: dirty-page logging of a VM of type " + std::to_string(type_) +
                       ": expected a plain VM (type 0); KVM cannot log writes to private memory");
    std::lock_guard lock(slots_mutex_);
    if (!logged_.empty())
      return Error(ErrorCode::kFailedPrecondition, "kvm: dirty-page logging: already on for " +
                                                       std::to_string(logged_.size()) + " slots");
    for (const MemorySlot& slot : slots_) {
      if (slot.read_only || slot.guest_memfd) continue;
      if (auto st = register_slot(slot, KVM_MEM_LOG_DIRTY_PAGES); !st) {
        for (const MemorySlot& done : logged_) (void)register_slot(done, 0);
        logged_.clear();
        return st.error().with_context("kvm: enabling dirty-page logging");
      }
      logged_.push_back(slot);
    }
    return {};
  }

  Result<std::vector<SlotDirtyLog>> fetch_dirty_log() override {
    std::lock_guard lock(slots_mutex_);
    std::vector<SlotDirtyLog> logs;
    for (const MemorySlot& slot : logged_) {
      SlotDirtyLog slot_log;
      slot_log.slot = slot.slot;
      slot_log.guest_phys_addr = slot.guest_phys_addr;
      slot_log.pages = slot.size / kPage;
      slot_log.bitmap.assign(dirty_bitmap_words(slot_log.pages), 0);
      const std::string which = " (slot " + std::to_string(slot.slot) + ")";
      kvm_dirty_log get{};
      get.slot = slot.slot;
      get.dirty_bitmap = slot_log.bitmap.data();
      if (ioctl(KVM_GET_DIRTY_LOG, &get) < 0) return os_error("KVM_GET_DIRTY_LOG" + which);
      // With manual protection KVM_GET_DIRTY_LOG only reads the log; clearing exactly the bits
      // read re-arms write protection on those pages, so a write after this point is logged
      // again (QEMU's order: fetch, clear, then send).
      if (manual_dirty_log_protect_) {
        if (slot_log.pages > UINT32_MAX)
          return Error("KVM_CLEAR_DIRTY_LOG" + which + ": num_pages: expected at most " +
                       std::to_string(UINT32_MAX) + ", found " + std::to_string(slot_log.pages));
        kvm_clear_dirty_log clear{};
        clear.slot = slot.slot;
        clear.num_pages = static_cast<std::uint32_t>(slot_log.pages);
        clear.first_page = 0;
        clear.dirty_bitmap = slot_log.bitmap.data();
        if (ioctl(KVM_CLEAR_DIRTY_LOG, &clear) < 0) return os_error("KVM_CLEAR_DIRTY_LOG" + which);
      }
      logs.push_back(std::move(slot_log));
    }
    return logs;
  }

  Status disable_dirty_log() override {
    std::lock_guard lock(slots_mutex_);
    Status result;
    for (const MemorySlot& slot : logged_) {
      auto st = register_slot(slot, 0);
      if (!st && result.ok()) result = st.error().with_context("kvm: disabling dirty-page logging");
    }
    logged_.clear();
    return result;
  }

  std::vector<Ioctl> dirty_log_ioctls() const override {
    if (!supports_dirty_log()) return {};
    std::vector<Ioctl> ioctls = {{fd_.get(), KVM_SET_USER_MEMORY_REGION},
                                 {fd_.get(), KVM_GET_DIRTY_LOG}};
    if (manual_dirty_log_protect_) ioctls.push_back({fd_.get(), KVM_CLEAR_DIRTY_LOG});
    return ioctls;
  }

  // ---- SEV-SNP ----

  Status sev_init2(const SevInit2& params) override {
    kvm_abi::SevInit init{};
    init.vmsa_features = params.vmsa_features;
    init.ghcb_version = params.ghcb_version;
    return sev_command(kvm_abi::SevCommand::kInit2, &init, "KVM_SEV_INIT2");
  }

  Status snp_launch_start(const SnpLaunchStartParams& params) override {
    kvm_abi::SnpLaunchStart start{};
    start.policy = params.policy;
    return sev_command(kvm_abi::SevCommand::kSnpLaunchStart, &start,
                       "KVM_SEV_SNP_LAUNCH_START (policy " + hex_number(params.policy) + ")");
  }

  Status snp_launch_update(std::uint64_t gpa, std::span<std::uint8_t> pages,
                           std::uint8_t type) override {
    const std::string what = "KVM_SEV_SNP_LAUNCH_UPDATE (GPA " + hex_number(gpa) + ", " +
                             hex_number(pages.size()) + " bytes, type " + std::to_string(type) +
                             ")";
    if (pages.empty() || pages.size() % kPage != 0 || gpa % kPage != 0 ||
        reinterpret_cast<std::uintptr_t>(pages.data()) % kPage != 0)
      return Error(what + ": expected whole, page-aligned 4 KiB pages at a page-aligned GPA");
    kvm_abi::SnpLaunchUpdate update{};
    update.gfn_start = gpa / kPage;
    update.uaddr = reinterpret_cast<std::uint64_t>(pages.data());
    update.len = pages.size();
    update.type = type;
    // KVM may stop early and describe the remainder in the struct (research/vmm.md §a.4).
    for (int attempt = 0; update.len > 0; ++attempt) {
      kvm_abi::SevCmd cmd = sev_cmd(kvm_abi::SevCommand::kSnpLaunchUpdate, &update);
      if (ioctl(kvm_abi::kMemoryEncryptOp, &cmd) == 0) continue;
      if (errno == EAGAIN && attempt < kMaxRetries) continue;
      return secure_processor_error(what, errno, "firmware", cmd.error, sev_status_name(cmd.error));
    }
    return {};
  }

  Status snp_launch_finish(const SnpLaunchFinishParams& params) override {
    kvm_abi::SnpLaunchFinish finish{};
    if (params.id_block.has_value() != params.id_auth.has_value())
      return Error("KVM_SEV_SNP_LAUNCH_FINISH: an ID block needs its ID authentication structure");
    if (params.id_block) {
      finish.id_block_uaddr = reinterpret_cast<std::uint64_t>(params.id_block->data());
      finish.id_auth_uaddr = reinterpret_cast<std::uint64_t>(params.id_auth->data());
      finish.id_block_en = 1;
      finish.auth_key_en = params.author_key_enabled ? 1 : 0;
    }
    finish.vcek_disabled = params.vcek_disabled ? 1 : 0;
    std::copy(params.host_data.begin(), params.host_data.end(), finish.host_data);
    return sev_command(kvm_abi::SevCommand::kSnpLaunchFinish, &finish, "KVM_SEV_SNP_LAUNCH_FINISH");
  }

  Status snp_enable_certificate_requests() override {
    kvm_device_attr attr{};
    attr.group = kvm_abi::kX86GrpSev;
    attr.attr = kvm_abi::kX86SevSnpReqCerts;
    if (sys_.ioctl(kvm_fd_, KVM_HAS_DEVICE_ATTR, &attr) < 0)
      return Error(
          "KVM_X86_SEV_SNP_REQ_CERTS missing: this host's KVM cannot hand SNP extended guest "
          "requests to the VMM for certificates (Linux >= 7.0 is required)");
    return sev_command(kvm_abi::SevCommand::kSnpEnableReqCerts, nullptr,
                       "KVM_SEV_SNP_ENABLE_REQ_CERTS");
  }

  // ---- TDX ----

  Result<TdxCapabilities> tdx_capabilities() override {
    for (std::size_t capacity = 64; capacity <= 1024; capacity *= 2) {
      CpuidBuffer buffer(sizeof(kvm_abi::TdxCapabilitiesHeader), capacity);
      kvm_abi::TdxCmd cmd{};
      cmd.id = static_cast<std::uint32_t>(kvm_abi::TdxCommand::kCapabilities);
      cmd.data = reinterpret_cast<std::uint64_t>(buffer.prefix());
      if (ioctl(kvm_abi::kMemoryEncryptOp, &cmd) < 0) {
        if (errno == E2BIG) continue;
        return secure_processor_error("KVM_TDX_CAPABILITIES", errno, "TDX module", cmd.hw_error,
                                      "");
      }
      kvm_abi::TdxCapabilitiesHeader header;
      std::memcpy(&header, buffer.prefix(), sizeof header);
      TdxCapabilities caps;
      caps.supported_attributes = header.supported_attrs;
      caps.supported_xfam = header.supported_xfam;
      caps.kernel_tdvmcallinfo_1_r11 = header.kernel_tdvmcallinfo_1_r11;
      caps.user_tdvmcallinfo_1_r11 = header.user_tdvmcallinfo_1_r11;
      const std::uint32_t n = std::min<std::uint32_t>(buffer.nent(), capacity);
      for (std::uint32_t i = 0; i < n; ++i)
        caps.configurable_cpuid.push_back(cpuid_row(buffer.get(i)));
      std::lock_guard lock(tdx_mutex_);
      tdvmcallinfo_r11_ = caps.kernel_tdvmcallinfo_1_r11;
      return caps;
    }
    return Error("KVM_TDX_CAPABILITIES: more than 1024 configurable CPUID entries");
  }

  Status tdx_init_vm(const TdxInitVmParams& params) override {
    CpuidBuffer buffer(sizeof(kvm_abi::TdxInitVmHeader), params.cpuid.size());
    kvm_abi::TdxInitVmHeader header{};
    header.attributes = params.attributes;
    header.xfam = params.xfam;
    std::memcpy(header.mrconfigid, params.mr_config_id.data(), 48);
    std::memcpy(header.mrowner, params.mr_owner.data(), 48);
    std::memcpy(header.mrownerconfig, params.mr_owner_config.data(), 48);
    std::memcpy(buffer.prefix(), &header, sizeof header);
    for (std::size_t i = 0; i < params.cpuid.size(); ++i)
      buffer.set(i, cpuid_entry(params.cpuid[i]));
    // TDH.MNG.CREATE can meet contention: -EAGAIN, retried as QEMU does.
    for (int attempt = 0;; ++attempt) {
      kvm_abi::TdxCmd cmd{};
      cmd.id = static_cast<std::uint32_t>(kvm_abi::TdxCommand::kInitVm);
      cmd.data = reinterpret_cast<std::uint64_t>(buffer.prefix());
      if (ioctl(kvm_abi::kMemoryEncryptOp, &cmd) == 0) return {};
      if (errno == EAGAIN && attempt < kMaxRetries) continue;
      return secure_processor_error("KVM_TDX_INIT_VM (attributes " + hex_number(params.attributes) +
                                        ", XFAM " + hex_number(params.xfam) + ")",
                                    errno, "TDX module", cmd.hw_error, "");
    }
  }

  Status tdx_finalize_vm() override {
    for (int attempt = 0;; ++attempt) {
      kvm_abi::TdxCmd cmd{};
      cmd.id = static_cast<std::uint32_t>(kvm_abi::TdxCommand::kFinalizeVm);
      if (ioctl(kvm_abi::kMemoryEncryptOp, &cmd) == 0) return {};
      if (errno == EBUSY && attempt < kMaxRetries) continue;
      return secure_processor_error("KVM_TDX_FINALIZE_VM", errno, "TDX module", cmd.hw_error, "");
    }
  }

  std::uint64_t tdvmcallinfo_r11() {
    std::lock_guard lock(tdx_mutex_);
    return tdvmcallinfo_r11_;
  }

 protected:
  std::string_view hypervisor_name() const override { return "kvm"; }

 private:
  int ioctl(unsigned long request, void* arg) { return sys_.ioctl(fd_.get(), request, arg); }
  // The VM-state reads (KVM_GET_IRQCHIP, KVM_GET_PIT2, KVM_GET_CLOCK) change nothing.
  int const_ioctl(unsigned long request, void* arg) const {
    return sys_.ioctl(fd_.get(), request, arg);
  }
  static void* cap(int c) { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(c)); }

  // KVM_SET_USER_MEMORY_REGION of a slot without private memory, with `log_flags` (0 or
  // KVM_MEM_LOG_DIRTY_PAGES) beside its own: registering a slot again with other flags only
  // changes them (api.rst 4.35).
  Status register_slot(const MemorySlot& slot, std::uint32_t log_flags) {
    kvm_userspace_memory_region region{};
    region.slot = slot.slot;
    region.flags = log_flags | (slot.read_only ? KVM_MEM_READONLY : 0u);
    region.guest_phys_addr = slot.guest_phys_addr;
    region.memory_size = slot.size;
    region.userspace_addr = reinterpret_cast<std::uint64_t>(slot.host_address);
    if (ioctl(KVM_SET_USER_MEMORY_REGION, &region) < 0)
      return os_error("KVM_SET_USER_MEMORY_REGION (slot " + std::to_string(slot.slot) + ", flags " +
                      hex_number(region.flags) + ")");
    return {};
  }

  kvm_abi::SevCmd sev_cmd(kvm_abi::SevCommand id, void* data) const {
    kvm_abi::SevCmd cmd{};
    cmd.id = static_cast<std::uint32_t>(id);
    cmd.data = reinterpret_cast<std::uint64_t>(data);
    cmd.sev_fd = static_cast<std::uint32_t>(sev_fd_.get());
    return cmd;
  }

  Status sev_command(kvm_abi::SevCommand id, void* data, const std::string& what) {
    if (!sev_fd_.valid())
      return Error(what + ": this VM was not created as an SEV-SNP VM (no /dev/sev handle)");
    kvm_abi::SevCmd cmd = sev_cmd(id, data);
    if (ioctl(kvm_abi::kMemoryEncryptOp, &cmd) < 0)
      return secure_processor_error(what, errno, "firmware", cmd.error, sev_status_name(cmd.error));
    return {};
  }

  static constexpr int kIoapicPins = 24;

  KvmSys& sys_;
  int kvm_fd_;  // /dev/kvm, which outlives every VM (the hypervisor owns it)
  unsigned long type_;
  Fd fd_;
  Fd sev_fd_;  // /dev/sev for SEV-SNP VMs
  std::size_t run_size_;
  std::vector<kvm_cpuid_entry2> cpuid_;
  bool irqchip_ = false;  // KVM_CREATE_IRQCHIP done
  bool pit_ = false;      // KVM_CREATE_PIT2 done
  // KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 enabled at creation: KVM_GET_DIRTY_LOG reads, and
  // KVM_CLEAR_DIRTY_LOG clears and re-protects.
  bool manual_dirty_log_protect_;
  std::mutex slots_mutex_;
  std::vector<MemorySlot> slots_;
  std::vector<MemorySlot> logged_;  // the slots whose writes are logged
  std::mutex tdx_mutex_;
  std::uint64_t tdvmcallinfo_r11_ = 0;
};

std::vector<Ioctl> KvmVcpu::run_ioctls() const {
  // Entering the guest, and what save_state() reads when the vCPU thread saves its own state
  // for a snapshot.
  std::vector<Ioctl> ioctls = {{fd_.get(), KVM_RUN},
                               {fd_.get(), KVM_GET_REGS},
                               {fd_.get(), KVM_GET_SREGS},
                               {fd_.get(), KVM_GET_FPU},
                               {fd_.get(), KVM_GET_XCRS},
                               {fd_.get(), kvm_abi::kGetMsrs},
                               {fd_.get(), KVM_GET_DEBUGREGS},
                               {fd_.get(), KVM_GET_MP_STATE},
                               {fd_.get(), KVM_GET_LAPIC},
                               {fd_.get(), kvm_abi::kGetXsave},
                               {fd_.get(), KVM_GET_VCPU_EVENTS},
                               {fd_.get(), KVM_GET_TSC_KHZ}};
  for (const Ioctl& conversion : vm_.conversion_ioctls()) ioctls.push_back(conversion);
  return ioctls;
}

Result<bool> KvmVcpu::handle_internally() {
  switch (run_->exit_reason) {
    case KVM_EXIT_HYPERCALL: {
      if (run_->hypercall.nr != kvm_abi::kHcMapGpaRange) return false;
      const std::uint64_t gpa = run_->hypercall.args[0];
      const std::uint64_t pages = run_->hypercall.args[1];
      const bool to_private = run_->hypercall.args[2] & kvm_abi::kMapGpaRangeEncrypted;
      // A refused conversion goes back to the guest as a non-zero return value, as KVM
      // documents; the guest decides what to do (research/vmm.md §a.3).
      const bool sane = gpa < kMaxGpa && pages != 0 && pages <= (kMaxGpa - gpa) / kPage;
      run_->hypercall.ret =
          sane && vm_.set_memory_private(gpa, pages * kPage, to_private).ok() ? 0 : EINVAL;
      return true;
    }
    case kvm_abi::kExitTdx: {
      auto* tdx = exit_union<kvm_abi::RunTdx>();
      if (tdx->nr == kvm_abi::kTdvmcallGetTdVmCallInfo) {
        // Leaf 1 asks which sub-functions the host serves; this VMM serves exactly KVM's.
        tdx->ret = kvm_abi::kTdvmcallStatusSuccess;
        tdx->args[1] = vm_.tdvmcallinfo_r11();
        for (int i = 2; i < 5; ++i) tdx->args[i] = 0;
        return true;
      }
      if (tdx->nr == kvm_abi::kTdvmcallGetQuote) return false;
      // SetupEventNotifyInterrupt and anything else: not offered by GetTdVmCallInfo above, so
      // refused; the guest polls its quote buffer instead.
      tdx->ret = kvm_abi::kTdvmcallStatusSubfuncUnsupported;
      return true;
    }
    default:
      return false;
  }
}

Result<VcpuExit> KvmVcpu::run() {
  for (;;) {
    if (sys_.ioctl(fd_.get(), KVM_RUN, nullptr) < 0) {
      const int err = errno;
      if (err == EINTR || err == EAGAIN) {
        VcpuExit interrupted;
        interrupted.reason = ExitReason::kInterrupted;
        return interrupted;
      }
      // An access whose private/shared state does not match the page (research/vmm.md §a.2):
      // convert and re-enter.
      if ((err == EFAULT || err == EHWPOISON) && run_->exit_reason == kvm_abi::kExitMemoryFault) {
        const auto* fault = exit_union<kvm_abi::RunMemoryFault>();
        const std::uint64_t begin = fault->gpa & ~(kPage - 1);
        const std::uint64_t end = (fault->gpa + fault->size + kPage - 1) & ~(kPage - 1);
        auto converted = vm_.set_memory_private(begin, end - begin,
                                                fault->flags & kvm_abi::kMemoryExitFlagPrivate);
        if (!converted)
          return converted.error().with_context("KVM_EXIT_MEMORY_FAULT (vCPU " +
                                                std::to_string(id_) + ", GPA " +
                                                hex_number(fault->gpa) + ")");
        continue;
      }
      return os_error("KVM_RUN (vCPU " + std::to_string(id_) + ")", err);
    }
    CLOISTER_TRY(const bool handled, handle_internally());
    if (handled) continue;
    break;
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
                     std::to_string(len) + " bytes) lies outside the " + std::to_string(run_size_) +
                     "-byte kvm_run area");
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
    case KVM_EXIT_SYSTEM_EVENT: {
      exit.reason = ExitReason::kSystemEvent;
      exit.system_event_type = run_->system_event.type;
      switch (run_->system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN:
          exit.system_event = SystemEvent::kShutdown;
          break;
        case KVM_SYSTEM_EVENT_RESET:
          exit.system_event = SystemEvent::kReset;
          break;
        case KVM_SYSTEM_EVENT_CRASH:
          exit.system_event = SystemEvent::kCrash;
          break;
        case kvm_abi::kSystemEventSevTerm:
          exit.system_event = SystemEvent::kSevTerminate;
          break;
        case kvm_abi::kSystemEventTdxFatal:
          exit.system_event = SystemEvent::kTdxFatal;
          break;
        default:
          exit.system_event = SystemEvent::kOther;
          break;
      }
      const std::uint32_t n = std::min<std::uint32_t>(run_->system_event.ndata, 16);
      exit.system_event_data.assign(run_->system_event.data, run_->system_event.data + n);
      break;
    }
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
    case kvm_abi::kExitTdx: {
      const auto* tdx = exit_union<kvm_abi::RunTdx>();
      exit.reason = ExitReason::kTdxVmcall;
      exit.tdx_vmcall.subfunction = tdx->nr;
      exit.tdx_vmcall.gpa = tdx->args[0];
      exit.tdx_vmcall.size = tdx->args[1];
      pending_ = ExitReason::kTdxVmcall;
      break;
    }
    case kvm_abi::kExitSnpReqCerts: {
      const auto* certs = exit_union<kvm_abi::RunSnpReqCerts>();
      exit.reason = ExitReason::kSnpCertificates;
      exit.snp_certificates = {certs->gpa, certs->npages};
      pending_ = ExitReason::kSnpCertificates;
      break;
    }
    default:
      exit.reason = ExitReason::kOther;
      break;
  }
  return exit;
}

class KvmHypervisor final : public Hypervisor {
 public:
  KvmHypervisor(KvmSys& sys, Fd fd, std::size_t run_size)
      : sys_(sys), fd_(std::move(fd)), run_size_(run_size) {}

  std::string_view name() const override { return "kvm"; }

  Result<std::unique_ptr<Vm>> create_vm(const VmOptions& options) override {
    int max_vcpus = ioctl(KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    if (max_vcpus > 0 && options.vcpus > static_cast<std::uint32_t>(max_vcpus))
      return Error("vcpus: this host's KVM allows at most " + std::to_string(max_vcpus) +
                   " vCPUs per VM (KVM_CAP_MAX_VCPUS), found " + std::to_string(options.vcpus));
    Fd sev_fd;
    if (options.machine_type != kvm_abi::kX86DefaultVm) {
      CLOISTER_CHECK_OK(check_vm_type(options.machine_type));
      if (options.machine_type == kvm_abi::kX86SnpVm) {
        const int raw = sys_.open("/dev/sev");
        if (raw < 0)
          return os_error(
              "SEV-SNP needs the PSP device /dev/sev (the ccp driver with SNP enabled in the "
              "firmware and BIOS): open /dev/sev");
        sev_fd = Fd(raw);
      }
    }
    int raw = ioctl(KVM_CREATE_VM, options.machine_type);
    if (raw < 0)
      return os_error("KVM_CREATE_VM (type " + std::to_string(options.machine_type) + ")");
    Fd vm_fd(raw);

    // Real-mode emulation addresses are for plain VMs on Intel; TDX VMs reject them.
    if (options.machine_type != kvm_abi::kX86TdxVm) {
      if (sys_.ioctl(vm_fd.get(), KVM_CHECK_EXTENSION,
                     reinterpret_cast<void*>(KVM_CAP_SET_IDENTITY_MAP_ADDR)) > 0) {
        std::uint64_t addr = kIdentityMapAddr;
        if (sys_.ioctl(vm_fd.get(), KVM_SET_IDENTITY_MAP_ADDR, &addr) < 0)
          return os_error("KVM_SET_IDENTITY_MAP_ADDR");
      }
      if (sys_.ioctl(vm_fd.get(), KVM_SET_TSS_ADDR, reinterpret_cast<void*>(kTssAddr)) < 0)
        return os_error("KVM_SET_TSS_ADDR");
    }
    CLOISTER_TRY(auto cpuid, supported_cpuid());
    CLOISTER_TRY(const bool manual_dirty_log_protect,
                 enable_manual_dirty_log_protect(vm_fd.get(), options.machine_type));
    return std::unique_ptr<Vm>(new KvmVm(sys_, fd_.get(), options.machine_type, std::move(vm_fd),
                                         std::move(sev_fd), run_size_, std::move(cpuid),
                                         manual_dirty_log_protect));
  }

 private:
  int ioctl(unsigned long request, unsigned long arg) {
    return sys_.ioctl(fd_.get(), request, reinterpret_cast<void*>(arg));
  }

  Status check_vm_type(unsigned long type) {
    const int types = ioctl(KVM_CHECK_EXTENSION, static_cast<unsigned long>(kvm_abi::kCapVmTypes));
    if (types > 0 && (static_cast<unsigned>(types) & (1u << type))) return {};
    const std::string found = "KVM_CAP_VM_TYPES = " + hex_number(types < 0 ? 0 : types);
    if (type == kvm_abi::kX86SnpVm)
      return Error("this host's KVM offers no SEV-SNP VMs (" + found +
                   ", bit 4 missing): SEV-SNP needs an AMD EPYC host with SNP enabled in the "
                   "BIOS and Linux >= 6.11");
    if (type == kvm_abi::kX86TdxVm)
      return Error("this host's KVM offers no TDX VMs (" + found +
                   ", bit 5 missing): the TDX module is not loaded or kvm_intel.tdx is off "
                   "(Linux >= 6.16 on a TDX-enabled Xeon is required)");
    return Error("KVM VM type " + std::to_string(type) + " is not supported by this host (" +
                 found + ")");
  }

  // Plain VMs get KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 when the host offers it, as
  // QEMU enables it: fetching the dirty log then leaves write protection alone and
  // KVM_CLEAR_DIRTY_LOG re-arms it for exactly the pages read. Enabled here, before any memory
  // slot exists, so the migrating thread needs no KVM_ENABLE_CAP. True when enabled.
  Result<bool> enable_manual_dirty_log_protect(int vm_fd, unsigned long type) {
    if (type != kvm_abi::kX86DefaultVm) return false;
    const int offered = sys_.ioctl(vm_fd, KVM_CHECK_EXTENSION,
                                   reinterpret_cast<void*>(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2));
    if (offered <= 0 || !(offered & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE)) return false;
    kvm_enable_cap enable{};
    enable.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2;
    enable.args[0] = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
    if (sys_.ioctl(vm_fd, KVM_ENABLE_CAP, &enable) < 0)
      return os_error("KVM_ENABLE_CAP (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)");
    return true;
  }

  Result<std::vector<kvm_cpuid_entry2>> supported_cpuid() {
    for (std::size_t capacity = 128; capacity <= 4096; capacity *= 2) {
      CpuidBuffer table(0, capacity);
      if (sys_.ioctl(fd_.get(), kvm_abi::kGetSupportedCpuid, table.table()) < 0) {
        if (errno == E2BIG) continue;
        return os_error("KVM_GET_SUPPORTED_CPUID");
      }
      std::vector<kvm_cpuid_entry2> entries;
      for (std::uint32_t i = 0; i < std::min<std::uint32_t>(table.nent(), capacity); ++i)
        entries.push_back(table.get(i));
      return entries;
    }
    return Error("KVM_GET_SUPPORTED_CPUID: more than 4096 entries");
  }

  KvmSys& sys_;
  Fd fd_;
  std::size_t run_size_;
};

}  // namespace

Result<std::unique_ptr<Hypervisor>> open_kvm(const std::string& device, KvmSys& sys) {
  int raw = sys.open(device.c_str());
  if (raw < 0) return os_error("open " + device);
  Fd fd(raw);
  auto check = [&](unsigned long request, unsigned long arg) {
    return sys.ioctl(fd.get(), request, reinterpret_cast<void*>(arg));
  };
  int version = check(KVM_GET_API_VERSION, 0);
  if (version < 0) return os_error("KVM_GET_API_VERSION");
  if (version != KVM_API_VERSION)
    return Error("KVM_GET_API_VERSION: expected " + std::to_string(KVM_API_VERSION) + ", found " +
                 std::to_string(version));
  for (const auto& required : kRequiredCaps) {
    if (check(KVM_CHECK_EXTENSION, static_cast<unsigned long>(required.cap)) <= 0)
      return Error(std::string(required.name) + " missing: " + required.consequence);
  }
  int run_size = check(KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size < 0) return os_error("KVM_GET_VCPU_MMAP_SIZE");
  if (static_cast<std::size_t>(run_size) < sizeof(kvm_run))
    return Error("KVM_GET_VCPU_MMAP_SIZE: expected at least " + std::to_string(sizeof(kvm_run)) +
                 " bytes, found " + std::to_string(run_size));
  return std::unique_ptr<Hypervisor>(
      new KvmHypervisor(sys, std::move(fd), static_cast<std::size_t>(run_size)));
}

}  // namespace cloister::vmm
