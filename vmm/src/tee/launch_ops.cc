#include "launch_ops.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <new>

#include "cloister/common/bytes.h"
#include "cloister/firmware_loader/vmsa.h"
#include "cloister/vmm/arch/x86/vmsa_state.h"

namespace cloister::vmm::tee {
namespace {

constexpr std::size_t kCpuidPageEntries = 64;  // Linux SNP_CPUID_COUNT_MAX
constexpr std::size_t kCpuidPageHeader = 16;
constexpr std::size_t kCpuidPageEntry = 48;
constexpr std::size_t kMemoryMapEntry = 24;  // IGVM_VHS_MEMORY_MAP_ENTRY

void put_u32(std::span<std::uint8_t> out, std::size_t offset, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out[offset + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

void put_u64(std::span<std::uint8_t> out, std::size_t offset, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out[offset + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

// Leaves whose output depends on ECX (SDM vol. 2A CPUID), matched by index in the table.
bool index_matters(std::uint32_t function) {
  return function == 4 || function == 7 || function == 0xb || function == 0xd || function == 0xf ||
         function == 0x10 || function == 0x12 || function == 0x14 || function == 0x1f ||
         function == 0x8000001d || function == 0x80000020;
}

// RAM as the builders name its regions; the firmware and an IGVM file's pages outside RAM
// ("firmware", "launch-…") back launch contents, not memory the guest may use.
bool is_guest_ram(const GuestRegion& region) {
  return region.name == "ram-low" || region.name == "ram-high";
}

}  // namespace

PageBuffer::PageBuffer(std::size_t size)
    : data_(static_cast<std::uint8_t*>(std::aligned_alloc(fw::kPageSize, size))), size_(size) {
  if (!data_) throw std::bad_alloc();
  std::memset(data_.get(), 0, size_);
}

void PageBuffer::Free::operator()(std::uint8_t* p) const {
  std::free(p);
}

PageBuffer op_contents(const fw::LaunchOp& op) {
  PageBuffer buffer(op.size);
  std::copy(op.data.begin(), op.data.end(), buffer.bytes().begin());
  return buffer;
}

Status fill_snp_cpuid_page(std::span<std::uint8_t> page,
                           const std::vector<std::array<std::uint32_t, 6>>& all) {
  // An entry whose four registers are zero is left out: a guest reads a leaf the table lacks
  // as zeros (Linux's snp_cpuid(), as hypervisors that skip zero leaves expect), and KVM lists
  // every leaf up to its maxima, 75 on a Zen host, where the page holds 64.
  std::vector<std::array<std::uint32_t, 6>> cpuid;
  std::copy_if(all.begin(), all.end(), std::back_inserter(cpuid), [](const auto& entry) {
    return entry[2] != 0 || entry[3] != 0 || entry[4] != 0 || entry[5] != 0;
  });
  if (cpuid.size() > kCpuidPageEntries)
    return Error("SNP CPUID page: the VM's CPUID has " + std::to_string(cpuid.size()) +
                 " entries that are not all zeros, the page holds at most " +
                 std::to_string(kCpuidPageEntries));
  std::fill(page.begin(), page.end(), 0);
  put_u32(page, 0, static_cast<std::uint32_t>(cpuid.size()));
  for (std::size_t i = 0; i < cpuid.size(); ++i) {
    const auto& [function, index, eax, ebx, ecx, edx] = cpuid[i];
    const std::size_t at = kCpuidPageHeader + i * kCpuidPageEntry;
    put_u32(page, at + 0, function);
    put_u32(page, at + 4, index_matters(function) ? index : 0);
    const bool xsave = function == 0xd && (index == 0 || index == 1);
    put_u64(page, at + 8, xsave ? 1 : 0);  // xcr0_in; xss_in stays 0
    put_u32(page, at + 24, eax);
    put_u32(page, at + 28, ebx);
    put_u32(page, at + 32, ecx);
    put_u32(page, at + 36, edx);
  }
  return {};
}

Status fill_parameter_area(const fw::LaunchPlan& plan, std::uint32_t area,
                           std::span<std::uint8_t> bytes, std::uint32_t vcpus,
                           const GuestMemory& memory) {
  for (const fw::Parameter& p : plan.parameters()) {
    if (p.area != area) continue;
    const std::string what = "IGVM parameter " + std::string(fw::to_string(p.kind)) +
                             " in parameter area " + std::to_string(area);
    if (p.byte_offset > bytes.size())
      return Error(what + ": expected a byte offset within the area's " +
                   std::to_string(bytes.size()) + " bytes, found " + std::to_string(p.byte_offset));
    switch (p.kind) {
      case fw::IgvmParameterKind::kVpCount:
        if (bytes.size() - p.byte_offset < 4)
          return Error(what + ": expected room for a u32 at byte offset " +
                       std::to_string(p.byte_offset) + ", found an area of " +
                       std::to_string(bytes.size()) + " bytes");
        put_u32(bytes, p.byte_offset, vcpus);
        break;
      case fw::IgvmParameterKind::kMemoryMap: {
        const auto ram = [](const GuestRegion& r) {
          return !r.read_only_to_guest && is_guest_ram(r);
        };
        const auto ranges = static_cast<std::size_t>(
            std::count_if(memory.regions().begin(), memory.regions().end(), ram));
        if ((bytes.size() - p.byte_offset) / kMemoryMapEntry < ranges)
          return Error(what + ": the guest's " + std::to_string(ranges) + " RAM ranges need " +
                       std::to_string(ranges * kMemoryMapEntry) + " bytes from byte offset " +
                       std::to_string(p.byte_offset) + ", found an area of " +
                       std::to_string(bytes.size()) + " bytes");
        std::size_t at = p.byte_offset;
        for (const GuestRegion& region : memory.regions()) {
          if (!ram(region)) continue;
          put_u64(bytes, at, region.guest_phys_addr / fw::kPageSize);
          put_u64(bytes, at + 8, region.size / fw::kPageSize);  // entry_type 0: MEMORY
          at += kMemoryMapEntry;
        }
        break;
      }
      default:
        return Error(what + ": this VMM does not provide it (it provides vp_count and memory_map)");
    }
  }
  return {};
}

Result<PageBuffer> op_pages(const fw::LaunchPlan& plan, const fw::LaunchOp& op, const Vm& vm,
                            std::uint32_t vcpus, const GuestMemory& memory) {
  PageBuffer buffer = op_contents(op);
  if (op.type == fw::PageType::kCpuid && op.data.empty())
    CLOISTER_CHECK_OK(fill_snp_cpuid_page(buffer.bytes().first(fw::kPageSize), vm.cpuid()));
  if (op.parameter_area)
    CLOISTER_CHECK_OK(fill_parameter_area(plan, *op.parameter_area, buffer.bytes(), vcpus, memory));
  return buffer;
}

Status apply_vmsas(const fw::LaunchPlan& plan, std::span<Vcpu* const> vcpus) {
  if (plan.vcpu_count() != vcpus.size())
    return Error("launch plan: it has VMSAs for " + std::to_string(plan.vcpu_count()) +
                 " vCPUs, the VM has " + std::to_string(vcpus.size()) +
                 " (an IGVM file fixes the vCPU count: launch it with --vcpus " +
                 std::to_string(plan.vcpu_count()) + ")");
  for (const fw::LaunchOp& op : plan.ops()) {
    if (op.type != fw::PageType::kVmsa) continue;
    CLOISTER_TRY(const fw::VmsaRegisters vmsa, fw::decode_vmsa(op.data));
    CLOISTER_CHECK_OK(x86::set_launch_state(*vcpus[op.vcpu], x86::vcpu_state_from_vmsa(vmsa)));
  }
  return {};
}

}  // namespace cloister::vmm::tee
