// cloister-vmm: runs one VM per process under KVM or, without it, the emulator (emu.h).
//   cloister-vmm run --config vm.json [flags that override it]
//   cloister-vmm run --firmware F | --kernel K [--initrd I] [--cmdline C] --vcpus N --memory 512M
//                    [--tee none|sim-snp|sim-tdx|snp|tdx] [--hypervisor auto|kvm|emu]
//                    [--api-socket PATH] [--console SPEC] ...
//   cloister-vmm validate --config vm.json      prints the canonical config or the first error
// Exit status: 0 clean stop, 1 host/VMM error, 2 bad configuration, 3 guest fault,
// 4 guest reported failure through the debug-exit port (docs/operator.md).
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>

#include "cloister/common/file.h"
#include "cloister/vmm/api/api.h"
#include "cloister/vmm/builder.h"
#include "cloister/vmm/config/config.h"
#include "cloister/vmm/seccomp/seccomp.h"

namespace {

using namespace cloister;
using namespace cloister::vmm;
using nlohmann::json;

constexpr int kExitHostError = 1;
constexpr int kExitConfig = 2;

struct Flags {
  std::string config_file;
  std::optional<std::string> firmware, kernel, initrd, cmdline, memory, tee, hypervisor, api_socket,
      console;
  std::optional<std::string> log_format, log_level, log_file;
  std::optional<std::uint32_t> vcpus;
  std::optional<std::uint64_t> vsock_cid;
  std::optional<std::string> vsock_uds;
  std::vector<std::string> disks;
  bool no_seccomp = false;
  bool hugepages = false;
};

void add_run_flags(CLI::App& cmd, Flags& f) {
  cmd.add_option("--config", f.config_file, "VM config (JSON); flags below override its keys");
  auto* fw = cmd.add_option("--firmware", f.firmware, "firmware image mapped to end at 4 GiB");
  auto* k = cmd.add_option("--kernel", f.kernel, "kernel: bzImage or ELF64");
  fw->excludes(k);
  cmd.add_option("--initrd", f.initrd, "initial ramdisk (with --kernel)");
  cmd.add_option("--cmdline", f.cmdline, "kernel command line (firmware: passed through fw_cfg)");
  cmd.add_option("--vcpus", f.vcpus, "number of vCPUs (1-254)");
  cmd.add_option("--memory", f.memory, "guest RAM, e.g. 512M or 2G");
  cmd.add_option("--tee", f.tee, "none | sim-snp | sim-tdx | snp | tdx");
  cmd.add_option("--hypervisor", f.hypervisor,
                 "auto (KVM when /dev/kvm opens, else emu) | kvm | emu (software emulation)");
  cmd.add_option("--api-socket", f.api_socket, "serve the control API on this UNIX socket");
  cmd.add_option("--console", f.console, "stdout | none | file:PATH | socket:PATH");
  cmd.add_option("--disk", f.disks, "virtio-blk disk: PATH or PATH,ro (repeatable)");
  cmd.add_option("--vsock-uds", f.vsock_uds,
                 "virtio-vsock: guest connections to host port P reach the UNIX socket PATH_P");
  cmd.add_option("--vsock-cid", f.vsock_cid, "virtio-vsock guest CID (default 3)");
  cmd.add_option("--log-format", f.log_format, "text | json");
  cmd.add_option("--log-level", f.log_level, "debug | info | warn | error");
  cmd.add_option("--log-file", f.log_file, "append logs to this file instead of stderr");
  cmd.add_flag("--no-seccomp", f.no_seccomp, "do not install seccomp filters");
  cmd.add_flag("--hugepages", f.hugepages, "back guest RAM with 2 MiB hugepages");
}

// The config file's JSON patched with the flags, so one validator sees every input.
Result<json> merged_document(const Flags& f) {
  json doc = json::object();
  if (!f.config_file.empty()) {
    CLOISTER_TRY(auto text, read_text_file(f.config_file));
    doc = json::parse(text, nullptr, false);
    if (doc.is_discarded()) return Error("config " + f.config_file + ": not valid JSON");
    if (!doc.is_object()) return Error("config " + f.config_file + ": expected a JSON object");
  }
  if (f.firmware || f.kernel) {
    json& boot = doc["boot"];
    if (!boot.is_object()) boot = json::object();
    boot.erase("firmware");
    boot.erase("kernel");
    if (f.firmware) {
      boot.erase("initrd");
      boot["firmware"] = *f.firmware;
    } else {
      boot["kernel"] = *f.kernel;
    }
  }
  if (f.initrd) doc["boot"]["initrd"] = *f.initrd;
  if (f.cmdline) doc["boot"]["cmdline"] = *f.cmdline;
  if (f.vcpus) doc["vcpus"] = *f.vcpus;
  if (f.memory) doc["memory"] = *f.memory;
  if (f.tee) doc["tee"] = *f.tee;
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
  if (f.vsock_uds) doc["vsock"]["uds_path"] = *f.vsock_uds;
  if (f.vsock_cid) doc["vsock"]["guest_cid"] = *f.vsock_cid;
  if (f.log_format) doc["log"]["format"] = *f.log_format;
  if (f.log_level) doc["log"]["level"] = *f.log_level;
  if (f.log_file) doc["log"]["file"] = *f.log_file;
  if (f.no_seccomp) doc["seccomp"] = false;
  if (f.hugepages) doc["hugepages"] = true;
  return doc;
}

int run_vm(const VmConfig& config) {
  std::optional<Logger> file_log;
  if (!config.log.file.empty()) {
    auto l = Logger::to_file(config.log.file, config.log.format, config.log.level);
    if (!l) {
      std::fprintf(stderr, "cloister-vmm: %s\n", l.error().message().c_str());
      return kExitConfig;
    }
    file_log.emplace(std::move(*l));
  }
  Logger stderr_log(config.log.format, config.log.level);
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

  auto vmm = build_vmm(config, log, metrics);
  if (!vmm) {
    log.error("vm.build_failed", vmm.error().message());
    return kExitHostError;
  }
  VmmApiController controller(**vmm);
  std::unique_ptr<ApiServer> api;
  if (config.api_socket) {
    auto server = ApiServer::start(*config.api_socket, controller, log, config.seccomp);
    if (!server) {
      log.error("api.failed", server.error().message());
      return kExitHostError;
    }
    api = std::move(*server);
  }
  // Console input: the console socket, or stdin when the console is a terminal's stdout.
  int console_input = (*vmm)->console_input_fd();
  if (console_input < 0 && config.console.kind == ConsoleKind::kStdout && ::isatty(0))
    console_input = 0;
  if (auto st = (*vmm)->start(); !st) {
    log.error("vm.start_failed", st.error().message());
    return kExitHostError;
  }
  if (config.seccomp && seccomp_available()) {
    if (auto st = install_seccomp(ThreadClass::kVmm); !st) {
      (*vmm)->request_stop({StopKind::kHostError, 0, st.error().message()});
    }
  } else if (config.seccomp) {
    log.warn("seccomp.unavailable", "this is a sanitizer build: seccomp filters are not installed");
  }

  for (;;) {
    pollfd fds[3] = {
        {signal_fd.get(), POLLIN, 0}, {(*vmm)->stop_fd(), POLLIN, 0}, {console_input, POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      (*vmm)->request_stop({StopKind::kHostError, 0, os_error("poll").message()});
      break;
    }
    if (fds[1].revents) break;
    if (fds[0].revents) {
      signalfd_siginfo info{};
      if (::read(signal_fd.get(), &info, sizeof info) == sizeof info)
        (*vmm)->request_stop({StopKind::kRequested, 0, "signal " + std::to_string(info.ssi_signo)});
    }
    if (fds[2].revents) {
      std::uint8_t buf[256];
      ssize_t n = ::read(console_input, buf, sizeof buf);
      if (n > 0)
        (*vmm)->serial()->push_input(ByteView(buf, static_cast<std::size_t>(n)));
      else
        console_input = -1;  // end of input: stop polling it
    }
  }
  StopReason reason = (*vmm)->wait();
  api.reset();
  const int code = exit_code_for(reason);
  json fields = {
      {"reason", stop_kind_name(reason.kind)}, {"exit_code", code}, {"metrics", metrics.to_json()}};
  if (reason.kind == StopKind::kDebugExit) fields["guest_status"] = reason.guest_status;
  log.log(code == 0 ? LogLevel::kInfo : LogLevel::kError, "vm.stopped", reason.message, fields);
  return code;
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
  std::string validate_file;
  auto* validate =
      app.add_subcommand("validate", "check a VM config and print it in canonical form");
  validate->add_option("--config", validate_file, "VM config (JSON)")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitConfig;  // --help is 0; usage errors are config errors
  }

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
  return run_vm(*config);
}
