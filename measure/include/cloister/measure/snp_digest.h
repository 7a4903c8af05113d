// The SEV-SNP launch digest (the report's MEASUREMENT) folded from a LaunchPlan.
//
// Every SNP_LAUNCH_UPDATE page extends the guest context's launch digest:
//   LD = SHA-384(PAGE_INFO), PAGE_INFO = {DIGEST_CUR = LD, CONTENTS, LENGTH = 0x70, PAGE_TYPE,
//   IMI_PAGE = 0, VMPL3/2/1_PERMS = 0, reserved, GPA}  (SNP ABI spec §8.17.2, Table 67),
// where CONTENTS is SHA-384 of the 4 KiB page for NORMAL and VMSA pages and zero otherwise.
#pragma once

#include <cstdint>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"
#include "cloister/common/sha.h"
#include "cloister/firmware_loader/launch_plan.h"

namespace cloister::measure {

// Incremental launch digest, for a simulator that measures pages as it loads them.
class SnpLaunchDigest {
 public:
  // Starts from `seed` (48 zero bytes for a fresh guest context).
  explicit SnpLaunchDigest(const Sha384Digest& seed = {});

  // One page whose CONTENTS field is given (zero for ZERO, UNMEASURED, SECRETS, CPUID).
  void update(fw::PageType type, std::uint64_t gpa, const Sha384Digest& contents);
  // One NORMAL or VMSA page of exactly 4096 bytes; CONTENTS = SHA-384(page).
  void update_page(fw::PageType type, std::uint64_t gpa, ByteView page);

  const Sha384Digest& digest() const { return ld_; }

 private:
  Hasher hasher_{HashAlgorithm::kSha384};
  Sha384Digest ld_;
};

// The launch digest of an SNP plan: from its seed (or zero), every op in order except seeded
// ones, page by page. Fails for a TDX plan.
Result<Sha384Digest> snp_launch_digest(const fw::LaunchPlan& plan);

}  // namespace cloister::measure
