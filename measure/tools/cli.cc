#include "cli.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "cloister/common/base64.h"
#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "cloister/firmware_loader/launch.h"
#include "cloister/firmware_loader/ovmf.h"
#include "cloister/measure/reference_values.h"
#include "cloister/measure/snp_digest.h"
#include "cloister/measure/tdx_mrtd.h"

namespace cloister::measure {
namespace {

using nlohmann::json;

// Integers as sev-snp-measure accepts them (Python int(x, 0)): decimal, 0x, 0o or 0b prefix.
Result<std::uint64_t> parse_number(std::string_view option, std::string_view text) {
  std::string_view digits = text;
  int base = 10;
  if (digits.size() > 2 && digits[0] == '0') {
    const char p = static_cast<char>(digits[1] | 0x20);
    base = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 10;
    if (base != 10) digits.remove_prefix(2);
  }
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    return Error(std::string(option) + ": '" + std::string(text) +
                 "' is not a non-negative integer (decimal, or 0x/0o/0b prefixed)");
  }
  return value;
}

Result<std::shared_ptr<const Bytes>> load(const std::string& option, const std::string& path,
                                          const FileLimit& limit) {
  auto bytes = read_file(path, limit);
  if (!bytes) return bytes.error().with_context(option);
  return std::make_shared<const Bytes>(std::move(bytes).value());
}

// What one measurement run produced, before it is printed.
struct Measurement {
  fw::Tee tee = fw::Tee::kSevSnp;
  Sha384Digest digest{};
  std::string label;  // "SNP launch measurement" / "TDX MRTD"
  json document;      // --json output (without the measurement, added when printing); -v
                      // prints its fields
};

struct OutputOptions {
  std::string format = "hex";
  bool json = false;
  std::string policy_out;
  bool verbose = false;
};

void add_output_options(CLI::App& app, OutputOptions& o) {
  app.add_option("--output-format", o.format, "Measurement output format")
      ->check(CLI::IsMember({"hex", "base64"}));
  app.add_flag("--json", o.json, "Print a JSON document with the measurement and its inputs");
  app.add_option("--policy-out", o.policy_out,
                 "Write the reference values as a verify-report policy to FILE");
  app.add_flag("-v,--verbose", o.verbose, "Also print the inputs that determine the result");
}

// "key: value" lines for -v, with the inputs' fields inlined.
void print_fields(const json& document, std::ostream& out) {
  for (const auto& [key, value] : document.items()) {
    if (key == "inputs") {
      print_fields(value, out);
    } else {
      out << key << ": " << (value.is_string() ? value.get<std::string>() : value.dump()) << "\n";
    }
  }
}

Status emit(const Measurement& m, const OutputOptions& o, std::ostream& out) {
  const std::string hex = to_hex(m.digest);
  if (!o.policy_out.empty()) {
    const std::string policy = reference_values_policy(m.tee, std::span(&m.digest, 1));
    if (auto written = write_file_atomic(o.policy_out, as_bytes(policy)); !written)
      return written.error().with_context("--policy-out");
  }
  if (o.json) {
    json doc = m.document;
    doc[m.tee == fw::Tee::kSevSnp ? "measurement" : "mrtd"] = hex;
    doc["reference_values"] = json::parse(reference_values_policy(m.tee, std::span(&m.digest, 1)));
    out << doc.dump(2) << "\n";
    return {};
  }
  const std::string shown = o.format == "base64" ? to_base64(m.digest) : hex;
  if (o.verbose) {
    print_fields(m.document, out);
    out << "Calculated " << m.label << ": " << shown << "\n";
  } else {
    out << shown << "\n";
  }
  return {};
}

// ---- inputs --------------------------------------------------------------------------------

// A file option, the input it fills and its format's limit; `path` is empty when the option is
// not given.
struct FileArg {
  std::string option;
  std::string path;
  std::optional<fw::LaunchFile>* input;
  const FileLimit& limit;
};

// Names the given files ("--ovmf PATH"), checks the inputs, reads the files, plans the launch.
Result<fw::LaunchPlan> plan_with_files(fw::LaunchInputs& in, const std::vector<FileArg>& files) {
  for (const FileArg& f : files)
    if (!f.path.empty()) *f.input = fw::LaunchFile{f.option + " " + f.path, nullptr};
  CLOISTER_CHECK_OK(fw::check_launch_inputs(in));
  for (const FileArg& f : files) {
    if (f.path.empty()) continue;
    CLOISTER_TRY((*f.input)->bytes, load(f.option, f.path, f.limit));
  }
  return fw::plan_launch(in);
}

// ---- snp -----------------------------------------------------------------------------------

struct SnpArgs {
  std::string mode = "snp";
  std::string ovmf, igvm, kernel, initrd, append, svsm, vars_file, vcpu_type, vcpu_sig;
  std::string guest_features = "0x1", vmm_type = "QEMU", snp_ovmf_hash;
  std::string igvm_zero_pages = "zero";
  std::optional<std::int64_t> vcpus;
  std::optional<std::uint32_t> vcpu_family, vcpu_model, vcpu_stepping;
  std::optional<std::int64_t> vars_size;
  bool dump_vmsa = false;
  // Which options were given at all (an empty --append is still given).
  bool has_append = false, has_vcpu_sig = false, has_guest_features = false, has_vmm_type = false;
};

Result<std::optional<std::uint32_t>> vcpus_from(const std::optional<std::int64_t>& vcpus) {
  if (!vcpus) return std::optional<std::uint32_t>();
  if (*vcpus < 0 || *vcpus > 0xffffffffll)
    return Error("--vcpus " + std::to_string(*vcpus) + " is out of range");
  return std::optional<std::uint32_t>(static_cast<std::uint32_t>(*vcpus));
}

// The OVMF_VARS size of snp:svsm: --vars-size, or the size of --vars-file.
Result<std::optional<std::uint64_t>> vars_size_from(const SnpArgs& a) {
  if (!a.vars_file.empty()) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(a.vars_file, ec);
    if (ec) return Error("--vars-file: cannot read " + a.vars_file + ": " + ec.message());
    if (a.vars_size && static_cast<std::uint64_t>(*a.vars_size) != size) {
      return Error("--vars-size " + std::to_string(*a.vars_size) + " does not match the " +
                   std::to_string(size) + "-byte --vars-file " + a.vars_file +
                   ": drop one of them");
    }
    return std::optional<std::uint64_t>(size);
  }
  if (!a.vars_size) return std::optional<std::uint64_t>();
  if (*a.vars_size < 0) return Error("--vars-size must not be negative");
  return std::optional<std::uint64_t>(static_cast<std::uint64_t>(*a.vars_size));
}

// The launch inputs the options give. sev-snp-measure's defaults (VMM type QEMU, guest
// features 0x1) apply where the options do: not to IGVM files.
Result<fw::LaunchInputs> snp_inputs(const SnpArgs& a) {
  if (a.mode == "sev" || a.mode == "seves") {
    return Error("--mode " + a.mode +
                 " is not supported: cloister-measure measures SEV-SNP "
                 "(--mode snp, snp:ovmf-hash or snp:svsm)");
  }
  fw::LaunchInputs in;
  in.snp_mode = a.mode == "snp:ovmf-hash" ? fw::SnpMode::kFirmwareOnly
                : a.mode == "snp:svsm"    ? fw::SnpMode::kSvsm
                                          : fw::SnpMode::kSnp;
  CLOISTER_TRY(in.vcpus, vcpus_from(a.vcpus));
  const bool igvm = !a.igvm.empty();
  if (a.has_vmm_type || !igvm) {
    CLOISTER_TRY(in.vmm, fw::find_vmm_profile(a.vmm_type));
  }
  if (!a.vcpu_type.empty()) in.vcpu_signature.type = a.vcpu_type;
  if (a.has_vcpu_sig) {
    CLOISTER_TRY(const std::uint64_t sig, parse_number("--vcpu-sig", a.vcpu_sig));
    if (sig > 0xffffffffull) return Error("--vcpu-sig " + a.vcpu_sig + " does not fit 32 bits");
    in.vcpu_signature.signature = static_cast<std::uint32_t>(sig);
  }
  in.vcpu_signature.family = a.vcpu_family;
  in.vcpu_signature.model = a.vcpu_model;
  in.vcpu_signature.stepping = a.vcpu_stepping;
  if (a.has_guest_features || !igvm) {
    CLOISTER_TRY(in.guest_features, parse_number("--guest-features", a.guest_features));
  }
  if (!a.snp_ovmf_hash.empty()) {
    auto seed = from_hex_exact(a.snp_ovmf_hash, 48);
    if (!seed) return seed.error().with_context("--snp-ovmf-hash");
    Sha384Digest digest{};
    std::copy(seed->begin(), seed->end(), digest.begin());
    in.firmware_digest = digest;
  }
  if (a.has_append) in.direct_boot.cmdline = a.append;
  CLOISTER_TRY(in.vars_size, vars_size_from(a));
  in.igvm_zero_pages =
      a.igvm_zero_pages == "normal" ? fw::IgvmZeroPages::kNormalZero : fw::IgvmZeroPages::kSnpZero;
  return in;
}

Result<Measurement> measure_igvm(const SnpArgs& a, const fw::LaunchPlan& plan) {
  CLOISTER_TRY(const Sha384Digest digest, snp_launch_digest(plan));
  Measurement m;
  m.digest = digest;
  m.label = "SNP launch measurement";
  m.document = {{"tee", "snp"},
                {"mode", "snp"},
                {"inputs", {{"igvm", a.igvm}, {"igvm_zero_pages", a.igvm_zero_pages}}},
                {"vcpus", plan.vcpu_count()},
                {"vmsa_features", hex_number(plan.snp().vmsa_features)}};
  if (plan.snp().policy) m.document["guest_policy"] = hex_number(*plan.snp().policy);
  if (const auto& id = plan.snp().id_block) {
    const std::string expected = to_hex(id->expected_launch_digest);
    m.document["id_block_launch_digest"] = expected;
    if (id->expected_launch_digest != digest) {
      return Error("the IGVM file's SNP ID block expects launch digest " + expected +
                   " but its pages measure " + to_hex(digest) +
                   ": the firmware would refuse LAUNCH_FINISH; rebuild the file's ID block");
    }
  }
  return m;
}

// The inputs that determine the digest of modes snp, snp:ovmf-hash and snp:svsm.
json snp_document(const SnpArgs& a, const fw::LaunchInputs& in, const fw::LaunchPlan& plan) {
  json inputs = {{"ovmf", a.ovmf}};
  if (in.snp_mode == fw::SnpMode::kFirmwareOnly) return inputs;
  inputs["vcpus"] = *in.vcpus;
  inputs["vmm_type"] = std::string(in.vmm->name);
  if (auto sig = fw::resolve_vcpu_signature(in.vcpu_signature); sig && *sig)
    inputs["vcpu_signature"] = hex_number(**sig);
  if (in.snp_mode == fw::SnpMode::kSnp) inputs["guest_features"] = hex_number(*in.guest_features);
  if (in.firmware_digest) inputs["snp_ovmf_hash"] = to_hex(*in.firmware_digest);
  if (const auto& hashes = plan.snp().kernel_hashes) {
    inputs["kernel"] = {{"path", a.kernel}, {"sha256", to_hex(hashes->kernel)}};
    inputs["initrd"] = {{"path", a.initrd}, {"sha256", to_hex(hashes->initrd)}};
    inputs["append"] = a.append;
  }
  if (in.snp_mode == fw::SnpMode::kSvsm) {
    inputs["svsm"] = a.svsm;
    inputs["vars_size"] = *in.vars_size;
  }
  return inputs;
}

Result<Measurement> measure_snp(const SnpArgs& a) {
  CLOISTER_TRY(fw::LaunchInputs in, snp_inputs(a));
  CLOISTER_TRY(
      const fw::LaunchPlan plan,
      plan_with_files(in, {{"--ovmf", a.ovmf, &in.firmware, fw::kFirmwareFileLimit},
                           {"--igvm", a.igvm, &in.igvm, fw::kIgvmFileLimit},
                           {"--kernel", a.kernel, &in.direct_boot.kernel, fw::kKernelFileLimit},
                           {"--initrd", a.initrd, &in.direct_boot.initrd, fw::kInitrdFileLimit},
                           {"--svsm", a.svsm, &in.svsm, fw::kFirmwareFileLimit}}));
  if (in.igvm) return measure_igvm(a, plan);
  CLOISTER_TRY(const Sha384Digest digest, snp_launch_digest(plan));
  if (a.dump_vmsa) {
    for (const fw::LaunchOp& op : plan.ops()) {
      if (op.type != fw::PageType::kVmsa) continue;
      const std::string name = "vmsa" + std::to_string(op.vcpu) + ".bin";
      if (auto written = write_file_atomic(name, op.data); !written)
        return written.error().with_context("--dump-vmsa");
    }
  }
  Measurement m;
  m.digest = digest;
  m.label = in.snp_mode == fw::SnpMode::kFirmwareOnly ? "SNP firmware digest (ovmf-hash)"
                                                      : "SNP launch measurement";
  m.document = {{"tee", "snp"}, {"mode", a.mode}, {"inputs", snp_document(a, in, plan)}};
  return m;
}

// ---- tdx -----------------------------------------------------------------------------------

struct TdxArgs {
  std::string ovmf, igvm;
  std::string page_order = "single-pass";
  std::optional<std::string> memory;
  std::optional<std::int64_t> vcpus;
};

Result<Measurement> measure_tdx(const TdxArgs& a) {
  fw::LaunchInputs in;
  in.tee = fw::Tee::kTdx;
  in.page_order =
      a.page_order == "two-pass" ? fw::TdxPageOrder::kTwoPass : fw::TdxPageOrder::kSinglePass;
  if (a.memory) {
    CLOISTER_TRY(in.memory_bytes, fw::parse_memory_size(*a.memory));
  }
  CLOISTER_TRY(in.vcpus, vcpus_from(a.vcpus));
  CLOISTER_TRY(const fw::LaunchPlan plan,
               plan_with_files(in, {{"--ovmf", a.ovmf, &in.firmware, fw::kFirmwareFileLimit},
                                    {"--igvm", a.igvm, &in.igvm, fw::kIgvmFileLimit}}));
  CLOISTER_TRY(const Sha384Digest mrtd, tdx_mrtd(plan));
  Measurement m;
  m.tee = fw::Tee::kTdx;
  m.digest = mrtd;
  m.label = "TDX MRTD";
  json inputs = {{"page_order", a.page_order}, {"vcpus", plan.vcpu_count()}};
  if (in.igvm) {
    inputs["igvm"] = a.igvm;
  } else {
    inputs["ovmf"] = a.ovmf;
    inputs["memory"] = in.memory_bytes.value_or(fw::kDefaultGuestMemory);
  }
  m.document = {{"tee", "tdx"}, {"inputs", inputs}};
  if (plan.tdx().policy) m.document["guest_policy"] = hex_number(*plan.tdx().policy);
  if (in.firmware) {
    if (auto image = fw::OvmfImage::parse(in.firmware->bytes)) {
      if (auto cfv = tdvf_cfv_digest(*image)) m.document["cfv_sha384"] = to_hex(*cfv);
    }
  }
  return m;
}

// ---- dispatch ------------------------------------------------------------------------------

std::string one_line(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

int report(std::ostream& err, const std::string& message) {
  err << "cloister-measure: error: " << one_line(message) << "\n";
  return kExitBadInput;
}

// CLI11 takes arguments in reverse order. "--name=" (an explicitly empty value, as in
// sev-snp-measure's "--append=") becomes "--name" "": CLI11 2.1 would otherwise take the
// next argument as the value.
std::vector<std::string> reversed(std::span<const std::string> args) {
  std::vector<std::string> out;
  for (auto it = args.rbegin(); it != args.rend(); ++it) {
    if (it->starts_with("--") && it->size() > 3 && it->find('=') == it->size() - 1) {
      out.emplace_back();
      out.push_back(it->substr(0, it->size() - 1));
    } else {
      out.push_back(*it);
    }
  }
  return out;
}

// Runs `app` over `args`: nullopt to go on, or the exit code (help, or a usage error).
std::optional<int> parse(CLI::App& app, std::span<const std::string> args, std::ostream& out,
                         std::ostream& err) {
  try {
    std::vector<std::string> rev = reversed(args);
    app.parse(rev);
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    return report(err, std::string(e.what()) + " (see " + app.get_name() + " --help)");
  }
  return std::nullopt;
}

int run_snp(std::span<const std::string> args, std::ostream& out, std::ostream& err) {
  CLI::App app("Expected SEV-SNP launch measurement (sev-snp-measure compatible options)",
               "cloister-measure snp");
  SnpArgs a;
  OutputOptions o;
  app.add_option("--mode", a.mode, "Guest mode")
      ->check(CLI::IsMember({"snp", "snp:ovmf-hash", "snp:svsm", "sev", "seves"}));
  app.add_option("--ovmf", a.ovmf, "OVMF file to measure");
  app.add_option("--igvm", a.igvm, "IGVM file to measure (instead of --ovmf)");
  app.add_option("--igvm-zero-pages", a.igvm_zero_pages,
                 "IGVM pages without data: 'zero' (SNP ZERO pages, QEMU/KVM) or 'normal'")
      ->check(CLI::IsMember({"zero", "normal"}));
  app.add_option("--vcpus", a.vcpus, "Number of guest vCPUs");
  app.add_option("--vcpu-type", a.vcpu_type, "QEMU vCPU model, e.g. EPYC-v4, EPYC-Milan");
  auto* sig = app.add_option("--vcpu-sig", a.vcpu_sig, "vCPU signature (CPUID(1).EAX)");
  app.add_option("--vcpu-family", a.vcpu_family, "vCPU family");
  app.add_option("--vcpu-model", a.vcpu_model, "vCPU model");
  app.add_option("--vcpu-stepping", a.vcpu_stepping, "vCPU stepping");
  auto* vmm = app.add_option("--vmm-type", a.vmm_type,
                             "VMM type: QEMU (default), ec2, gce, cloister (cloister-vmm)");
  app.add_option("--kernel", a.kernel, "Kernel file (measured direct boot)");
  app.add_option("--initrd", a.initrd, "Initrd file (with --kernel)");
  auto* append = app.add_option("--append", a.append, "Kernel command line (with --kernel)");
  auto* features =
      app.add_option("--guest-features", a.guest_features, "VMSA SEV_FEATURES (default 0x1)");
  app.add_option("--snp-ovmf-hash", a.snp_ovmf_hash,
                 "Precomputed firmware digest (hex, from --mode snp:ovmf-hash)");
  app.add_option("--svsm", a.svsm, "COCONUT-SVSM binary (snp:svsm)");
  app.add_option("--vars-size", a.vars_size, "OVMF_VARS size in bytes (snp:svsm)");
  app.add_option("--vars-file", a.vars_file, "OVMF_VARS file (snp:svsm)");
  app.add_flag("--dump-vmsa", a.dump_vmsa, "Write the measured VMSAs to vmsa<N>.bin");
  add_output_options(app, o);
  if (auto code = parse(app, args, out, err)) return *code;
  a.has_vcpu_sig = sig->count() > 0;
  a.has_append = append->count() > 0;
  a.has_guest_features = features->count() > 0;
  a.has_vmm_type = vmm->count() > 0;

  auto m = measure_snp(a);
  if (!m) return report(err, m.error().message());
  if (auto shown = emit(*m, o, out); !shown) return report(err, shown.error().message());
  return kExitOk;
}

int run_tdx(std::span<const std::string> args, std::ostream& out, std::ostream& err) {
  CLI::App app("Expected TDX MRTD of a TDVF (OVMF) image or an IGVM file", "cloister-measure tdx");
  TdxArgs a;
  OutputOptions o;
  app.add_option("--ovmf", a.ovmf, "TDVF/OVMF file to measure (the unified image)");
  app.add_option("--igvm", a.igvm, "IGVM file to measure (instead of --ovmf)");
  app.add_option("--page-order", a.page_order,
                 "single-pass (upstream KVM/QEMU, default) or two-pass (Canonical QEMU 8.2)")
      ->check(CLI::IsMember({"single-pass", "two-pass"}));
  app.add_option("--memory", a.memory,
                 "Guest RAM for the TD HOB, e.g. 512M, 2G (default 128M, cloister-vmm's)");
  app.add_option("--vcpus", a.vcpus, "vCPUs announced in the TD HOB (default 1)");
  add_output_options(app, o);
  if (auto code = parse(app, args, out, err)) return *code;
  auto m = measure_tdx(a);
  if (!m) return report(err, m.error().message());
  if (auto shown = emit(*m, o, out); !shown) return report(err, shown.error().message());
  return kExitOk;
}

constexpr const char* kUsage =
    "usage: cloister-measure snp [options]   expected SEV-SNP launch measurement\n"
    "       cloister-measure tdx [options]   expected TDX MRTD\n"
    "       cloister-measure --mode snp ...  (sev-snp-measure style, same as 'snp')\n"
    "Run 'cloister-measure snp --help' or 'cloister-measure tdx --help' for the options.\n";

}  // namespace

int run_cli(std::span<const std::string> args, std::ostream& out, std::ostream& err) {
  if (args.empty()) {
    err << kUsage;
    return kExitBadInput;
  }
  const std::string& first = args.front();
  if (first == "snp") return run_snp(args.subspan(1), out, err);
  if (first == "tdx") return run_tdx(args.subspan(1), out, err);
  if (first == "-h" || first == "--help") {
    out << kUsage;
    return kExitOk;
  }
  if (first == "--version") {
    out << "cloister-measure " << CLOISTER_VERSION << "\n";
    return kExitOk;
  }
  if (first.starts_with("-")) return run_snp(args, out, err);
  return report(err, "unknown command '" + first + "': use 'snp' or 'tdx' (see --help)");
}

}  // namespace cloister::measure
