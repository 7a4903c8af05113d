// Building TDX LaunchPlans from TDVF (OVMF) images (research/tdx.md §c).
//
// Each TDVF section becomes one op in metadata order, as QEMU's tdx_finalize_vm issues one
// KVM_TDX_INIT_MEM_REGION per section: BFV and CFV as kNormal with the section's bytes from
// the image (zero-padded to MemoryDataSize), TD_HOB as kTdHob, TempMem and PermMem as kZero;
// tdx_extend is the section's MR.EXTEND attribute. Sections with PAGE.AUG are not added at
// launch (the guest accepts them later) and produce no op.
#pragma once

#include "cloister/common/result.h"
#include "cloister/firmware_loader/launch_plan.h"
#include "cloister/firmware_loader/ovmf.h"

namespace cloister::fw {

struct TdxLaunchOptions {
  TdxPageOrder page_order = TdxPageOrder::kSinglePass;
};

// Fails when the image has no (or malformed) TDX metadata, naming the fix, and on Payload /
// PayloadParam sections, whose contents a TD-shim launcher supplies (not supported).
Result<LaunchPlan> build_tdx_plan(const OvmfImage& firmware, const TdxLaunchOptions& options = {});

}  // namespace cloister::fw
