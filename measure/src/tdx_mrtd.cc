#include "cloister/measure/tdx_mrtd.h"

#include <array>
#include <cassert>
#include <cstring>

namespace cloister::measure {
namespace {

constexpr std::size_t kRecordSize = 128;
constexpr std::size_t kChunkSize = 256;
constexpr std::size_t kChunksPerPage = fw::kPageSize / kChunkSize;

std::array<std::uint8_t, kRecordSize> record(const char* name, std::uint64_t gpa) {
  std::array<std::uint8_t, kRecordSize> r{};
  std::memcpy(r.data(), name, std::strlen(name));
  store_le64(r, 16, gpa);
  return r;
}

// The 16 MR.EXTEND steps of one page.
void extend_page(MrtdAccumulator& mrtd, std::uint64_t gpa, ByteView page) {
  for (std::size_t c = 0; c < kChunksPerPage; ++c)
    mrtd.mr_extend(gpa + c * kChunkSize, page.subspan(c * kChunkSize, kChunkSize));
}

}  // namespace

void MrtdAccumulator::page_add(std::uint64_t gpa) {
  hasher_.update(record("MEM.PAGE.ADD", gpa));
}

void MrtdAccumulator::mr_extend(std::uint64_t gpa, ByteView chunk) {
  assert(chunk.size() == kChunkSize);
  hasher_.update(record("MR.EXTEND", gpa));
  hasher_.update(chunk);
}

Sha384Digest MrtdAccumulator::finish() {
  Sha384Digest out;
  hasher_.finish_into(out);
  return out;
}

Result<Sha384Digest> tdx_mrtd(const fw::LaunchPlan& plan) {
  if (plan.tee() != fw::Tee::kTdx) {
    return Error("TDX MRTD: the plan is for " + std::string(fw::to_string(plan.tee())) +
                 ", not tdx");
  }
  MrtdAccumulator mrtd;
  const bool single_pass = plan.tdx_page_order() == fw::TdxPageOrder::kSinglePass;
  for (const fw::LaunchOp& op : plan.ops()) {
    if (single_pass || !op.tdx_extend) {
      fw::for_each_page(op, [&](std::uint64_t gpa, ByteView page) {
        mrtd.page_add(gpa);
        if (op.tdx_extend) extend_page(mrtd, gpa, page);
      });
    } else {
      for (std::uint64_t i = 0; i < op.page_count(); ++i) mrtd.page_add(op.gpa + i * fw::kPageSize);
      fw::for_each_page(op,
                        [&](std::uint64_t gpa, ByteView page) { extend_page(mrtd, gpa, page); });
    }
  }
  return mrtd.finish();
}

Result<Sha384Digest> tdvf_cfv_digest(const fw::OvmfImage& firmware) {
  CLOISTER_TRY(const auto sections, firmware.tdx_metadata());
  for (const fw::TdvfSection& s : sections) {
    if (s.type == fw::TdvfSectionType::kCfv)
      return sha384(firmware.bytes().subspan(s.data_offset, s.raw_data_size));
  }
  return Error("the firmware's TDX metadata has no CFV section");
}

}  // namespace cloister::measure
