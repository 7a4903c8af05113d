// plan_launch(): every check of the launch inputs by its message, and what the inputs become.
#include "cloister/firmware_loader/launch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cloister/firmware_loader/tdx.h"
#include "cloister/firmware_loader/vmsa.h"
#include "igvm_writer.h"
#include "ovmf_builder.h"
#include "test_util.h"

namespace cloister::fw {
namespace {

using ::cloister::testing::error_of;
using ::cloister::testing::IgvmWriter;
using ::cloister::testing::OvmfImageBuilder;
using ::testing::HasSubstr;

LaunchFile file(const std::string& name, Bytes bytes) {
  return {name, std::make_shared<const Bytes>(std::move(bytes))};
}

// A launchable SNP input: the AmdSev-like firmware, 2 vCPUs, EPYC-Milan.
LaunchInputs snp_inputs() {
  LaunchInputs in;
  in.firmware = file("--ovmf amdsev.fd", ::cloister::testing::amdsev_like_image().build());
  in.vcpus = 2;
  in.vcpu_signature.type = "EPYC-Milan";
  return in;
}

LaunchInputs tdx_inputs() {
  LaunchInputs in;
  in.tee = Tee::kTdx;
  in.firmware = file("--ovmf tdvf.fd", ::cloister::testing::tdvf_like_image().build());
  return in;
}

Bytes vmsa_page() {
  VmsaRegisters r;
  r.sev_features = 1;
  const VmsaPage p = encode_vmsa(r);
  return Bytes(p.begin(), p.end());
}

// An IGVM file for both TEEs with `vps` SNP VP contexts.
Bytes igvm_bytes(std::uint16_t vps = 1) {
  IgvmWriter w;
  w.platform(IgvmWriter::kSnpMask, 2)
      .platform(IgvmWriter::kTdxMask, 3)
      .page_data(0x100000, Bytes(kPageSize, 7))
      .page_data(0x100000, Bytes(kPageSize, 7), 0, 0, IgvmWriter::kTdxMask);
  const Bytes vmsa = vmsa_page();
  for (std::uint16_t i = 0; i < vps; ++i) w.vp_context(kSnpVmsaGpa, i, vmsa);
  return w.build();
}

TEST(PlanLaunch, NeedsFirmwareOrIgvm) {
  LaunchInputs snp = snp_inputs();
  snp.firmware.reset();
  EXPECT_EQ(error_of(plan_launch(snp)),
            "missing --ovmf PATH (or --igvm PATH): the firmware to measure");
  LaunchInputs tdx = tdx_inputs();
  tdx.firmware.reset();
  EXPECT_EQ(error_of(plan_launch(tdx)),
            "missing --ovmf PATH (or --igvm PATH): the TDVF firmware to measure");
}

TEST(PlanLaunch, AnIgvmFileFixesWhatTheFirmwareInputsWould) {
  struct Case {
    const char* name;
    void (*set)(LaunchInputs&);
    const char* error;
  };
  const Case cases[] = {
      {"firmware",
       [](LaunchInputs& in) {
         in.firmware = LaunchFile{"--ovmf x", nullptr};
       },
       "--ovmf does not apply to --igvm: the IGVM file itself fixes the pages and VMSAs; drop it"},
      {"cmdline", [](LaunchInputs& in) { in.direct_boot.cmdline = ""; },
       "--kernel/--initrd/--append does not apply to --igvm"},
      {"signature", [](LaunchInputs& in) { in.vcpu_signature.signature = 0; },
       "--vcpu-type/--vcpu-sig/--vcpu-family does not apply to --igvm"},
      {"vmm", [](LaunchInputs& in) { in.vmm = cloister_vmm_profile(); },
       "--vmm-type does not apply to --igvm"},
      {"features", [](LaunchInputs& in) { in.guest_features = 1; },
       "--guest-features does not apply to --igvm"},
      {"digest", [](LaunchInputs& in) { in.firmware_digest = Sha384Digest{}; },
       "--snp-ovmf-hash does not apply to --igvm"},
      {"vars", [](LaunchInputs& in) { in.vars_size = 0x1000; },
       "--svsm/--vars-size/--vars-file does not apply to --igvm"},
      {"mode", [](LaunchInputs& in) { in.snp_mode = SnpMode::kSvsm; },
       "--igvm is measured in mode snp, not snp:svsm"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    LaunchInputs in;
    in.igvm = file("--igvm g.igvm", igvm_bytes());
    c.set(in);
    EXPECT_THAT(error_of(plan_launch(in)), HasSubstr(c.error));
  }
  LaunchInputs tdx;
  tdx.tee = Tee::kTdx;
  tdx.igvm = file("--igvm g.igvm", igvm_bytes());
  tdx.firmware = LaunchFile{"--ovmf x", nullptr};
  EXPECT_EQ(error_of(plan_launch(tdx)),
            "--ovmf does not apply to --igvm: the IGVM file itself fixes the pages and carries no "
            "TD HOB; drop it");
  tdx.firmware.reset();
  tdx.memory_bytes = 64ull << 20;
  EXPECT_EQ(error_of(plan_launch(tdx)),
            "--memory does not apply to --igvm: the IGVM file itself fixes the pages and carries "
            "no TD HOB; drop it");
}

TEST(PlanLaunch, ATdHasNoneOfTheSnpInputs) {
  struct Case {
    const char* name;
    void (*set)(LaunchInputs&);
    const char* error;
  };
  const Case cases[] = {
      {"mode", [](LaunchInputs& in) { in.snp_mode = SnpMode::kFirmwareOnly; }, "--mode"},
      {"signature", [](LaunchInputs& in) { in.vcpu_signature.type = "EPYC"; },
       "--vcpu-type/--vcpu-sig/--vcpu-family"},
      {"vmm", [](LaunchInputs& in) { in.vmm = cloister_vmm_profile(); }, "--vmm-type"},
      {"features", [](LaunchInputs& in) { in.guest_features = 1; }, "--guest-features"},
      {"kernel",
       [](LaunchInputs& in) {
         in.direct_boot.kernel = LaunchFile{"--kernel k", {}};
       },
       "--kernel/--initrd/--append (TDVF measures a kernel into RTMRs)"},
      {"digest", [](LaunchInputs& in) { in.firmware_digest = Sha384Digest{}; }, "--snp-ovmf-hash"},
      {"svsm",
       [](LaunchInputs& in) {
         in.svsm = LaunchFile{"--svsm s", {}};
       },
       "--svsm/--vars-size/--vars-file"},
      {"zero pages", [](LaunchInputs& in) { in.igvm_zero_pages = IgvmZeroPages::kNormalZero; },
       "--igvm-zero-pages"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    LaunchInputs in = tdx_inputs();
    c.set(in);
    EXPECT_EQ(error_of(plan_launch(in)),
              std::string(c.error) + " applies to SEV-SNP only; drop it for TDX");
  }
  LaunchInputs snp = snp_inputs();
  snp.page_order = TdxPageOrder::kTwoPass;
  EXPECT_EQ(error_of(plan_launch(snp)), "--page-order applies to TDX only; drop it for SEV-SNP");
  snp.page_order = TdxPageOrder::kSinglePass;
  snp.memory_bytes = 64ull << 20;
  EXPECT_EQ(error_of(plan_launch(snp)),
            "--memory applies to TDX only (the TD HOB); drop it for SEV-SNP");
}

TEST(PlanLaunch, AtMost254Vcpus) {
  for (LaunchInputs in : {snp_inputs(), tdx_inputs()}) {
    in.vcpus = kMaxVcpus + 1;
    EXPECT_EQ(error_of(plan_launch(in)),
              "--vcpus 255 is more than the 254 vCPUs cloister-vmm runs (xAPIC IDs are 8 bits)");
    in.vcpus = kMaxVcpus;
    EXPECT_TRUE(plan_launch(in).ok());
  }
  LaunchInputs igvm;
  igvm.igvm = file("--igvm big.igvm", igvm_bytes(255));
  EXPECT_EQ(error_of(plan_launch(igvm)),
            "--igvm big.igvm: VP contexts for 255 vCPUs, more than the 254 cloister-vmm runs "
            "(xAPIC IDs are 8 bits): rebuild the file for fewer");
}

TEST(PlanLaunch, SnpFirmwareChecks) {
  LaunchInputs initrd = snp_inputs();
  initrd.direct_boot.initrd = LaunchFile{"--initrd i", nullptr};
  EXPECT_EQ(error_of(plan_launch(initrd)),
            "--initrd and --append need --kernel: give the kernel they boot with");
  LaunchInputs append = snp_inputs();
  append.direct_boot.cmdline = "console=ttyS0";
  EXPECT_EQ(error_of(plan_launch(append)), error_of(plan_launch(initrd)));
  LaunchInputs empty_append = snp_inputs();
  empty_append.direct_boot.cmdline = "";
  EXPECT_TRUE(plan_launch(empty_append).ok()) << "an empty command line needs no kernel";

  LaunchInputs vcpus = snp_inputs();
  vcpus.vcpus.reset();
  vcpus.snp_mode = SnpMode::kSvsm;
  EXPECT_EQ(error_of(plan_launch(vcpus)), "missing --vcpus N in guest mode 'snp:svsm'");

  LaunchInputs digest = snp_inputs();
  digest.snp_mode = SnpMode::kSvsm;
  digest.firmware_digest = Sha384Digest{};
  EXPECT_EQ(error_of(plan_launch(digest)), "--snp-ovmf-hash only works with --mode snp");

  LaunchInputs svsm = snp_inputs();
  svsm.snp_mode = SnpMode::kSvsm;
  EXPECT_EQ(error_of(plan_launch(svsm)),
            "snp:svsm mode needs --svsm PATH (the COCONUT-SVSM binary)");
  svsm.svsm = LaunchFile{"--svsm s", nullptr};
  EXPECT_EQ(error_of(plan_launch(svsm)),
            "snp:svsm mode needs --vars-size SIZE or --vars-file PATH (OVMF_VARS)");

  LaunchInputs firmware_only = snp_inputs();
  firmware_only.snp_mode = SnpMode::kFirmwareOnly;
  firmware_only.vcpus.reset();
  firmware_only.direct_boot.initrd = LaunchFile{"--initrd i", nullptr};
  auto plan = plan_launch(firmware_only);
  ASSERT_TRUE(plan.ok()) << "snp:ovmf-hash measures the firmware alone, as sev-snp-measure: "
                         << plan.error().message();
  EXPECT_EQ(plan->ops().size(), 1u);
}

TEST(PlanLaunch, VcpuSignatureOneWayOnly) {
  EXPECT_EQ(resolve_vcpu_signature({}).value(), std::nullopt);
  EXPECT_EQ(resolve_vcpu_signature({.type = "EPYC-Milan"}).value(), 0xa00f11u);
  EXPECT_EQ(resolve_vcpu_signature({.signature = 0}).value(), 0u);
  EXPECT_EQ(resolve_vcpu_signature({.family = 25, .model = 1, .stepping = 1}).value(), 0xa00f11u);
  EXPECT_EQ(error_of(resolve_vcpu_signature({.type = "EPYC", .signature = 1})),
            "give the vCPU signature one way only: --vcpu-type, --vcpu-sig, or "
            "--vcpu-family/--vcpu-model/--vcpu-stepping");
  EXPECT_EQ(error_of(resolve_vcpu_signature({.family = 25})),
            "--vcpu-family, --vcpu-model and --vcpu-stepping go together: give all three");
  EXPECT_EQ(error_of(resolve_vcpu_signature({.family = 271, .model = 0, .stepping = 0})),
            "--vcpu-family/--vcpu-model/--vcpu-stepping out of range (family 0..270, model "
            "0..255, stepping 0..15)");
  EXPECT_THAT(error_of(resolve_vcpu_signature({.type = "EPYC-Venice"})),
              HasSubstr("unknown vCPU type 'EPYC-Venice'"));
  LaunchInputs in = snp_inputs();
  in.vcpu_signature.signature = 1;
  EXPECT_THAT(error_of(plan_launch(in)), HasSubstr("give the vCPU signature one way only"));
}

TEST(PlanLaunch, FilesAreNamedInTheirErrors) {
  LaunchInputs unread = snp_inputs();
  unread.firmware->bytes.reset();
  EXPECT_EQ(error_of(plan_launch(unread)),
            "--ovmf amdsev.fd: no contents given; read the file first");
  LaunchInputs malformed = snp_inputs();
  malformed.firmware = file("firmware /srv/x.fd", Bytes(0x1000, 0));
  EXPECT_THAT(error_of(plan_launch(malformed)), HasSubstr("firmware /srv/x.fd: "));
  LaunchInputs tdx = tdx_inputs();
  tdx.memory_bytes = 0x400000;
  EXPECT_THAT(error_of(plan_launch(tdx)),
              HasSubstr("--ovmf tdvf.fd: TDVF section 2 (TempMem) at [0x810000, 0x820000) is "
                        "not inside guest RAM"));
  LaunchInputs igvm;
  igvm.tee = Tee::kTdx;
  igvm.igvm = file("--igvm snp-only.igvm", IgvmWriter().platform(1, 2).build());
  EXPECT_THAT(error_of(plan_launch(igvm)),
              HasSubstr("--igvm snp-only.igvm: IGVM file has no TDX SUPPORTED_PLATFORM header"));
}

TEST(PlanLaunch, IgvmVcpusMustMatchTheVpContexts) {
  LaunchInputs in;
  in.igvm = file("--igvm g.igvm", igvm_bytes(2));
  in.vcpus = 3;
  EXPECT_EQ(error_of(plan_launch(in)),
            "--vcpus 3 but the IGVM file has VP contexts for 2 vCPUs: drop --vcpus or rebuild "
            "the file");
  in.vcpus = 2;
  auto plan = plan_launch(in);
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->vcpu_count(), 2u);
}

// cloister-vmm is the default VMM: its VMSAs are the cloister profile's (QEMU's registers).
TEST(PlanLaunch, SnpDefaultsAreCloisterVmmsAndTheInputsArePassedOn) {
  LaunchInputs in = snp_inputs();
  in.direct_boot.kernel = file("--kernel k", Bytes{'k'});
  in.direct_boot.cmdline = "quiet";
  auto plan = plan_launch(in);
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  SnpLaunchOptions o;
  o.vcpus = 2;
  o.vcpu_signature = 0xa00f11;
  o.vmm = cloister_vmm_profile();
  o.kernel_hashes = SevHashes::compute(Bytes{'k'}, {}, "quiet");
  auto image = OvmfImage::parse(in.firmware->bytes);
  ASSERT_TRUE(image.ok());
  auto expected = build_snp_plan(*image, o);
  ASSERT_TRUE(expected.ok());
  ASSERT_EQ(plan->ops().size(), expected->ops().size());
  for (std::size_t i = 0; i < plan->ops().size(); ++i) {
    const LaunchOp& a = plan->ops()[i];
    const LaunchOp& b = expected->ops()[i];
    EXPECT_EQ(a.gpa, b.gpa);
    EXPECT_EQ(a.type, b.type);
    EXPECT_TRUE(std::equal(a.data.begin(), a.data.end(), b.data.begin(), b.data.end())) << i;
  }
  ASSERT_TRUE(plan->snp().kernel_hashes.has_value());
  EXPECT_EQ(plan->snp().kernel_hashes->kernel, sha256(Bytes{'k'}));
  EXPECT_EQ(plan->snp().kernel_hashes->initrd, sha256({}));
  EXPECT_EQ(plan->snp().vmsa_features, 0x1u);
}

TEST(PlanLaunch, TdxDefaultsAndInputs) {
  auto plan = plan_launch(tdx_inputs());
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->vcpu_count(), 1u);
  EXPECT_EQ(plan->tdx_page_order(), TdxPageOrder::kSinglePass);
  const auto image = OvmfImage::parse(tdx_inputs().firmware->bytes);
  ASSERT_TRUE(image.ok());
  LaunchInputs in = tdx_inputs();
  in.vcpus = 4;
  in.memory_bytes = 6ull << 30;
  in.page_order = TdxPageOrder::kTwoPass;
  auto given = plan_launch(in);
  ASSERT_TRUE(given.ok()) << given.error().message();
  auto expected = build_tdx_plan(*image, {TdxPageOrder::kTwoPass, 6ull << 30, 4});
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(given->vcpu_count(), 4u);
  EXPECT_EQ(given->tdx_page_order(), TdxPageOrder::kTwoPass);
  ASSERT_EQ(given->ops().size(), expected->ops().size());
  for (std::size_t i = 0; i < given->ops().size(); ++i) {
    const LaunchOp& a = given->ops()[i];
    const LaunchOp& b = expected->ops()[i];
    EXPECT_TRUE(std::equal(a.data.begin(), a.data.end(), b.data.begin(), b.data.end())) << i;
  }

  LaunchInputs igvm;
  igvm.tee = Tee::kTdx;
  igvm.igvm = file("--igvm g.igvm", igvm_bytes());
  igvm.vcpus = 3;
  auto from_igvm = plan_launch(igvm);
  ASSERT_TRUE(from_igvm.ok()) << from_igvm.error().message();
  EXPECT_EQ(from_igvm->vcpu_count(), 3u);
  ASSERT_EQ(from_igvm->ops().size(), 1u);
  EXPECT_TRUE(from_igvm->ops()[0].tdx_extend);
}

}  // namespace
}  // namespace cloister::fw
