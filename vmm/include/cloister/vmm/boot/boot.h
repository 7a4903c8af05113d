// Boot: reading and parsing the boot images (before KVM is touched), laying out guest memory
// for them, and placing them so the boot vCPU starts either at the firmware reset vector or at
// a kernel's 64-bit entry point (Linux boot protocol, Documentation/arch/x86/boot.rst).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/firmware_loader/bzimage.h"
#include "cloister/firmware_loader/elf.h"
#include "cloister/vmm/arch/x86/regs.h"
#include "cloister/vmm/config/config.h"
#include "cloister/vmm/memory/guest_memory.h"

namespace cloister::vmm {

enum class BootKind { kFirmware, kBzImage, kElf };
std::string_view boot_kind_name(BootKind kind);

struct BootImages {
  BootKind kind = BootKind::kFirmware;
  Bytes firmware;                      // kFirmware: the whole flash image
  std::optional<fw::BzImage> bzimage;  // kBzImage
  Bytes elf_file;                      // kElf: the file, and its parsed headers
  std::optional<fw::ElfImage> elf;
  std::optional<Bytes> initrd;
  std::string cmdline;
};

// Reads the files the boot config names (within fw::kFirmwareFileLimit, kKernelFileLimit,
// kInitrdFileLimit: machine.h) and parses them strictly. A firmware image must be a non-empty
// multiple of 4 KiB; a kernel is a bzImage (64-bit entry capable) or an ELF64 x86-64 executable.
Result<BootImages> load_boot_images(const BootConfig& boot);

// Guest memory regions for `ram_size` bytes of RAM (split around the MMIO gap) plus, for
// firmware boots, a read-only region ending at 4 GiB.
std::vector<RegionSpec> memory_layout(std::uint64_t ram_size, const BootImages& images);

// Where the boot vCPU starts. Firmware boots use the architectural reset state (nothing to
// set); kernel boots enter long mode directly.
struct BootEntry {
  bool long_mode = false;
  std::uint64_t rip = 0;
  std::uint64_t boot_params = 0;  // RSI for the Linux 64-bit entry
};

// Copies the images into guest memory: firmware at the top of 4 GiB; or the kernel, initrd,
// command line, boot_params with the e820 map, MP tables for `vcpus` CPUs, GDT and identity
// page tables for a kernel.
// Fails naming what does not fit ("kernel needs RAM up to 0x…, the VM has 0x…").
Result<BootEntry> place_boot_images(const BootImages& images, const GuestMemory& memory,
                                    std::uint64_t ram_size, std::uint32_t vcpus);

// The long-mode register state for a kernel entry (flat 64-bit CS 0x10, DS/ES/SS 0x18,
// paging on with the identity tables place_boot_images() wrote). `reset` is the vCPU's
// current special-register state, which this modifies.
void long_mode_entry_state(const BootEntry& entry, x86::Regs& regs, x86::Sregs& sregs);

}  // namespace cloister::vmm
