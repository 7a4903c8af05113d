#include "cloister/firmware_loader/tdx.h"

#include "cloister/common/hex.h"

namespace cloister::fw {

Result<LaunchPlan> build_tdx_plan(const OvmfImage& firmware, const TdxLaunchOptions& options) {
  if (!firmware.has_tdx_metadata()) {
    return Error(
        "the firmware has no TDX metadata (no TDVF footer entry), so it cannot boot a "
        "TD: use a TDVF-capable OVMF, e.g. Debian 12's 2 MiB /usr/share/ovmf/OVMF.fd "
        "(the 4M builds carry none)");
  }
  CLOISTER_TRY(const auto sections, firmware.tdx_metadata());

  LaunchPlanBuilder builder(Tee::kTdx);
  builder.set_tdx_page_order(options.page_order);
  const ByteView image = builder.keep(firmware.shared_bytes());
  for (std::size_t i = 0; i < sections.size(); ++i) {
    const TdvfSection& s = sections[i];
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
    builder.add(std::move(op));
  }
  return std::move(builder).build();
}

}  // namespace cloister::fw
