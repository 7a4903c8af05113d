#include "cloister/vmm/builder.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "cloister/vmm/arch/x86/layout.h"
#include "cloister/vmm/devices/virtio.h"
#include "cloister/vmm/devices/vsock.h"
#include "cloister/vmm/hypervisor/select.h"

namespace cloister::vmm {
namespace {

namespace L = x86::layout;

// Writes all of `bytes`; sockets use send(MSG_NOSIGNAL) so a vanished reader cannot SIGPIPE
// the VMM (stdout and files: one write(2) per burst).
void write_all(int fd, ByteView bytes, bool socket) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = socket ? ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL)
                       : ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the console reader went away; the guest keeps running
    done += static_cast<std::size_t>(n);
  }
}

// Opens the console sink. The returned fd (if any) must outlive the writer.
Result<std::pair<std::shared_ptr<Fd>, ConsoleWriter>> open_console(const ConsoleConfig& console) {
  switch (console.kind) {
    case ConsoleKind::kNone:
      return std::pair<std::shared_ptr<Fd>, ConsoleWriter>{nullptr, ConsoleWriter()};
    case ConsoleKind::kStdout:
      return std::pair<std::shared_ptr<Fd>, ConsoleWriter>{
          nullptr, [](ByteView b) { write_all(1, b, false); }};
    case ConsoleKind::kFile: {
      int fd = ::open(console.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
      if (fd < 0) return os_error("console file " + console.path);
      auto owned = std::make_shared<Fd>(fd);
      return std::pair<std::shared_ptr<Fd>, ConsoleWriter>{
          owned, [owned](ByteView b) { write_all(owned->get(), b, false); }};
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
      return std::pair<std::shared_ptr<Fd>, ConsoleWriter>{
          owned, [owned](ByteView b) { write_all(owned->get(), b, true); }};
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

}  // namespace

Result<std::unique_ptr<Vmm>> build_vmm(const VmConfig& config, Logger& log, Metrics& metrics,
                                       const std::string& kvm_device) {
  Vmm::Parts parts;
  parts.config = config;
  // Everything that can be checked without KVM comes first.
  CLOISTER_TRY(parts.tee, make_tee_backend(config.tee));
  CLOISTER_TRY(auto images, load_boot_images(config.boot));
  parts.boot_kind = images.kind;
  std::vector<std::unique_ptr<VirtioDevice>> virtio_devices;  // slot order: disks, then vsock
  for (const auto& disk : config.disks) {
    CLOISTER_TRY(auto blk, VirtioBlock::open(disk.path, disk.read_only, metrics));
    virtio_devices.push_back(std::move(blk));
  }
  if (config.vsock) {
    CLOISTER_TRY(auto vsock, VirtioVsock::create(config.vsock->guest_cid, config.vsock->uds_path,
                                                 config.seccomp, log, metrics));
    virtio_devices.push_back(std::move(vsock));
  }
  CLOISTER_TRY(auto console, open_console(config.console));
  // The vCPU threads start now and sandbox themselves while KVM is set up below.
  parts.threads = std::make_unique<VcpuThreads>(config.vcpus, config.seccomp);

  CLOISTER_TRY(parts.hypervisor,
               open_hypervisor(config.hypervisor, kvm_device, config.seccomp, log));
  VmOptions options;
  options.vcpus = config.vcpus;
  options.machine_type = parts.tee->machine_type();
  CLOISTER_TRY(parts.vm, parts.hypervisor->create_vm(options));
  CLOISTER_CHECK_OK(parts.tee->init_vm(*parts.vm));

  CLOISTER_TRY(auto memory,
               GuestMemory::create(memory_layout(config.memory_bytes, images), config.hugepages));
  parts.memory = std::make_unique<GuestMemory>(std::move(memory));
  std::uint32_t slot = 0;
  for (const auto& region : parts.memory->regions()) {
    MemorySlot s;
    s.slot = slot++;
    s.guest_phys_addr = region.guest_phys_addr;
    s.size = region.size;
    s.host_address = region.host;
    s.read_only = region.read_only_to_guest;
    CLOISTER_CHECK_OK(parts.vm->map_memory(s));
  }
  CLOISTER_CHECK_OK(parts.vm->create_irqchip(/*pit=*/images.kind != BootKind::kFirmware));
  CLOISTER_TRY(auto entry,
               place_boot_images(images, *parts.memory, config.memory_bytes, config.vcpus));

  Vm& vm = *parts.vm;
  if (config.console.kind == ConsoleKind::kSocket) parts.console_input_fd = console.first->get();
  parts.serial =
      std::make_shared<Serial>(std::move(console.second), irq_line(vm, L::kCom1Irq, log), metrics);
  CLOISTER_CHECK_OK(parts.pio.insert(parts.serial, L::kCom1Port, 8));
  auto fw_cfg = std::make_shared<FwCfg>(
      config.memory_bytes, static_cast<std::uint16_t>(config.vcpus), config.boot.cmdline);
  CLOISTER_CHECK_OK(parts.pio.insert(fw_cfg, L::kFwCfgPort, 2));
  CLOISTER_CHECK_OK(
      parts.pio.insert(std::make_shared<DebugExit>(*parts.stop_relay), L::kDebugExitPort, 4));
  CLOISTER_CHECK_OK(parts.pio.insert(std::make_shared<I8042>(*parts.stop_relay), L::kI8042DataPort,
                                     L::kI8042CommandPort - L::kI8042DataPort + 1));
  for (std::size_t i = 0; i < virtio_devices.size(); ++i) {
    auto transport = std::make_shared<VirtioMmio>(
        std::move(virtio_devices[i]), *parts.memory,
        irq_line(vm, L::kVirtioFirstIrq + static_cast<std::uint32_t>(i), log), log, metrics);
    CLOISTER_CHECK_OK(parts.mmio.insert(transport, L::kVirtioMmioBase + i * L::kVirtioMmioStride,
                                        virtio::kMmioSize));
  }

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
  CLOISTER_CHECK_OK(parts.tee->launch(vm, vcpus, *parts.memory));

  log.info("vm.built", "VM ready",
           {{"boot", boot_kind_name(images.kind)},
            {"vcpus", config.vcpus},
            {"memory_bytes", config.memory_bytes},
            {"tee", tee_name(config.tee)},
            {"disks", config.disks.size()}});
  return std::make_unique<Vmm>(std::move(parts), log, metrics);
}

}  // namespace cloister::vmm
