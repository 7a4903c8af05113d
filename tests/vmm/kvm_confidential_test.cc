// The KVM implementation's confidential-computing operations, run against the recording test
// double of the ioctl layer: host checks, SEV-SNP and TDX command payloads and retries,
// private/shared conversions handled inside Vcpu::run(), and the exits the VMM answers.
#include <gtest/gtest.h>
#include <linux/kvm.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "cloister/vmm/hypervisor/kvm.h"
#include "cloister/vmm/hypervisor/kvm_abi.h"
#include "kvm_recorder.h"
#include "recorded_vm.h"

namespace cloister::vmm {
namespace {

using testing::FdRole;
using testing::KvmRecorder;
using testing::payload_as;
using testing::RecordedCall;

// Page-aligned scratch memory the way guest memory and launch buffers are.
struct Pages {
  explicit Pages(std::size_t count)
      : data(static_cast<std::uint8_t*>(std::aligned_alloc(4096, count * 4096))),
        size(count * 4096) {
    std::memset(data, 0, size);
  }
  ~Pages() { std::free(data); }
  std::span<std::uint8_t> span() { return {data, size}; }
  std::uint8_t* data;
  std::size_t size;
};

// A two-vCPU VM of machine type `type` (kvm_abi::kX86SnpVm, kX86TdxVm) over the recorder.
struct Fixture {
  explicit Fixture(unsigned long type) : kvm(recorder, VmOptions{2, type}), vm(kvm.vm) {}

  // One guest_memfd-backed RAM slot at GPA 0 of `pages` pages.
  void map_private_ram(Pages& ram) {
    auto memfd = vm->create_guest_memfd(ram.size);
    ASSERT_TRUE(memfd.ok()) << memfd.error().message();
    MemorySlot slot{0, 0, ram.size, ram.data, false, *memfd, 0};
    ASSERT_TRUE(vm->map_memory(slot).ok());
  }

  KvmRecorder recorder;
  testing::RecordedVm kvm;
  std::unique_ptr<Vm>& vm;
};

TEST(KvmConfidentialTest, SnpVmNeedsTheVmTypeBeforeAnythingIsCreated) {
  KvmRecorder recorder;
  recorder.caps[kvm_abi::kCapVmTypes] = 1 | (1 << 5);
  auto hv = open_kvm("/dev/kvm", recorder);
  ASSERT_TRUE(hv.ok());
  VmOptions options;
  options.machine_type = kvm_abi::kX86SnpVm;
  auto vm = (*hv)->create_vm(options);
  ASSERT_FALSE(vm.ok());
  EXPECT_NE(
      vm.error().message().find("offers no SEV-SNP VMs (KVM_CAP_VM_TYPES = 0x21, bit 4 missing)"),
      std::string::npos)
      << vm.error().message();
  EXPECT_TRUE(recorder.named("KVM_CREATE_VM").empty());
}

TEST(KvmConfidentialTest, SnpVmNeedsThePspDevice) {
  KvmRecorder recorder;
  recorder.has_sev_device = false;
  auto hv = open_kvm("/dev/kvm", recorder);
  ASSERT_TRUE(hv.ok());
  VmOptions options;
  options.machine_type = kvm_abi::kX86SnpVm;
  auto vm = (*hv)->create_vm(options);
  ASSERT_FALSE(vm.ok());
  EXPECT_NE(vm.error().message().find("SEV-SNP needs the PSP device /dev/sev"), std::string::npos);
  EXPECT_NE(vm.error().message().find("(errno 2)"), std::string::npos);
  EXPECT_TRUE(recorder.named("KVM_CREATE_VM").empty());
}

TEST(KvmConfidentialTest, TdxVmNeedsTheTdxModule) {
  KvmRecorder recorder;
  recorder.caps[kvm_abi::kCapVmTypes] = 1 | (1 << 4);
  auto hv = open_kvm("/dev/kvm", recorder);
  ASSERT_TRUE(hv.ok());
  VmOptions options;
  options.machine_type = kvm_abi::kX86TdxVm;
  auto vm = (*hv)->create_vm(options);
  ASSERT_FALSE(vm.ok());
  EXPECT_NE(vm.error().message().find("offers no TDX VMs (KVM_CAP_VM_TYPES = 0x11, bit 5 missing): "
                                      "the TDX module is not loaded"),
            std::string::npos)
      << vm.error().message();
}

TEST(KvmConfidentialTest, TdxVmSkipsTheRealModeAddresses) {
  Fixture f(kvm_abi::kX86TdxVm);
  EXPECT_TRUE(f.recorder.named("KVM_SET_TSS_ADDR").empty());
  EXPECT_TRUE(f.recorder.named("KVM_SET_IDENTITY_MAP_ADDR").empty());
  ASSERT_EQ(f.recorder.named("KVM_CREATE_VM").size(), 1u);
  EXPECT_EQ(f.recorder.named("KVM_CREATE_VM")[0].value, kvm_abi::kX86TdxVm);
}

TEST(KvmConfidentialTest, SnpCommandsCarryTheirPayloadsAndThePspHandle) {
  Fixture f(kvm_abi::kX86SnpVm);
  ASSERT_TRUE(f.vm->sev_init2({0x4, 2}).ok());
  ASSERT_TRUE(f.vm->snp_launch_start({0x30000}).ok());
  SnpLaunchFinishParams finish;
  finish.host_data.fill(0xab);
  finish.id_block.emplace();
  finish.id_block->fill(0x11);
  finish.id_auth.emplace();
  finish.id_auth->fill(0x22);
  finish.author_key_enabled = true;
  ASSERT_TRUE(f.vm->snp_launch_finish(finish).ok());

  const auto init = payload_as<kvm_abi::SevInit>(f.recorder.named("KVM_SEV_INIT2").at(0));
  EXPECT_EQ(init.vmsa_features, 0x4u);
  EXPECT_EQ(init.ghcb_version, 2);
  EXPECT_EQ(init.flags, 0u);
  const auto start =
      payload_as<kvm_abi::SnpLaunchStart>(f.recorder.named("KVM_SEV_SNP_LAUNCH_START").at(0));
  EXPECT_EQ(start.policy, 0x30000u);
  const auto fin_call = f.recorder.named("KVM_SEV_SNP_LAUNCH_FINISH").at(0);
  const auto fin = payload_as<kvm_abi::SnpLaunchFinish>(fin_call);
  EXPECT_EQ(fin.id_block_en, 1);
  EXPECT_EQ(fin.auth_key_en, 1);
  EXPECT_EQ(fin.vcek_disabled, 0);
  EXPECT_EQ(fin.host_data[0], 0xab);
  EXPECT_EQ(fin.host_data[31], 0xab);
  ASSERT_EQ(fin_call.data.size(), 96u + 4096u);
  EXPECT_EQ(fin_call.data[0], 0x11);
  EXPECT_EQ(fin_call.data[96], 0x22);
}

TEST(KvmConfidentialTest, SnpLaunchUpdateLoopsUntilKvmConsumedEveryPage) {
  Fixture f(kvm_abi::kX86SnpVm);
  Pages pages(10);
  for (std::size_t i = 0; i < pages.size; ++i) pages.data[i] = static_cast<std::uint8_t>(i * 7);
  ASSERT_TRUE(f.vm->snp_launch_update(0x100000, pages.span(), 1).ok());
  Bytes seen;
  std::uint64_t gfn = 0x100;
  for (const RecordedCall& call : f.recorder.named("KVM_SEV_SNP_LAUNCH_UPDATE")) {
    const auto update = payload_as<kvm_abi::SnpLaunchUpdate>(call);
    EXPECT_EQ(update.gfn_start, gfn);  // each call resumes where KVM stopped
    EXPECT_EQ(update.type, 1);
    gfn += call.data.size() / 4096;
    seen.insert(seen.end(), call.data.begin(), call.data.end());
  }
  EXPECT_EQ(f.recorder.named("KVM_SEV_SNP_LAUNCH_UPDATE").size(), 4u);  // 3 + 3 + 3 + 1 pages
  EXPECT_EQ(seen, Bytes(pages.data, pages.data + pages.size));
}

TEST(KvmConfidentialTest, RejectedCpuidPageComesBackWithTheFirmwaresValues) {
  Fixture f(kvm_abi::kX86SnpVm);
  f.recorder.reject_first_cpuid_page = true;
  Pages page(1);
  page.data[40] = 0x10;
  auto first = f.vm->snp_launch_update(0x5000, page.span(), 6);
  ASSERT_FALSE(first.ok());
  EXPECT_NE(first.error().message().find(
                "KVM_SEV_SNP_LAUNCH_UPDATE (GPA 0x5000, 0x1000 bytes, type 6): Input/output error "
                "(errno 5), firmware status 0x16 INVALID_PARAM"),
            std::string::npos)
      << first.error().message();
  EXPECT_EQ(page.data[40], 0x11);  // the firmware's value, copied back
  EXPECT_TRUE(f.vm->snp_launch_update(0x5000, page.span(), 6).ok());
}

TEST(KvmConfidentialTest, LaunchUpdateRefusesUnalignedPages) {
  Fixture f(kvm_abi::kX86SnpVm);
  Pages pages(2);
  auto st = f.vm->snp_launch_update(0x1000, pages.span().subspan(8, 4096), 1);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("expected whole, page-aligned 4 KiB pages"),
            std::string::npos);
  EXPECT_TRUE(f.recorder.named("KVM_SEV_SNP_LAUNCH_UPDATE").empty());
}

TEST(KvmConfidentialTest, CertificateRequestsNeedTheLinux70Attribute) {
  Fixture f(kvm_abi::kX86SnpVm);
  f.recorder.has_req_certs_attr = false;
  auto st = f.vm->snp_enable_certificate_requests();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("KVM_X86_SEV_SNP_REQ_CERTS missing"), std::string::npos);
  EXPECT_TRUE(f.recorder.named("KVM_SEV_SNP_ENABLE_REQ_CERTS").empty());
  f.recorder.has_req_certs_attr = true;
  ASSERT_TRUE(f.vm->snp_enable_certificate_requests().ok());
  EXPECT_EQ(f.recorder.named("KVM_SEV_SNP_ENABLE_REQ_CERTS").size(), 1u);
}

TEST(KvmConfidentialTest, ConversionsSetAttributesAndDiscardTheStaleCopy) {
  Fixture f(kvm_abi::kX86SnpVm);
  Pages ram(16);
  f.map_private_ram(ram);
  ASSERT_TRUE(f.vm->set_memory_private(0x2000, 0x3000, true).ok());
  ASSERT_TRUE(f.vm->set_memory_private(0x3000, 0x1000, false).ok());
  const auto attrs = f.recorder.named("KVM_SET_MEMORY_ATTRIBUTES");
  ASSERT_EQ(attrs.size(), 2u);
  const auto to_private = payload_as<kvm_abi::MemoryAttributes>(attrs[0]);
  EXPECT_EQ(to_private.address, 0x2000u);
  EXPECT_EQ(to_private.size, 0x3000u);
  EXPECT_EQ(to_private.attributes, kvm_abi::kMemoryAttributePrivate);
  EXPECT_EQ(payload_as<kvm_abi::MemoryAttributes>(attrs[1]).attributes, 0u);
  const auto discard = f.recorder.named("madvise(MADV_REMOVE)").at(0);
  std::uint64_t args[2];
  std::memcpy(args, discard.payload.data(), sizeof args);
  EXPECT_EQ(args[0], reinterpret_cast<std::uint64_t>(ram.data + 0x2000));
  EXPECT_EQ(args[1], 0x3000u);
  const auto punch = f.recorder.named("fallocate(PUNCH_HOLE)").at(0);
  EXPECT_EQ(punch.role, FdRole::kGuestMemfd);
  std::memcpy(args, punch.payload.data(), sizeof args);
  EXPECT_EQ(args[0], 0x3000u);
  EXPECT_EQ(args[1], 0x1000u);

  // MMIO may be "converted to shared" (TDX OVMF does that for the PCI hole); never to private.
  EXPECT_TRUE(f.vm->set_memory_private(0xfec00000, 0x1000, false).ok());
  auto mmio = f.vm->set_memory_private(0xfec00000, 0x1000, true);
  ASSERT_FALSE(mmio.ok());
  EXPECT_NE(mmio.error().message().find("only 0x0 bytes of it are guest_memfd-backed RAM"),
            std::string::npos);
}

// Scripted exits: what KVM leaves in kvm_run for each case (research/vmm.md §a.2-§a.7).
kvm_abi::RunTdx* tdx_area(void* run) {
  return reinterpret_cast<kvm_abi::RunTdx*>(static_cast<std::uint8_t*>(run) +
                                            kvm_abi::kRunExitUnionOffset);
}

int io_exit(void* run) {
  auto* r = static_cast<kvm_run*>(run);
  r->exit_reason = KVM_EXIT_IO;
  r->io.direction = KVM_EXIT_IO_OUT;
  r->io.size = 1;
  r->io.port = 0x3f8;
  r->io.count = 1;
  r->io.data_offset = 4096;
  return 0;
}

TEST(KvmConfidentialTest, MemoryFaultsAndMapGpaRangeAreConvertedInsideRun) {
  Fixture f(kvm_abi::kX86SnpVm);
  Pages ram(16);
  f.map_private_ram(ram);
  ASSERT_TRUE(f.vm->enable_private_memory_conversions().ok());
  const auto enable = payload_as<kvm_enable_cap>(f.recorder.named("KVM_ENABLE_CAP").at(0));
  EXPECT_EQ(enable.cap, static_cast<std::uint32_t>(kvm_abi::kCapExitHypercall));
  EXPECT_EQ(enable.args[0], 1u << 12);

  std::uint64_t map_gpa_ret = 99;
  f.recorder.run_scripts[0] = {
      [](void* run) {  // implicit conversion: a private access to a shared page
        auto* r = static_cast<kvm_run*>(run);
        r->exit_reason = kvm_abi::kExitMemoryFault;
        auto* fault = reinterpret_cast<kvm_abi::RunMemoryFault*>(static_cast<std::uint8_t*>(run) +
                                                                 kvm_abi::kRunExitUnionOffset);
        *fault = {kvm_abi::kMemoryExitFlagPrivate, 0x4010, 8};
        errno = EFAULT;
        return -1;
      },
      [](void* run) {  // explicit: MAP_GPA_RANGE 2 pages at 0x6000 to shared
        auto* r = static_cast<kvm_run*>(run);
        r->exit_reason = KVM_EXIT_HYPERCALL;
        r->hypercall.nr = kvm_abi::kHcMapGpaRange;
        r->hypercall.args[0] = 0x6000;
        r->hypercall.args[1] = 2;
        r->hypercall.args[2] = 0;
        return 0;
      },
      [&map_gpa_ret](void* run) {
        map_gpa_ret = static_cast<kvm_run*>(run)->hypercall.ret;
        return io_exit(run);
      },
  };
  auto vcpu = f.vm->create_vcpu(0);
  ASSERT_TRUE(vcpu.ok());
  auto exit = (*vcpu)->run();
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  EXPECT_EQ(exit->reason, ExitReason::kIo);  // both conversions stayed inside run()
  EXPECT_EQ(map_gpa_ret, 0u);
  const auto attrs = f.recorder.named("KVM_SET_MEMORY_ATTRIBUTES");
  ASSERT_EQ(attrs.size(), 2u);
  const auto fault = payload_as<kvm_abi::MemoryAttributes>(attrs[0]);
  EXPECT_EQ(fault.address, 0x4000u);  // page-aligned
  EXPECT_EQ(fault.size, 0x1000u);
  EXPECT_EQ(fault.attributes, kvm_abi::kMemoryAttributePrivate);
  const auto map = payload_as<kvm_abi::MemoryAttributes>(attrs[1]);
  EXPECT_EQ(map.address, 0x6000u);
  EXPECT_EQ(map.size, 0x2000u);
  EXPECT_EQ(map.attributes, 0u);
}

TEST(KvmConfidentialTest, RefusedMapGpaRangeReturnsAnErrorToTheGuest) {
  Fixture f(kvm_abi::kX86SnpVm);
  Pages ram(4);
  f.map_private_ram(ram);
  std::uint64_t ret = 0;
  f.recorder.run_scripts[0] = {
      [](void* run) {  // to private, beyond the RAM slot
        auto* r = static_cast<kvm_run*>(run);
        r->exit_reason = KVM_EXIT_HYPERCALL;
        r->hypercall.nr = kvm_abi::kHcMapGpaRange;
        r->hypercall.args[0] = 0x100000;
        r->hypercall.args[1] = 1;
        r->hypercall.args[2] = kvm_abi::kMapGpaRangeEncrypted;
        return 0;
      },
      [&ret](void* run) {
        ret = static_cast<kvm_run*>(run)->hypercall.ret;
        return io_exit(run);
      },
  };
  auto vcpu = f.vm->create_vcpu(0);
  ASSERT_TRUE(vcpu.ok());
  auto exit = (*vcpu)->run();
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(ret, static_cast<std::uint64_t>(EINVAL));
}

TEST(KvmConfidentialTest, TdxVmcallsTheHostServesAndThoseItDoesNot) {
  Fixture f(kvm_abi::kX86TdxVm);
  auto caps = f.vm->tdx_capabilities();
  ASSERT_TRUE(caps.ok()) << caps.error().message();
  EXPECT_EQ(caps->supported_attributes, 0x10000001u);
  ASSERT_EQ(caps->configurable_cpuid.size(), 2u);
  EXPECT_EQ(caps->configurable_cpuid[1][0], 7u);

  std::uint64_t info_r11 = 0, info_ret = 1, notify_ret = 0, quote_ret = 0;
  f.recorder.run_scripts[0] = {
      [](void* run) {
        static_cast<kvm_run*>(run)->exit_reason = kvm_abi::kExitTdx;
        *tdx_area(run) = {0, kvm_abi::kTdvmcallGetTdVmCallInfo, 0, {1, 0, 0, 0, 0}};
        return 0;
      },
      [&](void* run) {
        info_ret = tdx_area(run)->ret;
        info_r11 = tdx_area(run)->args[1];
        static_cast<kvm_run*>(run)->exit_reason = kvm_abi::kExitTdx;
        *tdx_area(run) = {0, kvm_abi::kTdvmcallSetupEventNotifyInterrupt, 0, {48, 0, 0, 0, 0}};
        return 0;
      },
      [&](void* run) {
        notify_ret = tdx_area(run)->ret;
        static_cast<kvm_run*>(run)->exit_reason = kvm_abi::kExitTdx;
        *tdx_area(run) = {0, kvm_abi::kTdvmcallGetQuote, 0, {0x7000, 0x2000, 0, 0, 0}};
        return 0;
      },
      [&](void* run) {
        quote_ret = tdx_area(run)->ret;
        return io_exit(run);
      },
  };
  auto vcpu = f.vm->create_vcpu(0);
  ASSERT_TRUE(vcpu.ok());
  auto exit = (*vcpu)->run();
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  ASSERT_EQ(exit->reason, ExitReason::kTdxVmcall);
  EXPECT_EQ(exit->tdx_vmcall.subfunction, kvm_abi::kTdvmcallGetQuote);
  EXPECT_EQ(exit->tdx_vmcall.gpa, 0x7000u);
  EXPECT_EQ(exit->tdx_vmcall.size, 0x2000u);
  EXPECT_EQ(info_ret, kvm_abi::kTdvmcallStatusSuccess);
  EXPECT_EQ(info_r11, 1u);  // exactly what KVM serves: GetQuote
  EXPECT_EQ(notify_ret, kvm_abi::kTdvmcallStatusSubfuncUnsupported);
  ASSERT_TRUE((*vcpu)->complete_exit(kvm_abi::kTdvmcallStatusSuccess).ok());
  exit = (*vcpu)->run();
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->reason, ExitReason::kIo);
  EXPECT_EQ(quote_ret, kvm_abi::kTdvmcallStatusSuccess);
  // Nothing left to answer.
  EXPECT_FALSE((*vcpu)->complete_exit(0).ok());
}

TEST(KvmConfidentialTest, SnpCertificateRequestIsAnsweredWithThePagesNeeded) {
  Fixture f(kvm_abi::kX86SnpVm);
  kvm_abi::RunSnpReqCerts answer{};
  f.recorder.run_scripts[0] = {
      [](void* run) {
        static_cast<kvm_run*>(run)->exit_reason = kvm_abi::kExitSnpReqCerts;
        auto* certs = reinterpret_cast<kvm_abi::RunSnpReqCerts*>(static_cast<std::uint8_t*>(run) +
                                                                 kvm_abi::kRunExitUnionOffset);
        *certs = {0x9000, 1, 0};
        return 0;
      },
      [&answer](void* run) {
        std::memcpy(&answer, static_cast<std::uint8_t*>(run) + kvm_abi::kRunExitUnionOffset,
                    sizeof answer);
        return io_exit(run);
      },
  };
  auto vcpu = f.vm->create_vcpu(0);
  ASSERT_TRUE(vcpu.ok());
  auto exit = (*vcpu)->run();
  ASSERT_TRUE(exit.ok());
  ASSERT_EQ(exit->reason, ExitReason::kSnpCertificates);
  EXPECT_EQ(exit->snp_certificates.gpa, 0x9000u);
  EXPECT_EQ(exit->snp_certificates.npages, 1u);
  ASSERT_TRUE((*vcpu)->complete_exit(ENOSPC, 3).ok());
  ASSERT_TRUE((*vcpu)->run().ok());
  EXPECT_EQ(answer.ret, static_cast<std::uint64_t>(ENOSPC));
  EXPECT_EQ(answer.npages, 3u);
}

TEST(KvmConfidentialTest, TdxCommandsRetryContentionAndResumePartialRegions) {
  Fixture f(kvm_abi::kX86TdxVm);
  TdxInitVmParams params;
  params.attributes = 0x10000000;
  params.xfam = 0x2e7;
  params.mr_config_id.fill(0xc1);
  params.cpuid = {{1, 0, 0, 0, 0x7ef8320b, 0x178bfbff}};
  ASSERT_TRUE(f.vm->tdx_init_vm(params).ok());
  const auto init = f.recorder.named("KVM_TDX_INIT_VM").at(0);
  kvm_abi::TdxInitVmHeader header;
  std::memcpy(&header, init.payload.data(), sizeof header);
  EXPECT_EQ(header.attributes, 0x10000000u);
  EXPECT_EQ(header.xfam, 0x2e7u);
  EXPECT_EQ(header.mrconfigid[0], 0xc1c1c1c1c1c1c1c1u);
  EXPECT_EQ(init.payload.size(), 256u + 8u + 40u);

  auto vcpu = f.vm->create_vcpu(0);
  ASSERT_TRUE(vcpu.ok());
  ASSERT_TRUE((*vcpu)->tdx_init_vcpu(0x809000).ok());
  EXPECT_EQ(f.recorder.named("KVM_TDX_INIT_VCPU").at(0).value, 0x809000u);
  Pages pages(7);
  pages.data[4096 * 6] = 0x77;
  ASSERT_TRUE(
      (*vcpu)->tdx_init_mem_region(0xffff0000 - 0x7000, {pages.data, pages.size}, true).ok());
  const auto regions = f.recorder.named("KVM_TDX_INIT_MEM_REGION");
  ASSERT_EQ(regions.size(), 3u);  // 3 + 3 + 1 pages
  EXPECT_EQ(regions[0].value, kvm_abi::kTdxMeasureMemoryRegion);
  EXPECT_EQ(regions[2].role, FdRole::kVcpu);
  EXPECT_EQ(regions[2].data.at(0), 0x77);
  EXPECT_EQ(payload_as<kvm_abi::TdxInitMemRegion>(regions[2]).gpa, 0xffff0000u - 0x1000u);
  ASSERT_TRUE(f.vm->tdx_finalize_vm().ok());
  EXPECT_EQ(f.recorder.named("KVM_TDX_FINALIZE_VM").size(), 1u);
}

TEST(KvmConfidentialTest, VmsaStateTravelsThroughFpuXcrsMsrsAndDebugRegisters) {
  Fixture f(kvm_abi::kX86SnpVm);
  auto vcpu = f.vm->create_vcpu(1);
  ASSERT_TRUE(vcpu.ok());
  x86::Fpu fpu;
  fpu.fcw = 0x37f;
  fpu.mxcsr = 0x1f80;
  ASSERT_TRUE((*vcpu)->set_fpu(fpu).ok());
  ASSERT_TRUE((*vcpu)->set_xcr0(0x1).ok());
  const x86::Msr pat{x86::kMsrIa32Pat, x86::kPatReset};
  ASSERT_TRUE((*vcpu)->set_msrs(std::span(&pat, 1)).ok());
  x86::DebugRegs debug;
  ASSERT_TRUE((*vcpu)->set_debug_regs(debug).ok());

  const auto recorded_fpu = payload_as<kvm_fpu>(f.recorder.named("KVM_SET_FPU").at(0));
  EXPECT_EQ(recorded_fpu.fcw, 0x37f);
  EXPECT_EQ(recorded_fpu.mxcsr, 0x1f80u);
  const auto xcrs = payload_as<kvm_xcrs>(f.recorder.named("KVM_SET_XCRS").at(0));
  EXPECT_EQ(xcrs.nr_xcrs, 1u);
  EXPECT_EQ(xcrs.xcrs[0].value, 1u);
  EXPECT_EQ(f.recorder.vcpu_state(1).msrs.at(x86::kMsrIa32Pat), x86::kPatReset);
  const auto dr = payload_as<kvm_debugregs>(f.recorder.named("KVM_SET_DEBUGREGS").at(0));
  EXPECT_EQ(dr.dr6, 0xffff0ff0u);
  EXPECT_EQ(dr.dr7, 0x400u);
  // Read back through the same path.
  auto read = (*vcpu)->msrs(std::vector<std::uint32_t>{x86::kMsrIa32Pat});
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->at(0).value, x86::kPatReset);
  auto back = (*vcpu)->fpu();
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, fpu);
}

}  // namespace
}  // namespace cloister::vmm
