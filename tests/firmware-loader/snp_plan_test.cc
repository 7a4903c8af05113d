#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <tuple>

#include "cloister/common/hex.h"
#include "cloister/firmware_loader/snp.h"
#include "cloister/firmware_loader/vmsa.h"
#include "ovmf_builder.h"
#include "support/vectors.h"
#include "test_util.h"

namespace cloister::fw {
namespace {

using ::cloister::testing::error_of;
using ::cloister::testing::image_of;
using ::cloister::testing::OvmfImageBuilder;
using ::testing::HasSubstr;

SnpLaunchOptions qemu(std::uint32_t vcpus) {
  SnpLaunchOptions o;
  o.vcpus = vcpus;
  o.vcpu_signature = 0x800f12;
  return o;
}

TEST(VcpuModels, SignaturesOfTheEpycFamilyTable) {
  const std::pair<const char*, std::uint32_t> expected[] = {
      {"EPYC", 0x800f12},          {"EPYC-v4", 0x800f12},      {"EPYC-IBPB", 0x800f12},
      {"EPYC-Rome", 0x830f10},     {"EPYC-Rome-v3", 0x830f10}, {"EPYC-Milan", 0xa00f11},
      {"EPYC-Milan-v2", 0xa00f11}, {"EPYC-Genoa", 0xa10f10},   {"EPYC-Turin", 0xb00f00}};
  for (const auto& [name, sig] : expected) {
    auto got = vcpu_signature(name);
    ASSERT_TRUE(got.ok()) << name;
    EXPECT_EQ(*got, sig) << name;
  }
  EXPECT_EQ(vcpu_models().size(), 16u);
  EXPECT_EQ(vcpu_signature(25, 17, 1), 0xa10f11u);
  EXPECT_EQ(vcpu_signature(6, 0x8f, 8), 0x806f8u);  // family <= 0xf: no extended family
}

TEST(VcpuModels, UnknownTypeListsTheKnownOnes) {
  auto r = vcpu_signature("EPYC-Venice");
  EXPECT_THAT(error_of(r), HasSubstr("unknown vCPU type 'EPYC-Venice'"));
  EXPECT_THAT(error_of(r), HasSubstr("EPYC-Turin"));
  EXPECT_THAT(error_of(r), HasSubstr("--vcpu-sig"));
}

TEST(VmmProfiles, LookupIsCaseInsensitiveAndNamesTheChoices) {
  auto ec2 = find_vmm_profile("EC2");
  ASSERT_TRUE(ec2.ok());
  EXPECT_EQ(ec2->name, "ec2");
  EXPECT_TRUE(ec2->cpuid_page_last);
  EXPECT_EQ(find_vmm_profile("gce")->sec_mem_page_type, PageType::kUnmeasured);
  EXPECT_EQ(vmm_profiles()[0].name, "QEMU");
  EXPECT_THAT(error_of(find_vmm_profile("krun")), HasSubstr("(known: QEMU, ec2, gce, cloister)"));
}

// cloister-vmm's registers are QEMU's: every field but the name is equal, so an image
// measured for QEMU and for cloister-vmm agrees.
TEST(VmmProfiles, CloisterIsQemusRegisters) {
  const VmmProfile& cloister = cloister_vmm_profile();
  EXPECT_EQ(cloister.name, "cloister");
  EXPECT_EQ(find_vmm_profile("Cloister")->name, "cloister");
  VmmProfile qemu = *find_vmm_profile("QEMU");
  qemu.name = cloister.name;
  const auto fields = [](const VmmProfile& p) {
    return std::make_tuple(p.name, p.cs_attrib, p.cs_attrib_reset_vector, p.ss_attrib, p.tr_attrib,
                           p.rdx_is_vcpu_signature, p.rdx, p.g_pat, p.mxcsr, p.x87_fcw,
                           p.sec_mem_page_type, p.cpuid_page_last);
  };
  EXPECT_EQ(fields(cloister), fields(qemu));
}

TEST(SevHashes, TableLayoutMatchesQemu) {
  const SevHashes h = SevHashes::compute(as_bytes("kernel"), {}, "");
  EXPECT_EQ(to_hex(h.cmdline), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
  EXPECT_EQ(to_hex(h.initrd), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const auto t = sev_hash_table(h);
  EXPECT_EQ(to_hex(ByteView(t).subspan(0, 16)), "06d63894224fc94cb479a793d411fd21");
  EXPECT_EQ(load_le16(t, 16), 168);
  EXPECT_EQ(to_hex(ByteView(t).subspan(18, 16)),
            to_hex(Guid::literal("97d02dd8-bd20-4c94-aa78-e7714d36ab2a").bytes()));
  EXPECT_EQ(load_le16(t, 34), 50);
  EXPECT_EQ(to_hex(ByteView(t).subspan(36, 32)), to_hex(h.cmdline));
  EXPECT_EQ(to_hex(ByteView(t).subspan(68, 16)),
            to_hex(Guid::literal("44baf731-3a2f-4bd7-9af1-41e29169781d").bytes()));
  EXPECT_EQ(to_hex(ByteView(t).subspan(86, 32)), to_hex(h.initrd));
  EXPECT_EQ(to_hex(ByteView(t).subspan(118, 16)),
            to_hex(Guid::literal("4de79437-abd2-427f-b835-d5b172d2045b").bytes()));
  EXPECT_EQ(to_hex(ByteView(t).subspan(136, 32)), to_hex(h.kernel));
  EXPECT_TRUE(is_all_zero(ByteView(t).subspan(168)));
}

TEST(SnpPlan, QemuLaunchOrder) {
  const OvmfImage image = image_of(::cloister::testing::amdsev_like_image());
  auto plan = build_snp_plan(image, qemu(3));
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  const auto ops = plan->ops();
  ASSERT_EQ(ops.size(), 1u + 5u + 3u);
  EXPECT_EQ(ops[0].gpa, 0xffffc000u);
  EXPECT_EQ(ops[0].size, 0x4000u);
  EXPECT_EQ(ops[0].type, PageType::kNormal);
  EXPECT_EQ(ops[0].data.data(), image.bytes().data()) << "the firmware must not be copied";
  const PageType sections[] = {PageType::kZero, PageType::kSecrets, PageType::kCpuid,
                               PageType::kZero, PageType::kZero};
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(ops[1 + i].type, sections[i]) << i;
  for (std::uint32_t v = 0; v < 3; ++v) {
    EXPECT_EQ(ops[6 + v].type, PageType::kVmsa);
    EXPECT_EQ(ops[6 + v].vcpu, v);
    EXPECT_EQ(ops[6 + v].gpa, kSnpVmsaGpa);
  }
  EXPECT_EQ(plan->vcpu_count(), 3u);
  EXPECT_EQ(plan->snp().vmsa_features, 0x1u);
  EXPECT_FALSE(plan->snp_seed().has_value());
}

TEST(SnpPlan, KernelHashesPageHoldsTheTableAtTheFooterOffset) {
  const OvmfImage image = image_of(::cloister::testing::amdsev_like_image());
  SnpLaunchOptions o = qemu(1);
  o.kernel_hashes = SevHashes::compute(as_bytes("k"), as_bytes("i"), "quiet");
  auto plan = build_snp_plan(image, o);
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  const LaunchOp& page = plan->ops()[5];
  EXPECT_EQ(page.type, PageType::kNormal);
  EXPECT_EQ(page.gpa, 0x810000u);
  ASSERT_EQ(page.data.size(), 0x1000u);
  const auto table = sev_hash_table(*o.kernel_hashes);
  EXPECT_TRUE(is_all_zero(page.data.subspan(0, 0xc00)));
  EXPECT_TRUE(std::equal(table.begin(), table.end(), page.data.begin() + 0xc00));
  EXPECT_TRUE(is_all_zero(page.data.subspan(0xc00 + 176)));
}

TEST(SnpPlan, VmsaRegistersOfTheQemuProfile) {
  const OvmfImage image = image_of(::cloister::testing::amdsev_like_image());
  auto plan = build_snp_plan(image, qemu(2));
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  auto bsp = decode_vmsa(plan->ops()[6].data);
  auto ap = decode_vmsa(plan->ops()[7].data);
  ASSERT_TRUE(bsp.ok() && ap.ok());
  EXPECT_EQ(bsp->cs, (VmcbSegment{0xf000, 0x9b, 0xffff, 0xffff0000}));
  EXPECT_EQ(bsp->rip, 0xfff0u);
  EXPECT_EQ(ap->cs, (VmcbSegment{0xf000, 0x9b, 0xffff, 0x800000}));
  EXPECT_EQ(ap->rip, 0xb004u);
  EXPECT_EQ(bsp->rdx, 0x800f12u);
  EXPECT_EQ(bsp->g_pat, 0x0007040600070406u);
  EXPECT_EQ(bsp->mxcsr, 0x1f80u);
  EXPECT_EQ(bsp->x87_fcw, 0x37fu);
  EXPECT_EQ(bsp->efer, 0x1000u);
  EXPECT_EQ(bsp->sev_features, 0x1u);
}

TEST(SnpPlan, Ec2MeasuresTheCpuidPageLastAndGceLeavesSecMemUnmeasured) {
  const OvmfImage image = image_of(::cloister::testing::amdsev_like_image());
  SnpLaunchOptions ec2 = qemu(1);
  ec2.vmm = *find_vmm_profile("ec2");
  auto plan = build_snp_plan(image, ec2);
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->ops()[5].type, PageType::kCpuid);
  EXPECT_EQ(plan->ops()[5].gpa, 0x80e000u);
  auto bsp = decode_vmsa(plan->ops()[6].data);
  EXPECT_EQ(bsp->cs.attrib, 0x9a);
  EXPECT_EQ(bsp->rdx, 0x600u);
  // ec2's CS attributes follow the EIP, as in sev-snp-measure: APs starting elsewhere get 0x9b,
  // an AP whose reset block names the reset vector gets the BSP's 0x9a.
  ec2.vcpus = 2;
  auto two = build_snp_plan(image, ec2);
  ASSERT_TRUE(two.ok()) << two.error().message();
  EXPECT_EQ(decode_vmsa(two->ops()[7].data)->cs.attrib, 0x9b);
  OvmfImageBuilder at_reset_vector(0x4000);
  at_reset_vector.reset_eip(0xfffffff0).sev_metadata({{0x800000, 0x1000, 1}});
  auto same = build_snp_plan(image_of(at_reset_vector), ec2);
  ASSERT_TRUE(same.ok()) << same.error().message();
  EXPECT_EQ(decode_vmsa(same->ops().back().data)->cs.attrib, 0x9a);

  SnpLaunchOptions gce;
  gce.vcpus = 1;
  gce.vmm = *find_vmm_profile("gce");
  auto gplan = build_snp_plan(image, gce);
  ASSERT_TRUE(gplan.ok()) << gplan.error().message();
  EXPECT_EQ(gplan->ops()[1].type, PageType::kUnmeasured);
  EXPECT_EQ(decode_vmsa(gplan->ops()[6].data)->g_pat, 0x00070106u);
}

TEST(SnpPlan, FirmwareDigestSeedsTheFirmwareOp) {
  const OvmfImage image = image_of(::cloister::testing::amdsev_like_image());
  SnpLaunchOptions o = qemu(1);
  o.firmware_digest = Sha384Digest{1, 2, 3};
  auto plan = build_snp_plan(image, o);
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_TRUE(plan->ops()[0].seeded);
  EXPECT_FALSE(plan->ops()[1].seeded);
  EXPECT_EQ(plan->snp_seed(), o.firmware_digest);
}

TEST(SnpPlan, FirmwareOnlyModeHasOnlyTheFirmware) {
  SnpLaunchOptions o;
  o.mode = SnpMode::kFirmwareOnly;
  auto plan = build_snp_plan(image_of(::cloister::testing::amdsev_like_image()), o);
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->ops().size(), 1u);
  EXPECT_EQ(plan->vcpu_count(), 0u);
}

TEST(SnpPlan, RejectsZeroVcpus) {
  EXPECT_THAT(error_of(build_snp_plan(image_of(::cloister::testing::amdsev_like_image()), qemu(0))),
              HasSubstr("zero vCPUs: an SNP guest needs at least one; give --vcpus N"));
}

TEST(SnpPlan, RejectsAKernelWithoutAKernelHashesSection) {
  OvmfImageBuilder b(0x4000);
  b.reset_eip(0x80b004).sev_metadata({{0x800000, 0x9000, 1}, {0x80d000, 0x1000, 2}});
  SnpLaunchOptions o = qemu(1);
  o.kernel_hashes = SevHashes::compute({}, {}, "");
  auto r = build_snp_plan(image_of(b), o);
  EXPECT_THAT(error_of(r), HasSubstr("OVMF metadata doesn't include SNP_KERNEL_HASHES section"));
  EXPECT_THAT(error_of(r), HasSubstr("OvmfPkg/AmdSev"));
}

TEST(SnpPlan, RejectsAKernelWhenTheHashTableEntryIsUnusable) {
  OvmfImageBuilder b(0x4000);
  b.reset_eip(0x80b004).hash_table(0, 0).sev_metadata({{0x810000, 0x1000, 0x10}});
  SnpLaunchOptions o = qemu(1);
  o.kernel_hashes = SevHashes::compute({}, {}, "");
  EXPECT_THAT(error_of(build_snp_plan(image_of(b), o)),
              HasSubstr("SEV hash table entry (7255371f-3a3b-4b04-927b-1da6efa8d454) is "
                        "missing or has GPA 0"));
  OvmfImageBuilder late(0x4000);
  late.reset_eip(0x80b004).hash_table(0x810f80, 0x400).sev_metadata({{0x810000, 0x1000, 0x10}});
  EXPECT_THAT(error_of(build_snp_plan(image_of(late), o)),
              HasSubstr("expected one 4 KiB page holding the 176-byte table"));
  // An entry smaller than the table (QEMU refuses it), or on another page than the section's
  // (OVMF would read hashes from a page the launch did not measure).
  OvmfImageBuilder small(0x4000);
  small.reset_eip(0x80b004).hash_table(0x810c00, 0x10).sev_metadata({{0x810000, 0x1000, 0x10}});
  EXPECT_THAT(error_of(build_snp_plan(image_of(small), o)),
              HasSubstr("with the hash table at GPA 0x810c00 (size 0x10): expected one 4 KiB "
                        "page holding the 176-byte table"));
  OvmfImageBuilder elsewhere(0x4000);
  elsewhere.reset_eip(0x80b004)
      .hash_table(0x80fc00, 0x400)
      .sev_metadata({{0x810000, 0x1000, 0x10}});
  EXPECT_THAT(error_of(build_snp_plan(image_of(elsewhere), o)),
              HasSubstr("with the hash table at GPA 0x80fc00 (size 0x400)"));
}

TEST(SnpPlan, RejectsFirmwareWithoutSevMetadataOrResetBlock) {
  EXPECT_THAT(error_of(build_snp_plan(image_of(OvmfImageBuilder().reset_eip(0x80b004)), qemu(1))),
              HasSubstr("has no SEV metadata"));
  OvmfImageBuilder no_reset;
  no_reset.sev_metadata({{0x800000, 0x1000, 1}});
  EXPECT_THAT(error_of(build_snp_plan(image_of(no_reset), qemu(1))),
              HasSubstr("no SEV-ES reset block"));
  OvmfImageBuilder zero_eip;
  zero_eip.reset_eip(0).sev_metadata({{0x800000, 0x1000, 1}});
  EXPECT_TRUE(build_snp_plan(image_of(zero_eip), qemu(1)).ok());
  EXPECT_THAT(error_of(build_snp_plan(image_of(zero_eip), qemu(2))),
              HasSubstr("AP reset EIP 0, so only one vCPU can start"));
}

TEST(SnpPlan, RejectsQemuWithoutAVcpuSignature) {
  SnpLaunchOptions o;
  o.vcpus = 1;
  EXPECT_THAT(error_of(build_snp_plan(image_of(::cloister::testing::amdsev_like_image()), o)),
              HasSubstr("VMM type QEMU puts the vCPU signature in the VMSA"));
}

TEST(SnpPlan, RejectsMetadataOverlappingTheFirmware) {
  OvmfImageBuilder b(0x4000);
  b.reset_eip(0x80b004).sev_metadata({{0xffffe000, 0x1000, 1}});
  auto r = build_snp_plan(image_of(b), qemu(1));
  EXPECT_THAT(error_of(r), HasSubstr("overlaps launch op 0 (firmware"));
}

TEST(SnpPlan, RejectsFirmwareThatIsNotWholePages) {
  Bytes bytes = ::cloister::testing::amdsev_like_image().build();
  bytes.insert(bytes.begin(), 0x5a);
  auto image = OvmfImage::parse(std::make_shared<const Bytes>(bytes));
  ASSERT_TRUE(image.ok()) << image.error().message();
  EXPECT_THAT(error_of(build_snp_plan(*image, qemu(1))),
              HasSubstr("its size must be a non-zero multiple of 4096"));
}

TEST(SnpPlan, SvsmModeChecksItsInputs) {
  const OvmfImage ovmf = image_of(::cloister::testing::amdsev_like_image());
  OvmfImageBuilder svsm_builder(0x3000);
  svsm_builder.svsm_entry(0x1000).sev_metadata({{0x0, 0x9e000, 1}, {0x9e000, 0x1000, 2}});
  const OvmfImage svsm = image_of(svsm_builder);
  SnpLaunchOptions o = qemu(2);
  o.mode = SnpMode::kSvsm;
  EXPECT_THAT(error_of(build_snp_plan(ovmf, o)), HasSubstr("needs the SVSM image (--svsm)"));
  o.svsm = &svsm;
  EXPECT_THAT(error_of(build_snp_plan(ovmf, o)), HasSubstr("OVMF_VARS size 0 is not a non-zero"));
  o.vars_size = 0x1001;
  EXPECT_THAT(error_of(build_snp_plan(ovmf, o)),
              HasSubstr("OVMF_VARS size 4097 is not a non-zero multiple of 4096"));
  o.vars_size = 0xffffc000;
  EXPECT_THAT(error_of(build_snp_plan(ovmf, o)), HasSubstr("do not fit below OVMF"));
  o.vars_size = 0x2000;
  o.vmm = *find_vmm_profile("gce");
  EXPECT_THAT(error_of(build_snp_plan(ovmf, o)), HasSubstr("only defined for QEMU"));
  o.vmm = vmm_profiles()[0];
  auto plan = build_snp_plan(ovmf, o);
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  // OVMF, SVSM (ending below 8 KiB of vars), 2 SVSM sections, 2 VMSAs.
  ASSERT_EQ(plan->ops().size(), 6u);
  EXPECT_EQ(plan->ops()[1].gpa, 0xffffc000u - 0x2000u - 0x3000u);
  auto vmsa = decode_vmsa(plan->ops()[4].data);
  ASSERT_TRUE(vmsa.ok());
  EXPECT_EQ(vmsa->rip, 0xffffc000u - 0x2000u - 0x3000u + 0x1000u);
  EXPECT_EQ(vmsa->cs, (VmcbSegment{8, 0xc9b, 0xffffffff, 0}));
  EXPECT_EQ(vmsa->x87_fcw, 0);
  EXPECT_EQ(plan->ops()[4].data.data(), plan->ops()[5].data.data());

  OvmfImageBuilder no_entry(0x3000);
  no_entry.sev_metadata({{0x0, 0x1000, 1}});
  const OvmfImage bad_svsm = image_of(no_entry);
  o.svsm = &bad_svsm;
  EXPECT_THAT(error_of(build_snp_plan(ovmf, o)), HasSubstr("has no SVSM info entry"));
}

TEST(SnpPlan, DebianOvmfPlanFacts) {
  CLOISTER_REQUIRE_VECTOR(path, "measure/debian12_OVMF.fd");
  auto image =
      OvmfImage::parse(std::make_shared<const Bytes>(::cloister::testing::read_vector(path)));
  ASSERT_TRUE(image.ok());
  auto plan = build_snp_plan(*image, qemu(64));
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->ops().size(), 1u + 5u + 64u);
  EXPECT_EQ(plan->ops()[0].gpa, 0xffe00000u);
  EXPECT_EQ(plan->ops()[0].page_count(), 512u);
  EXPECT_EQ(plan->vcpu_count(), 64u);
}

}  // namespace
}  // namespace cloister::fw
