// sim-snp: the simulated AMD secure processor next to a plain VM (docs/simulated-tee.md). The
// launch executes the LaunchPlan as SNP_LAUNCH_UPDATE would — each page written into guest
// memory and folded into the launch digest as it is loaded, the secrets page filled with fresh
// VMPCKs, the CPUID page from the VM's CPUID, the vCPUs' state from the plan's VMSAs, which are
// folded last as LAUNCH_FINISH does — and the guest reaches the firmware through the SNP
// doorbell (sim_abi.h) with GHCB guest requests in the hardware's formats.
#include <mutex>

#include "backends.h"
#include "cloister/attestation/sim/snp_firmware.h"
#include "cloister/attestation/sim/state_dir.h"
#include "cloister/common/hex.h"
#include "cloister/measure/snp_digest.h"
#include "cloister/vmm/tee/sim_abi.h"
#include "launch_ops.h"
#include "sim_platform.h"

namespace cloister::vmm::tee {
namespace {

namespace sim = attestation::sim;

constexpr std::uint64_t kPage = 4096;
// The largest certificate buffer the simulator fills (Linux's SEV_FW_BLOB_MAX_SIZE is 16 KiB).
constexpr std::uint64_t kMaxCertificatePages = 16;

// SNP ABI 56860 ID_BLOCK: LD, FAMILY_ID, IMAGE_ID, VERSION, GUEST_SVN, POLICY; ID_AUTH: the ID
// key at 0x240 and the author key at 0x880, each a 0x404-byte public key whose SHA-384 the
// report carries as ID_KEY_DIGEST / AUTHOR_KEY_DIGEST.
constexpr std::size_t kIdBlockFamilyId = 48, kIdBlockImageId = 64, kIdBlockGuestSvn = 84;
constexpr std::size_t kIdAuthIdKey = 0x240, kIdAuthAuthorKey = 0x880, kIdAuthKeySize = 0x404;

sim::SnpIdBlock id_block_fields(const SnpSettings& s) {
  sim::SnpIdBlock out;
  const auto& block = *s.id_block;
  std::copy_n(block.begin() + kIdBlockFamilyId, 16, out.family_id.begin());
  std::copy_n(block.begin() + kIdBlockImageId, 16, out.image_id.begin());
  out.guest_svn = load_le32(block, kIdBlockGuestSvn);
  const ByteView auth(*s.id_auth);
  out.id_key_digest = sha384(auth.subspan(kIdAuthIdKey, kIdAuthKeySize));
  if (s.author_key) out.author_key_digest = sha384(auth.subspan(kIdAuthAuthorKey, kIdAuthKeySize));
  return out;
}

// The SNP doorbell: a 32-bit write of a GHCB page frame number is one VMGEXIT.
class SnpDoorbell final : public BusDevice {
 public:
  SnpDoorbell(sim::SnpGuest& guest, const GuestMemory& memory, Logger& log)
      : guest_(guest), memory_(memory), log_(log) {}

  std::string_view name() const override { return "sim-snp doorbell"; }
  void read(std::uint64_t, std::span<std::uint8_t> data) override {
    std::fill(data.begin(), data.end(), 0);
  }

  void write(std::uint64_t offset, std::span<const std::uint8_t> data) override {
    if (offset != 0 || data.size() != 4) return;  // the ABI's only access
    const std::uint64_t gpa = std::uint64_t{load_le32(data, 0)} * kPage;
    auto ghcb = memory_.view(gpa, kPage, Access::kWrite, "sim-snp GHCB");
    if (!ghcb) {
      refusals_.log(log_, LogLevel::kWarn, "sim_snp.bad_ghcb", ghcb.error().message());
      return;  // no page to answer in: the guest sees its GHCB unchanged
    }
    serve(*ghcb);
  }

 private:
  static void put(std::span<std::uint8_t> ghcb, std::size_t offset, std::uint64_t value) {
    store_le64(ghcb, offset, value);
  }

  void serve(std::span<std::uint8_t> ghcb) {
    const std::uint64_t code = load_le64(ghcb, CLOISTER_GHCB_SW_EXIT_CODE);
    const std::uint64_t request_gpa = load_le64(ghcb, CLOISTER_GHCB_SW_EXIT_INFO_1);
    const std::uint64_t response_gpa = load_le64(ghcb, CLOISTER_GHCB_SW_EXIT_INFO_2);
    if (code != CLOISTER_SVM_VMGEXIT_GUEST_REQUEST &&
        code != CLOISTER_SVM_VMGEXIT_EXT_GUEST_REQUEST) {
      refusals_.log(log_, LogLevel::kWarn, "sim_snp.unsupported_exit",
                    "the simulator serves guest requests only",
                    {{"sw_exit_code", hex_number(code)}});
      put(ghcb, CLOISTER_GHCB_SW_EXIT_INFO_1, 1);  // not handled
      return;
    }
    put(ghcb, CLOISTER_GHCB_SW_EXIT_INFO_1, 0);
    auto request = memory_.view(request_gpa, kPage, Access::kRead, "sim-snp request page");
    auto response = memory_.view(response_gpa, kPage, Access::kWrite, "sim-snp response page");
    if (!request || !response) {
      refusals_.log(log_, LogLevel::kWarn, "sim_snp.bad_request",
                    (!request ? request : response).error().message());
      put(ghcb, CLOISTER_GHCB_SW_EXIT_INFO_2, CLOISTER_SNP_FW_INVALID_PARAM);
      return;
    }
    const Bytes request_bytes(request->begin(), request->end());
    sim::GuestRequestResult result;
    if (code == CLOISTER_SVM_VMGEXIT_EXT_GUEST_REQUEST) {
      const std::uint64_t certs_gpa = load_le64(ghcb, CLOISTER_GHCB_RAX);
      const std::uint64_t pages = load_le64(ghcb, CLOISTER_GHCB_RBX);
      std::span<std::uint8_t> certs;
      if (pages != 0 && pages <= kMaxCertificatePages) {
        auto view =
            memory_.view(certs_gpa, pages * kPage, Access::kWrite, "sim-snp certificate buffer");
        if (!view) {
          refusals_.log(log_, LogLevel::kWarn, "sim_snp.bad_request", view.error().message());
          put(ghcb, CLOISTER_GHCB_SW_EXIT_INFO_2, CLOISTER_SNP_FW_INVALID_PARAM);
          return;
        }
        certs = *view;
      }
      auto ext = guest_.ext_guest_request(request_bytes, certs.size() / kPage);
      if (ext.vmm_error == sim::kVmmErrorInvalidLen) {
        put(ghcb, CLOISTER_GHCB_RBX, ext.pages_needed);
        put(ghcb, CLOISTER_GHCB_SW_EXIT_INFO_2,
            std::uint64_t{CLOISTER_SNP_VMM_ERR_INVALID_LEN} << 32);
        return;
      }
      if (ext.request.firmware_status == 0) {
        std::fill(certs.begin(), certs.end(), 0);
        std::copy(ext.certificates.begin(), ext.certificates.end(), certs.begin());
      }
      result = std::move(ext.request);
    } else {
      result = guest_.guest_request(request_bytes);
    }
    if (result.firmware_status == 0) {
      std::fill(response->begin(), response->end(), 0);
      std::copy(result.response.begin(), result.response.end(), response->begin());
    }
    if (result.error.empty())
      log_.debug("sim_snp.report", "guest request served");
    else
      refusals_.log(log_, LogLevel::kWarn, "sim_snp.refused", result.error,
                    {{"firmware_status", hex_number(result.firmware_status)}});
    put(ghcb, CLOISTER_GHCB_SW_EXIT_INFO_2, result.firmware_status);
  }

  sim::SnpGuest& guest_;
  const GuestMemory& memory_;
  Logger& log_;
  RepeatBudget refusals_;  // the guest can repeat a refused request at will
};

class SimSnpBackend final : public TeeBackend {
 public:
  SimSnpBackend(fw::LaunchPlan plan, SnpSettings settings, sim::SimulatedSnp platform,
                std::filesystem::path state)
      : plan_(std::move(plan)),
        settings_(std::move(settings)),
        platform_(std::move(platform)),
        state_(std::move(state)) {}

  TeeKind kind() const override { return TeeKind::kSimSnp; }
  unsigned long machine_type() const override { return 0; }
  bool needs_private_memory() const override { return false; }
  const fw::LaunchPlan* plan() const override { return &plan_; }
  Status init_vm(Vm&) override { return {}; }

  Status launch(LaunchContext& ctx) override {
    const auto vcpus = static_cast<std::uint32_t>(ctx.vcpus.size());
    measure::SnpLaunchDigest digest(plan_.snp_seed().value_or(Sha384Digest{}));
    std::optional<std::uint64_t> secrets;
    for (const fw::LaunchOp& op : plan_.ops()) {
      if (op.type == fw::PageType::kVmsa) continue;  // folded last, as LAUNCH_FINISH does
      CLOISTER_TRY(PageBuffer pages, op_pages(plan_, op, ctx.vm, vcpus, ctx.memory));
      if (op.type == fw::PageType::kSecrets) secrets = op.gpa;
      if (auto loaded = ctx.memory.load(op.gpa, pages.view(), op.label); !loaded)
        return loaded.error().with_context("sim-snp: launch op " + op.label);
      if (op.seeded) continue;  // covered by the seed
      for (std::uint64_t at = 0; at < op.size; at += kPage) {
        if (op.type == fw::PageType::kNormal)
          digest.update_page(op.type, op.gpa + at, pages.view().subspan(at, kPage));
        else
          digest.update(op.type, op.gpa + at, {});
      }
    }
    for (const fw::LaunchOp& op : plan_.ops())
      if (op.type == fw::PageType::kVmsa) digest.update_page(op.type, op.gpa, op.data);
    CLOISTER_CHECK_OK(apply_vmsas(plan_, ctx.vcpus));

    measurement_ = digest.digest();
    sim::SnpLaunch launch;
    launch.measurement = measurement_;
    launch.policy = settings_.policy;
    launch.host_data = settings_.host_data;
    if (settings_.id_block) {
      // SNP_LAUNCH_FINISH refuses an ID block that expects another digest (BAD_MEASUREMENT).
      if (!std::equal(measurement_.begin(), measurement_.end(), settings_.id_block->begin()))
        return Error("sim-snp: SNP_LAUNCH_FINISH: the ID block expects launch digest " +
                     to_hex(ByteView(*settings_.id_block).first(48)) + ", the launch measured " +
                     to_hex(measurement_) + " (firmware status BAD_MEASUREMENT)");
      launch.id_block = id_block_fields(settings_);
    }
    guest_ = std::make_unique<sim::SnpGuest>(platform_, launch);
    if (secrets) {
      if (auto written = ctx.memory.load(*secrets, guest_->secrets_page(), "secrets page");
          !written)
        return written.error().with_context("sim-snp");
    }
    ctx.log.info(
        "sim_snp.launched", "launch measured by the simulated secure processor",
        {{"measurement", to_hex(measurement_)},
         {"product", std::string(attestation::snp::product_name(platform_.config().product))},
         {"state", state_.string()}});
    return {};
  }

  std::vector<TeeDevice> devices(const GuestMemory& memory, Logger& log) override {
    return {{std::make_shared<SnpDoorbell>(*guest_, memory, log), CLOISTER_SIM_SNP_DOORBELL, 4}};
  }

  Status handle_exit(Vcpu&, const VcpuExit& exit) override {
    return Error("tee sim-snp: unexpected " + std::string(exit_reason_name(exit.reason)) +
                 " exit from a plain VM");
  }

  std::optional<LaunchMeasurement> measurement() const override {
    return LaunchMeasurement{"sha384", "measurement",
                             Bytes(measurement_.begin(), measurement_.end())};
  }

  std::string measurement_note() const override {
    return "the launch digest the simulated secure processor folded from the launch plan as it "
           "loaded each page (as the SEV firmware does); it signs it into the guest's reports";
  }

  nlohmann::json describe() const override {
    nlohmann::json out = tee::describe(settings_);
    const auto& c = platform_.config();
    out["simulated"] = true;
    out["product"] = std::string(attestation::snp::product_name(c.product));
    out["chip_id"] = to_hex(c.chip_id);
    out["reported_tcb"] = c.reported_tcb.to_string();
    out["state_dir"] = state_.string();
    out["trust_root"] =
        (state_ / "amd" / std::string(attestation::snp::product_name(c.product)) / "ark.crt.pem")
            .string();
    return out;
  }

 private:
  fw::LaunchPlan plan_;
  SnpSettings settings_;
  sim::SimulatedSnp platform_;
  std::filesystem::path state_;
  Sha384Digest measurement_{};
  std::unique_ptr<sim::SnpGuest> guest_;
};

}  // namespace

Result<std::unique_ptr<TeeBackend>> make_sim_snp_backend(const TeeConfig& config,
                                                         fw::LaunchPlan plan) {
  CLOISTER_TRY(auto settings, resolve_snp_settings(config, plan));
  CLOISTER_TRY(auto platform_config, snp_platform(config.sim_platform));
  CLOISTER_TRY(auto dir, sim_state_dir(config));
  auto state = sim::StateDir::open(dir);
  if (!state) return state.error().with_context("sim-snp state " + dir.string());
  auto platform = sim::SimulatedSnp::open(*state, std::move(platform_config));
  if (!platform) return platform.error().with_context("sim-snp state " + dir.string());
  return std::unique_ptr<TeeBackend>(new SimSnpBackend(std::move(plan), std::move(settings),
                                                       std::move(*platform), std::move(dir)));
}

}  // namespace cloister::vmm::tee
