#include "snp_case.h"

#include <gtest/gtest.h>

#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "cloister/firmware_loader/machine.h"
#include "cloister/firmware_loader/ovmf.h"
#include "cloister/firmware_loader/snp.h"
#include "support/vectors.h"

namespace cloister::testing {
namespace {

bool present(const nlohmann::json& c, const char* key) {
  return c.contains(key) && !c[key].is_null();
}

Result<fw::OvmfImage> image(const std::filesystem::path& path) {
  auto bytes = read_file(path, fw::kFirmwareFileLimit);
  if (!bytes) return bytes.error();
  return fw::OvmfImage::parse(std::make_shared<const Bytes>(std::move(bytes).value()));
}

std::uint64_t number(const nlohmann::json& v) {
  return v.is_string() ? std::stoull(v.get<std::string>(), nullptr, 0) : v.get<std::uint64_t>();
}

}  // namespace

nlohmann::json load_json(const std::filesystem::path& path) {
  auto text = read_text_file(path, kTestFileLimit);
  if (!text) {
    ADD_FAILURE() << text.error().message();
    return nlohmann::json();
  }
  return nlohmann::json::parse(*text);
}

Result<fw::LaunchPlan> snp_case_plan(const nlohmann::json& c, const std::filesystem::path& dir) {
  CLOISTER_TRY(const fw::OvmfImage ovmf, image(dir / c["ovmf"].get<std::string>()));
  fw::SnpLaunchOptions o;
  const std::string mode = c["mode"];
  if (mode == "snp:ovmf-hash") {
    o.mode = fw::SnpMode::kFirmwareOnly;
    return fw::build_snp_plan(ovmf, o);
  }
  o.mode = mode == "snp:svsm" ? fw::SnpMode::kSvsm : fw::SnpMode::kSnp;
  o.vcpus = c["vcpus"].get<std::uint32_t>();
  CLOISTER_TRY(o.vmm, fw::find_vmm_profile(c["vmm_type"].get<std::string>()));
  if (present(c, "vcpu_family")) {
    o.vcpu_signature = fw::vcpu_signature(c["vcpu_family"].get<std::uint32_t>(),
                                          c["vcpu_model"].get<std::uint32_t>(),
                                          c["vcpu_stepping"].get<std::uint32_t>());
  } else if (present(c, "vcpu_sig")) {
    o.vcpu_signature = static_cast<std::uint32_t>(number(c["vcpu_sig"]));
  } else if (present(c, "vcpu_type")) {
    CLOISTER_TRY(o.vcpu_signature, fw::vcpu_signature(c["vcpu_type"].get<std::string>()));
  }
  o.guest_features = number(c["guest_features"]);
  if (present(c, "kernel")) {
    CLOISTER_TRY(const Bytes kernel,
                 read_file(dir / c["kernel"].get<std::string>(), fw::kKernelFileLimit));
    Bytes initrd;
    if (present(c, "initrd")) {
      CLOISTER_TRY(initrd, read_file(dir / c["initrd"].get<std::string>(), fw::kInitrdFileLimit));
    }
    const std::string append = present(c, "append") ? c["append"].get<std::string>() : "";
    o.kernel_hashes = fw::SevHashes::compute(kernel, initrd, append);
  }
  if (present(c, "ovmf_hash")) {
    CLOISTER_TRY(const Bytes seed, from_hex_exact(c["ovmf_hash"].get<std::string>(), 48));
    Sha384Digest digest{};
    std::copy(seed.begin(), seed.end(), digest.begin());
    o.firmware_digest = digest;
  }
  std::optional<fw::OvmfImage> svsm;
  if (present(c, "svsm")) {
    CLOISTER_TRY(svsm, image(dir / c["svsm"].get<std::string>()));
    o.svsm = &*svsm;
    if (present(c, "vars_file")) {
      o.vars_size = std::filesystem::file_size(dir / c["vars_file"].get<std::string>());
    } else {
      o.vars_size = number(c["vars_size"]);
    }
  }
  return fw::build_snp_plan(ovmf, o);
}

}  // namespace cloister::testing
