// Fuzz target: the OVMF footer table / SEV / TDX metadata parser and the plan builders on
// whatever it accepts. Every view a plan hands out is read byte by byte, so ASan catches one that
// points outside the input; the shared zero page that pads an op past its data is not (a section
// may span up to the plan's 1 GiB cap, and reading that zero page once per page finds nothing).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <numeric>

#include "cloister/firmware_loader/ovmf.h"
#include "cloister/firmware_loader/snp.h"
#include "cloister/firmware_loader/tdx.h"

namespace {

std::uint64_t touch(const cloister::Result<cloister::fw::LaunchPlan>& plan) {
  std::uint64_t sum = 0;
  if (!plan) return plan.error().message().size();
  for (const auto& op : plan->ops()) {
    cloister::fw::for_each_page(op, [&](std::uint64_t gpa, cloister::ByteView page) {
      sum += gpa;
      if (page.data() != cloister::fw::detail::kZeroPage.data())
        sum += std::accumulate(page.begin(), page.end(), std::uint64_t{0});
    });
  }
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cloister::fw;
  auto bytes = std::make_shared<const cloister::Bytes>(data, data + size);
  auto image = OvmfImage::parse(bytes);
  if (!image) return 0;
  volatile std::uint64_t sink = 0;
  if (auto sev = image->sev_metadata()) sink = sink + sev->size();
  if (auto tdx = image->tdx_metadata()) sink = sink + tdx->size();

  SnpLaunchOptions qemu;
  qemu.vcpus = 3;
  qemu.vcpu_signature = 0xa00f11;
  qemu.kernel_hashes = SevHashes::compute({}, {}, "console=ttyS0");
  sink = sink + touch(build_snp_plan(*image, qemu));
  SnpLaunchOptions gce;
  gce.vcpus = 2;
  gce.vmm = vmm_profiles()[2];
  sink = sink + touch(build_snp_plan(*image, gce));
  SnpLaunchOptions svsm = qemu;
  svsm.mode = SnpMode::kSvsm;
  svsm.kernel_hashes.reset();
  svsm.svsm = &*image;
  svsm.vars_size = 0x1000;
  sink = sink + touch(build_snp_plan(*image, svsm));
  sink = sink + touch(build_tdx_plan(*image, {TdxPageOrder::kTwoPass}));
  sink = sink + touch(build_tdx_plan(*image, {.ram_bytes = 5ull << 30, .vcpus = 254}));
  return 0;
}
