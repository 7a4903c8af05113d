#include "cloister/firmware_loader/launch_plan.h"

#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "ranges.h"
#include "vmsa_layout.h"

namespace cloister::fw {
namespace {

bool valid_for(Tee tee, PageType type) {
  switch (type) {
    case PageType::kNormal:
    case PageType::kZero:
    case PageType::kUnmeasured:
      return true;
    case PageType::kSecrets:
    case PageType::kCpuid:
    case PageType::kVmsa:
      return tee == Tee::kSevSnp;
    case PageType::kTdHob:
      return tee == Tee::kTdx;
  }
  return false;
}

std::string describe(std::size_t index, const LaunchOp& op) {
  return "launch op " + std::to_string(index) + " (" + op.label + ", " +
         std::string(to_string(op.type)) + " at GPA " + hex_number(op.gpa) + ", size " +
         hex_number(op.size) + ")";
}

}  // namespace

std::string_view to_string(Tee tee) {
  return tee == Tee::kSevSnp ? "snp" : "tdx";
}

std::string_view to_string(PageType type) {
  switch (type) {
    case PageType::kNormal:
      return "normal";
    case PageType::kZero:
      return "zero";
    case PageType::kUnmeasured:
      return "unmeasured";
    case PageType::kSecrets:
      return "secrets";
    case PageType::kCpuid:
      return "cpuid";
    case PageType::kVmsa:
      return "vmsa";
    case PageType::kTdHob:
      return "td-hob";
  }
  return "unknown";
}

std::uint8_t snp_page_type_code(PageType type) {
  switch (type) {
    case PageType::kNormal:
      return 0x01;
    case PageType::kVmsa:
      return 0x02;
    case PageType::kZero:
      return 0x03;
    case PageType::kUnmeasured:
      return 0x04;
    case PageType::kSecrets:
      return 0x05;
    case PageType::kCpuid:
      return 0x06;
    case PageType::kTdHob:
      return 0;
  }
  return 0;
}

std::string_view to_string(TdxPageOrder order) {
  return order == TdxPageOrder::kSinglePass ? "single-pass" : "two-pass";
}

std::string_view to_string(IgvmParameterKind kind) {
  switch (kind) {
    case IgvmParameterKind::kVpCount:
      return "vp_count";
    case IgvmParameterKind::kSrat:
      return "srat";
    case IgvmParameterKind::kMadt:
      return "madt";
    case IgvmParameterKind::kMmioRanges:
      return "mmio_ranges";
    case IgvmParameterKind::kMemoryMap:
      return "memory_map";
    case IgvmParameterKind::kCommandLine:
      return "command_line";
    case IgvmParameterKind::kSlit:
      return "slit";
    case IgvmParameterKind::kPptt:
      return "pptt";
    case IgvmParameterKind::kDeviceTree:
      return "device_tree";
    case IgvmParameterKind::kEnvironmentInfo:
      return "environment_info";
  }
  return "unknown";
}

ByteView LaunchPlanBuilder::keep(std::shared_ptr<const Bytes> bytes) {
  const ByteView view = *bytes;
  plan_.storage_.push_back(std::move(bytes));
  return view;
}

ByteView LaunchPlanBuilder::keep(Bytes bytes) {
  return keep(std::make_shared<const Bytes>(std::move(bytes)));
}

LaunchPlanBuilder& LaunchPlanBuilder::add(LaunchOp op) {
  plan_.ops_.push_back(std::move(op));
  return *this;
}

LaunchPlanBuilder& LaunchPlanBuilder::set_snp_seed(const Sha384Digest& seed) {
  plan_.snp_seed_ = seed;
  return *this;
}

LaunchPlanBuilder& LaunchPlanBuilder::set_snp_policy(std::uint64_t policy) {
  plan_.snp_.policy = policy;
  return *this;
}

LaunchPlanBuilder& LaunchPlanBuilder::set_snp_id_block(const SnpIdBlock& id_block) {
  plan_.snp_.id_block = id_block;
  return *this;
}

LaunchPlanBuilder& LaunchPlanBuilder::set_snp_kernel_hashes(const SevHashes& hashes) {
  plan_.snp_.kernel_hashes = hashes;
  return *this;
}

LaunchPlanBuilder& LaunchPlanBuilder::set_tdx_page_order(TdxPageOrder order) {
  plan_.tdx_page_order_ = order;
  return *this;
}

LaunchPlanBuilder& LaunchPlanBuilder::set_tdx_vcpu_count(std::uint32_t vcpus) {
  plan_.vcpu_count_ = vcpus;
  return *this;
}

LaunchPlanBuilder& LaunchPlanBuilder::set_tdx_policy(std::uint64_t policy) {
  plan_.tdx_.policy = policy;
  return *this;
}

LaunchPlanBuilder& LaunchPlanBuilder::add_parameter_area(const ParameterArea& area) {
  plan_.parameter_areas_.push_back(area);
  return *this;
}

LaunchPlanBuilder& LaunchPlanBuilder::add_parameter(const Parameter& parameter) {
  plan_.parameters_.push_back(parameter);
  return *this;
}

LaunchPlanBuilder& LaunchPlanBuilder::add_required_memory(const GpaRange& range) {
  plan_.required_memory_.push_back(range);
  return *this;
}

Result<LaunchPlan> LaunchPlanBuilder::build() && {
  LaunchPlan& plan = plan_;
  const Tee tee = plan.tee_;
  const bool snp = tee == Tee::kSevSnp;

  if (!snp && plan.snp_seed_) return Error("launch plan: a TDX plan cannot have an SNP seed");
  if (!snp && (plan.snp_.policy || plan.snp_.id_block || plan.snp_.kernel_hashes))
    return Error("launch plan: a TDX plan cannot carry an SNP policy, ID block or kernel hashes");
  if (snp && plan.tdx_page_order_ != TdxPageOrder::kSinglePass)
    return Error("launch plan: an SNP plan has no TDX page order");
  if (snp && (plan.vcpu_count_ != 0 || plan.tdx_.policy))
    return Error("launch plan: an SNP plan cannot carry a TDX vCPU count or policy");

  for (std::size_t i = 0; i < plan.parameter_areas_.size(); ++i) {
    const ParameterArea& area = plan.parameter_areas_[i];
    if (area.size == 0 || area.size % kPageSize != 0 || area.size > kMaxGpa ||
        area.initial.size() > area.size) {
      return Error("launch plan: parameter area " + std::to_string(area.index) + " has size " +
                   hex_number(area.size) + " and " + hex_number(area.initial.size()) +
                   " initial bytes; expected a non-zero multiple of 4 KiB below 2^52 holding them");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (plan.parameter_areas_[j].index == area.index)
        return Error("launch plan: parameter area " + std::to_string(area.index) +
                     " is declared twice");
    }
  }
  auto find_area = [&](std::uint32_t index) -> const ParameterArea* {
    for (const ParameterArea& area : plan.parameter_areas_)
      if (area.index == index) return &area;
    return nullptr;
  };
  for (const Parameter& p : plan.parameters_) {
    const ParameterArea* area = find_area(p.area);
    if (area == nullptr || p.byte_offset >= area->size) {
      return Error("launch plan: parameter " + std::string(to_string(p.kind)) + " at offset " +
                   hex_number(p.byte_offset) + " of parameter area " + std::to_string(p.area) +
                   (area == nullptr ? ", which is not declared"
                                    : ", beyond the area's " + hex_number(area->size) + " bytes"));
    }
  }
  for (const GpaRange& r : plan.required_memory_) {
    if (r.size == 0 || r.gpa % kPageSize != 0 || r.size % kPageSize != 0 || r.gpa >= kMaxGpa ||
        r.size > kMaxGpa - r.gpa) {
      return Error("launch plan: required memory [" + hex_number(r.gpa) + ", +" +
                   hex_number(r.size) + ") must be non-empty, 4 KiB aligned and below 2^52");
    }
  }

  std::vector<IndexedRange> spans;
  bool seen_vmsa = false;
  bool seen_unseeded = false;
  std::optional<std::uint64_t> features;
  std::uint32_t vcpus = 0;
  std::uint64_t populated = 0;  // bytes of non-VMSA ops so far
  for (std::size_t i = 0; i < plan.ops_.size(); ++i) {
    const LaunchOp& op = plan.ops_[i];
    const std::string what = describe(i, op);
    if (!valid_for(tee, op.type)) {
      return Error(what + ": page type " + std::string(to_string(op.type)) +
                   " does not exist for " + std::string(to_string(tee)));
    }
    if (op.size == 0 || op.size % kPageSize != 0 || op.gpa % kPageSize != 0)
      return Error(what + ": GPA and size must be 4 KiB aligned and the size non-zero");
    if (op.gpa >= kMaxGpa || op.size > kMaxGpa - op.gpa)
      return Error(what + ": the range ends beyond the 52-bit guest-physical space");
    if (op.data.size() > op.size)
      return Error(what + ": " + hex_number(op.data.size()) + " bytes of data do not fit");
    if (op.type == PageType::kZero && !op.data.empty())
      return Error(what + ": this page type carries no data, found " + hex_number(op.data.size()) +
                   " bytes");
    if (op.tdx_extend && snp) return Error(what + ": MR.EXTEND is a TDX operation");
    if (op.tdx_extend && op.type == PageType::kUnmeasured)
      return Error(what + ": unmeasured pages are never MR.EXTENDed");
    if (op.seeded) {
      if (!snp || !plan.snp_seed_)
        return Error(what + ": marked as covered by a seed digest, but the plan has none");
      if (seen_unseeded) return Error(what + ": ops covered by the seed digest must come first");
    } else {
      seen_unseeded = true;
    }
    if (op.parameter_area) {
      const ParameterArea* area = find_area(*op.parameter_area);
      if (area == nullptr || op.type != PageType::kUnmeasured || area->size != op.size ||
          op.data.data() != area->initial.data() || op.data.size() != area->initial.size()) {
        return Error(what + ": inserts parameter area " + std::to_string(*op.parameter_area) +
                     ", expected an unmeasured op with that declared area's size and contents");
      }
    }
    if (op.type == PageType::kVmsa) {
      if (op.gpa != kSnpVmsaGpa || op.size != kPageSize || op.data.size() != kPageSize) {
        return Error(what + ": a VMSA is one full 4 KiB page at GPA " + hex_number(kSnpVmsaGpa) +
                     " (KVM measures every VMSA there)");
      }
      if (op.vcpu != vcpus) {
        return Error(what + ": VMSAs must come in vCPU order, expected vCPU " +
                     std::to_string(vcpus) + ", found " + std::to_string(op.vcpu));
      }
      const std::uint64_t sev_features = load_le64(op.data, vmsa::kSevFeatures);
      if (features && *features != sev_features) {
        return Error(what + ": SEV_FEATURES " + hex_number(sev_features) +
                     " differs from vCPU 0's " + hex_number(*features) +
                     "; KVM_SEV_INIT2 sets one value for the whole VM");
      }
      features = sev_features;
      seen_vmsa = true;
      ++vcpus;
      continue;
    }
    if (seen_vmsa) {
      return Error(what +
                   ": follows a VMSA; KVM measures the VMSAs in LAUNCH_FINISH, after "
                   "every page");
    }
    populated += op.size;
    if (populated > kMaxLaunchMemory) {
      return Error(what + ": brings the memory the plan puts in place before the guest runs to " +
                   hex_number(populated) + " bytes, more than the " +
                   size_in_words(kMaxLaunchMemory) +
                   " a launch may populate (fw::kMaxLaunchMemory)");
    }
    spans.push_back({op.gpa, op.gpa + op.size, i});
  }
  if (auto overlap = first_overlap(spans)) {
    const auto& [a, b] = *overlap;
    return Error(describe(b.index, plan.ops_[b.index]) + " overlaps " +
                 describe(a.index, plan.ops_[a.index]));
  }
  if (snp) plan.vcpu_count_ = vcpus;
  plan.snp_.vmsa_features = features.value_or(0);
  return std::move(plan);
}

}  // namespace cloister::fw
