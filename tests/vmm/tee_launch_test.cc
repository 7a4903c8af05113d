// The snp and tdx backends launching through the whole builder (or, for measured direct boot, the
// backend alone) over the recording ioctl layer: the command sequence against QEMU's order
// (research/vmm.md §a.6, §a.8), the payloads against the LaunchPlan, and the measurement KVM and
// the secure processor would compute from what was recorded against what the VMM reports and
// what cloister-measure computes.
#include <gtest/gtest.h>
#include <linux/kvm.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "cloister/firmware_loader/ovmf.h"
#include "cloister/firmware_loader/snp.h"
#include "cloister/firmware_loader/tdx.h"
#include "cloister/firmware_loader/vmsa.h"
#include "cloister/measure/snp_digest.h"
#include "cloister/measure/tdx_mrtd.h"
#include "cloister/vmm/arch/x86/vmsa_state.h"
#include "cloister/vmm/builder.h"
#include "cloister/vmm/hypervisor/kvm.h"
#include "cloister/vmm/hypervisor/kvm_abi.h"
#include "igvm_writer.h"
#include "kvm_recorder.h"
#include "ovmf_builder.h"

namespace cloister::vmm {
namespace {

using testing::KvmRecorder;
using testing::RecordedCall;

template <typename T>
T as(const Bytes& bytes) {
  T value{};
  std::memcpy(&value, bytes.data(), std::min(sizeof(T), bytes.size()));
  return value;
}

std::string temp_file(const std::string& name, ByteView bytes) {
  const std::string path = ::testing::TempDir() + "/cloister-tee-launch-" + name;
  EXPECT_TRUE(write_file_atomic(path, bytes).ok());
  return path;
}

VmConfig base_config(TeeKind kind, std::uint32_t vcpus) {
  VmConfig config;
  config.tee.kind = kind;
  config.vcpus = vcpus;
  config.memory_bytes = 64ull << 20;
  config.console.kind = ConsoleKind::kNone;
  config.seccomp = false;
  return config;
}

// The SNP launch plan of the AmdSev-like test image for one EPYC-v4 vCPU: what the IGVM files
// of these tests are made of.
fw::LaunchPlan amdsev_snp_plan() {
  const Bytes image = testing::amdsev_like_image(0x8000).build();
  auto ovmf = fw::OvmfImage::parse(std::make_shared<const Bytes>(image));
  EXPECT_TRUE(ovmf.ok());
  fw::SnpLaunchOptions options;
  options.vcpus = 1;
  options.vcpu_signature = *fw::vcpu_signature("EPYC-v4");
  return fw::build_snp_plan(ovmf.value(), options).value();
}

struct Launched {
  KvmRecorder recorder;
  std::unique_ptr<Vmm> vmm;
};

void build(Launched& out, const VmConfig& config) {
  Logger log(LogFormat::kText, LogLevel::kError);
  static Metrics metrics;
  auto inputs = load_vm_inputs(config);
  ASSERT_TRUE(inputs.ok()) << inputs.error().message();
  auto vmm = build_vmm(config, std::move(*inputs), log, metrics,
                       [&] { return open_kvm("/dev/kvm", out.recorder); });
  ASSERT_TRUE(vmm.ok()) << vmm.error().message();
  out.vmm = std::move(vmm).value();
}

std::size_t first(const std::vector<std::string>& names, const std::string& name) {
  return static_cast<std::size_t>(std::find(names.begin(), names.end(), name) - names.begin());
}

std::size_t last(const std::vector<std::string>& names, const std::string& name) {
  auto it = std::find(names.rbegin(), names.rend(), name);
  return it == names.rend() ? names.size() : static_cast<std::size_t>(names.rend() - it - 1);
}

kvm_segment sreg_segment(const kvm_sregs& s, int which) {
  const kvm_segment* all[] = {&s.cs, &s.ds, &s.es, &s.fs, &s.gs, &s.ss, &s.tr, &s.ldt};
  return *all[which];
}

fw::VmcbSegment vmcb(const kvm_segment& s) {
  x86::Segment seg;
  seg.type = s.type, seg.s = s.s, seg.dpl = s.dpl, seg.present = s.present, seg.avl = s.avl;
  seg.l = s.l, seg.db = s.db, seg.g = s.g, seg.unusable = s.unusable;
  return {s.selector, x86::vmcb_attributes(seg), s.limit, s.base};
}

// What KVM's sev_es_sync_vmsa() writes into the VMSA of a vCPU in the recorded state, adding
// EFER.SVME, CR4.MCE and the VM's SEV features (SNP_ACTIVE included).
fw::VmsaPage vmsa_from_recorded(const KvmRecorder::VcpuState& state, std::uint64_t sev_features) {
  const auto r = as<kvm_regs>(state.regs);
  const auto s = as<kvm_sregs>(state.sregs);
  const auto f = as<kvm_fpu>(state.fpu);
  const auto x = as<kvm_xcrs>(state.xcrs);
  const auto d = as<kvm_debugregs>(state.debugregs);
  fw::VmsaRegisters v;
  v.cs = vmcb(sreg_segment(s, 0)), v.ds = vmcb(sreg_segment(s, 1)), v.es = vmcb(sreg_segment(s, 2));
  v.fs = vmcb(sreg_segment(s, 3)), v.gs = vmcb(sreg_segment(s, 4)), v.ss = vmcb(sreg_segment(s, 5));
  v.tr = vmcb(sreg_segment(s, 6)), v.ldtr = vmcb(sreg_segment(s, 7));
  v.gdtr = {0, 0, s.gdt.limit, s.gdt.base};
  v.idtr = {0, 0, s.idt.limit, s.idt.base};
  v.efer = s.efer | x86::kEferSvme;
  v.cr0 = s.cr0, v.cr3 = s.cr3, v.cr4 = s.cr4 | x86::kCr4Mce;
  v.dr6 = d.dr6, v.dr7 = d.dr7;
  v.rflags = r.rflags, v.rip = r.rip, v.rsp = r.rsp;
  v.rax = r.rax, v.rbx = r.rbx, v.rcx = r.rcx, v.rdx = r.rdx;
  v.rsi = r.rsi, v.rdi = r.rdi, v.rbp = r.rbp;
  v.r8_r15 = {r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15};
  v.g_pat = state.msrs.at(x86::kMsrIa32Pat);
  v.sev_features = sev_features;
  v.xcr0 = x.xcrs[0].value;
  v.mxcsr = f.mxcsr;
  v.x87_fcw = f.fcw;
  return fw::encode_vmsa(v);
}

// The SNP launch digest of what was recorded: every LAUNCH_UPDATE page with its type, then each
// vCPU's VMSA as KVM builds it (SNP ABI §8.17.2; measure/snp_digest.h).
Sha384Digest recorded_snp_digest(const KvmRecorder& recorder, std::uint32_t vcpus) {
  measure::SnpLaunchDigest digest;
  for (const RecordedCall& call : recorder.named("KVM_SEV_SNP_LAUNCH_UPDATE")) {
    const auto update = as<kvm_abi::SnpLaunchUpdate>(call.payload);
    for (std::size_t i = 0; i * 4096 < call.data.size(); ++i) {
      const std::uint64_t gpa = update.gfn_start * 4096 + i * 4096;
      if (update.type == 1)
        digest.update_page(fw::PageType::kNormal, gpa, ByteView(call.data).subspan(i * 4096, 4096));
      else
        digest.update(update.type == 3   ? fw::PageType::kZero
                      : update.type == 4 ? fw::PageType::kUnmeasured
                      : update.type == 5 ? fw::PageType::kSecrets
                                         : fw::PageType::kCpuid,
                      gpa, {});
    }
  }
  const auto init = as<kvm_abi::SevInit>(recorder.named("KVM_SEV_INIT2").at(0).payload);
  for (std::uint32_t id = 0; id < vcpus; ++id) {
    const fw::VmsaPage page = vmsa_from_recorded(recorder.vcpu_state(id), init.vmsa_features | 1);
    digest.update_page(fw::PageType::kVmsa, fw::kSnpVmsaGpa, page);
  }
  return digest.digest();
}

TEST(TeeLaunchTest, SnpOvmfLaunchFollowsQemusOrderAndMeasuresWhatWasLoaded) {
  const Bytes image = testing::amdsev_like_image(0x8000).build();
  VmConfig config = base_config(TeeKind::kSnp, 2);
  config.boot.firmware = temp_file("amdsev.fd", image);
  config.tee.policy = 0x30000;
  config.tee.host_data.fill(0x5c);
  config.tee.vcpu_type = "EPYC-Milan";
  Launched l;
  build(l, config);
  const auto names = l.recorder.names(/*collapse=*/true);

  // QEMU's order (research/vmm.md §a.6): the VM and its SEV context before anything else,
  // MAP_GPA_RANGE exits before the guest context, vCPUs only after LAUNCH_START, every page
  // before LAUNCH_FINISH, which ends the launch.
  ASSERT_EQ(names.at(0), "open /dev/sev");
  EXPECT_EQ(names.at(1), "KVM_CREATE_VM");
  EXPECT_EQ(l.recorder.named("KVM_CREATE_VM").at(0).value, kvm_abi::kX86SnpVm);
  const std::vector<std::string> before_memory = {"KVM_SET_IDENTITY_MAP_ADDR", "KVM_SET_TSS_ADDR",
                                                  "KVM_SEV_INIT2", "KVM_ENABLE_CAP",
                                                  "KVM_SEV_SNP_LAUNCH_START"};
  EXPECT_EQ(std::vector<std::string>(names.begin() + 2, names.begin() + 7), before_memory);
  EXPECT_LT(first(names, "KVM_SEV_SNP_LAUNCH_START"), first(names, "KVM_CREATE_GUEST_MEMFD"));
  EXPECT_LT(first(names, "KVM_SEV_SNP_LAUNCH_START"), first(names, "KVM_CREATE_VCPU"));
  EXPECT_LT(last(names, "KVM_SEV_SNP_LAUNCH_UPDATE"), first(names, "KVM_SEV_SNP_LAUNCH_FINISH"));
  EXPECT_LT(last(names, "KVM_SET_MSRS"), first(names, "KVM_SEV_SNP_LAUNCH_FINISH"));
  EXPECT_EQ(names.back(), "KVM_SEV_SNP_LAUNCH_FINISH");

  // Every RAM slot is guest_memfd-backed.
  for (const RecordedCall& call : l.recorder.named("KVM_SET_USER_MEMORY_REGION2"))
    EXPECT_EQ(as<kvm_abi::UserspaceMemoryRegion2>(call.payload).flags & kvm_abi::kMemGuestMemfd,
              kvm_abi::kMemGuestMemfd);
  EXPECT_TRUE(l.recorder.named("KVM_SET_USER_MEMORY_REGION").empty());

  // The payloads are the plan's: INIT2 without SNP_ACTIVE, the policy, the host data.
  const auto init = as<kvm_abi::SevInit>(l.recorder.named("KVM_SEV_INIT2").at(0).payload);
  EXPECT_EQ(init.vmsa_features, 0u);  // guest features 0x1 = SNP_ACTIVE only
  EXPECT_EQ(as<kvm_abi::SnpLaunchStart>(l.recorder.named("KVM_SEV_SNP_LAUNCH_START").at(0).payload)
                .policy,
            0x30000u);
  const auto finish =
      as<kvm_abi::SnpLaunchFinish>(l.recorder.named("KVM_SEV_SNP_LAUNCH_FINISH").at(0).payload);
  EXPECT_EQ(finish.host_data[0], 0x5c);
  EXPECT_EQ(finish.id_block_en, 0);

  // Each update was preceded by making its range private.
  std::size_t attribute_calls = 0;
  for (const RecordedCall& call : l.recorder.calls()) {
    if (call.name == "KVM_SET_MEMORY_ATTRIBUTES") {
      EXPECT_EQ(as<kvm_abi::MemoryAttributes>(call.payload).attributes,
                kvm_abi::kMemoryAttributePrivate);
      ++attribute_calls;
    }
  }
  // The plan: the firmware, then SNP_SEC_MEM, SECRETS, CPUID, SVSM_CAA, KERNEL_HASHES (zero).
  EXPECT_EQ(attribute_calls, 6u);

  // What the firmware would measure from the recorded commands and vCPU state is what the VMM
  // reports, and what cloister-measure computes for the same inputs.
  auto ovmf = fw::OvmfImage::parse(std::make_shared<const Bytes>(image));
  ASSERT_TRUE(ovmf.ok());
  fw::SnpLaunchOptions options;
  options.vcpus = 2;
  options.vcpu_signature = *fw::vcpu_signature("EPYC-Milan");
  auto plan = fw::build_snp_plan(*ovmf, options);
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  const Sha384Digest expected = *measure::snp_launch_digest(*plan);
  EXPECT_EQ(recorded_snp_digest(l.recorder, 2), expected);
  const auto info = l.vmm->info();
  EXPECT_EQ(info["measurement"]["digest"], to_hex(expected));
  EXPECT_EQ(info["measurement"]["name"], "measurement");
  EXPECT_EQ(info["launch"]["policy"], "0x30000");
  EXPECT_EQ(info["launch"]["debug"], false);
}

TEST(TeeLaunchTest, SnpCpuidPageIsTheVmsCpuidAndARejectionIsRetriedWithTheFirmwaresPage) {
  const Bytes image = testing::amdsev_like_image(0x8000).build();
  VmConfig config = base_config(TeeKind::kSnp, 1);
  config.boot.firmware = temp_file("amdsev-cpuid.fd", image);
  Launched l;
  l.recorder.reject_first_cpuid_page = true;
  build(l, config);
  const auto rejected = l.recorder.named("KVM_SEV_SNP_LAUNCH_UPDATE (rejected)");
  ASSERT_EQ(rejected.size(), 1u);
  // Linux struct snp_cpuid_table: the count, then one 48-byte entry per KVM CPUID entry that is
  // not all zeros (the recorder lists 67, like a real host more than the page's 64); leaf 0
  // first with its vendor string in EBX.
  EXPECT_EQ(load_le32(rejected[0].data, 0), 8u);
  EXPECT_EQ(load_le32(rejected[0].data, 16), 0u);
  EXPECT_EQ(load_le32(rejected[0].data, 16 + 28), 0x68747541u);  // "Auth"
  // The retry carried the firmware's page.
  bool retried = false;
  for (const RecordedCall& call : l.recorder.named("KVM_SEV_SNP_LAUNCH_UPDATE")) {
    if (as<kvm_abi::SnpLaunchUpdate>(call.payload).type != 6) continue;
    retried = true;
    EXPECT_EQ(call.data[16 + 24], rejected[0].data[16 + 24] ^ 0x01);
  }
  EXPECT_TRUE(retried);
}

TEST(TeeLaunchTest, SnpMeasuredDirectBootLoadsTheHashTableAsANormalPage) {
  const Bytes image = testing::amdsev_like_image(0x8000).build();
  auto ovmf = fw::OvmfImage::parse(std::make_shared<const Bytes>(image));
  ASSERT_TRUE(ovmf.ok());
  fw::SnpLaunchOptions options;
  options.vcpus = 1;
  options.vcpu_signature = *fw::vcpu_signature("EPYC-v4");
  const Bytes kernel(0x3000, 0x4b), initrd(0x1000, 0x49);
  options.kernel_hashes = fw::SevHashes::compute(kernel, initrd, "console=ttyS0");
  auto plan = fw::build_snp_plan(*ovmf, options);
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  const Sha384Digest expected = *measure::snp_launch_digest(*plan);

  KvmRecorder recorder;
  auto hv = open_kvm("/dev/kvm", recorder);
  ASSERT_TRUE(hv.ok());
  VmOptions vm_options;
  vm_options.machine_type = kvm_abi::kX86SnpVm;
  auto vm = (*hv)->create_vm(vm_options);
  ASSERT_TRUE(vm.ok());
  TeeConfig config;
  config.kind = TeeKind::kSnp;
  auto tee = make_tee_backend(config, *plan);
  ASSERT_TRUE(tee.ok()) << tee.error().message();
  ASSERT_TRUE((*tee)->init_vm(**vm).ok());
  RegionSpec ram{"ram", 0, 16ull << 20, false};
  auto memory = GuestMemory::create(std::span(&ram, 1), false);
  ASSERT_TRUE(memory.ok());
  auto memfd = (*vm)->create_guest_memfd(ram.size);
  ASSERT_TRUE(memfd.ok());
  ASSERT_TRUE(
      (*vm)->map_memory({0, 0, ram.size, memory->regions()[0].host, false, *memfd, 0}).ok());
  RegionSpec fw_spec{"firmware", (1ull << 32) - image.size(), image.size(), false};
  auto fw_memory = GuestMemory::create(std::span(&fw_spec, 1), false);
  ASSERT_TRUE(fw_memory.ok());
  auto fw_memfd = (*vm)->create_guest_memfd(image.size());
  ASSERT_TRUE(fw_memfd.ok());
  ASSERT_TRUE((*vm)
                  ->map_memory({1, fw_spec.guest_phys_addr, fw_spec.size,
                                fw_memory->regions()[0].host, false, *fw_memfd, 0})
                  .ok());
  auto vcpu = (*vm)->create_vcpu(0);
  ASSERT_TRUE(vcpu.ok());
  Vcpu* vcpus[] = {vcpu->get()};
  Logger log(LogFormat::kText, LogLevel::kError);
  LaunchContext ctx{**vm, vcpus, *memory, log};
  auto launched = (*tee)->launch(ctx);
  ASSERT_TRUE(launched.ok()) << launched.error().message();

  // SNP_KERNEL_HASHES (0x810000 in this image) is launched as NORMAL, the 176-byte SEV hash
  // table at the hash block's page offset 0xc00 (research/vmm.md §c.3).
  bool found = false;
  for (const RecordedCall& call : recorder.named("KVM_SEV_SNP_LAUNCH_UPDATE")) {
    const auto update = as<kvm_abi::SnpLaunchUpdate>(call.payload);
    if (update.gfn_start != 0x810) continue;
    found = true;
    EXPECT_EQ(update.type, 1);
    const auto table = fw::sev_hash_table(*options.kernel_hashes);
    EXPECT_TRUE(std::equal(table.begin(), table.end(), call.data.begin() + 0xc00));
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(recorded_snp_digest(recorder, 1), expected);
  EXPECT_EQ(to_hex((*tee)->measurement()->digest), to_hex(expected));
}

TEST(TeeLaunchTest, SnpIgvmLaunchCarriesTheFilesPolicyAndIdBlock) {
  // An SNP plan turned into an IGVM file with an ID block expecting its digest.
  const fw::LaunchPlan source = amdsev_snp_plan();
  const Sha384Digest ld = *measure::snp_launch_digest(source);
  const Bytes igvm = testing::igvm_from_snp_plan(source, 0x30000, ld);

  VmConfig config = base_config(TeeKind::kSnp, 1);
  config.boot.igvm = temp_file("guest.igvm", igvm);
  Launched l;
  build(l, config);
  EXPECT_EQ(as<kvm_abi::SnpLaunchStart>(l.recorder.named("KVM_SEV_SNP_LAUNCH_START").at(0).payload)
                .policy,
            0x30000u);
  const auto finish_call = l.recorder.named("KVM_SEV_SNP_LAUNCH_FINISH").at(0);
  const auto finish = as<kvm_abi::SnpLaunchFinish>(finish_call.payload);
  EXPECT_EQ(finish.id_block_en, 1);
  ASSERT_EQ(finish_call.data.size(), 96u + 4096u);
  EXPECT_TRUE(std::equal(ld.begin(), ld.end(), finish_call.data.begin()));  // ID block LD
  EXPECT_EQ(recorded_snp_digest(l.recorder, 1), ld);
  EXPECT_EQ(l.vmm->info()["measurement"]["digest"], to_hex(ld));
  EXPECT_EQ(l.vmm->info()["config"]["boot"]["igvm"], *config.boot.igvm);

  // An IGVM file fixes the vCPU count.
  VmConfig two = config;
  two.vcpus = 2;
  auto refused = load_vm_inputs(two);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(
      refused.error().message().find("--vcpus 2 but the IGVM file has VP contexts for 1 vCPUs"),
      std::string::npos)
      << refused.error().message();
}

// An IGVM file's REQUIRED_MEMORY ranges are backed (private memory, like its pages outside
// RAM); the part of a range inside RAM is RAM already.
TEST(TeeLaunchTest, IgvmRequiredMemoryOutsideRamIsBacked) {
  const fw::LaunchPlan source = amdsev_snp_plan();
  VmConfig config = base_config(TeeKind::kSnp, 1);  // 64 MiB of RAM
  const auto igvm_with = [&](std::uint64_t gpa, std::uint32_t size) {
    testing::IgvmWriter w;
    w.platform(testing::IgvmWriter::kSnpMask, 2).guest_policy(0x30000).snp_plan(source);
    w.required_memory(gpa, size);
    return temp_file("required.igvm", w.build());
  };
  config.boot.igvm = igvm_with((64ull << 20) - 0x1000, 0x3000);
  Launched l;
  build(l, config);
  bool backed = false;
  for (const RecordedCall& call : l.recorder.named("KVM_SET_USER_MEMORY_REGION2")) {
    const auto slot = as<kvm_abi::UserspaceMemoryRegion2>(call.payload);
    if (slot.guest_phys_addr != (64ull << 20)) continue;
    backed = true;
    EXPECT_EQ(slot.memory_size, 0x2000u);
    EXPECT_EQ(slot.flags, kvm_abi::kMemGuestMemfd);
  }
  EXPECT_TRUE(backed);

  // A required range over the VM's devices is refused before KVM is opened.
  config.boot.igvm = igvm_with(0xfec00000, 0x1000);
  auto inputs = load_vm_inputs(config);
  ASSERT_TRUE(inputs.ok()) << inputs.error().message();
  Logger log(LogFormat::kText, LogLevel::kError);
  Metrics metrics;
  KvmRecorder recorder;
  auto refused = build_vmm(config, std::move(*inputs), log, metrics,
                           [&] { return open_kvm("/dev/kvm", recorder); });
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message(),
            "launch plan: pages at [0xfec00000, 0xfec01000) overlap this VM's device window "
            "[0xfec00000, 0xfec01000)");
}

// load_vm_inputs() takes no hypervisor: what it refuses is refused before KVM is opened.
TEST(TeeLaunchTest, SnpPolicyConflictsAreRefusedWithTheInputs) {
  const Bytes image = testing::amdsev_like_image(0x8000).build();
  VmConfig config = base_config(TeeKind::kSnp, 1);
  config.boot.firmware = temp_file("amdsev-policy.fd", image);
  config.tee.policy = 0x10000;  // reserved bit 17 clear
  auto inputs = load_vm_inputs(config);
  ASSERT_FALSE(inputs.ok());
  EXPECT_EQ(inputs.error().message(),
            "tee.policy 0x10000: bit 17 is reserved and must be one (SNP ABI guest policy)");
}

TEST(TeeLaunchTest, TdxOvmfLaunchFollowsQemusOrder) {
  // TDVF-shaped: BFV (the image, MR.EXTEND), CFV (not extended), TD_HOB, TempMem.
  testing::OvmfImageBuilder builder(0x8000);
  builder.tdx_metadata({{0, 0x6000, 0xffff8000, 0x6000, 0, 1},
                        {0x6000, 0x1000, 0xffffe000, 0x1000, 1, 0},
                        {0, 0, 0x809000, 0x2000, 2, 0},
                        {0, 0, 0x80b000, 0x3000, 3, 0}});
  const Bytes image = builder.build();
  VmConfig config = base_config(TeeKind::kTdx, 2);
  config.boot.firmware = temp_file("tdvf.fd", image);
  config.tee.mr_config_id.fill(0xc0);
  Launched l;
  build(l, config);
  const auto names = l.recorder.names(true);
  // QEMU's order (research/vmm.md §a.8).
  EXPECT_EQ(names.at(0), "KVM_CREATE_VM");
  EXPECT_EQ(l.recorder.named("KVM_CREATE_VM").at(0).value, kvm_abi::kX86TdxVm);
  EXPECT_EQ(names.at(1), "KVM_TDX_CAPABILITIES");
  EXPECT_EQ(names.at(2), "KVM_ENABLE_CAP");
  EXPECT_EQ(names.at(3), "KVM_TDX_INIT_VM");
  EXPECT_LT(first(names, "KVM_TDX_INIT_VM"), first(names, "KVM_CREATE_VCPU"));
  EXPECT_LT(last(names, "KVM_TDX_INIT_VCPU"), first(names, "KVM_TDX_INIT_MEM_REGION"));
  EXPECT_EQ(names.back(), "KVM_TDX_FINALIZE_VM");
  EXPECT_TRUE(l.recorder.named("KVM_SET_TSS_ADDR").empty());
  EXPECT_TRUE(l.recorder.named("KVM_CREATE_IRQCHIP").empty());  // split irqchip instead

  // INIT_VM: QEMU's default attributes, MRCONFIGID, XFAM within the module's and the host's.
  kvm_abi::TdxInitVmHeader init;
  std::memcpy(&init, l.recorder.named("KVM_TDX_INIT_VM").at(0).payload.data(), sizeof init);
  EXPECT_EQ(init.attributes, 0x10000000u);
  EXPECT_EQ(init.xfam, 0x2e7u);
  EXPECT_EQ(init.mrconfigid[5], 0xc0c0c0c0c0c0c0c0u);
  // Every vCPU starts with RCX = the TD HOB's GPA.
  const auto init_vcpu = l.recorder.named("KVM_TDX_INIT_VCPU");
  ASSERT_EQ(init_vcpu.size(), 2u);
  EXPECT_EQ(init_vcpu[0].value, 0x809000u);
  EXPECT_EQ(init_vcpu[1].vcpu, 1u);

  // Sections in metadata order, MEASURE exactly for the BFV; the MRTD those commands produce
  // (PAGE.ADD per page, MR.EXTEND per 256-byte chunk when measured) is the plan's.
  measure::MrtdAccumulator mrtd;
  std::vector<std::uint64_t> measured_gpas;
  for (const RecordedCall& call : l.recorder.named("KVM_TDX_INIT_MEM_REGION")) {
    const auto region = as<kvm_abi::TdxInitMemRegion>(call.payload);
    const bool measured = call.value == kvm_abi::kTdxMeasureMemoryRegion;
    if (measured) measured_gpas.push_back(region.gpa);
    for (std::size_t i = 0; i * 4096 < call.data.size(); ++i) {
      const std::uint64_t gpa = region.gpa + i * 4096;
      mrtd.page_add(gpa);
      if (measured)
        for (std::size_t c = 0; c < 16; ++c)
          mrtd.mr_extend(gpa + c * 256, ByteView(call.data).subspan(i * 4096 + c * 256, 256));
    }
  }
  ASSERT_FALSE(measured_gpas.empty());
  EXPECT_EQ(measured_gpas.front(), 0xffff8000u);  // the BFV
  EXPECT_LT(measured_gpas.back(), 0xffffe000u);   // never the CFV
  auto ovmf = fw::OvmfImage::parse(std::make_shared<const Bytes>(image));
  ASSERT_TRUE(ovmf.ok());
  auto plan = fw::build_tdx_plan(*ovmf);
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  const Sha384Digest expected = *measure::tdx_mrtd(*plan);
  EXPECT_EQ(mrtd.finish(), expected);
  EXPECT_EQ(l.vmm->info()["measurement"]["name"], "mrtd");
  EXPECT_EQ(l.vmm->info()["measurement"]["digest"], to_hex(expected));
  std::string config_id;
  for (int i = 0; i < 48; ++i) config_id += "c0";
  EXPECT_EQ(l.vmm->info()["launch"]["mr_config_id"], config_id);
}

TEST(TeeLaunchTest, TdxAttributesTheModuleLacksAreRefused) {
  testing::OvmfImageBuilder builder(0x8000);
  builder.tdx_metadata({{0, 0x8000, 0xffff8000, 0x8000, 0, 1}, {0, 0, 0x809000, 0x1000, 2, 0}});
  VmConfig config = base_config(TeeKind::kTdx, 1);
  config.boot.firmware = temp_file("tdvf-attrs.fd", builder.build());
  config.tee.td_attributes = 0x40000000;  // PKS, not offered by the recorded module
  KvmRecorder recorder;
  Logger log(LogFormat::kText, LogLevel::kError);
  Metrics metrics;
  auto inputs = load_vm_inputs(config);
  ASSERT_TRUE(inputs.ok()) << inputs.error().message();
  auto vmm = build_vmm(config, std::move(*inputs), log, metrics,
                       [&] { return open_kvm("/dev/kvm", recorder); });
  ASSERT_FALSE(vmm.ok());
  EXPECT_EQ(vmm.error().message(),
            "tee.td_attributes 0x40000000: bits 0x40000000 are not supported by this TDX module "
            "(supported 0x10000001)");
  EXPECT_TRUE(recorder.named("KVM_TDX_INIT_VM").empty());
}

}  // namespace
}  // namespace cloister::vmm
