// Executing LaunchPlan operations: what every TEE backend (hardware and simulated) does the
// same way. Private to vmm/src/tee.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "cloister/common/result.h"
#include "cloister/firmware_loader/launch_plan.h"
#include "cloister/vmm/hypervisor/hypervisor.h"
#include "cloister/vmm/memory/guest_memory.h"

namespace cloister::vmm::tee {

// Page-aligned bytes: the source of one SNP_LAUNCH_UPDATE or TDX_INIT_MEM_REGION, which KVM
// requires to be page-aligned.
class PageBuffer {
 public:
  explicit PageBuffer(std::size_t size);
  std::span<std::uint8_t> bytes() { return {data_.get(), size_}; }
  ByteView view() const { return {data_.get(), size_}; }

 private:
  struct Free {
    void operator()(std::uint8_t* p) const;
  };
  std::unique_ptr<std::uint8_t, Free> data_;
  std::size_t size_;
};

// An op's initial contents: its data then zeros up to its size.
PageBuffer op_contents(const fw::LaunchOp& op);

// The SEV-SNP CPUID page (Linux struct snp_cpuid_table: count, then up to 64 entries of
// {eax_in, ecx_in, xcr0_in, xss_in, eax, ebx, ecx, edx}) holding `cpuid`, with XCR0 = x87 for
// the XSAVE leaves 0xD.0 and 0xD.1 as QEMU fills it. Fails when the table needs more than 64.
Status fill_snp_cpuid_page(std::span<std::uint8_t> page,
                           const std::vector<std::array<std::uint32_t, 6>>& cpuid);

// Writes the IGVM parameters the plan asks for into parameter area `area`'s bytes: VP_COUNT
// (u32) and MEMORY_MAP (IGVM_VHS_MEMORY_MAP_ENTRY per guest RAM range). Fails naming any other
// parameter kind, which this VMM does not provide.
Status fill_parameter_area(const fw::LaunchPlan& plan, std::uint32_t area,
                           std::span<std::uint8_t> bytes, std::uint32_t vcpus,
                           const GuestMemory& memory);

// The bytes one op loads: its contents, with the CPUID table or the IGVM parameters written
// into them where the op asks the VMM for those.
Result<PageBuffer> op_pages(const fw::LaunchPlan& plan, const fw::LaunchOp& op, const Vm& vm,
                            std::uint32_t vcpus, const GuestMemory& memory);

// Sets every vCPU's initial state from the plan's VMSA ops (SEV-SNP plans). Fails when the
// plan has VMSAs for another number of vCPUs than the VM.
Status apply_vmsas(const fw::LaunchPlan& plan, std::span<Vcpu* const> vcpus);

}  // namespace cloister::vmm::tee
