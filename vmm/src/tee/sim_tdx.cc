// sim-tdx: the simulated TDX module and Quoting Enclave next to a plain VM
// (docs/simulated-tee.md). The launch executes the LaunchPlan as KVM_TDX_INIT_MEM_REGION would —
// each section written into guest memory (the TD HOB's bytes included) and folded into MRTD with
// TDH.MEM.PAGE.ADD and TDH.MR.EXTEND records in the plan's page order — and starts the boot vCPU
// in the TD's architectural 32-bit state at the reset vector. The guest reaches the module
// through the TDX doorbell (sim_abi.h): TDG.MR.REPORT, TDG.MR.RTMR.EXTEND and
// TDG.VP.VMCALL<GetQuote>, each in the hardware's format.
#include <mutex>

#include "backends.h"
#include "cloister/attestation/sim/state_dir.h"
#include "cloister/attestation/sim/tdx_module.h"
#include "cloister/common/hex.h"
#include "cloister/measure/tdx_mrtd.h"
#include "cloister/vmm/tee/quote.h"
#include "cloister/vmm/tee/sim_abi.h"
#include "launch_ops.h"
#include "sim_platform.h"

namespace cloister::vmm::tee {
namespace {

namespace sim = attestation::sim;

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kChunk = 256;  // TDH.MR.EXTEND granularity
// XFAM of a simulated TD: x87 and SSE, what every TD has and what the plain VM runs with.
constexpr std::uint64_t kSimXfam = 0x3;
// GPAW the simulated TD reports in RBX at entry (TDVF reads EBX[5:0]): 52-bit guest addresses.
constexpr std::uint64_t kGpaw = 52;
constexpr std::size_t kTdcallBlockSize = sizeof(cloister_sim_tdcall);
static_assert(kTdcallBlockSize == 88);

// The TD vCPU state at TD entry (Intel TDX module spec, "Initial State of TD vCPU"): flat 32-bit
// protected mode at the reset vector, paging off, RCX the TD HOB (KVM_TDX_INIT_VCPU), RBX the
// GPA width, RSI the vCPU index. CR4.VMXE, set on hardware, cannot be on a plain VM's vCPU.
std::pair<x86::Regs, x86::Sregs> td_entry_state(const x86::Sregs& reset, std::uint64_t hob,
                                                std::uint32_t index) {
  x86::Sregs s = reset;
  x86::Segment code;
  code.limit = 0xffffffff;
  code.selector = 0x08;
  code.type = 0xb;
  code.present = true;
  code.s = true;
  code.db = true;
  code.g = true;
  x86::Segment data = code;
  data.selector = 0x10;
  data.type = 0x3;
  s.cs = code;
  s.ds = s.es = s.fs = s.gs = s.ss = data;
  x86::Segment tr;
  tr.limit = 0xffff;
  tr.type = 0xb;  // busy 32-bit TSS
  tr.present = true;
  s.tr = tr;
  s.ldt = {};
  s.ldt.unusable = true;
  s.cr0 = x86::kCr0Pe | x86::kCr0Et | (1ull << 5);  // PE | ET | NE
  s.cr3 = 0;
  s.cr4 = 1ull << 6;  // MCE
  s.efer = 0;
  x86::Regs r;
  r.rip = 0xfffffff0;
  r.rcx = hob;
  r.rbx = kGpaw;
  r.rsi = index;
  return {r, s};
}

// The simulated module's state of the one TD: TDINFO (MRTD, RTMRs, ...).
struct TdState {
  std::mutex mutex;
  attestation::tdx::TdInfo td;
};

// The TDX doorbell: a 32-bit write of a cloister_sim_tdcall block's page frame number is one
// TDCALL.
class TdxDoorbell final : public BusDevice {
 public:
  TdxDoorbell(const sim::SimulatedTdx& module, TdState& state, const GuestMemory& memory,
              Logger& log)
      : module_(module), state_(state), memory_(memory), log_(log) {}

  std::string_view name() const override { return "sim-tdx doorbell"; }
  void read(std::uint64_t, std::span<std::uint8_t> data) override {
    std::fill(data.begin(), data.end(), 0);
  }

  void write(std::uint64_t offset, std::span<const std::uint8_t> data) override {
    if (offset != 0 || data.size() != 4) return;
    const std::uint64_t gpa = std::uint64_t{load_le32(data, 0)} * kPage;
    auto block = memory_.view(gpa, kTdcallBlockSize, Access::kWrite, "sim-tdx TDCALL block");
    if (!block) {
      refusals_.log(log_, LogLevel::kWarn, "sim_tdx.bad_block", block.error().message());
      return;
    }
    cloister_sim_tdcall call;
    std::memcpy(&call, block->data(), sizeof call);
    serve(call);
    std::memcpy(block->data(), &call, sizeof call);
  }

 private:
  void refuse(cloister_sim_tdcall& call, const std::string& why) {
    refusals_.log(log_, LogLevel::kWarn, "sim_tdx.refused", why, {{"leaf", call.rax}});
    call.rax = CLOISTER_TDX_OPERAND_INVALID;
  }

  void serve(cloister_sim_tdcall& call) {
    switch (call.rax) {
      case CLOISTER_TDCALL_MR_REPORT:
        return report(call);
      case CLOISTER_TDCALL_MR_RTMR_EXTEND:
        return extend(call);
      case CLOISTER_TDCALL_VP_VMCALL:
        return vmcall(call);
      default:
        return refuse(call, "TDCALL leaf " + hex_number(call.rax) + " is not simulated");
    }
  }

  // TDG.MR.REPORT: RCX the 1024-aligned TDREPORT_STRUCT, RDX the 64-aligned REPORTDATA.
  void report(cloister_sim_tdcall& call) {
    if (call.rcx % CLOISTER_TDREPORT_SIZE != 0)
      return refuse(call, "TDG.MR.REPORT: RCX (TDREPORT_STRUCT): expected " +
                              std::to_string(CLOISTER_TDREPORT_SIZE) + "-byte alignment, found " +
                              hex_number(call.rcx));
    if (call.rdx % 64 != 0)
      return refuse(call, "TDG.MR.REPORT: RDX (REPORTDATA): expected 64-byte alignment, found " +
                              hex_number(call.rdx));
    if (call.r8 != 0)
      return refuse(call, "TDG.MR.REPORT: R8 (subtype): expected 0, found " + hex_number(call.r8));
    auto out = memory_.view(call.rcx, CLOISTER_TDREPORT_SIZE, Access::kWrite, "TDREPORT");
    auto in = memory_.view(call.rdx, 64, Access::kRead, "REPORTDATA");
    if (!out || !in) return refuse(call, (!out ? out : in).error().message());
    std::array<std::uint8_t, 64> report_data;
    std::copy(in->begin(), in->end(), report_data.begin());
    std::lock_guard lock(state_.mutex);
    const auto tdreport = module_.report(state_.td, report_data);
    std::copy(tdreport.begin(), tdreport.end(), out->begin());
    call.rax = CLOISTER_TDX_SUCCESS;
  }

  // TDG.MR.RTMR.EXTEND: RCX the 64-aligned 48-byte digest, RDX the RTMR index.
  void extend(cloister_sim_tdcall& call) {
    if (call.rcx % 64 != 0)
      return refuse(call, "TDG.MR.RTMR.EXTEND: RCX (digest): expected 64-byte alignment, found " +
                              hex_number(call.rcx));
    if (call.rdx > 3)
      return refuse(call, "TDG.MR.RTMR.EXTEND: RDX (RTMR index): expected 0 to 3, found " +
                              std::to_string(call.rdx));
    auto digest = memory_.view(call.rcx, 48, Access::kRead, "RTMR extension");
    if (!digest) return refuse(call, digest.error().message());
    std::lock_guard lock(state_.mutex);
    if (auto extended = sim::rtmr_extend(state_.td, static_cast<unsigned>(call.rdx), *digest);
        !extended)
      return refuse(call, extended.error().message());
    call.rax = CLOISTER_TDX_SUCCESS;
  }

  // TDG.VP.VMCALL<GetQuote> (GHCI 1.5): the shared buffer at R12 of R13 bytes. The simulated QE
  // answers before the doorbell returns; the status field carries the outcome as on hardware.
  void vmcall(cloister_sim_tdcall& call) {
    call.rax = CLOISTER_TDX_SUCCESS;
    if (call.r10 != 0 || call.r11 != CLOISTER_TDVMCALL_GET_QUOTE) {
      call.r10 = kTdvmcallSubfunctionUnsupported;
      return;
    }
    auto tdreport = read_get_quote_request(memory_, call.r12, call.r13);
    if (!tdreport) {
      refusals_.log(log_, LogLevel::kWarn, "sim_tdx.get_quote_refused", tdreport.error().message());
      call.r10 = CLOISTER_TDVMCALL_INVALID_OPERAND;
      return;
    }
    auto quote = module_.quote(*tdreport);
    if (!quote)
      refusals_.log(log_, LogLevel::kWarn, "sim_tdx.quote_failed", quote.error().message());
    write_get_quote_result(memory_, call.r12, call.r13, quote, kGetQuoteStatusError);
    call.r10 = CLOISTER_TDVMCALL_SUCCESS;
  }

  static constexpr std::uint64_t kTdvmcallSubfunctionUnsupported = 0x8000000000000003ull;

  const sim::SimulatedTdx& module_;
  TdState& state_;
  const GuestMemory& memory_;
  Logger& log_;
  RepeatBudget refusals_;  // the guest can repeat a refused request at will
};

class SimTdxBackend final : public TeeBackend {
 public:
  SimTdxBackend(fw::LaunchPlan plan, TdxSettings settings, sim::SimulatedTdx module,
                std::filesystem::path state)
      : plan_(std::move(plan)),
        settings_(settings),
        module_(std::move(module)),
        state_dir_(std::move(state)) {}

  TeeKind kind() const override { return TeeKind::kSimTdx; }
  unsigned long machine_type() const override { return 0; }
  bool needs_private_memory() const override { return false; }
  const fw::LaunchPlan* plan() const override { return &plan_; }
  Status init_vm(Vm&) override { return {}; }

  Status launch(LaunchContext& ctx) override {
    const auto vcpus = static_cast<std::uint32_t>(ctx.vcpus.size());
    measure::MrtdAccumulator mrtd;
    const bool single_pass = plan_.tdx_page_order() == fw::TdxPageOrder::kSinglePass;
    std::uint64_t hob = 0;
    for (const fw::LaunchOp& op : plan_.ops()) {
      if (op.type == fw::PageType::kTdHob) hob = op.gpa;
      CLOISTER_TRY(PageBuffer pages, op_pages(plan_, op, ctx.vm, vcpus, ctx.memory));
      if (auto loaded = ctx.memory.load(op.gpa, pages.view(), op.label); !loaded)
        return loaded.error().with_context("sim-tdx: launch op " + op.label);
      auto extend = [&](std::uint64_t at) {
        for (std::uint64_t c = 0; c < kPage; c += kChunk)
          mrtd.mr_extend(op.gpa + at + c, pages.view().subspan(at + c, kChunk));
      };
      for (std::uint64_t at = 0; at < op.size; at += kPage) {
        mrtd.page_add(op.gpa + at);
        if (single_pass && op.tdx_extend) extend(at);
      }
      if (!single_pass && op.tdx_extend)
        for (std::uint64_t at = 0; at < op.size; at += kPage) extend(at);
    }
    const Sha384Digest mr_td = mrtd.finish();
    {
      std::lock_guard lock(state_.mutex);
      state_.td.attributes = settings_.attributes;
      state_.td.xfam = kSimXfam;
      state_.td.mr_td = mr_td;
      state_.td.mr_config_id = settings_.mr_config_id;
      state_.td.mr_owner = settings_.mr_owner;
      state_.td.mr_owner_config = settings_.mr_owner_config;
    }
    for (std::uint32_t i = 0; i < vcpus; ++i) {
      Vcpu& vcpu = *ctx.vcpus[i];
      CLOISTER_TRY(const x86::Sregs reset, vcpu.sregs());
      const auto [regs, sregs] = td_entry_state(reset, hob, i);
      CLOISTER_CHECK_OK(vcpu.set_sregs(sregs));
      CLOISTER_CHECK_OK(vcpu.set_regs(regs));
    }
    ctx.log.info("sim_tdx.launched", "launch measured by the simulated TDX module",
                 {{"mrtd", to_hex(mr_td)},
                  {"collateral", module_.collateral_path().string()},
                  {"state", state_dir_.string()}});
    return {};
  }

  std::vector<TeeDevice> devices(const GuestMemory& memory, Logger& log) override {
    return {{std::make_shared<TdxDoorbell>(module_, state_, memory, log), CLOISTER_SIM_TDX_DOORBELL,
             4}};
  }

  Status handle_exit(Vcpu&, const VcpuExit& exit) override {
    return Error("tee sim-tdx: unexpected " + std::string(exit_reason_name(exit.reason)) +
                 " exit from a plain VM");
  }

  std::optional<LaunchMeasurement> measurement() const override {
    std::lock_guard lock(state_.mutex);
    return LaunchMeasurement{"sha384", "mrtd",
                             Bytes(state_.td.mr_td.begin(), state_.td.mr_td.end())};
  }

  std::string measurement_note() const override {
    return "the MRTD the simulated TDX module folded from the launch plan as it added each "
           "section (as TDH.MEM.PAGE.ADD and TDH.MR.EXTEND do); its quotes carry it";
  }

  nlohmann::json describe() const override {
    nlohmann::json out = tee::describe(settings_);
    out["simulated"] = true;
    out["xfam"] = hex_number(kSimXfam);
    out["fmspc"] = to_hex(module_.config().fmspc);
    out["vulnerable"] = module_.config().vulnerable;
    out["state_dir"] = state_dir_.string();
    out["trust_root"] = (state_dir_ / "intel" / "root.crt.pem").string();
    out["collateral"] = module_.collateral_path().string();
    return out;
  }

 private:
  fw::LaunchPlan plan_;
  TdxSettings settings_;
  sim::SimulatedTdx module_;
  std::filesystem::path state_dir_;
  mutable TdState state_;
};

}  // namespace

Result<std::unique_ptr<TeeBackend>> make_sim_tdx_backend(const TeeConfig& config,
                                                         fw::LaunchPlan plan) {
  CLOISTER_TRY(auto settings, resolve_tdx_settings(config, plan));
  CLOISTER_TRY(auto platform_config, tdx_platform(config.sim_platform));
  CLOISTER_TRY(auto dir, sim_state_dir(config));
  auto state = sim::StateDir::open(dir);
  if (!state) return state.error().with_context("sim-tdx state " + dir.string());
  auto module = sim::SimulatedTdx::open(*state, std::move(platform_config));
  if (!module) return module.error().with_context("sim-tdx state " + dir.string());
  return std::unique_ptr<TeeBackend>(
      new SimTdxBackend(std::move(plan), settings, std::move(*module), std::move(dir)));
}

}  // namespace cloister::vmm::tee
