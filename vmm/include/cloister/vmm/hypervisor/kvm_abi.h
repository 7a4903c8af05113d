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
inline constexpr int kCapUserMemory2 = 231;
inline constexpr int kCapGuestMemfd = 234;
inline constexpr int kCapVmTypes = 235;

// KVM_CREATE_VM machine types (arch/x86/include/uapi/asm/kvm.h:968-973).
inline constexpr unsigned long kX86DefaultVm = 0;
inline constexpr unsigned long kX86SnpVm = 4;

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

// ioctl numbers, spelled out with the kernel's _IOW/_IOWR macros over the mirrored structs.
inline constexpr unsigned long kSetUserMemoryRegion2 = _IOW(KVMIO, 0x49, UserspaceMemoryRegion2);
inline constexpr unsigned long kCreateGuestMemfd = _IOWR(KVMIO, 0xd4, CreateGuestMemfd);
static_assert(kSetUserMemoryRegion2 == 0x40a0ae49);
static_assert(kCreateGuestMemfd == 0xc040aed4);

}  // namespace cloister::vmm::kvm_abi
