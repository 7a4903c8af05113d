#include "cloister/firmware_loader/tdx.h"

#include <algorithm>
#include <vector>

#include "cloister/common/hex.h"
#include "td_hob.h"

namespace cloister::fw {
namespace {

std::string describe(const GpaRange& r) {
  return "[" + hex_number(r.gpa) + ", " + hex_number(r.gpa + r.size) + ")";
}

Status check_options(const TdxLaunchOptions& o) {
  if (o.vcpus == 0) return Error("zero vCPUs: a TD needs at least one; give --vcpus N (N >= 1)");
  if (o.ram_bytes == 0 || o.ram_bytes % kPageSize != 0 || o.ram_bytes > kMaxGuestMemory) {
    return Error("guest memory " + hex_number(o.ram_bytes) +
                 " bytes: expected a non-zero multiple of 4 KiB up to " +
                 hex_number(kMaxGuestMemory) + " (1 TiB); check --memory");
  }
  return {};
}

// The TD HOB for the plan's TD_HOB op: the RAM, with the memory the plan adds (TD_HOB and
// TempMem sections) accepted.
Status add_td_hob(LaunchPlanBuilder& builder, std::vector<LaunchOp>& ops,
                  const TdxLaunchOptions& o) {
  const auto hob = std::find_if(ops.begin(), ops.end(),
                                [](const LaunchOp& op) { return op.type == PageType::kTdHob; });
  const std::vector<GpaRange> ram = ram_ranges(o.ram_bytes);
  std::vector<GpaRange> accepted;
  for (const LaunchOp& op : ops) {
    if (op.type != PageType::kTdHob && op.type != PageType::kZero) continue;
    const GpaRange range{op.gpa, op.size};
    const bool inside = std::any_of(ram.begin(), ram.end(), [&](const GpaRange& r) {
      return range.gpa >= r.gpa && range.gpa + range.size <= r.gpa + r.size;
    });
    if (!inside) {
      std::string in;
      for (const GpaRange& r : ram) in += (in.empty() ? "" : " and ") + describe(r);
      return Error(op.label + " at " + describe(range) + " is not inside guest RAM " + in +
                   ": TDVF expects it as accepted RAM; give the guest more memory (--memory)");
    }
    accepted.push_back(range);
  }
  std::sort(accepted.begin(), accepted.end(),
            [](const GpaRange& a, const GpaRange& b) { return a.gpa < b.gpa; });
  auto bytes = build_td_hob(
      {.gpa = hob->gpa, .capacity = hob->size, .ram = ram, .accepted = accepted, .vcpus = o.vcpus});
  if (!bytes) return bytes.error().with_context(hob->label);
  hob->data = builder.keep(std::move(bytes).value());
  return {};
}

}  // namespace

Result<LaunchPlan> build_tdx_plan(const OvmfImage& firmware, const TdxLaunchOptions& options) {
  if (!firmware.has_tdx_metadata()) {
    return Error(
        "the firmware has no TDX metadata (no TDVF footer entry), so it cannot boot a "
        "TD: use a TDVF-capable OVMF, e.g. Debian 12's 2 MiB /usr/share/ovmf/OVMF.fd "
        "(the 4M builds carry none)");
  }
  CLOISTER_TRY(const auto sections, firmware.tdx_metadata());
  CLOISTER_CHECK_OK(check_options(options));

  LaunchPlanBuilder builder(Tee::kTdx);
  builder.set_tdx_page_order(options.page_order);
  builder.set_tdx_vcpu_count(options.vcpus);
  const ByteView image = builder.keep(firmware.shared_bytes());
  std::vector<LaunchOp> ops;
  std::size_t hobs = 0;
  for (std::size_t i = 0; i < sections.size(); ++i) {
    const TdvfSection& s = sections[i];
    if (s.type == TdvfSectionType::kTdHob) ++hobs;
    if (s.page_aug()) continue;
    LaunchOp op{
        .gpa = s.memory_address,
        .size = s.memory_data_size,
        .type = PageType::kZero,
        .tdx_extend = s.mr_extend(),
        .label = "TDVF section " + std::to_string(i) + " (" + std::string(to_string(s.type)) + ")"};
    switch (s.type) {
      case TdvfSectionType::kBfv:
      case TdvfSectionType::kCfv:
        op.type = PageType::kNormal;
        op.data = image.subspan(s.data_offset, s.raw_data_size);
        break;
      case TdvfSectionType::kTdHob:
        op.type = PageType::kTdHob;
        break;
      case TdvfSectionType::kTempMem:
      case TdvfSectionType::kPermMem:
        op.type = PageType::kZero;
        break;
      case TdvfSectionType::kPayload:
      case TdvfSectionType::kPayloadParam:
        return Error(op.label + " at GPA " + hex_number(s.memory_address) +
                     ": payload sections are filled by a TD-shim launcher, which is not "
                     "supported; use an OVMF (TDVF) image");
    }
    ops.push_back(std::move(op));
  }
  if (hobs != 1 || std::none_of(ops.begin(), ops.end(),
                                [](const LaunchOp& op) { return op.type == PageType::kTdHob; })) {
    return Error("the firmware's TDX metadata has " + std::to_string(hobs) +
                 " TD_HOB sections, expected exactly one that is added at launch: TDVF reads "
                 "its memory map from there (QEMU refuses such an image too)");
  }
  CLOISTER_CHECK_OK(add_td_hob(builder, ops, options));
  for (LaunchOp& op : ops) builder.add(std::move(op));
  return std::move(builder).build();
}

}  // namespace cloister::fw
