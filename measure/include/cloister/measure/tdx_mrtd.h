// The TDX build-time measurement MRTD folded from a LaunchPlan (research/tdx.md §c).
//
// MRTD is one running SHA-384 over 128-byte records, finalized at TDH.MR.FINALIZE:
//   TDH.MEM.PAGE.ADD(gpa):  "MEM.PAGE.ADD" || zeros to 16 || u64le gpa || zeros to 128
//   TDH.MR.EXTEND(gpa):     "MR.EXTEND"    || zeros to 16 || u64le gpa || zeros to 128,
//                           followed by the 256-byte chunk at gpa
// (Intel TDX module spec, TDH.MEM.PAGE.ADD and TDH.MR.EXTEND leaf descriptions).
#pragma once

#include <cstdint>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"
#include "cloister/common/sha.h"
#include "cloister/firmware_loader/launch_plan.h"
#include "cloister/firmware_loader/ovmf.h"

namespace cloister::measure {

// Incremental MRTD, for a simulator that adds pages as it loads them.
class MrtdAccumulator {
 public:
  void page_add(std::uint64_t gpa);
  // One 256-byte chunk; `chunk` must be exactly 256 bytes.
  void mr_extend(std::uint64_t gpa, ByteView chunk);
  // TDH.MR.FINALIZE: the MRTD. The accumulator starts over afterwards.
  Sha384Digest finish();

 private:
  Hasher hasher_{HashAlgorithm::kSha384};
};

// MRTD of a TDX plan: its ops in order, PAGE.ADD for every page and MR.EXTEND for the pages of
// tdx_extend ops, interleaved as plan.tdx_page_order() says. Fails for an SNP plan.
Result<Sha384Digest> tdx_mrtd(const fw::LaunchPlan& plan);

// SHA-384 of the TDVF configuration firmware volume (CFV) bytes: the digest TDVF logs into
// RTMR0 as EV_EFI_PLATFORM_FIRMWARE_BLOB2. Fails when the image has no TDX metadata or no CFV.
Result<Sha384Digest> tdvf_cfv_digest(const fw::OvmfImage& firmware);

}  // namespace cloister::measure
