#include "cloister/measure/snp_digest.h"

#include <array>
#include <cassert>

namespace cloister::measure {
namespace {

constexpr std::size_t kPageInfoSize = 0x70;

}  // namespace

SnpLaunchDigest::SnpLaunchDigest(const Sha384Digest& seed) : ld_(seed) {}

void SnpLaunchDigest::update(fw::PageType type, std::uint64_t gpa, const Sha384Digest& contents) {
  std::array<std::uint8_t, kPageInfoSize> info{};
  std::copy(ld_.begin(), ld_.end(), info.begin());
  std::copy(contents.begin(), contents.end(), info.begin() + 0x30);
  store_le16(info, 0x60, static_cast<std::uint16_t>(kPageInfoSize));
  info[0x62] = fw::snp_page_type_code(type);
  store_le64(info, 0x68, gpa);
  hasher_.update(info);
  hasher_.finish_into(ld_);
}

void SnpLaunchDigest::update_page(fw::PageType type, std::uint64_t gpa, ByteView page) {
  assert(page.size() == fw::kPageSize);
  Sha384Digest contents;
  hasher_.update(page);
  hasher_.finish_into(contents);
  update(type, gpa, contents);
}

Result<Sha384Digest> snp_launch_digest(const fw::LaunchPlan& plan) {
  if (plan.tee() != fw::Tee::kSevSnp) {
    return Error("SNP launch digest: the plan is for " + std::string(fw::to_string(plan.tee())) +
                 ", not snp");
  }
  SnpLaunchDigest gctx(plan.snp_seed().value_or(Sha384Digest{}));
  for (const fw::LaunchOp& op : plan.ops()) {
    if (op.seeded) continue;
    if (op.type == fw::PageType::kNormal || op.type == fw::PageType::kVmsa) {
      fw::for_each_page(
          op, [&](std::uint64_t gpa, ByteView page) { gctx.update_page(op.type, gpa, page); });
    } else {
      for (std::uint64_t i = 0; i < op.page_count(); ++i)
        gctx.update(op.type, op.gpa + i * fw::kPageSize, Sha384Digest{});
    }
  }
  return gctx.digest();
}

}  // namespace cloister::measure
