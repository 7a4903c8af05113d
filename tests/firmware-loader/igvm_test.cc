#include "cloister/firmware_loader/igvm.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cloister/common/hex.h"
#include "cloister/firmware_loader/machine.h"
#include "cloister/firmware_loader/vmsa.h"
#include "igvm_writer.h"
#include "test_util.h"

namespace cloister::fw {
namespace {

using ::cloister::testing::error_of;
using ::cloister::testing::IgvmWriter;
using ::testing::HasSubstr;
using ::testing::Not;

Result<IgvmFile> parse(const Bytes& bytes) {
  return IgvmFile::parse(std::make_shared<const Bytes>(bytes));
}

Result<LaunchPlan> plan_of(const Bytes& bytes, IgvmLoadOptions options = {}) {
  auto file = parse(bytes);
  if (!file) return file.error();
  return build_snp_plan(*file, options);
}

Bytes vmsa_page(std::uint64_t features) {
  VmsaRegisters r;
  r.sev_features = features;
  r.rip = 0xfff0;
  const VmsaPage p = encode_vmsa(r);
  return Bytes(p.begin(), p.end());
}

// A small SNP file: one data page, a zero page, secrets, CPUID, an unmeasured page, a
// parameter area with a VP count, required memory, two VP contexts and an ID block.
IgvmWriter small_file() {
  static const Bytes data(kPageSize, 0x5a);
  static const Bytes vmsa = vmsa_page(0x1);
  IgvmWriter w;
  w.platform(IgvmWriter::kSnpMask, 2)
      .platform(0x2, 3)  // a TDX platform whose headers must be skipped
      .guest_policy(0x30000)
      .guest_policy(0x1, 0x2)
      .page_data(0x100000, data)
      .page_data(0x101000, {})
      .page_data(0x102000, {}, 0, 1)
      .page_data(0x103000, {}, 0, 2)
      .page_data(0x104000, data, 0x2)
      .page_data(0x200000, data, 0, 0, 0x2)
      .parameter_area(0x1000, 7)
      .parameter(0x307, 7, 0)
      .parameter_insert(0x105000, 7)
      .required_memory(0x0, 0x100000)
      .vp_context(kSnpVmsaGpa, 1, vmsa)
      .vp_context(kSnpVmsaGpa, 0, vmsa)
      .snp_id_block(Sha384Digest{0xaa});
  return w;
}

TEST(Igvm, ParsesEveryDirective) {
  auto file = parse(small_file().build());
  ASSERT_TRUE(file.ok()) << file.error().message();
  EXPECT_EQ(file->platforms().size(), 2u);
  EXPECT_EQ(file->guest_policies().size(), 2u);
  EXPECT_EQ(file->directives().size(), 13u);
  const auto& first = std::get<IgvmPageData>(file->directives()[0]);
  EXPECT_EQ(first.gpa, 0x100000u);
  EXPECT_EQ(first.data.size(), kPageSize);
  EXPECT_TRUE(std::get<IgvmPageData>(file->directives()[1]).data.empty());
  EXPECT_EQ(std::get<IgvmParameterUse>(file->directives()[7]).kind, IgvmParameterKind::kVpCount);
}

TEST(Igvm, BuildsTheSnpPlan) {
  auto plan = plan_of(small_file().build());
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  const auto ops = plan->ops();
  ASSERT_EQ(ops.size(), 8u);
  EXPECT_EQ(ops[0].type, PageType::kNormal);
  EXPECT_EQ(ops[1].type, PageType::kZero);
  EXPECT_EQ(ops[2].type, PageType::kSecrets);
  EXPECT_EQ(ops[3].type, PageType::kCpuid);
  EXPECT_EQ(ops[4].type, PageType::kUnmeasured);
  EXPECT_EQ(ops[4].data.size(), kPageSize) << "unmeasured pages keep their contents";
  EXPECT_EQ(ops[5].type, PageType::kUnmeasured);
  EXPECT_EQ(ops[5].parameter_area, 7u);
  EXPECT_EQ(ops[6].type, PageType::kVmsa);
  EXPECT_EQ(ops[6].vcpu, 0u);
  EXPECT_EQ(ops[7].vcpu, 1u);
  EXPECT_EQ(plan->snp().policy, 0x30000u);
  EXPECT_EQ(plan->snp().vmsa_features, 0x1u);
  ASSERT_EQ(plan->parameters().size(), 1u);
  EXPECT_EQ(plan->parameters()[0].area, 7u);
  ASSERT_EQ(plan->required_memory().size(), 1u);
  EXPECT_EQ(plan->required_memory()[0].size, 0x100000u);
}

TEST(Igvm, ZeroPagesFollowTheChosenConvention) {
  auto normal = plan_of(small_file().build(), {IgvmZeroPages::kNormalZero});
  ASSERT_TRUE(normal.ok()) << normal.error().message();
  EXPECT_EQ(normal->ops()[1].type, PageType::kNormal);
  EXPECT_TRUE(normal->ops()[1].data.empty());
}

TEST(Igvm, ConvertsTheIdBlockToKvmLayout) {
  auto plan = plan_of(small_file().build());
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  ASSERT_TRUE(plan->snp().id_block.has_value());
  const SnpIdBlock& id = *plan->snp().id_block;
  EXPECT_EQ(id.expected_launch_digest[0], 0xaa);
  EXPECT_EQ(id.id_block[0], 0xaa);                    // LD
  EXPECT_EQ(id.id_block[0x30], 0xf0);                 // FAMILY_ID
  EXPECT_EQ(load_le32(id.id_block, 0x50), 1u);        // VERSION
  EXPECT_EQ(load_le32(id.id_block, 0x54), 7u);        // GUEST_SVN
  EXPECT_EQ(load_le64(id.id_block, 0x58), 0x30000u);  // POLICY
  EXPECT_EQ(load_le32(id.id_auth, 0x0), 1u);          // ID_KEY_ALGO
  EXPECT_EQ(id.id_auth[0x40], 0x11);                  // ID_BLOCK_SIG R
  EXPECT_EQ(load_le32(id.id_auth, 0x240), 2u);        // ID_KEY curve
  EXPECT_EQ(id.id_auth[0x244], 0x22);                 // QX
  EXPECT_EQ(id.id_auth[0x240 + 0x4c], 0x33);          // QY
  EXPECT_FALSE(id.author_key_enabled);
}

TEST(Igvm, RejectsBrokenFixedHeaders) {
  const Bytes good = small_file().build();
  EXPECT_THAT(error_of(parse(Bytes(good.begin(), good.begin() + 20))),
              HasSubstr("smaller than the 24-byte fixed header"));
  Bytes magic = good;
  magic[0] = 'X';
  EXPECT_THAT(error_of(parse(magic)), HasSubstr("expected magic \"IGVM\""));
  Bytes version = good;
  store_le32(version, 4, 2);
  EXPECT_THAT(error_of(parse(version)), HasSubstr("format_version 2 is not supported"));
  Bytes longer = good;
  longer.push_back(0);
  EXPECT_THAT(error_of(parse(longer)), HasSubstr("does not match the"));
  Bytes offset = good;
  store_le32(offset, 8, 28);
  EXPECT_THAT(error_of(parse(offset)), HasSubstr("must be 8-byte aligned"));
  Bytes size = good;
  store_le32(size, 12, 0xfffffff0);
  EXPECT_THAT(error_of(parse(size)), HasSubstr("run past the end"));
  Bytes flipped = good;
  flipped[40] ^= 0x80;
  EXPECT_THAT(error_of(parse(flipped)), HasSubstr("does not match the CRC-32"));
}

TEST(Igvm, RejectsBrokenVariableHeaders) {
  struct Case {
    const char* name;
    IgvmWriter writer;
    const char* error;
  };
  const Bytes page(kPageSize, 1);
  std::vector<Case> cases;
  cases.push_back(
      {"wrong length", IgvmWriter().raw_header(0x1, Bytes(12, 0)), "length 12, expected 16"});
  cases.push_back({"unknown type", IgvmWriter().platform(1, 2).raw_header(0x3ff, Bytes(8, 0)),
                   "unsupported header type"});
  cases.push_back({"outside ranges", IgvmWriter().raw_header(0x250, Bytes(8, 0)),
                   "outside every section range"});
  cases.push_back({"order", IgvmWriter().page_data(0, page).platform(1, 2),
                   "a platform header after directive headers"});
  cases.push_back({"two bits", IgvmWriter().platform(3, 2), "must have one bit set"});
  cases.push_back({"same mask", IgvmWriter().platform(1, 2).platform(1, 3), "is used twice"});
  cases.push_back({"platform type", IgvmWriter().platform(1, 9), "unknown platform_type 9"});
  cases.push_back({"page flags", IgvmWriter().platform(1, 2).page_data(0, page, 0x8),
                   "unknown page flag bits 0x8"});
  cases.push_back({"data type", IgvmWriter().platform(1, 2).page_data(0, page, 0, 4),
                   "unknown page data_type 4"});
  Bytes vp_no_data(20, 0);
  store_le64(vp_no_data, 0, kSnpVmsaGpa);
  store_le32(vp_no_data, 8, IgvmWriter::kSnpMask);
  cases.push_back({"vp without data", IgvmWriter().platform(1, 2).raw_header(0x304, vp_no_data),
                   "needs its VMSA in the file data"});
  Bytes vp_two_platforms = vp_no_data;
  store_le32(vp_two_platforms, 8, 0x3);
  cases.push_back({"vp of two platforms",
                   IgvmWriter().platform(2, 3).platform(1, 2).raw_header(0x304, vp_two_platforms),
                   "compatibility mask 0x3: expected exactly one declared platform's mask"});
  Bytes policy(16, 0);
  store_le32(policy, 12, 1);
  cases.push_back(
      {"reserved", IgvmWriter().raw_header(0x101, policy), "reserved field is not zero"});
  for (Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(error_of(parse(c.writer.build())), HasSubstr(c.error));
  }
}

TEST(Igvm, RejectsDataOutsideTheFileAndDirtyPadding) {
  Bytes bytes = IgvmWriter().platform(1, 2).page_data(0x1000, Bytes(kPageSize, 1)).build();
  // Drop the last byte of the page data and fix up the size and checksum.
  bytes.pop_back();
  store_le32(bytes, 16, static_cast<std::uint32_t>(bytes.size()));
  ::cloister::testing::reseal_igvm(bytes);
  auto r = parse(bytes);
  EXPECT_THAT(error_of(r), HasSubstr("IGVM variable header 1 (type 0x302)"));
  EXPECT_THAT(error_of(r), HasSubstr("lies outside the file data"));

  // The VP context structure is 20 bytes: its 4 padding bytes must be zero.
  Bytes vp(20, 0);
  Bytes padded = IgvmWriter().platform(1, 2).raw_header(0x304, vp).build();
  padded[24 + 24 + 8 + 20] = 1;
  ::cloister::testing::reseal_igvm(padded);
  EXPECT_THAT(error_of(parse(padded)), HasSubstr("alignment padding byte"));
}

// A parameter area's size is 64 bits from the file: one that would wrap file_offset + size
// past 2^64 back inside the file is refused, not handed out as a view of 2^64 - F bytes.
TEST(Igvm, AParameterAreaSizeThatWrapsIsRefused) {
  Bytes bytes = IgvmWriter().platform(1, 2).parameter_area(16, 1, Bytes(16, 7)).build();
  const auto file = parse(bytes);
  ASSERT_TRUE(file) << file.error().message();
  const auto& area = std::get<IgvmParameterAreaHeader>(file->directives().back());
  const std::uint64_t offset =
      static_cast<std::uint64_t>(area.initial.data() - file->shared_bytes()->data());
  // The PARAMETER_AREA header: type 0x301, length 16, then size, index, file_offset.
  std::size_t at = 24;
  while (load_le32(bytes, at) != 0x301) at += 8 + ((load_le32(bytes, at + 4) + 7) & ~7u);
  ASSERT_EQ(load_le32(bytes, at + 8 + 12), offset);
  store_le64(bytes, at + 8, 0 - offset);
  ::cloister::testing::reseal_igvm(bytes);
  const auto r = parse(bytes);
  EXPECT_THAT(error_of(r), HasSubstr("PARAMETER_AREA file_offset"));
  EXPECT_THAT(error_of(r), HasSubstr("lies outside the file data"));
}

TEST(Igvm, IgnorableUnknownHeadersAreSkipped) {
  auto plan = plan_of(IgvmWriter()
                          .platform(1, 2)
                          .raw_header(0x80000000u | 0x3f0, Bytes(8, 0))
                          .page_data(0x1000, Bytes(kPageSize, 1))
                          .build());
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->ops().size(), 1u);
}

TEST(Igvm, PlanRejectionsNameTheDirective) {
  const Bytes page(kPageSize, 1);
  const Bytes vmsa = vmsa_page(1);
  struct Case {
    const char* name;
    IgvmWriter writer;
    const char* error;
  };
  std::vector<Case> cases;
  cases.push_back({"no snp", IgvmWriter().platform(1, 3), "no SEV_SNP SUPPORTED_PLATFORM"});
  cases.push_back({"two snp", IgvmWriter().platform(1, 2).platform(2, 2), "two SEV_SNP platforms"});
  cases.push_back({"vtl", IgvmWriter().platform(1, 2, 1, 2), "highest VTL 2 are not supported"});
  cases.push_back({"policy bit 17", IgvmWriter().platform(1, 2).guest_policy(0x1),
                   "bit 17 (reserved, must be one) is clear"});
  cases.push_back({"two policies",
                   IgvmWriter().platform(1, 2).guest_policy(0x30000).guest_policy(0x30000),
                   "two GUEST_POLICY headers"});
  cases.push_back({"2 MiB", IgvmWriter().platform(1, 2).page_data(0, page, 0x1),
                   "IGVM directive 0 (PAGE_DATA at GPA 0x0): 2 MiB pages are not supported"});
  cases.push_back({"shared", IgvmWriter().platform(1, 2).page_data(0, page, 0x4),
                   "shared (host-visible) pages are not supported"});
  cases.push_back({"vmsa gpa", IgvmWriter().platform(1, 2).vp_context(0x1000, 0, vmsa),
                   "VMSA GPA 0x1000; KVM measures every VMSA at 0xfffffffff000"});
  cases.push_back(
      {"vp gap", IgvmWriter().platform(1, 2).vp_context(kSnpVmsaGpa, 1, vmsa), "VP 0 has none"});
  cases.push_back({"vp twice",
                   IgvmWriter()
                       .platform(1, 2)
                       .vp_context(kSnpVmsaGpa, 0, vmsa)
                       .vp_context(kSnpVmsaGpa, 0, vmsa),
                   "a second VP context for the same VP"});
  cases.push_back({"area twice",
                   IgvmWriter().platform(1, 2).parameter_area(0x1000, 1).parameter_area(0x1000, 1),
                   "the index is declared twice"});
  cases.push_back({"insert unknown", IgvmWriter().platform(1, 2).parameter_insert(0, 4),
                   "PARAMETER_INSERT of area 4 at GPA 0x0): the area is not declared before"});
  cases.push_back({"insert twice",
                   IgvmWriter()
                       .platform(1, 2)
                       .parameter_area(0x1000, 1)
                       .parameter_insert(0, 1)
                       .parameter_insert(0x1000, 1),
                   "the area was inserted already"});
  cases.push_back(
      {"parameter after insert",
       IgvmWriter().platform(1, 2).parameter_area(0x1000, 1).parameter_insert(0, 1).parameter(0x30C,
                                                                                              1, 0),
       "(memory_map parameter): area 1 was inserted already"});
  cases.push_back({"two id blocks", IgvmWriter().platform(1, 2).snp_id_block({}).snp_id_block({}),
                   "a second ID block"});
  cases.push_back({"vbs for snp", IgvmWriter().platform(1, 2).raw_header(0x311, Bytes(864, 0x1)),
                   "(type 0x311): this directive does not apply to SEV-SNP"});
  cases.push_back({"overlap",
                   IgvmWriter().platform(1, 2).page_data(0x1000, page).page_data(0x1000, {}),
                   "overlaps launch op 0"});
  for (Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(error_of(plan_of(c.writer.build())), HasSubstr(c.error));
  }
}

Result<LaunchPlan> tdx_plan_of(const Bytes& bytes, IgvmTdxOptions options = {}) {
  auto file = parse(bytes);
  if (!file) return file.error();
  return build_tdx_plan(*file, options);
}

constexpr std::uint32_t kTdx = IgvmWriter::kTdxMask;

// One file for both TEEs: SNP headers under mask 1, TDX headers under mask 2, a parameter area
// both insert.
IgvmWriter dual_file() {
  static const Bytes data(kPageSize, 0x5a);
  static const Bytes vmsa = vmsa_page(0x1);
  IgvmWriter w;
  w.platform(IgvmWriter::kSnpMask, 2)
      .platform(kTdx, 3)
      .guest_policy(0x30000)
      .guest_policy(0x6, kTdx)
      .page_data(0x100000, data)
      .page_data(0x100000, data, 0, 0, kTdx)
      .page_data(0x101000, {}, 0, 0, kTdx)
      .page_data(0x102000, data, 0x2, 0, kTdx)
      .page_data(0x103000, {}, 0, 1)
      .parameter_area(0x2000, 3)
      .parameter(0x307, 3, 0)
      .parameter_insert(0x104000, 3)
      .parameter_insert(0x200000, 3, kTdx)
      .required_memory(0x0, 0x100000, kTdx)
      .vp_context(kSnpVmsaGpa, 0, vmsa);
  return w;
}

TEST(IgvmTdx, BuildsTheTdxPlanFromTheTdxHeadersOnly) {
  auto plan = tdx_plan_of(dual_file().build(), {TdxPageOrder::kTwoPass, 3});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->tee(), Tee::kTdx);
  EXPECT_EQ(plan->tdx_page_order(), TdxPageOrder::kTwoPass);
  EXPECT_EQ(plan->vcpu_count(), 3u);
  EXPECT_EQ(plan->tdx().policy, 0x6u);
  const auto ops = plan->ops();
  ASSERT_EQ(ops.size(), 4u);
  EXPECT_EQ(ops[0].type, PageType::kNormal);
  EXPECT_EQ(ops[0].gpa, 0x100000u);
  EXPECT_EQ(ops[0].data.size(), kPageSize);
  EXPECT_TRUE(ops[0].tdx_extend);
  EXPECT_EQ(ops[1].type, PageType::kZero) << "file_offset 0: a measured page of zeros";
  EXPECT_TRUE(ops[1].data.empty());
  EXPECT_TRUE(ops[1].tdx_extend);
  EXPECT_EQ(ops[2].type, PageType::kUnmeasured);
  EXPECT_EQ(ops[2].data.size(), kPageSize) << "unmeasured pages keep their contents";
  EXPECT_FALSE(ops[2].tdx_extend);
  EXPECT_EQ(ops[3].type, PageType::kUnmeasured);
  EXPECT_EQ(ops[3].gpa, 0x200000u);
  EXPECT_EQ(ops[3].parameter_area, 3u);
  EXPECT_FALSE(ops[3].tdx_extend);
  ASSERT_EQ(plan->parameters().size(), 1u);
  EXPECT_EQ(plan->parameters()[0].kind, IgvmParameterKind::kVpCount);
  ASSERT_EQ(plan->required_memory().size(), 1u);
  EXPECT_EQ(plan->required_memory()[0].size, 0x100000u);
}

TEST(IgvmTdx, TheSnpPlanOfTheSameFileIgnoresTheTdxHeaders) {
  auto plan = plan_of(dual_file().build());
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  const auto ops = plan->ops();
  ASSERT_EQ(ops.size(), 4u);
  EXPECT_EQ(ops[0].gpa, 0x100000u);
  EXPECT_EQ(ops[1].type, PageType::kSecrets);
  EXPECT_EQ(ops[2].gpa, 0x104000u);
  EXPECT_EQ(ops[3].type, PageType::kVmsa);
  EXPECT_EQ(plan->snp().policy, 0x30000u);
  EXPECT_TRUE(plan->required_memory().empty());
}

TEST(IgvmTdx, RejectionsNameTheDirectiveAndTheReason) {
  const Bytes page(kPageSize, 1);
  struct Case {
    const char* name;
    IgvmWriter writer;
    const char* error;
  };
  std::vector<Case> cases;
  cases.push_back({"no tdx", IgvmWriter().platform(1, 2),
                   "IGVM file has no TDX SUPPORTED_PLATFORM header: it was not built for TDX "
                   "(rebuild it with a TDX target)"});
  cases.push_back({"two tdx", IgvmWriter().platform(1, 3).platform(2, 3), "two TDX platforms"});
  cases.push_back({"vtl", IgvmWriter().platform(kTdx, 3, 1, 1),
                   "IGVM TDX platform: version 1 and highest VTL 1 are not supported (expected "
                   "version 1, VTL 0: TD partitioning is not supported)"});
  cases.push_back({"version", IgvmWriter().platform(kTdx, 3, 2), "version 2 and highest VTL 0"});
  cases.push_back({"vp context", IgvmWriter().platform(kTdx, 3).vp_context(0, 0, {}, kTdx),
                   "IGVM directive 0 (VP_CONTEXT of VP 0): a TD's vCPUs start in the "
                   "architectural reset state"});
  cases.push_back({"secrets", IgvmWriter().platform(kTdx, 3).page_data(0, {}, 0, 1, kTdx),
                   "IGVM directive 0 (PAGE_DATA at GPA 0x0): data_type 1 (SECRETS / CPUID) is "
                   "an SEV-SNP page type"});
  cases.push_back({"2 MiB", IgvmWriter().platform(kTdx, 3).page_data(0, page, 0x1, 0, kTdx),
                   "2 MiB pages are not supported"});
  cases.push_back({"shared", IgvmWriter().platform(kTdx, 3).page_data(0, page, 0x4, 0, kTdx),
                   "shared (host-visible) pages are not supported"});
  cases.push_back({"policy", IgvmWriter().platform(kTdx, 3).guest_policy(0x30000, kTdx),
                   "IGVM GUEST_POLICY 0x30000 for TDX: bits 0x30000 are reserved"});
  cases.push_back({"two policies",
                   IgvmWriter().platform(kTdx, 3).guest_policy(1, kTdx).guest_policy(1, kTdx),
                   "two GUEST_POLICY headers for TDX"});
  cases.push_back({"id block", IgvmWriter().platform(kTdx, 3).snp_id_block({}, kTdx),
                   "(SNP_ID_BLOCK): an SEV-SNP ID block does not apply to TDX"});
  cases.push_back({"vbs", IgvmWriter().platform(kTdx, 3).raw_header(0x311, Bytes(864, 0x2)),
                   "(type 0x311): this directive does not apply to TDX"});
  cases.push_back({"overlap",
                   IgvmWriter()
                       .platform(kTdx, 3)
                       .page_data(0x1000, page, 0, 0, kTdx)
                       .page_data(0x1000, {}, 0, 0, kTdx),
                   "overlaps launch op 0"});
  for (Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(error_of(tdx_plan_of(c.writer.build())), HasSubstr(c.error));
  }
  EXPECT_EQ(error_of(tdx_plan_of(IgvmWriter().platform(kTdx, 3).build(), {.vcpus = 0})),
            "zero vCPUs: a TD needs at least one; give --vcpus N (N >= 1)");
}

// A file may declare at most kMaxGuestMemory (1 TiB) of guest memory for a platform.
TEST(IgvmTdx, BothBuildersBoundTheDeclaredMemory) {
  const Bytes big = IgvmWriter()
                        .platform(IgvmWriter::kSnpMask, 2)
                        .platform(kTdx, 3)
                        .page_data(0, {}, 0, 0, kTdx)
                        .parameter_area(kMaxGuestMemory, 1)
                        .build();
  EXPECT_TRUE(plan_of(big).ok()) << "SEV-SNP counts its own headers only: exactly 1 TiB";
  EXPECT_EQ(error_of(plan_of(IgvmWriter()
                                 .platform(IgvmWriter::kSnpMask, 2)
                                 .parameter_area(kMaxGuestMemory, 1)
                                 .page_data(0, {})
                                 .build())),
            "IGVM directive 1 (PAGE_DATA at GPA 0x0): the file declares more than 0x10000000000 "
            "bytes (1 TiB) of guest memory, the most cloister-vmm backs");
  EXPECT_EQ(error_of(tdx_plan_of(big)),
            "IGVM directive 1 (PARAMETER_AREA 1): the file declares more than 0x10000000000 "
            "bytes (1 TiB) of guest memory, the most cloister-vmm backs");
  const Bytes at_bound = IgvmWriter()
                             .platform(kTdx, 3)
                             .parameter_area(kMaxGuestMemory - kPageSize, 1)
                             .page_data(0, {}, 0, 0, kTdx)
                             .build();
  EXPECT_TRUE(tdx_plan_of(at_bound).ok());
  const Bytes required = IgvmWriter()
                             .platform(kTdx, 3)
                             .parameter_area(kMaxGuestMemory - kPageSize, 1)
                             .required_memory(0, 0x2000, kTdx)
                             .build();
  EXPECT_THAT(error_of(tdx_plan_of(required)),
              HasSubstr("IGVM directive 1 (REQUIRED_MEMORY at GPA 0x0): the file declares more"));
}

// A few hundred bytes that insert a 1 TiB parameter area: the measurement would hash 2^28
// unmeasured pages (minutes). The plan is refused, naming the directive and the limit.
TEST(Igvm, PageRangeBombIsRefusedNamingTheLimit) {
  const Bytes bomb = IgvmWriter()
                         .platform(IgvmWriter::kSnpMask, 2)
                         .platform(kTdx, 3)
                         .parameter_area(kMaxGuestMemory - kPageSize, 1)
                         .parameter_insert(0x100000, 1, IgvmWriter::kSnpMask | kTdx)
                         .build();
  EXPECT_LT(bomb.size(), 1024u);
  const std::string refused =
      "brings the memory the plan puts in place before the guest runs to 0xfffffff000 bytes, "
      "more than the 1 GiB a launch may populate (fw::kMaxLaunchMemory)";
  EXPECT_THAT(error_of(plan_of(bomb)),
              HasSubstr("launch op 0 (IGVM directive 1 (parameter area 1), unmeasured at GPA "
                        "0x100000, size 0xfffffff000): " +
                        refused));
  EXPECT_THAT(error_of(tdx_plan_of(bomb)), HasSubstr(refused));
  // The same area at the limit is a plan.
  const Bytes at_limit = IgvmWriter()
                             .platform(IgvmWriter::kSnpMask, 2)
                             .parameter_area(kMaxLaunchMemory, 1)
                             .parameter_insert(0x100000, 1)
                             .build();
  EXPECT_TRUE(plan_of(at_limit).ok());
}

TEST(Igvm, AtMostTheHeaderLimitIsParsed) {
  IgvmWriter w;
  w.platform(IgvmWriter::kSnpMask, 2);
  for (std::size_t i = 1; i < kMaxIgvmHeaders; ++i) w.raw_header(0x80000fff, {});
  EXPECT_TRUE(parse(w.build()).ok());
  w.raw_header(0x80000fff, {});
  EXPECT_THAT(error_of(parse(w.build())),
              HasSubstr(": a file has at most 262144 variable headers (one per 4 KiB page of the "
                        "at most 1 GiB a launch populates)"));
}
// A 6 MiB file of parameter areas (and one of parameters) would cost the plan's look-ups
// quadratic time: each is capped, the refusal naming the cap and the directive.
TEST(Igvm, ParameterAreasAndParametersAreCapped) {
  IgvmWriter areas;
  areas.platform(IgvmWriter::kSnpMask, 2);
  for (std::uint32_t i = 0; i < kMaxIgvmParameterAreas; ++i) areas.parameter_area(0x1000, i);
  EXPECT_THAT(error_of(plan_of(areas.build())), Not(HasSubstr("at most")));
  areas.parameter_area(0x1000, static_cast<std::uint32_t>(kMaxIgvmParameterAreas));
  EXPECT_THAT(error_of(plan_of(areas.build())),
              HasSubstr("(PARAMETER_AREA 1024): a file declares at most 1024 parameter areas"));

  IgvmWriter uses;
  uses.platform(IgvmWriter::kSnpMask, 2).parameter_area(0x1000, 0);
  for (std::size_t i = 0; i < kMaxIgvmParameters; ++i) uses.parameter(0x307, 0, 0);
  EXPECT_THAT(error_of(plan_of(uses.build())), Not(HasSubstr("at most")));
  uses.parameter(0x307, 0, 0);
  EXPECT_THAT(error_of(plan_of(uses.build())),
              HasSubstr(" parameter): a file fills at most 1024 parameters"));
}
}  // namespace
}  // namespace cloister::fw
