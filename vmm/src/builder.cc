#include "cloister/vmm/builder.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "cloister/firmware_loader/launch.h"
#include "cloister/vmm/arch/x86/layout.h"
#include "cloister/vmm/devices/virtio.h"
#include "cloister/vmm/devices/vsock.h"
#include "cloister/vmm/hypervisor/select.h"

namespace cloister::vmm {
namespace {

namespace L = x86::layout;

// Opens the console sink: its descriptor (a socket's is also read for input) and a writer that
// waits on a reader who falls behind only briefly, and not at all on one who stopped
// (console_writer()).
Result<std::pair<std::shared_ptr<Fd>, ConsoleWriter>> open_console(const ConsoleConfig& console,
                                                                   Metrics& metrics) {
  switch (console.kind) {
    case ConsoleKind::kNone:
      return std::pair<std::shared_ptr<Fd>, ConsoleWriter>{nullptr, ConsoleWriter()};
    case ConsoleKind::kStdout: {
      auto out = std::make_shared<Fd>(::fcntl(1, F_DUPFD_CLOEXEC, 3));
      if (!out->valid()) return os_error("console stdout");
      return std::pair<std::shared_ptr<Fd>, ConsoleWriter>{
          nullptr, console_writer(std::move(out), false, metrics)};
    }
    case ConsoleKind::kFile: {
      // O_NONBLOCK: a FIFO with no reader is an error here (ENXIO), not a wait.
      int fd = ::open(console.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK,
                      0640);
      if (fd < 0 && errno == ENXIO)
        return Error(ErrorCode::kFailedPrecondition,
                     "console file " + console.path +
                         ": a FIFO that no process is reading; start its reader first");
      if (fd < 0) return os_error("console file " + console.path);
      auto owned = std::make_shared<Fd>(fd);
      return std::pair<std::shared_ptr<Fd>, ConsoleWriter>{owned,
                                                           console_writer(owned, false, metrics)};
    }
    case ConsoleKind::kSocket: {
      int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) return os_error("console socket");
      auto owned = std::make_shared<Fd>(fd);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::strncpy(addr.sun_path, console.path.c_str(), sizeof addr.sun_path - 1);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
        return os_error("console: connect to " + console.path);
      return std::pair<std::shared_ptr<Fd>, ConsoleWriter>{owned,
                                                           console_writer(owned, true, metrics)};
    }
  }
  return Error("console: unknown kind");
}

IrqLine irq_line(Vm& vm, std::uint32_t irq, Logger& log) {
  return [&vm, irq, &log](bool level) {
    if (auto st = vm.set_irq_line(irq, level); !st)
      log.warn("irq.failed", st.error().message(), {{"irq", irq}});
  };
}

// The vCPU model of SEV-SNP launches when the configuration names none: QEMU's EPYC-v4.
constexpr std::string_view kDefaultSnpVcpuType = "EPYC-v4";

Result<std::shared_ptr<const Bytes>> read_image(const std::string& what, const std::string& path,
                                                const FileLimit& limit) {
  auto bytes = read_file(path, limit);
  if (!bytes) return bytes.error().with_context(what);
  if (bytes->empty()) return Error(what + " " + path + ": the file is empty");
  return std::make_shared<const Bytes>(std::move(*bytes));
}

// The LaunchPlan of a confidential launch, from the same function cloister-measure calls, with
// the VM's vCPUs, memory and vCPU model, and cloister-vmm's VMM profile (fw::plan_launch's
// default): the plan cloister-measure predicts for the same inputs.
Result<fw::LaunchPlan> confidential_plan(const VmConfig& config) {
  fw::LaunchInputs in;
  in.tee = is_snp(config.tee.kind) ? fw::Tee::kSevSnp : fw::Tee::kTdx;
  in.vcpus = config.vcpus;
  if (config.boot.igvm) {
    CLOISTER_TRY(auto bytes, read_image("boot.igvm", *config.boot.igvm, fw::kIgvmFileLimit));
    in.igvm = fw::LaunchFile{"boot.igvm " + *config.boot.igvm, std::move(bytes)};
  } else {
    CLOISTER_TRY(auto bytes,
                 read_image("boot.firmware", *config.boot.firmware, fw::kFirmwareFileLimit));
    in.firmware = fw::LaunchFile{"boot.firmware " + *config.boot.firmware, std::move(bytes)};
    if (in.tee == fw::Tee::kTdx) in.memory_bytes = config.memory_bytes;
  }
  if (in.tee == fw::Tee::kSevSnp && !config.boot.igvm)
    in.vcpu_signature.type = config.tee.vcpu_type.value_or(std::string(kDefaultSnpVcpuType));
  return fw::plan_launch(in);
}

// Guest memory for a confidential launch: RAM, plus regions backing every launch op outside it
// (the firmware below 4 GiB, an IGVM file's pages) and every range an IGVM file requires
// (REQUIRED_MEMORY, ERROR_RANGE: backed as QEMU backs them), writable by the guest as private
// memory is.
Result<std::vector<RegionSpec>> confidential_layout(std::uint64_t ram_size,
                                                    const fw::LaunchPlan& plan) {
  std::vector<RegionSpec> specs;
  const auto ram = fw::ram_ranges(ram_size);
  for (std::size_t i = 0; i < ram.size(); ++i)
    specs.push_back({i == 0 ? "ram-low" : "ram-high", ram[i].gpa, ram[i].size, false});
  // [begin, end) spans outside RAM, page-aligned (the plan's ops and ranges are). Kept as
  // spans, not pages: an IGVM file may require up to fw::kMaxGuestMemory.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> spans;
  const auto add_outside_ram = [&](std::uint64_t begin, std::uint64_t end) {
    for (const RegionSpec& r : specs) {  // RAM only so far, in ascending order
      const std::uint64_t r_end = r.guest_phys_addr + r.size;
      if (end <= r.guest_phys_addr || begin >= r_end) continue;
      if (begin < r.guest_phys_addr) spans.emplace_back(begin, r.guest_phys_addr);
      begin = std::max(begin, r_end);
    }
    if (begin < end) spans.emplace_back(begin, end);
  };
  for (const fw::LaunchOp& op : plan.ops())
    if (op.type != fw::PageType::kVmsa) add_outside_ram(op.gpa, op.gpa + op.size);
  for (const fw::GpaRange& range : plan.required_memory())
    add_outside_ram(range.gpa, range.gpa + range.size);
  std::sort(spans.begin(), spans.end());
  for (std::size_t i = 0; i < spans.size();) {
    std::uint64_t begin = spans[i].first, end = spans[i].second;
    std::size_t j = i + 1;
    for (; j < spans.size() && spans[j].first <= end; ++j) end = std::max(end, spans[j].second);
    const std::pair<std::uint64_t, std::uint64_t> devices[] = {
        {L::kVirtioMmioBase, L::kVirtioMmioBase + L::kVirtioMmioSlots * L::kVirtioMmioStride},
        {L::kIoapicAddr, L::kIoapicAddr + fw::kPageSize},
        {L::kLapicAddr, L::kLapicAddr + fw::kPageSize}};
    for (const auto& [device_begin, device_end] : devices)
      if (begin < device_end && device_begin < end)
        return Error("launch plan: pages at [" + hex_number(begin) + ", " + hex_number(end) +
                     ") overlap this VM's device window [" + hex_number(device_begin) + ", " +
                     hex_number(device_end) + ")");
    specs.push_back({end == L::kFourGiB ? "firmware" : "launch-" + hex_number(begin), begin,
                     end - begin, false});
    i = j;
  }
  return specs;
}

// Gives the VM every region of parts.memory as a memory slot, guest_memfd-backed when the TEE
// backend needs private memory.
Status map_memory_slots(Vmm::Parts& parts) {
  std::uint32_t slot = 0;
  for (const auto& region : parts.memory->regions()) {
    MemorySlot s;
    s.slot = slot++;
    s.guest_phys_addr = region.guest_phys_addr;
    s.size = region.size;
    s.host_address = region.host;
    s.read_only = region.read_only_to_guest;
    if (parts.tee->needs_private_memory()) {
      CLOISTER_TRY(s.guest_memfd, parts.vm->create_guest_memfd(region.size));
    }
    CLOISTER_CHECK_OK(parts.vm->map_memory(s));
  }
  return {};
}

// The port-I/O devices every VM has: the UART on `console`, fw_cfg, debug-exit and the i8042.
Status add_legacy_devices(Vmm::Parts& parts, const VmConfig& config,
                          std::pair<std::shared_ptr<Fd>, ConsoleWriter> console, Logger& log,
                          Metrics& metrics) {
  if (config.console.kind == ConsoleKind::kSocket) parts.console_input_fd = console.first->get();
  // The writer keeps its descriptor (a shared_ptr inside it) alive.
  parts.serial = std::make_shared<Serial>(std::move(console.second),
                                          irq_line(*parts.vm, L::kCom1Irq, log), metrics);
  CLOISTER_CHECK_OK(parts.pio.insert(parts.serial, L::kCom1Port, 8));
  auto fw_cfg = std::make_shared<FwCfg>(
      config.memory_bytes, static_cast<std::uint16_t>(config.vcpus), config.boot.cmdline);
  CLOISTER_CHECK_OK(parts.pio.insert(fw_cfg, L::kFwCfgPort, 2));
  CLOISTER_CHECK_OK(
      parts.pio.insert(std::make_shared<DebugExit>(*parts.stop_relay), L::kDebugExitPort, 4));
  return parts.pio.insert(std::make_shared<I8042>(*parts.stop_relay), L::kI8042DataPort,
                          L::kI8042CommandPort - L::kI8042DataPort + 1);
}

// Opens the devices of `config` for the snapshot's `saved` slots (parse_state() matched them
// one for one): disks re-opened by path and checked against the size they had, TAPs attached
// again with the rate limiters' buckets as saved, the vsock socket bound again owing the guest a
// transport reset. A disk that is gone or changed is ErrorCode::kFailedPrecondition.
Result<std::vector<std::unique_ptr<VirtioDevice>>> open_restored_devices(
    const VmConfig& config, const std::vector<VirtioDeviceState>& saved, Vmm::Parts& parts,
    Logger& log, Metrics& metrics) {
  std::vector<std::unique_ptr<VirtioDevice>> devices;
  for (const VirtioDeviceState& slot : saved) {
    const std::string where = "restore: /body/devices/virtio/" + std::to_string(slot.slot);
    // Slots follow the config: its disks, then its nets, then its vsock.
    const std::string_view expected = slot.slot < config.disks.size() ? "block"
                                      : slot.slot < config.disks.size() + config.nets.size()
                                          ? "net"
                                          : "vsock";
    if (virtio_kind_name(slot.device) != expected)
      return Error(ErrorCode::kFailedPrecondition,
                   where + "/kind: expected " + std::string(expected) + " (the config's slot " +
                       std::to_string(slot.slot) + "), found " +
                       std::string(virtio_kind_name(slot.device)));
    if (const auto* b = std::get_if<BlockDeviceState>(&slot.device)) {
      auto blk = VirtioBlock::open(b->path, b->read_only, metrics);
      if (!blk)
        return Error(ErrorCode::kFailedPrecondition,
                     where + " (virtio-blk): " + blk.error().message() +
                         " (disks are re-opened by path: a snapshot holds no disk contents)");
      if ((*blk)->size_bytes() != b->bytes)
        return Error(ErrorCode::kFailedPrecondition,
                     where + "/block/bytes: disk " + b->path + ": expected " +
                         std::to_string(b->bytes) + " bytes (its size at the snapshot), found " +
                         std::to_string((*blk)->size_bytes()));
      devices.push_back(std::move(*blk));
    } else if (const auto* n = std::get_if<NetDeviceState>(&slot.device)) {
      const NetConfig& net = config.nets[slot.slot - config.disks.size()];
      auto device = VirtioNet::open(net, log, metrics);
      if (!device) return device.error().with_context(where + " (virtio-net)");
      (*device)->restore(*n);
      parts.nets.push_back(device->get());
      devices.push_back(std::move(*device));
    } else {
      auto vsock = VirtioVsock::create(*config.vsock, log, metrics);
      if (!vsock) return vsock.error().with_context(where + " (virtio-vsock)");
      (*vsock)->restore();
      devices.push_back(std::move(*vsock));
    }
  }
  return devices;
}

// Puts `devices` on the MMIO bus, slot after slot, their transports in the state `saved` holds
// (none for a fresh VM).
Status add_virtio_devices(Vmm::Parts& parts, std::vector<std::unique_ptr<VirtioDevice>> devices,
                          const std::vector<VirtioDeviceState>& saved, bool seccomp, Logger& log,
                          Metrics& metrics) {
  Vm& vm = *parts.vm;
  // Each device thread starts here, filtered before it returns: it raises its interrupt line.
  const DeviceSandbox device_sandbox{seccomp, vm.irq_ioctls()};
  for (std::size_t i = 0; i < devices.size(); ++i) {
    std::optional<VirtioTransportState> restored;
    if (i < saved.size()) restored = saved[i].transport;
    CLOISTER_TRY(
        auto transport,
        VirtioMmio::create(std::move(devices[i]), *parts.memory,
                           irq_line(vm, L::kVirtioFirstIrq + static_cast<std::uint32_t>(i), log),
                           device_sandbox, log, metrics, restored));
    CLOISTER_CHECK_OK(parts.mmio.insert(transport, L::kVirtioMmioBase + i * L::kVirtioMmioStride,
                                        virtio::kMmioSize));
    parts.virtio.push_back(std::move(transport));
  }
  return {};
}

}  // namespace

HypervisorFactory configured_hypervisor(const VmConfig& config, Logger& log,
                                        std::string kvm_device) {
  // SEV-SNP and TDX hardware launches need KVM: `auto` does not fall back to the emulator.
  const bool hardware_tee = config.tee.kind == TeeKind::kSnp || config.tee.kind == TeeKind::kTdx;
  const HypervisorKind kind = hardware_tee && config.hypervisor == HypervisorKind::kAuto
                                  ? HypervisorKind::kKvm
                                  : config.hypervisor;
  return [kind, seccomp = config.seccomp, &log, device = std::move(kvm_device)] {
    return open_hypervisor(kind, device, seccomp, log);
  };
}

Result<VmInputs> load_vm_inputs(const VmConfig& config) {
  VmInputs inputs;
  if (config.tee.kind != TeeKind::kNone) {
    CLOISTER_TRY(auto plan, confidential_plan(config));
    CLOISTER_TRY(inputs.tee, make_tee_backend(config.tee, std::move(plan)));
  } else {
    CLOISTER_TRY(inputs.tee, make_tee_backend(config.tee, std::nullopt));
    CLOISTER_TRY(inputs.images, load_boot_images(config.boot));
  }
  return inputs;
}

Result<std::unique_ptr<Vmm>> build_vmm(const VmConfig& config, VmInputs inputs, Logger& log,
                                       Metrics& metrics, const HypervisorFactory& open_hypervisor) {
  Vmm::Parts parts;
  parts.config = config;
  const bool confidential = config.tee.kind != TeeKind::kNone;
  parts.tee = std::move(inputs.tee);
  const BootImages& images = inputs.images;
  parts.boot_kind = confidential ? BootKind::kFirmware : images.kind;
  std::vector<std::unique_ptr<VirtioDevice>> virtio_devices;  // slot order: disks, nets, vsock
  for (const auto& disk : config.disks) {
    CLOISTER_TRY(auto blk, VirtioBlock::open(disk.path, disk.read_only, metrics));
    virtio_devices.push_back(std::move(blk));
  }
  for (const auto& net : config.nets) {
    CLOISTER_TRY(auto device, VirtioNet::open(net, log, metrics));
    parts.nets.push_back(device.get());
    virtio_devices.push_back(std::move(device));
  }
  if (config.vsock) {
    CLOISTER_TRY(auto vsock, VirtioVsock::create(*config.vsock, log, metrics));
    virtio_devices.push_back(std::move(vsock));
  }
  CLOISTER_TRY(auto console, open_console(config.console, metrics));
  std::vector<RegionSpec> layout;
  if (confidential) {
    CLOISTER_TRY(layout, confidential_layout(config.memory_bytes, *parts.tee->plan()));
  } else {
    layout = memory_layout(config.memory_bytes, images);
  }
  // The vCPU threads start now, while the VM is set up below; Vmm::start() sandboxes them.
  parts.threads = std::make_unique<VcpuThreads>(config.vcpus);

  CLOISTER_TRY(parts.hypervisor, open_hypervisor());
  VmOptions options;
  options.vcpus = config.vcpus;
  options.machine_type = parts.tee->machine_type();
  CLOISTER_TRY(parts.vm, parts.hypervisor->create_vm(options));
  CLOISTER_CHECK_OK(parts.tee->init_vm(*parts.vm));

  CLOISTER_TRY(auto memory, GuestMemory::create(layout, config.hugepages));
  parts.memory = std::make_unique<GuestMemory>(std::move(memory));
  CLOISTER_CHECK_OK(map_memory_slots(parts));
  CLOISTER_CHECK_OK(parts.vm->create_irqchip(
      /*pit=*/!confidential && images.kind != BootKind::kFirmware));
  BootEntry entry;
  if (!confidential) {
    CLOISTER_TRY(entry,
                 place_boot_images(images, *parts.memory, config.memory_bytes, config.vcpus));
  }

  Vm& vm = *parts.vm;
  CLOISTER_CHECK_OK(add_legacy_devices(parts, config, std::move(console), log, metrics));
  CLOISTER_CHECK_OK(
      add_virtio_devices(parts, std::move(virtio_devices), {}, config.seccomp, log, metrics));

  for (std::uint32_t id = 0; id < config.vcpus; ++id) {
    CLOISTER_TRY(auto vcpu, vm.create_vcpu(id));
    parts.vcpus.push_back(std::move(vcpu));
  }
  if (entry.long_mode) {
    Vcpu& bsp = *parts.vcpus.front();
    CLOISTER_TRY(auto sregs, bsp.sregs());
    x86::Regs regs;
    long_mode_entry_state(entry, regs, sregs);
    CLOISTER_CHECK_OK(bsp.set_sregs(sregs));
    CLOISTER_CHECK_OK(bsp.set_regs(regs));
  }
  std::vector<Vcpu*> vcpus;
  for (auto& v : parts.vcpus) vcpus.push_back(v.get());
  LaunchContext launch{vm, vcpus, *parts.memory, log, config.seccomp};
  CLOISTER_CHECK_OK(parts.tee->launch(launch));
  for (const TeeDevice& d : parts.tee->devices(*parts.memory, log))
    CLOISTER_CHECK_OK(parts.pio.insert(d.device, d.port, d.size));

  nlohmann::json built = {{"boot", confidential ? (config.boot.igvm ? "igvm" : "firmware")
                                                : boot_kind_name(images.kind)},
                          {"vcpus", config.vcpus},
                          {"memory_bytes", config.memory_bytes},
                          {"tee", tee_name(config.tee.kind)},
                          {"hypervisor", parts.hypervisor->name()},
                          {"disks", config.disks.size()},
                          {"nets", config.nets.size()}};
  if (auto m = parts.tee->measurement()) built[m->name] = to_hex(m->digest);
  log.info("vm.built", "VM ready", built);
  return std::make_unique<Vmm>(std::move(parts), log, metrics);
}

Result<std::unique_ptr<Vmm>> restore_vmm(const VmConfig& config, OpenedSnapshot snapshot,
                                         Logger& log, Metrics& metrics,
                                         const HypervisorFactory& open_hypervisor) {
  const auto began = std::chrono::steady_clock::now();
  const SnapshotState& state = snapshot.state;
  CLOISTER_CHECK_OK(Vmm::confidential_refusal("restore", config.tee.kind));
  const std::size_t slots = config.disks.size() + config.nets.size() + (config.vsock ? 1 : 0);
  if (state.virtio.size() != slots)
    return Error(ErrorCode::kFailedPrecondition,
                 "restore: virtio devices: the config has " + std::to_string(slots) +
                     ", the snapshot holds " + std::to_string(state.virtio.size()));
  if (config.vcpus != state.vcpus.size())
    return Error(ErrorCode::kFailedPrecondition,
                 "restore: vCPU count: the config has " + std::to_string(config.vcpus) +
                     ", the snapshot holds " + std::to_string(state.vcpus.size()));
  Vmm::Parts parts;
  parts.config = config;
  parts.boot_kind = state.boot_kind;
  CLOISTER_TRY(auto virtio_devices,
               open_restored_devices(config, state.virtio, parts, log, metrics));
  CLOISTER_TRY(parts.tee, make_tee_backend(config.tee, std::nullopt));
  CLOISTER_TRY(auto console, open_console(config.console, metrics));
  parts.threads = std::make_unique<VcpuThreads>(config.vcpus);

  CLOISTER_TRY(parts.hypervisor, open_hypervisor());
  if (parts.hypervisor->name() != state.hypervisor)
    return Error(ErrorCode::kFailedPrecondition,
                 "restore: hypervisor: the snapshot was written on " + state.hypervisor +
                     ", this VM runs on " + std::string(parts.hypervisor->name()) +
                     " (their interrupt-controller and XSAVE images differ)");
  VmOptions options;
  options.vcpus = config.vcpus;
  CLOISTER_TRY(parts.vm, parts.hypervisor->create_vm(options));
  CLOISTER_CHECK_OK(parts.tee->init_vm(*parts.vm));
  std::vector<RegionSpec> specs;
  std::vector<std::uint64_t> offsets;
  for (const SnapshotRegion& r : state.memory) {
    specs.push_back({r.name, r.guest_phys_addr, r.size, r.read_only_to_guest});
    offsets.push_back(r.file_offset);
  }
  CLOISTER_TRY(auto memory, GuestMemory::map_private(specs, offsets, snapshot.memory_file.get()));
  parts.memory = std::make_unique<GuestMemory>(std::move(memory));
  CLOISTER_CHECK_OK(map_memory_slots(parts));
  CLOISTER_CHECK_OK(parts.vm->create_irqchip(/*pit=*/state.boot_kind != BootKind::kFirmware));
  CLOISTER_CHECK_OK(parts.vm->restore_state(state.vm));
  CLOISTER_CHECK_OK(add_legacy_devices(parts, config, std::move(console), log, metrics));
  parts.serial->restore(state.serial);
  CLOISTER_CHECK_OK(add_virtio_devices(parts, std::move(virtio_devices), state.virtio,
                                       config.seccomp, log, metrics));
  for (std::uint32_t id = 0; id < config.vcpus; ++id) {
    CLOISTER_TRY(auto vcpu, parts.vm->create_vcpu(id));
    if (auto restored = vcpu->restore_state(state.vcpus[id]); !restored)
      return restored.error().with_context("restore: vCPU " + std::to_string(id));
    parts.vcpus.push_back(std::move(vcpu));
  }
  log.info("vm.restored", "VM restored from a snapshot",
           {{"vcpus", config.vcpus},
            {"virtio_devices", state.virtio.size()},
            {"memory_bytes", config.memory_bytes},
            {"hypervisor", parts.hypervisor->name()},
            {"written_by", state.vmm_version},
            {"ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - began)
                       .count()}});
  return std::make_unique<Vmm>(std::move(parts), log, metrics);
}

}  // namespace cloister::vmm
