#include "kvm_recorder.h"

#include <linux/kvm.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "cloister/vmm/hypervisor/kvm_abi.h"

namespace cloister::testing {
namespace {

namespace abi = vmm::kvm_abi;

constexpr std::size_t kRunSize = 3 * 4096;
constexpr std::uint64_t kPage = 4096;

template <typename T>
ByteView bytes_of(const T* value) {
  return ByteView(reinterpret_cast<const std::uint8_t*>(value), sizeof(T));
}

// What KVM_GET_SUPPORTED_CPUID returns on this imaginary AMD Genoa host: enough leaves for the
// code under test (APIC IDs in leaves 1 and 0xb, XSAVE components in 0xd).
std::vector<kvm_cpuid_entry2> host_cpuid() {
  auto entry = [](std::uint32_t function, std::uint32_t index, std::uint32_t eax, std::uint32_t ebx,
                  std::uint32_t ecx, std::uint32_t edx) {
    kvm_cpuid_entry2 e{};
    e.function = function;
    e.index = index;
    e.eax = eax;
    e.ebx = ebx;
    e.ecx = ecx;
    e.edx = edx;
    return e;
  };
  std::vector<kvm_cpuid_entry2> entries = {
      entry(0, 0, 0xd, 0x68747541, 0x444d4163, 0x69746e65),  // "AuthenticAMD"
      entry(1, 0, 0x00a10f11, 0x00000800, 0x7ef8320b, 0x178bfbff),
      entry(7, 0, 0, 0xf1bf07ab, 0x00405fce, 0x10000010),
      entry(0xb, 0, 1, 2, 0x100, 0),
      entry(0xd, 0, 0x2e7, 0x980, 0x988, 0),
      entry(0x80000000, 0, 0x80000021, 0x68747541, 0x444d4163, 0x69746e65),
      entry(0x80000001, 0, 0x00a10f11, 0, 0x75c237ff, 0x2fd3fbff),
      entry(0x8000001f, 0, 0x0101fd3f, 0x00004173, 0x000001fd, 0x00000001),
  };
  // Like KVM, every other leaf up to the maxima (and 0x8000001d's subleaves), all zeros here:
  // 67 entries in all, more than an SNP CPUID page holds.
  for (std::uint32_t f = 2; f <= 0x1c; ++f)
    if (f != 7 && f != 0xb && f != 0xd) entries.push_back(entry(f, 0, 0, 0, 0, 0));
  for (std::uint32_t f = 0x80000002; f <= 0x80000021; ++f)
    if (f != 0x8000001f) entries.push_back(entry(f, 0, 0, 0, 0, 0));
  for (std::uint32_t i = 1; i <= 4; ++i) entries.push_back(entry(0x8000001d, i, 0, 0, 0, 0));
  return entries;
}

std::string sev_name(std::uint32_t id) {
  switch (static_cast<abi::SevCommand>(id)) {
    case abi::SevCommand::kInit2:
      return "KVM_SEV_INIT2";
    case abi::SevCommand::kSnpLaunchStart:
      return "KVM_SEV_SNP_LAUNCH_START";
    case abi::SevCommand::kSnpLaunchUpdate:
      return "KVM_SEV_SNP_LAUNCH_UPDATE";
    case abi::SevCommand::kSnpLaunchFinish:
      return "KVM_SEV_SNP_LAUNCH_FINISH";
    case abi::SevCommand::kSnpEnableReqCerts:
      return "KVM_SEV_SNP_ENABLE_REQ_CERTS";
  }
  return "KVM_SEV_" + std::to_string(id);
}

}  // namespace

KvmRecorder::KvmRecorder() {
  for (int cap : {KVM_CAP_USER_MEMORY, KVM_CAP_IRQCHIP, KVM_CAP_EXT_CPUID, KVM_CAP_SET_TSS_ADDR,
                  KVM_CAP_IMMEDIATE_EXIT, KVM_CAP_READONLY_MEM, KVM_CAP_SET_IDENTITY_MAP_ADDR})
    caps[cap] = 1;
  caps[KVM_CAP_MAX_VCPUS] = 1024;
  caps[abi::kCapUserMemory2] = 1;
  caps[abi::kCapGuestMemfd] = 1;
  caps[abi::kCapMemoryFaultInfo] = 1;
  caps[abi::kCapMemoryAttributes] = static_cast<int>(abi::kMemoryAttributePrivate);
  caps[abi::kCapExitHypercall] = 1 << abi::kHcMapGpaRange;
  caps[abi::kCapVmTypes] = (1 << 0) | (1 << abi::kX86SnpVm) | (1 << abi::kX86TdxVm);
  caps[KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2] =
      KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET;
}

KvmRecorder::~KvmRecorder() {
  for (const auto& [fd, info] : fds_) ::close(fd);
  for (const auto& [fd, run] : runs_) std::free(run);
}

int KvmRecorder::new_fd(FdRole role, std::uint32_t vcpu) {
  const int fd = ::memfd_create("kvm-recorder", MFD_CLOEXEC);
  if (fd >= 0) fds_[fd] = {role, vcpu};
  return fd;
}

void KvmRecorder::record(const FdInfo& info, std::string name, unsigned long request,
                         ByteView payload, std::uint64_t value, ByteView data) {
  calls_.push_back({info.role, info.vcpu, std::move(name), request,
                    Bytes(payload.begin(), payload.end()), value, Bytes(data.begin(), data.end())});
}

bool KvmRecorder::take_eagain() {
  return eagain_every > 0 && ++launch_commands_ % eagain_every == 0;
}

int KvmRecorder::open(const char* path) {
  const std::string p = path;
  if (p == "/dev/sev") {
    if (!has_sev_device) {
      errno = ENOENT;
      return -1;
    }
    const int fd = new_fd(FdRole::kSev);
    record(fds_.at(fd), "open /dev/sev", 0, {});
    return fd;
  }
  return new_fd(FdRole::kKvm);
}

int KvmRecorder::ioctl(int fd, unsigned long request, void* arg) {
  auto it = fds_.find(fd);
  if (it == fds_.end()) {
    errno = EBADF;
    return -1;
  }
  const FdInfo info = it->second;
  const auto value = reinterpret_cast<std::uintptr_t>(arg);
  switch (request) {
    case KVM_GET_API_VERSION:
      return KVM_API_VERSION;
    case KVM_GET_VCPU_MMAP_SIZE:
      return static_cast<int>(kRunSize);
    case KVM_CHECK_EXTENSION: {
      auto cap = caps.find(static_cast<int>(value));
      return cap == caps.end() ? 0 : cap->second;
    }
    case KVM_CREATE_VM:
      vm_type_ = value;
      record(info, "KVM_CREATE_VM", request, {}, value);
      return new_fd(FdRole::kVm);
    case KVM_SET_IDENTITY_MAP_ADDR:
      record(info, "KVM_SET_IDENTITY_MAP_ADDR", request, {});
      return 0;
    case KVM_SET_TSS_ADDR:
      record(info, "KVM_SET_TSS_ADDR", request, {}, value);
      return 0;
    case abi::kGetSupportedCpuid: {
      const auto entries = host_cpuid();
      abi::Cpuid2Header header;
      std::memcpy(&header, arg, sizeof header);
      if (header.nent < entries.size()) {
        errno = E2BIG;
        return -1;
      }
      header.nent = static_cast<std::uint32_t>(entries.size());
      std::memcpy(arg, &header, sizeof header);
      std::memcpy(static_cast<std::uint8_t*>(arg) + sizeof header, entries.data(),
                  entries.size() * sizeof(kvm_cpuid_entry2));
      return 0;
    }
    case KVM_CREATE_VCPU: {
      record(info, "KVM_CREATE_VCPU", request, {}, value);
      vcpu_state_[static_cast<std::uint32_t>(value)] = {};
      return new_fd(FdRole::kVcpu, static_cast<std::uint32_t>(value));
    }
    case abi::kSetCpuid2: {
      abi::Cpuid2Header header;
      std::memcpy(&header, arg, sizeof header);
      record(info, "KVM_SET_CPUID2", request,
             ByteView(static_cast<const std::uint8_t*>(arg),
                      sizeof header + header.nent * sizeof(kvm_cpuid_entry2)));
      return 0;
    }
    case abi::kCreateGuestMemfd:
      record(info, "KVM_CREATE_GUEST_MEMFD", request,
             bytes_of(static_cast<abi::CreateGuestMemfd*>(arg)));
      return new_fd(FdRole::kGuestMemfd);
    case KVM_SET_USER_MEMORY_REGION: {
      const auto* region = static_cast<kvm_userspace_memory_region*>(arg);
      record(info, "KVM_SET_USER_MEMORY_REGION", request, bytes_of(region));
      slots_[region->slot] = *region;
      return 0;
    }
    case KVM_GET_DIRTY_LOG: {
      auto* get = static_cast<kvm_dirty_log*>(arg);
      record(info, "KVM_GET_DIRTY_LOG", request, bytes_of(get));
      auto slot = slots_.find(get->slot);
      if (slot == slots_.end() || !(slot->second.flags & KVM_MEM_LOG_DIRTY_PAGES)) {
        errno = ENOENT;
        return -1;
      }
      // KVM copies ALIGN(pages, 64) / 8 bytes.
      const std::size_t words = (slot->second.memory_size / 4096 + 63) / 64;
      std::vector<std::uint64_t>& log = dirty_logs[get->slot];
      log.resize(words, 0);
      std::memcpy(get->dirty_bitmap, log.data(), words * 8);
      if (!manual_dirty_log_protect_) std::fill(log.begin(), log.end(), 0);
      return 0;
    }
    case KVM_CLEAR_DIRTY_LOG: {
      auto* clear = static_cast<kvm_clear_dirty_log*>(arg);
      const std::size_t words = (clear->num_pages + 63) / 64;
      const auto* bits = static_cast<const std::uint64_t*>(clear->dirty_bitmap);
      record(info, "KVM_CLEAR_DIRTY_LOG", request, bytes_of(clear), 0,
             ByteView(reinterpret_cast<const std::uint8_t*>(bits), words * 8));
      auto slot = slots_.find(clear->slot);
      if (!manual_dirty_log_protect_ || slot == slots_.end() ||
          !(slot->second.flags & KVM_MEM_LOG_DIRTY_PAGES) || clear->first_page % 64 != 0) {
        errno = EINVAL;
        return -1;
      }
      std::vector<std::uint64_t>& log = dirty_logs[clear->slot];
      log.resize(std::max(log.size(), words), 0);
      for (std::size_t w = 0; w < words; ++w) log[clear->first_page / 64 + w] &= ~bits[w];
      return 0;
    }
    case abi::kSetUserMemoryRegion2:
      record(info, "KVM_SET_USER_MEMORY_REGION2", request,
             bytes_of(static_cast<abi::UserspaceMemoryRegion2*>(arg)));
      return 0;
    case abi::kSetMemoryAttributes:
      record(info, "KVM_SET_MEMORY_ATTRIBUTES", request,
             bytes_of(static_cast<abi::MemoryAttributes*>(arg)));
      return 0;
    case KVM_ENABLE_CAP: {
      const auto* enable = static_cast<kvm_enable_cap*>(arg);
      record(info, "KVM_ENABLE_CAP", request, bytes_of(enable));
      if (enable->cap == KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)
        manual_dirty_log_protect_ = enable->args[0] & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
      return 0;
    }
    case KVM_HAS_DEVICE_ATTR:
      record(info, "KVM_HAS_DEVICE_ATTR", request, bytes_of(static_cast<kvm_device_attr*>(arg)));
      if (has_req_certs_attr) return 0;
      errno = ENXIO;
      return -1;
    case KVM_CREATE_IRQCHIP:
      record(info, "KVM_CREATE_IRQCHIP", request, {});
      return 0;
    case KVM_CREATE_PIT2:
      record(info, "KVM_CREATE_PIT2", request, {});
      return 0;
    case KVM_IRQ_LINE:
      record(info, "KVM_IRQ_LINE", request, bytes_of(static_cast<kvm_irq_level*>(arg)));
      return 0;
    case abi::kMemoryEncryptOp:
      if (vm_type_ == abi::kX86SnpVm) return sev_command(info, arg);
      if (vm_type_ == abi::kX86TdxVm) return tdx_command(info, arg);
      errno = ENOTTY;
      return -1;
    case KVM_SET_REGS:
    case KVM_GET_REGS:
    case KVM_SET_SREGS:
    case KVM_GET_SREGS:
    case KVM_SET_FPU:
    case KVM_GET_FPU:
    case KVM_SET_XCRS:
    case KVM_GET_XCRS:
    case KVM_SET_DEBUGREGS:
    case KVM_GET_DEBUGREGS: {
      VcpuState& state = vcpu_state_[info.vcpu];
      const std::size_t size = _IOC_SIZE(request);
      Bytes* slot = request == KVM_SET_REGS || request == KVM_GET_REGS     ? &state.regs
                    : request == KVM_SET_SREGS || request == KVM_GET_SREGS ? &state.sregs
                    : request == KVM_SET_FPU || request == KVM_GET_FPU     ? &state.fpu
                    : request == KVM_SET_XCRS || request == KVM_GET_XCRS   ? &state.xcrs
                                                                           : &state.debugregs;
      const bool set = _IOC_DIR(request) == _IOC_WRITE;
      if (set) {
        slot->assign(static_cast<const std::uint8_t*>(arg),
                     static_cast<const std::uint8_t*>(arg) + size);
        record(info,
               request == KVM_SET_REGS    ? "KVM_SET_REGS"
               : request == KVM_SET_SREGS ? "KVM_SET_SREGS"
               : request == KVM_SET_FPU   ? "KVM_SET_FPU"
               : request == KVM_SET_XCRS  ? "KVM_SET_XCRS"
                                          : "KVM_SET_DEBUGREGS",
               request, *slot);
      } else {
        slot->resize(size);
        std::memcpy(arg, slot->data(), size);
      }
      return 0;
    }
    case abi::kSetMsrs:
    case abi::kGetMsrs: {
      std::uint32_t n;
      std::memcpy(&n, arg, sizeof n);
      auto* entries = reinterpret_cast<kvm_msr_entry*>(static_cast<std::uint8_t*>(arg) + 8);
      VcpuState& state = vcpu_state_[info.vcpu];
      for (std::uint32_t i = 0; i < n; ++i) {
        if (request == abi::kSetMsrs)
          state.msrs[entries[i].index] = entries[i].data;
        else
          entries[i].data = state.msrs[entries[i].index];
      }
      if (request == abi::kSetMsrs)
        record(info, "KVM_SET_MSRS", request,
               ByteView(static_cast<const std::uint8_t*>(arg), 8 + n * sizeof(kvm_msr_entry)));
      return static_cast<int>(n);
    }
    case KVM_GET_MP_STATE:
    case KVM_SET_MP_STATE:
    case KVM_GET_LAPIC:
    case KVM_SET_LAPIC:
    case KVM_GET_VCPU_EVENTS:
    case KVM_SET_VCPU_EVENTS:
    case abi::kGetXsave:
    case abi::kSetXsave:
    case KVM_GET_IRQCHIP:
    case KVM_SET_IRQCHIP:
    case KVM_GET_PIT2:
    case KVM_SET_PIT2:
    case KVM_GET_CLOCK:
    case KVM_SET_CLOCK:
      return keep(info, request, arg);
    case KVM_RUN: {
      const std::size_t index = run_index_[info.vcpu]++;
      auto& scripts = run_scripts[info.vcpu];
      if (index < scripts.size()) return scripts[index](runs_.at(fd));
      errno = EINTR;
      return -1;
    }
    case KVM_GET_TSC_KHZ:
      return static_cast<int>(tsc_khz);
    case KVM_SET_TSC_KHZ:
      record(info, "KVM_SET_TSC_KHZ", request, {}, value);
      if (!tsc_scaling) {
        errno = EINVAL;
        return -1;
      }
      tsc_khz = static_cast<std::uint32_t>(value);
      return 0;
    default:
      record(info, "unknown ioctl", request, {});
      errno = ENOTTY;
      return -1;
  }
}

int KvmRecorder::keep(const FdInfo& info, unsigned long request, void* arg) {
  struct Pair {
    unsigned long get, set;
    const char* name;
  };
  static constexpr Pair kPairs[] = {
      {KVM_GET_MP_STATE, KVM_SET_MP_STATE, "KVM_SET_MP_STATE"},
      {KVM_GET_LAPIC, KVM_SET_LAPIC, "KVM_SET_LAPIC"},
      {abi::kGetXsave, abi::kSetXsave, "KVM_SET_XSAVE"},
      {KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, "KVM_SET_VCPU_EVENTS"},
      {KVM_GET_IRQCHIP, KVM_SET_IRQCHIP, "KVM_SET_IRQCHIP"},
      {KVM_GET_PIT2, KVM_SET_PIT2, "KVM_SET_PIT2"},
      {KVM_GET_CLOCK, KVM_SET_CLOCK, "KVM_SET_CLOCK"}};
  const Pair* pair = nullptr;
  for (const Pair& p : kPairs)
    if (request == p.get || request == p.set) pair = &p;
  const std::size_t size = _IOC_SIZE(request);
  std::string key = info.role == FdRole::kVcpu ? "vcpu " + std::to_string(info.vcpu) + " " : "vm ";
  key += pair->name;
  if (request == KVM_GET_IRQCHIP || request == KVM_SET_IRQCHIP)
    key += " " + std::to_string(static_cast<kvm_irqchip*>(arg)->chip_id);
  auto* bytes = static_cast<std::uint8_t*>(arg);
  if (request == pair->set) {
    kept[key].assign(bytes, bytes + size);
    record(info, pair->name, request, ByteView(bytes, size));
  } else {
    Bytes& stored = kept[key];
    if (stored.empty()) {
      stored.assign(size, 0);
      if (request == KVM_GET_IRQCHIP) std::memcpy(stored.data(), bytes, 4);  // the chip id asked
    }
    std::memcpy(bytes, stored.data(), size);
  }
  return 0;
}

int KvmRecorder::sev_command(const FdInfo& info, void* arg) {
  auto* cmd = static_cast<abi::SevCmd*>(arg);
  const std::string name = sev_name(cmd->id);
  auto sev = fds_.find(static_cast<int>(cmd->sev_fd));
  if (info.role != FdRole::kVm || sev == fds_.end() || sev->second.role != FdRole::kSev) {
    record(info, name + " (bad fd)", abi::kMemoryEncryptOp, bytes_of(cmd));
    errno = EBADF;
    return -1;
  }
  switch (static_cast<abi::SevCommand>(cmd->id)) {
    case abi::SevCommand::kInit2:
      record(info, name, abi::kMemoryEncryptOp,
             bytes_of(reinterpret_cast<abi::SevInit*>(cmd->data)));
      return 0;
    case abi::SevCommand::kSnpLaunchStart:
      record(info, name, abi::kMemoryEncryptOp,
             bytes_of(reinterpret_cast<abi::SnpLaunchStart*>(cmd->data)));
      return 0;
    case abi::SevCommand::kSnpLaunchUpdate: {
      auto* update = reinterpret_cast<abi::SnpLaunchUpdate*>(cmd->data);
      if (take_eagain()) {
        errno = EAGAIN;
        return -1;
      }
      auto* pages = reinterpret_cast<std::uint8_t*>(update->uaddr);
      if (update->type == 6 && reject_first_cpuid_page && !cpuid_rejected_) {
        cpuid_rejected_ = true;
        record(info, name + " (rejected)", abi::kMemoryEncryptOp, bytes_of(update), 0,
               ByteView(pages, update->len));
        // The firmware writes the value it expects: here the first entry's EAX output (SNP CPUID
        // page: count at 0, 48-byte entries from offset 16, EAX output at entry offset 24).
        pages[16 + 24] ^= 0x01;
        cmd->error = abi::kSevRetInvalidParam;
        errno = EIO;
        return -1;
      }
      const std::uint64_t consumed =
          std::min<std::uint64_t>(update->len / kPage, update_pages_per_call) * kPage;
      record(info, name, abi::kMemoryEncryptOp, bytes_of(update), 0, ByteView(pages, consumed));
      update->gfn_start += consumed / kPage;
      update->uaddr += consumed;
      update->len -= consumed;
      return 0;
    }
    case abi::SevCommand::kSnpLaunchFinish: {
      auto* finish = reinterpret_cast<abi::SnpLaunchFinish*>(cmd->data);
      Bytes ids;
      if (finish->id_block_en) {
        auto* block = reinterpret_cast<const std::uint8_t*>(finish->id_block_uaddr);
        auto* auth = reinterpret_cast<const std::uint8_t*>(finish->id_auth_uaddr);
        ids.assign(block, block + abi::kSnpIdBlockSize);
        ids.insert(ids.end(), auth, auth + abi::kSnpIdAuthSize);
      }
      record(info, name, abi::kMemoryEncryptOp, bytes_of(finish), 0, ids);
      return 0;
    }
    case abi::SevCommand::kSnpEnableReqCerts:
      record(info, name, abi::kMemoryEncryptOp, {});
      return 0;
  }
  record(info, name, abi::kMemoryEncryptOp, bytes_of(cmd));
  errno = EINVAL;
  return -1;
}

int KvmRecorder::tdx_command(const FdInfo& info, void* arg) {
  auto* cmd = static_cast<abi::TdxCmd*>(arg);
  switch (static_cast<abi::TdxCommand>(cmd->id)) {
    case abi::TdxCommand::kCapabilities: {
      auto* caps_header = reinterpret_cast<abi::TdxCapabilitiesHeader*>(cmd->data);
      auto* table = reinterpret_cast<std::uint8_t*>(cmd->data) + sizeof(abi::TdxCapabilitiesHeader);
      abi::Cpuid2Header header;
      std::memcpy(&header, table, sizeof header);
      // Configurable CPUID bits: leaf 1 ECX/EDX and leaf 7 EBX (a subset of a real module's).
      kvm_cpuid_entry2 configurable[2]{};
      configurable[0].function = 1;
      configurable[0].ecx = 0x7ef8320b;
      configurable[0].edx = 0x178bfbff;
      configurable[1].function = 7;
      configurable[1].ebx = 0xf1bf07ab;
      record(info, "KVM_TDX_CAPABILITIES", abi::kMemoryEncryptOp, {});
      if (header.nent < 2) {
        errno = E2BIG;
        return -1;
      }
      *caps_header = {};
      caps_header->supported_attrs = tdx_supported_attributes;
      caps_header->supported_xfam = tdx_supported_xfam;
      caps_header->kernel_tdvmcallinfo_1_r11 = 1;  // GetQuote
      header.nent = 2;
      std::memcpy(table, &header, sizeof header);
      std::memcpy(table + sizeof header, configurable, sizeof configurable);
      return 0;
    }
    case abi::TdxCommand::kInitVm: {
      if (take_eagain()) {
        errno = EAGAIN;
        return -1;
      }
      auto* base = reinterpret_cast<const std::uint8_t*>(cmd->data);
      abi::Cpuid2Header header;
      std::memcpy(&header, base + sizeof(abi::TdxInitVmHeader), sizeof header);
      record(info, "KVM_TDX_INIT_VM", abi::kMemoryEncryptOp,
             ByteView(base, sizeof(abi::TdxInitVmHeader) + sizeof header +
                                header.nent * sizeof(kvm_cpuid_entry2)));
      return 0;
    }
    case abi::TdxCommand::kInitVcpu:
      record(info, "KVM_TDX_INIT_VCPU", abi::kMemoryEncryptOp, {}, cmd->data);
      return 0;
    case abi::TdxCommand::kInitMemRegion: {
      if (take_eagain()) {
        errno = EAGAIN;
        return -1;
      }
      auto* region = reinterpret_cast<abi::TdxInitMemRegion*>(cmd->data);
      const std::uint64_t pages = std::min<std::uint64_t>(region->nr_pages, update_pages_per_call);
      record(info, "KVM_TDX_INIT_MEM_REGION", abi::kMemoryEncryptOp, bytes_of(region), cmd->flags,
             ByteView(reinterpret_cast<const std::uint8_t*>(region->source_addr), pages * kPage));
      region->source_addr += pages * kPage;
      region->gpa += pages * kPage;
      region->nr_pages -= pages;
      return 0;
    }
    case abi::TdxCommand::kFinalizeVm:
      if (take_eagain()) {
        errno = EBUSY;
        return -1;
      }
      record(info, "KVM_TDX_FINALIZE_VM", abi::kMemoryEncryptOp, {});
      return 0;
    case abi::TdxCommand::kGetCpuid:
      break;
  }
  record(info, "KVM_TDX_" + std::to_string(cmd->id), abi::kMemoryEncryptOp, {});
  errno = EINVAL;
  return -1;
}

void* KvmRecorder::map_run(int vcpu_fd, std::size_t size) {
  void* run = std::aligned_alloc(4096, size);
  std::memset(run, 0, size);
  runs_[vcpu_fd] = run;
  return run;
}

void KvmRecorder::unmap_run(void* run, std::size_t) {
  for (auto it = runs_.begin(); it != runs_.end(); ++it) {
    if (it->second == run) {
      std::free(run);
      runs_.erase(it);
      return;
    }
  }
}

int KvmRecorder::punch_hole(int fd, std::uint64_t offset, std::uint64_t size) {
  std::uint64_t args[2] = {offset, size};
  record(fds_.at(fd), "fallocate(PUNCH_HOLE)", 0,
         ByteView(reinterpret_cast<const std::uint8_t*>(args), sizeof args));
  return 0;
}

int KvmRecorder::discard(void* address, std::size_t size) {
  std::uint64_t args[2] = {reinterpret_cast<std::uint64_t>(address), size};
  record({FdRole::kVm, 0}, "madvise(MADV_REMOVE)", 0,
         ByteView(reinterpret_cast<const std::uint8_t*>(args), sizeof args));
  return 0;
}

std::vector<std::string> KvmRecorder::names(bool collapse) const {
  std::vector<std::string> out;
  for (const RecordedCall& c : calls_)
    if (!collapse || out.empty() || out.back() != c.name) out.push_back(c.name);
  return out;
}

std::vector<RecordedCall> KvmRecorder::named(const std::string& name) const {
  std::vector<RecordedCall> out;
  for (const RecordedCall& c : calls_)
    if (c.name == name) out.push_back(c);
  return out;
}

}  // namespace cloister::testing
