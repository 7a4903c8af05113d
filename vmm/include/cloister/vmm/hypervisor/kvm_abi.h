// KVM uAPI definitions newer than the build host's <linux/kvm.h> (Debian 12 ships Linux 6.1
// headers; guest_memfd and KVM_SET_USER_MEMORY_REGION2 arrived in 6.8). Layouts and numbers
// follow Linux 7.0 include/uapi/linux/kvm.h (see ../shared/research/vmm.md §a.2, §a.9) and are
// pinned by static_asserts so a wrong edit fails the build instead of corrupting an ioctl.
#pragma once

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>

namespace cloister::vmm::kvm_abi {

// Capabilities (include/uapi/linux/kvm.h:946-989 in 7.0).
inline constexpr int kCapExitHypercall = 201;
inline constexpr int kCapUserMemory2 = 231;
inline constexpr int kCapMemoryFaultInfo = 232;
inline constexpr int kCapMemoryAttributes = 233;
inline constexpr int kCapGuestMemfd = 234;
inline constexpr int kCapVmTypes = 235;

// KVM_CREATE_VM machine types (arch/x86/include/uapi/asm/kvm.h:968-973).
inline constexpr unsigned long kX86DefaultVm = 0;
inline constexpr unsigned long kX86SnpVm = 4;
inline constexpr unsigned long kX86TdxVm = 5;

// struct kvm_userspace_memory_region2 (kvm.h:38-49).
struct UserspaceMemoryRegion2 {
  std::uint32_t slot;
  std::uint32_t flags;
  std::uint64_t guest_phys_addr;
  std::uint64_t memory_size;
  std::uint64_t userspace_addr;
  std::uint64_t guest_memfd_offset;
  std::uint32_t guest_memfd;
  std::uint32_t pad1;
  std::uint64_t pad2[14];
};
static_assert(sizeof(UserspaceMemoryRegion2) == 160);
static_assert(offsetof(UserspaceMemoryRegion2, userspace_addr) == 24);
static_assert(offsetof(UserspaceMemoryRegion2, guest_memfd_offset) == 32);
static_assert(offsetof(UserspaceMemoryRegion2, guest_memfd) == 40);

inline constexpr std::uint32_t kMemGuestMemfd = 1u << 2;  // KVM_MEM_GUEST_MEMFD (kvm.h:58)

// struct kvm_create_guest_memfd (kvm.h:1647-1651).
struct CreateGuestMemfd {
  std::uint64_t size;
  std::uint64_t flags;
  std::uint64_t reserved[6];
};
static_assert(sizeof(CreateGuestMemfd) == 64);

// struct kvm_cpuid2 without its flexible array. In C++ <linux/kvm.h>'s `entries[0]` member
// makes sizeof(kvm_cpuid2) 12 instead of the C ABI's 8, which silently changes the size field
// of KVM_GET_SUPPORTED_CPUID / KVM_SET_CPUID2 and makes the kernel reject them (EINVAL), so
// both requests are spelled out over this header instead.
struct Cpuid2Header {
  std::uint32_t nent;
  std::uint32_t padding;
};
static_assert(sizeof(Cpuid2Header) == 8);
static_assert(sizeof(kvm_cpuid_entry2) == 40);
inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, Cpuid2Header);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, Cpuid2Header);
static_assert(kGetSupportedCpuid == 0xc008ae05);
static_assert(kSetCpuid2 == 0x4008ae90);

// struct kvm_msrs without its flexible array, for the same reason: C++ makes sizeof(kvm_msrs)
// 16, and KVM rejected KVM_GET_MSRS (EINVAL) for every snapshot and migration on real KVM.
struct MsrsHeader {
  std::uint32_t nmsrs;
  std::uint32_t pad;
};
static_assert(sizeof(MsrsHeader) == 8);
static_assert(sizeof(kvm_msr_entry) == 16);
inline constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);
static_assert(kGetMsrs == 0xc008ae88);
static_assert(kSetMsrs == 0x4008ae89);

// struct kvm_xsave's 4 KiB region without the flexible `extra` array (KVM_GET_XSAVE2's), which
// C++ sizes at 4 more bytes: KVM_GET_XSAVE and KVM_SET_XSAVE were rejected the same way.
struct Xsave {
  std::uint32_t region[1024];
};
static_assert(sizeof(Xsave) == 4096);
inline constexpr unsigned long kGetXsave = _IOR(KVMIO, 0xa4, Xsave);
inline constexpr unsigned long kSetXsave = _IOW(KVMIO, 0xa5, Xsave);
static_assert(kGetXsave == 0x9000aea4);
static_assert(kSetXsave == 0x5000aea5);

// ioctl numbers, spelled out with the kernel's _IOW/_IOWR macros over the mirrored structs.
inline constexpr unsigned long kSetUserMemoryRegion2 = _IOW(KVMIO, 0x49, UserspaceMemoryRegion2);
inline constexpr unsigned long kCreateGuestMemfd = _IOWR(KVMIO, 0xd4, CreateGuestMemfd);
static_assert(kSetUserMemoryRegion2 == 0x40a0ae49);
static_assert(kCreateGuestMemfd == 0xc040aed4);

// ---- private memory: attributes and conversions (research/vmm.md §a.2, §a.3) ----

// struct kvm_memory_attributes (kvm.h:1634-1639).
struct MemoryAttributes {
  std::uint64_t address;
  std::uint64_t size;
  std::uint64_t attributes;
  std::uint64_t flags;
};
static_assert(sizeof(MemoryAttributes) == 32);
inline constexpr std::uint64_t kMemoryAttributePrivate = 1ull << 3;  // kvm.h:1641
inline constexpr unsigned long kSetMemoryAttributes = _IOW(KVMIO, 0xd2, MemoryAttributes);
static_assert(kSetMemoryAttributes == 0x4020aed2);

// KVM_HC_MAP_GPA_RANGE (include/uapi/linux/kvm_para.h:32) and its attribute bits
// (arch/x86/include/uapi/asm/kvm_para.h:100-106): args[0] GPA, args[1] 4 KiB pages,
// args[2] page size in bits 3:0 and "encrypted" (private) in bit 4.
inline constexpr std::uint64_t kHcMapGpaRange = 12;
inline constexpr std::uint64_t kMapGpaRangeEncrypted = 1ull << 4;

// Exits newer than 6.1 (kvm.h:192-199) and their kvm_run members, which sit in the exit union
// at offset 32 of struct kvm_run (kvm.h:458-499).
inline constexpr std::uint32_t kExitMemoryFault = 39;
inline constexpr std::uint32_t kExitTdx = 40;
inline constexpr std::uint32_t kExitSnpReqCerts = 43;
inline constexpr std::size_t kRunExitUnionOffset = 32;
static_assert(offsetof(kvm_run, io) == kRunExitUnionOffset);

struct RunMemoryFault {
  std::uint64_t flags;  // kMemoryExitFlagPrivate: the access wanted private memory
  std::uint64_t gpa;
  std::uint64_t size;
};
inline constexpr std::uint64_t kMemoryExitFlagPrivate = 1ull << 3;

// run->tdx: flags, nr (the TDVMCALL sub-function from R11), then a union per sub-function.
struct RunTdx {
  std::uint64_t flags;
  std::uint64_t nr;
  std::uint64_t ret;  // every union member starts with its return code
  std::uint64_t args[5];
};
static_assert(sizeof(RunTdx) == 64);

struct RunSnpReqCerts {
  std::uint64_t gpa;
  std::uint64_t npages;
  std::uint64_t ret;
};

inline constexpr std::uint32_t kSystemEventSevTerm = 6;   // KVM_SYSTEM_EVENT_SEV_TERM
inline constexpr std::uint32_t kSystemEventTdxFatal = 7;  // KVM_SYSTEM_EVENT_TDX_FATAL

// ---- SEV-SNP (research/vmm.md §a.4; arch/x86/include/uapi/asm/kvm.h:709-918) ----

inline constexpr unsigned long kMemoryEncryptOp = _IOWR(KVMIO, 0xba, unsigned long);
static_assert(kMemoryEncryptOp == 0xc008aeba);

enum class SevCommand : std::uint32_t {
  kInit2 = 22,
  kSnpLaunchStart = 100,
  kSnpLaunchUpdate = 101,
  kSnpLaunchFinish = 102,
  kSnpEnableReqCerts = 103,
};

// struct kvm_sev_cmd: `error` receives the PSP firmware status; `sev_fd` is an open /dev/sev.
struct SevCmd {
  std::uint32_t id;
  std::uint32_t pad0;
  std::uint64_t data;
  std::uint32_t error;
  std::uint32_t sev_fd;
};
static_assert(sizeof(SevCmd) == 24);

struct SevInit {
  std::uint64_t vmsa_features;
  std::uint32_t flags;
  std::uint16_t ghcb_version;
  std::uint16_t pad1;
  std::uint32_t pad2[8];
};
static_assert(sizeof(SevInit) == 48);

struct SnpLaunchStart {
  std::uint64_t policy;
  std::uint8_t gosvw[16];
  std::uint16_t flags;
  std::uint8_t pad0[6];
  std::uint64_t pad1[4];
};
static_assert(sizeof(SnpLaunchStart) == 64);

struct SnpLaunchUpdate {
  std::uint64_t gfn_start;
  std::uint64_t uaddr;
  std::uint64_t len;
  std::uint8_t type;
  std::uint8_t pad0;
  std::uint16_t flags;
  std::uint32_t pad1;
  std::uint64_t pad2[4];
};
static_assert(sizeof(SnpLaunchUpdate) == 64);
static_assert(offsetof(SnpLaunchUpdate, type) == 24);

struct SnpLaunchFinish {
  std::uint64_t id_block_uaddr;
  std::uint64_t id_auth_uaddr;
  std::uint8_t id_block_en;
  std::uint8_t auth_key_en;
  std::uint8_t vcek_disabled;
  std::uint8_t host_data[32];
  std::uint8_t pad0[3];
  std::uint16_t flags;
  std::uint64_t pad1[4];
};
static_assert(sizeof(SnpLaunchFinish) == 88);
static_assert(offsetof(SnpLaunchFinish, host_data) == 19);
static_assert(offsetof(SnpLaunchFinish, flags) == 54);

inline constexpr std::size_t kSnpIdBlockSize = 96;
inline constexpr std::size_t kSnpIdAuthSize = 4096;

// SEV device attributes on the /dev/kvm fd (asm/kvm.h:503-507): KVM_X86_GRP_SEV.
inline constexpr std::uint32_t kX86GrpSev = 1;
inline constexpr std::uint64_t kX86SevVmsaFeatures = 0;
inline constexpr std::uint64_t kX86SevSnpReqCerts = 2;

// PSP firmware status codes the launch path interprets (include/uapi/linux/psp-sev.h).
inline constexpr std::uint32_t kSevRetInvalidParam = 0x16;

// ---- TDX (research/vmm.md §a.7; arch/x86/include/uapi/asm/kvm.h:975-1049) ----

enum class TdxCommand : std::uint32_t {
  kCapabilities = 0,
  kInitVm = 1,
  kInitVcpu = 2,
  kInitMemRegion = 3,
  kFinalizeVm = 4,
  kGetCpuid = 5,
};

// struct kvm_tdx_cmd: `hw_error` receives the SEAMCALL status.
struct TdxCmd {
  std::uint32_t id;
  std::uint32_t flags;
  std::uint64_t data;
  std::uint64_t hw_error;
};
static_assert(sizeof(TdxCmd) == 24);

// struct kvm_tdx_capabilities without its trailing struct kvm_cpuid2.
struct TdxCapabilitiesHeader {
  std::uint64_t supported_attrs;
  std::uint64_t supported_xfam;
  std::uint64_t kernel_tdvmcallinfo_1_r11;
  std::uint64_t user_tdvmcallinfo_1_r11;
  std::uint64_t kernel_tdvmcallinfo_1_r12;
  std::uint64_t user_tdvmcallinfo_1_r12;
  std::uint64_t reserved[250];
};
static_assert(sizeof(TdxCapabilitiesHeader) == 2048);

// struct kvm_tdx_init_vm without its trailing struct kvm_cpuid2.
struct TdxInitVmHeader {
  std::uint64_t attributes;
  std::uint64_t xfam;
  std::uint64_t mrconfigid[6];
  std::uint64_t mrowner[6];
  std::uint64_t mrownerconfig[6];
  std::uint64_t reserved[12];
};
static_assert(sizeof(TdxInitVmHeader) == 256);

struct TdxInitMemRegion {
  std::uint64_t source_addr;
  std::uint64_t gpa;
  std::uint64_t nr_pages;
};
static_assert(sizeof(TdxInitMemRegion) == 24);
inline constexpr std::uint32_t kTdxMeasureMemoryRegion = 1u << 0;

// TDG.VP.VMCALL sub-functions that exit to userspace (arch/x86/include/asm/shared/tdx.h:71-84)
// and TDVMCALL status codes.
inline constexpr std::uint64_t kTdvmcallGetTdVmCallInfo = 0x10000;
inline constexpr std::uint64_t kTdvmcallGetQuote = 0x10002;
inline constexpr std::uint64_t kTdvmcallSetupEventNotifyInterrupt = 0x10004;
inline constexpr std::uint64_t kTdvmcallStatusSuccess = 0;
inline constexpr std::uint64_t kTdvmcallStatusInvalidOperand = 0x8000000000000000ull;
inline constexpr std::uint64_t kTdvmcallStatusSubfuncUnsupported = 0x8000000000000003ull;

}  // namespace cloister::vmm::kvm_abi
