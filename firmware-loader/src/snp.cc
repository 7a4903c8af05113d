#include "cloister/firmware_loader/snp.h"

#include <algorithm>
#include <cctype>

#include "cloister/common/hex.h"
#include "cloister/firmware_loader/vmsa.h"
#include "edk2_defs.h"

namespace cloister::fw {
namespace {

constexpr std::uint64_t kFourGiB = 0x1'0000'0000ull;
// The BSP starts at the x86 reset vector; APs at the firmware's SEV-ES reset block EIP.
constexpr std::uint32_t kBspResetEip = 0xfffffff0;

// sev-snp-measure vcpu_types.py CPU_SIGS (the models of QEMU's builtin_x86_defs).
constexpr VcpuModel kVcpuModels[] = {
    {"EPYC", 23, 1, 2},          {"EPYC-v1", 23, 1, 2},       {"EPYC-v2", 23, 1, 2},
    {"EPYC-IBPB", 23, 1, 2},     {"EPYC-v3", 23, 1, 2},       {"EPYC-v4", 23, 1, 2},
    {"EPYC-Rome", 23, 49, 0},    {"EPYC-Rome-v1", 23, 49, 0}, {"EPYC-Rome-v2", 23, 49, 0},
    {"EPYC-Rome-v3", 23, 49, 0}, {"EPYC-Milan", 25, 1, 1},    {"EPYC-Milan-v1", 25, 1, 1},
    {"EPYC-Milan-v2", 25, 1, 1}, {"EPYC-Genoa", 25, 17, 0},   {"EPYC-Genoa-v1", 25, 17, 0},
    {"EPYC-Turin", 26, 0, 0},
};

// research/snp.md §a.4 (sev-snp-measure vmsa.py build_save_area).
constexpr VmmProfile kVmmProfiles[] = {
    {.name = "QEMU",
     .cs_attrib = 0x9b,
     .cs_attrib_reset_vector = 0x9b,
     .ss_attrib = 0x93,
     .tr_attrib = 0x8b,
     .rdx_is_vcpu_signature = true,
     .rdx = 0,
     .g_pat = 0x0007040600070406,
     .mxcsr = 0x1f80,
     .x87_fcw = 0x37f,
     .sec_mem_page_type = PageType::kZero,
     .cpuid_page_last = false},
    {.name = "ec2",
     .cs_attrib = 0x9b,
     .cs_attrib_reset_vector = 0x9a,
     .ss_attrib = 0x92,
     .tr_attrib = 0x83,
     .rdx_is_vcpu_signature = false,
     .rdx = 0x600,
     .g_pat = 0x0007040600070406,
     .mxcsr = 0,
     .x87_fcw = 0,
     .sec_mem_page_type = PageType::kZero,
     .cpuid_page_last = true},
    {.name = "gce",
     .cs_attrib = 0x9b,
     .cs_attrib_reset_vector = 0x9b,
     .ss_attrib = 0x93,
     .tr_attrib = 0x8b,
     .rdx_is_vcpu_signature = false,
     .rdx = 0x600,
     .g_pat = 0x00070106,
     .mxcsr = 0,
     .x87_fcw = 0,
     .sec_mem_page_type = PageType::kUnmeasured,
     .cpuid_page_last = false},
    // The registers cloister-vmm sets: QEMU's, so an image measured for QEMU and for
    // cloister-vmm agrees.
    {.name = "cloister",
     .cs_attrib = 0x9b,
     .cs_attrib_reset_vector = 0x9b,
     .ss_attrib = 0x93,
     .tr_attrib = 0x8b,
     .rdx_is_vcpu_signature = true,
     .rdx = 0,
     .g_pat = 0x0007040600070406,
     .mxcsr = 0x1f80,
     .x87_fcw = 0x37f,
     .sec_mem_page_type = PageType::kZero,
     .cpuid_page_last = false},
};
constexpr const VmmProfile& kCloisterProfile = kVmmProfiles[3];

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The VMSA of a vCPU starting in real mode at `eip` (OVMF's reset vector or AP reset block).
VmsaRegisters reset_vmsa(const VmmProfile& vmm, std::uint32_t eip, std::uint32_t vcpu_sig,
                         std::uint64_t guest_features) {
  VmsaRegisters r;
  const VmcbSegment data_segment{0, 0x93, 0xffff, 0};
  r.es = r.ds = r.fs = r.gs = data_segment;
  r.cs = {0xf000, eip == kBspResetEip ? vmm.cs_attrib_reset_vector : vmm.cs_attrib, 0xffff,
          eip & 0xffff0000u};
  r.ss = {0, vmm.ss_attrib, 0xffff, 0};
  r.gdtr = r.idtr = {0, 0, 0xffff, 0};
  r.ldtr = {0, 0x82, 0xffff, 0};
  r.tr = {0, vmm.tr_attrib, 0xffff, 0};
  r.efer = 0x1000;  // EFER.SVME, set by KVM
  r.cr4 = 0x40;     // CR4.MCE, set by KVM
  r.cr0 = 0x10;
  r.dr7 = 0x400;
  r.dr6 = 0xffff0ff0;
  r.rflags = 0x2;
  r.rip = eip & 0xffffu;
  r.g_pat = vmm.g_pat;
  r.rdx = vmm.rdx_is_vcpu_signature ? vcpu_sig : vmm.rdx;
  r.sev_features = guest_features;
  r.xcr0 = 0x1;
  r.mxcsr = vmm.mxcsr;
  r.x87_fcw = vmm.x87_fcw;
  return r;
}

// COCONUT-SVSM under QEMU: every vCPU starts in 32-bit protected mode at the SVSM entry
// (sev-snp-measure vmsa.py VMSA_SVSM). X87_FCW stays 0: sev-snp-measure passes `fcw=`, which
// its ctypes structure ignores, and the hardware-derived upstream test values agree.
VmsaRegisters svsm_vmsa(std::uint32_t eip, std::uint32_t vcpu_sig) {
  VmsaRegisters r;
  const VmcbSegment flat_data{16, 0xc93, 0xffffffff, 0};
  r.es = r.ss = r.ds = r.fs = flat_data;
  r.cs = {8, 0xc9b, 0xffffffff, 0};
  r.gs = {0, 0x93, 0xffff, 0};
  r.gdtr = r.idtr = {0, 0, 0xffff, 0};
  r.ldtr = {0, 0x82, 0xffff, 0};
  r.tr = {0, 0x8b, 0xffff, 0};
  r.efer = 0x1000;
  r.cr4 = 0x40;
  r.cr0 = 0x11;
  r.dr7 = 0x400;
  r.dr6 = 0xffff0ff0;
  r.rflags = 0x2;
  r.rip = eip;
  r.g_pat = 0x0007040600070406;
  r.rdx = vcpu_sig;
  r.sev_features = 0x1;
  r.xcr0 = 0x1;
  r.mxcsr = 0x1f80;
  r.x87_fcw = 0;
  return r;
}

Status check_image_size(const OvmfImage& image, std::string_view what) {
  if (image.size() == 0 || image.size() % kPageSize != 0 || image.size() > kFourGiB) {
    return Error(std::string(what) + " is " + std::to_string(image.size()) +
                 " bytes; SNP maps it in whole 4 KiB pages below 4 GiB, so its size must be a "
                 "non-zero multiple of 4096 (was the file truncated?)");
  }
  return {};
}

ByteView keep_vmsa(LaunchPlanBuilder& builder, const VmsaRegisters& registers) {
  const VmsaPage page = encode_vmsa(registers);
  return builder.keep(Bytes(page.begin(), page.end()));
}

void add_vmsas(LaunchPlanBuilder& builder, std::uint32_t vcpus, ByteView bsp, ByteView ap) {
  for (std::uint32_t i = 0; i < vcpus; ++i) {
    builder.add({.gpa = kSnpVmsaGpa,
                 .size = kPageSize,
                 .type = PageType::kVmsa,
                 .data = i == 0 ? bsp : ap,
                 .vcpu = i,
                 .label = "VMSA of vCPU " + std::to_string(i)});
  }
}

// The metadata sections as `vmm` measures them (sev-snp-measure guest.py
// snp_update_metadata_pages).
Status add_metadata_sections(LaunchPlanBuilder& builder, const OvmfImage& image,
                             std::string_view image_name,
                             const std::vector<SevMetadataSection>& sections, const VmmProfile& vmm,
                             const std::optional<SevHashes>& kernel_hashes) {
  bool has_kernel_hashes = false;
  for (std::size_t i = 0; i < sections.size(); ++i) {
    const SevMetadataSection& s = sections[i];
    LaunchOp op{.gpa = s.gpa,
                .size = s.size,
                .type = PageType::kZero,
                .label = std::string(image_name) + " SEV metadata section " + std::to_string(i) +
                         " (" + std::string(to_string(s.type)) + ")"};
    switch (s.type) {
      case SevSectionType::kSnpSecMem:
        op.type = vmm.sec_mem_page_type;
        break;
      case SevSectionType::kSnpSecrets:
        op.type = PageType::kSecrets;
        break;
      case SevSectionType::kCpuid:
        op.type = PageType::kCpuid;
        if (vmm.cpuid_page_last) continue;
        break;
      case SevSectionType::kSvsmCaa:
        op.type = PageType::kZero;
        break;
      case SevSectionType::kSnpKernelHashes:
        has_kernel_hashes = true;
        if (kernel_hashes) {
          const auto location = image.sev_hash_table();
          if (!location || location->gpa == 0) {
            return Error("kernel given, but the firmware's SEV hash table entry (" +
                         edk2::kSevHashTableGuid.to_string() +
                         ") is missing or has GPA 0: use an OVMF built with kernel-hashes "
                         "support (edk2 OvmfPkg/AmdSev) or boot without --kernel");
          }
          const std::size_t offset = location->gpa & (kPageSize - 1);
          // QEMU refuses an entry smaller than the padded table, and writes the table where the
          // entry points: that must be the page this section measures.
          if (s.size != kPageSize || offset + kSevHashTableSize > kPageSize ||
              location->size < kSevHashTableSize || location->gpa - offset != s.gpa) {
            return Error("SNP_KERNEL_HASHES section at GPA " + hex_number(s.gpa) + " (size " +
                         hex_number(s.size) + ") with the hash table at GPA " +
                         hex_number(location->gpa) + " (size " + hex_number(location->size) + ")" +
                         ": expected one 4 KiB page holding the 176-byte table; the firmware's "
                         "metadata is inconsistent, rebuild or replace the firmware");
          }
          Bytes page(kPageSize, 0);
          const auto table = sev_hash_table(*kernel_hashes);
          std::copy(table.begin(), table.end(), page.begin() + static_cast<std::ptrdiff_t>(offset));
          op.type = PageType::kNormal;
          op.data = builder.keep(std::move(page));
          builder.set_snp_kernel_hashes(*kernel_hashes);
          op.label += " with the SEV hashes table at offset " + hex_number(offset);
        }
        break;
    }
    builder.add(std::move(op));
  }
  if (vmm.cpuid_page_last) {
    for (std::size_t i = 0; i < sections.size(); ++i) {
      if (sections[i].type != SevSectionType::kCpuid) continue;
      builder.add({.gpa = sections[i].gpa,
                   .size = sections[i].size,
                   .type = PageType::kCpuid,
                   .label = std::string(image_name) + " SEV metadata section " + std::to_string(i) +
                            " (CPUID, measured last by " + std::string(vmm.name) + ")"});
    }
  }
  if (kernel_hashes && !has_kernel_hashes) {
    return Error(
        "Kernel specified but OVMF metadata doesn't include SNP_KERNEL_HASHES section: "
        "use an OVMF built with kernel-hashes support (edk2 OvmfPkg/AmdSev) or boot "
        "without --kernel/--initrd/--append");
  }
  return {};
}

Result<std::vector<SevMetadataSection>> sev_sections(const OvmfImage& image,
                                                     std::string_view name) {
  if (!image.has_sev_metadata()) {
    return Error(std::string(name) + " has no SEV metadata (no footer entry " +
                 edk2::kSevMetadataOffsetGuid.to_string() +
                 "), so QEMU/KVM cannot launch it as an SNP guest: use an SNP-capable build, "
                 "e.g. Debian's /usr/share/ovmf/OVMF.fd or edk2 OvmfPkg/AmdSev");
  }
  auto sections = image.sev_metadata();
  if (!sections) return sections.error().with_context(std::string(name));
  return sections;
}

Result<LaunchPlan> build_svsm_plan(const OvmfImage& ovmf, const SnpLaunchOptions& o) {
  if (o.svsm == nullptr) return Error("snp:svsm mode needs the SVSM image (--svsm)");
  if (!iequals(o.vmm.name, "QEMU")) {
    return Error("snp:svsm mode is only defined for QEMU, found VMM type " +
                 std::string(o.vmm.name) + ": use --vmm-type QEMU");
  }
  if (o.kernel_hashes) {
    return Error("snp:svsm mode measures no kernel hashes: drop --kernel/--initrd/--append");
  }
  if (!o.vcpu_signature) {
    return Error(
        "snp:svsm mode needs the vCPU signature: give --vcpu-type, --vcpu-sig or "
        "--vcpu-family/--vcpu-model/--vcpu-stepping");
  }
  if (o.vars_size == 0 || o.vars_size % kPageSize != 0) {
    return Error("OVMF_VARS size " + std::to_string(o.vars_size) +
                 " is not a non-zero multiple of 4096: give the size of the OVMF_VARS file "
                 "QEMU maps below OVMF_CODE (--vars-size or --vars-file)");
  }
  const OvmfImage& svsm = *o.svsm;
  CLOISTER_CHECK_OK(check_image_size(svsm, "the SVSM image"));
  const std::uint64_t ovmf_gpa = kFourGiB - ovmf.size();
  if (o.vars_size + svsm.size() > ovmf_gpa) {
    return Error("OVMF_VARS size " + hex_number(o.vars_size) + " and the " +
                 hex_number(svsm.size()) + "-byte SVSM do not fit below OVMF at GPA " +
                 hex_number(ovmf_gpa) + ": check --vars-size/--vars-file");
  }
  const std::uint64_t svsm_gpa = ovmf_gpa - o.vars_size - svsm.size();
  if (!svsm.svsm_entry_offset()) {
    return Error("the SVSM image has no SVSM info entry (" + edk2::kSvsmInfoGuid.to_string() +
                 ") in its footer table: is --svsm a COCONUT-SVSM binary?");
  }
  const std::uint64_t eip = svsm_gpa + *svsm.svsm_entry_offset();
  if (eip > 0xffffffffull) {
    return Error("SVSM entry point " + hex_number(eip) + " is beyond 4 GiB");
  }
  CLOISTER_TRY(auto sections, sev_sections(svsm, "the SVSM image"));

  LaunchPlanBuilder builder(Tee::kSevSnp);
  builder.add({.gpa = ovmf_gpa,
               .size = ovmf.size(),
               .type = PageType::kNormal,
               .data = builder.keep(ovmf.shared_bytes()),
               .label = "OVMF firmware"});
  builder.add({.gpa = svsm_gpa,
               .size = svsm.size(),
               .type = PageType::kNormal,
               .data = builder.keep(svsm.shared_bytes()),
               .label = "SVSM image (below " + hex_number(o.vars_size) + " bytes of OVMF_VARS)"});
  CLOISTER_CHECK_OK(
      add_metadata_sections(builder, svsm, "SVSM", sections, kVmmProfiles[0], std::nullopt));
  const ByteView vmsa =
      keep_vmsa(builder, svsm_vmsa(static_cast<std::uint32_t>(eip), *o.vcpu_signature));
  add_vmsas(builder, o.vcpus, vmsa, vmsa);
  return std::move(builder).build();
}

}  // namespace

std::span<const VcpuModel> vcpu_models() {
  return kVcpuModels;
}

std::uint32_t vcpu_signature(std::uint32_t family, std::uint32_t model, std::uint32_t stepping) {
  const std::uint32_t base_family = family > 0xf ? 0xf : family;
  const std::uint32_t ext_family = family > 0xf ? (family - 0xf) & 0xff : 0;
  return ext_family << 20 | ((model >> 4) & 0xf) << 16 | base_family << 8 | (model & 0xf) << 4 |
         (stepping & 0xf);
}

Result<std::uint32_t> vcpu_signature(std::string_view model_name) {
  for (const VcpuModel& m : kVcpuModels) {
    if (m.name == model_name) return vcpu_signature(m.family, m.model, m.stepping);
  }
  std::string known;
  for (const VcpuModel& m : kVcpuModels) known += (known.empty() ? "" : ", ") + std::string(m.name);
  return Error("unknown vCPU type '" + std::string(model_name) + "' (known: " + known +
               "); or give --vcpu-sig or --vcpu-family/--vcpu-model/--vcpu-stepping");
}

std::span<const VmmProfile> vmm_profiles() {
  return kVmmProfiles;
}

const VmmProfile& cloister_vmm_profile() {
  return kCloisterProfile;
}

Result<VmmProfile> find_vmm_profile(std::string_view name) {
  std::string known;
  for (const VmmProfile& p : kVmmProfiles) {
    if (iequals(p.name, name)) return p;
    known += (known.empty() ? "" : ", ") + std::string(p.name);
  }
  return Error("unknown VMM type '" + std::string(name) + "' (known: " + known + ")");
}

SevHashes SevHashes::compute(ByteView kernel, ByteView initrd, std::string_view cmdline) {
  SevHashes h;
  h.kernel = sha256(kernel);
  h.initrd = sha256(initrd);
  Bytes line(cmdline.begin(), cmdline.end());
  line.push_back(0);
  h.cmdline = sha256(line);
  return h;
}

std::array<std::uint8_t, kSevHashTableSize> sev_hash_table(const SevHashes& hashes) {
  std::array<std::uint8_t, kSevHashTableSize> table{};
  std::size_t at = 0;
  auto put_guid = [&](const Guid& guid) {
    std::copy(guid.stored().begin(), guid.stored().end(), table.begin() + static_cast<long>(at));
    at += Guid::kSize;
  };
  put_guid(edk2::kSevHashTableHeaderGuid);
  store_le16(table, at, static_cast<std::uint16_t>(edk2::kSevHashTableUnpaddedSize));
  at += 2;
  const std::pair<const Guid*, const Sha256Digest*> entries[] = {
      {&edk2::kSevCmdlineEntryGuid, &hashes.cmdline},
      {&edk2::kSevInitrdEntryGuid, &hashes.initrd},
      {&edk2::kSevKernelEntryGuid, &hashes.kernel}};
  for (const auto& [guid, digest] : entries) {
    put_guid(*guid);
    store_le16(table, at, static_cast<std::uint16_t>(edk2::kSevHashEntrySize));
    at += 2;
    std::copy(digest->begin(), digest->end(), table.begin() + static_cast<long>(at));
    at += digest->size();
  }
  return table;
}

std::string_view to_string(SnpMode mode) {
  switch (mode) {
    case SnpMode::kSnp:
      return "snp";
    case SnpMode::kFirmwareOnly:
      return "snp:ovmf-hash";
    case SnpMode::kSvsm:
      return "snp:svsm";
  }
  return "unknown";
}

Result<LaunchPlan> build_snp_plan(const OvmfImage& firmware, const SnpLaunchOptions& o) {
  CLOISTER_CHECK_OK(check_image_size(firmware, "the firmware image"));
  const std::uint64_t firmware_gpa = kFourGiB - firmware.size();

  if (o.mode == SnpMode::kFirmwareOnly) {
    LaunchPlanBuilder builder(Tee::kSevSnp);
    builder.add({.gpa = firmware_gpa,
                 .size = firmware.size(),
                 .type = PageType::kNormal,
                 .data = builder.keep(firmware.shared_bytes()),
                 .label = "firmware"});
    return std::move(builder).build();
  }
  if (o.vcpus == 0) {
    return Error("zero vCPUs: an SNP guest needs at least one; give --vcpus N (N >= 1)");
  }
  if (o.mode == SnpMode::kSvsm) return build_svsm_plan(firmware, o);

  if (o.vmm.rdx_is_vcpu_signature && !o.vcpu_signature) {
    return Error("VMM type " + std::string(o.vmm.name) +
                 " puts the vCPU signature in the VMSA: give --vcpu-type, --vcpu-sig or "
                 "--vcpu-family/--vcpu-model/--vcpu-stepping");
  }
  const auto reset_eip = firmware.sev_es_reset_eip();
  if (!reset_eip) {
    return Error("the firmware has no SEV-ES reset block (footer entry " +
                 edk2::kSevEsResetBlockGuid.to_string() +
                 "), so its vCPUs cannot start under SEV-ES/SNP: use an SNP-capable OVMF");
  }
  if (o.vcpus > 1 && *reset_eip == 0) {
    return Error(
        "the firmware's SEV-ES reset block gives AP reset EIP 0, so only one vCPU can "
        "start: use --vcpus 1 or an OVMF with an AP reset vector");
  }
  CLOISTER_TRY(auto sections, sev_sections(firmware, "the firmware image"));

  LaunchPlanBuilder builder(Tee::kSevSnp);
  LaunchOp firmware_op{.gpa = firmware_gpa,
                       .size = firmware.size(),
                       .type = PageType::kNormal,
                       .data = builder.keep(firmware.shared_bytes()),
                       .label = "firmware"};
  if (o.firmware_digest) {
    builder.set_snp_seed(*o.firmware_digest);
    firmware_op.seeded = true;
    firmware_op.label += " (covered by the given firmware digest)";
  }
  builder.add(std::move(firmware_op));
  CLOISTER_CHECK_OK(
      add_metadata_sections(builder, firmware, "firmware", sections, o.vmm, o.kernel_hashes));
  const std::uint32_t sig = o.vcpu_signature.value_or(0);
  const ByteView bsp = keep_vmsa(builder, reset_vmsa(o.vmm, kBspResetEip, sig, o.guest_features));
  const ByteView ap =
      o.vcpus > 1 ? keep_vmsa(builder, reset_vmsa(o.vmm, *reset_eip, sig, o.guest_features)) : bsp;
  add_vmsas(builder, o.vcpus, bsp, ap);
  return std::move(builder).build();
}

}  // namespace cloister::fw
