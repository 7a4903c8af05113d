// cloister-vmm: runs one VM per process under KVM or, without it, the emulator (emu.h).
//   cloister-vmm run --config vm.json [flags that override it]
//   cloister-vmm run --firmware F | --kernel K [--initrd I] | --igvm G [--cmdline C] --vcpus N
//                    --memory 512M [--tee none|sim-snp|sim-tdx|snp|tdx [TEE options]]
//                    [--hypervisor auto|kvm|emu]
//                    [--api-socket PATH] [--console SPEC] ...
//   cloister-vmm restore --snapshot DIR [--api-socket PATH] [--console SPEC] [--log-format F]
//                        [--log-level L] [--log-file PATH] [--no-seccomp]
//                                               resumes a vm.snapshot where it stopped
//   cloister-vmm receive --listen unix:PATH|tcp:HOST:PORT [the restore flags but --snapshot]
//                                               waits for one live migration (PUT vm.migrate
//                                               on the source) and runs the guest it receives
//   cloister-vmm validate --config vm.json      prints the canonical config or the first error
// Exit status: 0 clean stop, 1 host/VMM error, 2 bad configuration or input file (unreadable,
// too large or malformed; a snapshot or migration stream that fails a check), 3 guest fault, 4
// guest reported failure through the debug-exit port (docs/operator.md).
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <functional>
#include <optional>
#include <variant>

#include "cloister/common/file.h"
#include "cloister/common/json.h"
#include "cloister/vmm/api/api.h"
#include "cloister/vmm/builder.h"
#include "cloister/vmm/config/config.h"
#include "cloister/vmm/hypervisor/emu.h"
#include "cloister/vmm/migration/transport.h"
#include "cloister/vmm/seccomp/seccomp.h"
#include "cloister/vmm/snapshot/snapshot.h"

namespace {

using namespace cloister;
using namespace cloister::vmm;
using nlohmann::json;

constexpr int kExitHostError = 1;
constexpr int kExitConfig = 2;

// The TEE options, by config key (docs/operator.md "Confidential launch").
struct TeeFlags {
  std::optional<std::string> policy, host_data, id_block, id_auth, vcpu_type, certificates;
  std::optional<std::string> td_attributes, mr_config_id, mr_owner, mr_owner_config, qgs;
  std::optional<std::string> sim_state, sim_platform;
  bool author_key = false;
};

struct Flags {
  std::string config_file;
  std::optional<std::string> firmware, kernel, igvm, initrd, cmdline, memory, tee, hypervisor,
      api_socket, console;
  TeeFlags tee_options;
  std::optional<std::string> log_format, log_level, log_file;
  std::optional<std::uint32_t> vcpus;
  std::optional<std::uint64_t> vsock_cid;
  std::optional<std::string> vsock_uds;
  std::vector<std::string> disks;
  std::vector<std::string> nets;
  bool no_seccomp = false;
  bool hugepages = false;
};

void add_run_flags(CLI::App& cmd, Flags& f) {
  cmd.add_option("--config", f.config_file, "VM config (JSON); flags below override its keys");
  auto* fw = cmd.add_option("--firmware", f.firmware, "firmware image mapped to end at 4 GiB");
  auto* k = cmd.add_option("--kernel", f.kernel, "kernel: bzImage or ELF64");
  auto* g = cmd.add_option("--igvm", f.igvm, "IGVM file (confidential launches)");
  fw->excludes(k);
  g->excludes(fw);
  g->excludes(k);
  cmd.add_option("--initrd", f.initrd, "initial ramdisk (with --kernel)");
  cmd.add_option("--cmdline", f.cmdline, "kernel command line (firmware: passed through fw_cfg)");
  cmd.add_option("--vcpus", f.vcpus, "number of vCPUs (1-254)");
  cmd.add_option("--memory", f.memory, "guest RAM, e.g. 512M or 2G");
  cmd.add_option("--tee", f.tee, "none | sim-snp | sim-tdx | snp | tdx");
  TeeFlags& t = f.tee_options;
  cmd.add_option("--policy", t.policy, "SEV-SNP guest policy (default 0x30000)");
  cmd.add_option("--host-data", t.host_data, "SEV-SNP HOST_DATA: 64 hex digits");
  cmd.add_option("--id-block", t.id_block, "SEV-SNP ID block file (96 bytes, with --id-auth)");
  cmd.add_option("--id-auth", t.id_auth, "SEV-SNP ID authentication file (4096 bytes)");
  cmd.add_flag("--author-key", t.author_key, "the ID authentication carries an author key");
  cmd.add_option("--vcpu-type", t.vcpu_type, "SEV-SNP vCPU model, e.g. EPYC-v4 (CPUID(1).EAX)");
  cmd.add_option("--certificates", t.certificates,
                 "snp: GHCB certificate table served to extended guest requests");
  cmd.add_option("--td-attributes", t.td_attributes, "TDX TD attributes (default 0x10000000)");
  cmd.add_option("--mr-config-id", t.mr_config_id, "TDX MRCONFIGID: 96 hex digits");
  cmd.add_option("--mr-owner", t.mr_owner, "TDX MROWNER: 96 hex digits");
  cmd.add_option("--mr-owner-config", t.mr_owner_config, "TDX MROWNERCONFIG: 96 hex digits");
  cmd.add_option("--qgs", t.qgs,
                 "tdx: quote generation service, unix:PATH | vsock:CID:PORT | HOST:PORT");
  cmd.add_option("--sim-state", t.sim_state,
                 "sim-snp/sim-tdx: the simulated secure processor's state directory");
  cmd.add_option("--sim-platform", t.sim_platform,
                 "sim-snp/sim-tdx: JSON file describing the simulated platform (TCB, chip ID)");
  cmd.add_option("--hypervisor", f.hypervisor,
                 "auto (KVM when /dev/kvm opens, else emu) | kvm | emu (software emulation)");
  cmd.add_option("--api-socket", f.api_socket, "serve the control API on this UNIX socket");
  cmd.add_option("--console", f.console, "stdout | none | file:PATH | socket:PATH");
  cmd.add_option("--disk", f.disks, "virtio-blk disk: PATH or PATH,ro (repeatable)");
  cmd.add_option("--net", f.nets,
                 "virtio-net on a TAP: NAME[,mac=MAC][,rx_bytes=SIZE/MS][,tx_bytes=SIZE/MS]"
                 "[,rx_ops=N/MS][,tx_ops=N/MS] (token buckets: SIZE bytes or N frames per MS "
                 "milliseconds; repeatable)");
  cmd.add_option("--vsock-uds", f.vsock_uds,
                 "virtio-vsock: guest connections to host port P reach the UNIX socket PATH_P");
  cmd.add_option("--vsock-cid", f.vsock_cid, "virtio-vsock guest CID (default 3)");
  cmd.add_option("--log-format", f.log_format, "text | json");
  cmd.add_option("--log-level", f.log_level, "debug | info | warn | error");
  cmd.add_option("--log-file", f.log_file, "append logs to this file instead of stderr");
  cmd.add_flag("--no-seccomp", f.no_seccomp, "do not install seccomp filters");
  cmd.add_flag("--hugepages", f.hugepages, "back guest RAM with 2 MiB hugepages");
}

// --tee and the TEE options patch "tee", turning its short form into an object when needed.
Status merge_tee_flags(const Flags& f, json& doc) {
  const TeeFlags& t = f.tee_options;
  json options = json::object();
  auto put = [&](const char* key, const std::optional<std::string>& value) {
    if (value) options[key] = *value;
  };
  put("policy", t.policy);
  put("host_data", t.host_data);
  put("id_block", t.id_block);
  put("id_auth", t.id_auth);
  put("vcpu_type", t.vcpu_type);
  put("certificates", t.certificates);
  put("td_attributes", t.td_attributes);
  put("mr_config_id", t.mr_config_id);
  put("mr_owner", t.mr_owner);
  put("mr_owner_config", t.mr_owner_config);
  put("quote_generation_socket", t.qgs);
  put("sim_state_dir", t.sim_state);
  if (t.author_key) options["author_key"] = true;
  if (t.sim_platform) {
    auto text = read_text_file(*t.sim_platform, kSimPlatformFileLimit);
    if (!text) return text.error().with_context("--sim-platform");
    CLOISTER_TRY(options["sim_platform"],
                 parse_json_strict(*text, "--sim-platform " + *t.sim_platform));
  }
  json tee = doc.contains("tee") ? doc["tee"] : json("none");
  if (tee.is_string()) tee = json{{"kind", tee}};
  if (!tee.is_object()) return {};  // the validator names what is wrong with it
  if (f.tee) tee["kind"] = *f.tee;
  for (auto& [key, value] : options.items()) tee[key] = value;
  doc["tee"] = std::move(tee);
  return {};
}

// The config file's JSON patched with the flags, so one validator sees every input.
// --net NAME[,mac=MAC][,rx_bytes=SIZE/MS][,tx_bytes=SIZE/MS][,rx_ops=N/MS][,tx_ops=N/MS] as a
// nets[] entry; the config parser checks the values.
Result<json> net_flag(const std::string& text) {
  json net = json::object();
  std::size_t start = 0;
  bool first = true;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string part = text.substr(start, comma - start);
    start = comma + 1;
    if (first) {
      net["tap"] = part;
      first = false;
      continue;
    }
    const std::size_t eq = part.find('=');
    const std::string key = part.substr(0, eq),
                      value = eq == std::string::npos ? "" : part.substr(eq + 1);
    if (key == "mac") {
      net["mac"] = value;
      continue;
    }
    const bool rx = key == "rx_bytes" || key == "rx_ops";
    if (!rx && key != "tx_bytes" && key != "tx_ops")
      return Error("--net " + text + ": unknown option \"" + part +
                   "\" (known: mac=, rx_bytes=, tx_bytes=, rx_ops=, tx_ops=)");
    const std::size_t slash = value.find('/');
    std::uint64_t size = 0, ms = 0;
    const char* end = value.data() + value.size();
    if (slash == std::string::npos ||
        std::from_chars(value.data(), value.data() + slash, size).ptr != value.data() + slash ||
        std::from_chars(value.data() + slash + 1, end, ms).ptr != end || slash == 0 ||
        slash + 1 == value.size())
      return Error("--net " + text + ": " + key + ": expected COUNT/MILLISECONDS, found \"" +
                   value + "\"");
    const char* bucket = key.ends_with("_bytes") ? "bandwidth" : "ops";
    net[rx ? "rx_rate_limiter" : "tx_rate_limiter"][bucket] = {{"size", size},
                                                               {"refill_time_ms", ms}};
  }
  return net;
}

Result<json> merged_document(const Flags& f) {
  json doc = json::object();
  if (!f.config_file.empty()) {
    auto text = read_text_file(f.config_file, kConfigFileLimit);
    if (!text) return text.error().with_context("config");
    CLOISTER_TRY(doc, parse_json_strict(*text, "config " + f.config_file));
    if (!doc.is_object()) return Error("config " + f.config_file + ": expected a JSON object");
  }
  if (f.firmware || f.kernel || f.igvm) {
    json& boot = doc["boot"];
    if (!boot.is_object()) boot = json::object();
    boot.erase("firmware");
    boot.erase("kernel");
    boot.erase("igvm");
    if (!f.kernel) boot.erase("initrd");
    if (f.firmware) boot["firmware"] = *f.firmware;
    if (f.kernel) boot["kernel"] = *f.kernel;
    if (f.igvm) boot["igvm"] = *f.igvm;
  }
  if (f.initrd) doc["boot"]["initrd"] = *f.initrd;
  if (f.cmdline) doc["boot"]["cmdline"] = *f.cmdline;
  if (f.vcpus) doc["vcpus"] = *f.vcpus;
  if (f.memory) doc["memory"] = *f.memory;
  CLOISTER_CHECK_OK(merge_tee_flags(f, doc));
  if (f.hypervisor) doc["hypervisor"] = *f.hypervisor;
  if (f.api_socket) doc["api_socket"] = *f.api_socket;
  if (f.console) doc["console"] = *f.console;
  if (!f.disks.empty()) {
    json disks = json::array();
    for (const auto& d : f.disks) {
      const bool ro = d.size() > 3 && d.compare(d.size() - 3, 3, ",ro") == 0;
      disks.push_back({{"path", ro ? d.substr(0, d.size() - 3) : d}, {"read_only", ro}});
    }
    doc["disks"] = disks;
  }
  if (!f.nets.empty()) {
    json nets = json::array();
    for (const auto& text : f.nets) {
      CLOISTER_TRY(json net, net_flag(text));
      nets.push_back(std::move(net));
    }
    doc["nets"] = std::move(nets);
  }
  if (f.vsock_uds) doc["vsock"]["uds_path"] = *f.vsock_uds;
  if (f.vsock_cid) doc["vsock"]["guest_cid"] = *f.vsock_cid;
  if (f.log_format) doc["log"]["format"] = *f.log_format;
  if (f.log_level) doc["log"]["level"] = *f.log_level;
  if (f.log_file) doc["log"]["file"] = *f.log_file;
  if (f.no_seccomp) doc["seccomp"] = false;
  if (f.hugepages) doc["hugepages"] = true;
  return doc;
}

// Builds the VM to run once logging is set up: the VM, or the exit code of a failure it logged.
using BuildVm = std::function<std::variant<std::unique_ptr<Vmm>, int>(Logger&, Metrics&)>;

BuildVm build_from_config(const VmConfig& config) {
  return [&config](Logger& log, Metrics& metrics) -> std::variant<std::unique_ptr<Vmm>, int> {
    auto inputs = load_vm_inputs(config);
    if (!inputs) {
      log.error("vm.input_invalid", inputs.error().message());
      return kExitConfig;
    }
    auto vmm =
        build_vmm(config, std::move(*inputs), log, metrics, configured_hypervisor(config, log));
    if (!vmm) {
      // A disk or console file that cannot serve (kFailedPrecondition) is an input to fix.
      const bool refused = vmm.error().code() == ErrorCode::kFailedPrecondition;
      log.error(refused ? "vm.input_invalid" : "vm.build_failed", vmm.error().message());
      return refused ? kExitConfig : kExitHostError;
    }
    return std::move(*vmm);
  };
}

// Runs the VM `build` makes until it stops; API socket, console and seccomp come from its config.
int run_vm(const LogConfig& log_config, const BuildVm& build) {
  std::optional<Logger> file_log;
  if (!log_config.file.empty()) {
    auto l = Logger::to_file(log_config.file, log_config.format, log_config.level);
    if (!l) {
      std::fprintf(stderr, "cloister-vmm: %s\n", l.error().message().c_str());
      return kExitConfig;
    }
    file_log.emplace(std::move(*l));
  }
  Logger stderr_log(log_config.format, log_config.level);
  Logger& log = file_log ? *file_log : stderr_log;
  Metrics metrics;

  // A console or log reader that goes away must not kill the VMM: writes then fail with EPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  // SIGINT/SIGTERM/SIGHUP become readable events for the main loop; every thread started
  // from here on inherits the blocked mask, so only this loop sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  Fd signal_fd(::signalfd(-1, &signals, SFD_CLOEXEC));
  if (!signal_fd.valid()) {
    log.error("vmm.signalfd", os_error("signalfd").message());
    return kExitHostError;
  }

  auto built = build(log, metrics);
  if (auto* code = std::get_if<int>(&built)) return *code;
  auto vmm = std::move(std::get<std::unique_ptr<Vmm>>(built));
  const VmConfig& config = vmm->config();
  VmmApiController controller(*vmm);
  std::unique_ptr<ApiServer> api;
  if (config.api_socket) {
    auto server = ApiServer::start(*config.api_socket, controller, log, config.seccomp,
                                   vmm->migration_ioctls());
    if (!server) {
      log.error("api.failed", server.error().message());
      return kExitHostError;
    }
    api = std::move(*server);
  }
  // Console input: the console socket, or stdin when the console is a terminal's stdout.
  int console_input = vmm->console_input_fd();
  if (console_input < 0 && config.console.kind == ConsoleKind::kStdout && ::isatty(0))
    console_input = 0;
  // This thread is filtered before the guest runs, like every other: the device, API and quote
  // threads filtered themselves when they started, and start() filters the vCPU threads before
  // handing them their vCPUs.
  if (config.seccomp && seccomp_available()) {
    SeccompScope scope;
    scope.ioctls = vmm->irq_ioctls();
    if (auto st = install_seccomp(ThreadClass::kVmm, scope); !st) {
      log.error("seccomp.failed", st.error().with_context("main thread").message());
      return kExitHostError;
    }
  } else if (config.seccomp) {
    log.warn("seccomp.unavailable", "this is a sanitizer build: seccomp filters are not installed");
  }
  if (auto st = vmm->start(); !st) {
    log.error("vm.start_failed", st.error().message());
    return kExitHostError;
  }

  for (;;) {
    pollfd fds[3] = {
        {signal_fd.get(), POLLIN, 0}, {vmm->stop_fd(), POLLIN, 0}, {console_input, POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      vmm->request_stop({StopKind::kHostError, 0, os_error("poll").message()});
      break;
    }
    if (fds[1].revents) break;
    if (fds[0].revents) {
      signalfd_siginfo info{};
      if (::read(signal_fd.get(), &info, sizeof info) == sizeof info)
        vmm->request_stop({StopKind::kRequested, 0, "signal " + std::to_string(info.ssi_signo)});
    }
    if (fds[2].revents) {
      std::uint8_t buf[256];
      ssize_t n = ::read(console_input, buf, sizeof buf);
      if (n > 0)
        vmm->serial()->push_input(ByteView(buf, static_cast<std::size_t>(n)));
      else
        console_input = -1;  // end of input: stop polling it
    }
  }
  StopReason reason = vmm->wait();
  api.reset();
  const int code = exit_code_for(reason);
  json fields = {
      {"reason", stop_kind_name(reason.kind)}, {"exit_code", code}, {"metrics", metrics.to_json()}};
  if (reason.kind == StopKind::kDebugExit) fields["guest_status"] = reason.guest_status;
  log.log(code == 0 ? LogLevel::kInfo : LogLevel::kError, "vm.stopped", reason.message, fields);
  return code;
}

struct RestoreFlags {
  std::string snapshot;  // restore
  std::string listen;    // receive
  std::optional<std::string> api_socket, console, log_format, log_level, log_file;
  bool no_seccomp = false;
};

// The run-time flags restore and receive share.
void add_restored_run_flags(CLI::App& cmd, RestoreFlags& f) {
  cmd.add_option("--api-socket", f.api_socket, "serve the control API on this UNIX socket");
  cmd.add_option("--console", f.console, "stdout (default) | none | file:PATH | socket:PATH");
  cmd.add_option("--log-format", f.log_format, "text | json");
  cmd.add_option("--log-level", f.log_level, "debug | info | warn | error");
  cmd.add_option("--log-file", f.log_file, "append logs to this file instead of stderr");
  cmd.add_flag("--no-seccomp", f.no_seccomp, "do not install seccomp filters");
}

void add_restore_flags(CLI::App& cmd, RestoreFlags& f) {
  cmd.add_option("--snapshot", f.snapshot, "snapshot directory written by PUT vm.snapshot")
      ->required();
  add_restored_run_flags(cmd, f);
}

void add_receive_flags(CLI::App& cmd, RestoreFlags& f) {
  cmd.add_option("--listen", f.listen,
                 "unix:PATH or tcp:HOST:PORT (HOST a literal address; port 0: the kernel picks "
                 "one, logged in vm.receive_listening) to receive the migration stream on")
      ->required();
  add_restored_run_flags(cmd, f);
}

// The snapshot's config with this process's run-time settings: its API socket (none unless
// given), console (stdout unless given), logs, seccomp, and the hypervisor that wrote it.
Result<VmConfig> restored_config(const SnapshotState& state, const RestoreFlags& f,
                                 const json& log) {
  json doc = to_json(state.config);
  doc.erase("api_socket");
  if (f.api_socket) doc["api_socket"] = *f.api_socket;
  doc["console"] = f.console.value_or("stdout");
  doc["log"] = log;
  doc["seccomp"] = !f.no_seccomp;
  doc["hypervisor"] = state.hypervisor;
  return parse_config(doc);
}

json restored_log(const RestoreFlags& f) {
  json log = json::object();
  if (f.log_format) log["format"] = *f.log_format;
  if (f.log_level) log["level"] = *f.log_level;
  if (f.log_file) log["file"] = *f.log_file;
  return log;
}

int restore_vm(const RestoreFlags& f) {
  const json log = restored_log(f);
  auto log_config = parse_log_config(log);
  if (!log_config) {
    std::fprintf(stderr, "cloister-vmm: %s\n", log_config.error().message().c_str());
    return kExitConfig;
  }
  return run_vm(*log_config,
                [&](Logger& logger, Metrics& metrics) -> std::variant<std::unique_ptr<Vmm>, int> {
                  // Every check of the snapshot happens here, before anything is built: a snapshot
                  // that fails one never runs.
                  auto snapshot = open_snapshot(f.snapshot);
                  if (!snapshot) {
                    logger.error("vm.restore_refused", snapshot.error().message(),
                                 {{"snapshot", f.snapshot}});
                    return kExitConfig;
                  }
                  auto config = restored_config(snapshot->state, f, log);
                  if (!config) {
                    logger.error("vm.restore_refused",
                                 config.error().with_context("restore").message(),
                                 {{"snapshot", f.snapshot}});
                    return kExitConfig;
                  }
                  auto vmm = restore_vmm(*config, std::move(*snapshot), logger, metrics,
                                         configured_hypervisor(*config, logger));
                  if (!vmm) {
                    // A snapshot this VMM will not resume is an input to fix, like a failed check.
                    const bool refused = vmm.error().code() == ErrorCode::kFailedPrecondition;
                    logger.error(refused ? "vm.restore_refused" : "vm.restore_failed",
                                 vmm.error().message(), {{"snapshot", f.snapshot}});
                    return refused ? kExitConfig : kExitHostError;
                  }
                  return std::move(*vmm);
                });
}

// How long the destination waits for more of a stream that has started.
constexpr std::chrono::milliseconds kReceiveTimeout{10000};

// Receives one migration: the whole stream is read and checked, then the VM is built, and only
// then accepted. A stream that fails a check, or a VM that cannot be built, never runs.
std::variant<std::unique_ptr<Vmm>, int> receive_migration(const RestoreFlags& f, const json& log,
                                                          Logger& logger, Metrics& metrics) {
  // Without KVM the guest can only be an emu guest: load the emulator library now, before the
  // source connects, so that loading it (about 30 ms here) is not part of the downtime.
  if (::access("/dev/kvm", R_OK | W_OK) != 0) (void)open_emulator();
  auto listener = listen_migration(f.listen);
  if (!listener) {
    logger.error("vm.receive_failed", listener.error().message(), {{"listen", f.listen}});
    return kExitConfig;
  }
  auto listening = listening_migration_address(listener->get(), f.listen);
  if (!listening) {
    logger.error("vm.receive_failed", listening.error().message(), {{"listen", f.listen}});
    return kExitHostError;
  }
  logger.info("vm.receive_listening", "waiting for a migration source",
              {{"listen", f.listen}, {"address", *listening}});
  auto conn = accept_migration(std::move(*listener), f.listen);
  if (!conn) {
    logger.error("vm.receive_failed", conn.error().message(), {{"listen", f.listen}});
    return kExitHostError;
  }
  logger.info("vm.receiving", "a migration source connected", {{"listen", f.listen}});
  Fd memory(::memfd_create("cloister-migration", MFD_CLOEXEC));
  if (!memory.valid()) {
    logger.error("vm.receive_failed", os_error("memfd_create").message());
    return kExitHostError;
  }
  auto received = decode_migration_stream(
      migration_reader(conn->get(), kReceiveTimeout),
      [&](std::uint64_t offset, ByteView pages) -> Status {
        for (std::size_t done = 0; done < pages.size();) {
          const ssize_t n = ::pwrite(memory.get(), pages.data() + done, pages.size() - done,
                                     static_cast<off_t>(offset + done));
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) return os_error("write of the received memory");
          done += static_cast<std::size_t>(n);
        }
        return {};
      });
  if (!received) {
    logger.error("vm.migration_refused", received.error().message(), {{"listen", f.listen}});
    return kExitConfig;
  }
  if (::ftruncate(memory.get(), static_cast<off_t>(received->memory_bytes)) < 0) {
    logger.error("vm.receive_failed", os_error("ftruncate of the received memory").message());
    return kExitHostError;
  }
  auto config = restored_config(received->state, f, log);
  if (!config) {
    logger.error("vm.migration_refused", config.error().with_context("receive").message());
    return kExitConfig;
  }
  const std::uint64_t records = received->memory_records, bytes = received->memory_payload_bytes;
  auto vmm = restore_vmm(*config, OpenedSnapshot{std::move(received->state), std::move(memory)},
                         logger, metrics, configured_hypervisor(*config, logger));
  if (!vmm) {
    const bool refused = vmm.error().code() == ErrorCode::kFailedPrecondition;
    logger.error(refused ? "vm.migration_refused" : "vm.receive_failed", vmm.error().message());
    return refused ? kExitConfig : kExitHostError;
  }
  if (auto st = send_migration_accepted(conn->get()); !st) {
    logger.error("vm.receive_failed", st.error().message() + "; the source keeps the VM");
    return kExitHostError;
  }
  logger.info("vm.received", "migration received; the guest runs here",
              {{"memory_records", records}, {"memory_bytes", bytes}});
  return std::move(*vmm);
}

int receive_vm(const RestoreFlags& f) {
  const json log = restored_log(f);
  auto log_config = parse_log_config(log);
  if (!log_config) {
    std::fprintf(stderr, "cloister-vmm: %s\n", log_config.error().message().c_str());
    return kExitConfig;
  }
  return run_vm(*log_config, [&](Logger& logger, Metrics& metrics) {
    return receive_migration(f, log, logger, metrics);
  });
}

}  // namespace

int main(int argc, char** argv) {
  // One malloc arena for every thread. glibc shrinks a thread's arena only after reading
  // /proc/sys/vm/overcommit_memory once, an open(2) no seccomp filter allows; emu's emulation
  // threads allocate enough for that to happen when their engines are closed. A VMM's handful of
  // threads gains nothing from separate arenas.
  mallopt(M_ARENA_MAX, 1);
  CLI::App app{
      "cloister-vmm: a virtual machine monitor for confidential guests (KVM or emulation)"};
  app.require_subcommand(1);
  Flags flags;
  auto* run = app.add_subcommand("run", "build and run a VM until it stops");
  add_run_flags(*run, flags);
  RestoreFlags restore_flags;
  auto* restore = app.add_subcommand("restore", "resume a snapshot where it was taken");
  add_restore_flags(*restore, restore_flags);
  RestoreFlags receive_flags;
  auto* receive =
      app.add_subcommand("receive", "wait for a live migration and run the guest it brings");
  add_receive_flags(*receive, receive_flags);
  std::string validate_file;
  auto* validate =
      app.add_subcommand("validate", "check a VM config and print it in canonical form");
  validate->add_option("--config", validate_file, "VM config (JSON)")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitConfig;  // --help is 0; usage errors are config errors
  }

  if (*restore) return restore_vm(restore_flags);
  if (*receive) return receive_vm(receive_flags);
  if (*validate) flags.config_file = validate_file;
  auto doc = merged_document(flags);
  if (!doc) {
    std::fprintf(stderr, "cloister-vmm: %s\n", doc.error().message().c_str());
    return kExitConfig;
  }
  auto config = parse_config(*doc);
  if (!config) {
    std::fprintf(stderr, "cloister-vmm: %s\n", config.error().message().c_str());
    return kExitConfig;
  }
  if (*validate) {
    std::printf("%s\n", to_json(*config).dump(2).c_str());
    return 0;
  }
  return run_vm(config->log, build_from_config(*config));
}
