// Building TDX LaunchPlans from TDVF (OVMF) images (research/tdx.md §c) and the TD HOB they
// hand to TDVF.
//
// Each TDVF section becomes one op in metadata order, as QEMU's tdx_finalize_vm issues one
// KVM_TDX_INIT_MEM_REGION per section: BFV and CFV as kNormal with the section's bytes from
// the image (zero-padded to MemoryDataSize), TD_HOB as kTdHob holding the TD HOB below,
// TempMem as kZero; tdx_extend is the section's MR.EXTEND attribute. Sections with PAGE.AUG
// are not added at launch (the guest accepts them later) and produce no op; a PermMem section
// must have it (OvmfImage::tdx_metadata refuses one without).
//
// The TD HOB is the PI-spec HOB list TDVF takes its memory map from (UEFI PI spec vol. 3
// ch. 5; QEMU hw/i386/tdvf-hob.c writes the same list). All fields little-endian; each HOB
// starts with {u16 HobType, u16 HobLength, u32 Reserved = 0}:
//   PHIT (EFI_HOB_HANDOFF_INFO_TABLE, type 0x0001, 56 bytes): Version 9 at 8, BootMode 0 at 12,
//     EfiMemoryTop/Bottom and EfiFreeMemoryTop/Bottom 0 at 16..47 (TDVF ignores them),
//     EfiEndOfHobList at 48 = the GPA just past the end-of-list HOB;
//   one EFI_HOB_RESOURCE_DESCRIPTOR (type 0x0003, 48 bytes) per piece of guest RAM in
//     ascending order: Owner (zero GUID) at 8, ResourceType at 24, ResourceAttribute at 28
//     (PRESENT | INITIALIZED | TESTED = 0x7), PhysicalStart at 32, ResourceLength at 40. The
//     RAM is ram_ranges(ram_bytes) (machine.h); the TD_HOB and TempMem sections the
//     plan PAGE.ADDs are already accepted and are SYSTEM_MEMORY (0), the rest of RAM is
//     MEMORY_UNACCEPTED (7), which QEMU marks the same way (target/i386/kvm/tdx.c
//     tdx_accept_ram_range);
//   a GUID extension HOB (type 0x0004, 32 bytes) named kCloisterVcpuCountHobGuid at 8, with
//     {u32 vCPU count, u32 0} at 24. TDVF keeps GUID HOBs it does not know and ignores them;
//     it is there so that a firmware whose TD_HOB section carries MR.EXTEND binds the vCPU
//     count into MRTD;
//   end of list (type 0xffff, 8 bytes).
// The kTdHob op carries these bytes, so `measure` folds exactly what the VMM writes: only the
// GPA (PAGE.ADD) unless the section has MR.EXTEND, as in Debian's and upstream edk2's TDVF,
// whose MRTD therefore does not depend on memory size or vCPU count.
#pragma once

#include <cstdint>

#include "cloister/common/result.h"
#include "cloister/firmware_loader/guid.h"
#include "cloister/firmware_loader/launch_plan.h"
#include "cloister/firmware_loader/machine.h"
#include "cloister/firmware_loader/ovmf.h"

namespace cloister::fw {

// Names the Cloister TD HOB entry that carries the vCPU count.
inline constexpr Guid kCloisterVcpuCountHobGuid =
    Guid::literal("655015f6-543e-49c2-a692-de107dba45c1");

struct TdxLaunchOptions {
  TdxPageOrder page_order = TdxPageOrder::kSinglePass;
  std::uint64_t ram_bytes = kDefaultGuestMemory;  // guest RAM, a non-zero multiple of 4 KiB
  std::uint32_t vcpus = 1;                        // announced in the TD HOB; >= 1
};

// Fails when the image has no (or malformed) TDX metadata, naming the fix; on Payload /
// PayloadParam sections, whose contents a TD-shim launcher supplies (not supported); on an
// image without exactly one TD_HOB section; on zero vCPUs; on RAM that is not a non-zero
// multiple of 4 KiB up to kMaxGuestMemory; when a TD_HOB, TempMem or PermMem section is not
// inside guest RAM; and when the TD HOB does not fit its section.
Result<LaunchPlan> build_tdx_plan(const OvmfImage& firmware, const TdxLaunchOptions& options = {});

}  // namespace cloister::fw
