// What a simulated platform reports about itself: the SEV-SNP firmware's identity and TCB, and
// the TDX module's and Quoting Enclave's. Each struct's defaults describe a current, healthy
// platform; validate() rejects combinations the hardware cannot produce, naming the field.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "cloister/attestation/snp/product.h"
#include "cloister/attestation/snp/report.h"
#include "cloister/attestation/tdx/quote.h"
#include "cloister/common/bytes.h"

namespace cloister::attestation::sim {

struct SnpPlatformConfig {
  // The product decides the TCB_VERSION layout, the CPUID fields of reports and the hierarchy's
  // names (ARK-Genoa, …): Milan, Genoa or Turin.
  snp::Product product = snp::Product::kGenoa;
  // CHIP_ID: 64 bytes (Turin: 8 bytes followed by 56 zero bytes). Empty: the simulated chip of
  // the state directory (generated once per product).
  Bytes chip_id;
  // TCB_VERSION components (research/snp.md §b): the running firmware's (CURRENT_TCB), the one
  // the VCEK is derived for (REPORTED_TCB), the committed one, and the one the guest launched on.
  // Defaults: the TCB of the real Genoa report in shared/vectors/snp.
  snp::TcbParts current_tcb{.fmc = std::nullopt, .bl = 10, .tee = 0, .snp = 25, .ucode = 84};
  snp::TcbParts reported_tcb = current_tcb;
  snp::TcbParts committed_tcb = current_tcb;
  snp::TcbParts launch_tcb = current_tcb;
  // PLATFORM_INFO: SMT_EN, ECC_EN, ALIAS_CHECK_COMPLETE.
  std::uint64_t platform_info = 0x25;
  snp::FirmwareVersion current_firmware{1, 55, 43};
  snp::FirmwareVersion committed_firmware{1, 55, 43};

  // The defaults for another product, with the TCB and firmware version of that product's real
  // report in shared/vectors/snp (Milan 1.55.29, Genoa 1.55.43, Turin 1.55.61).
  static SnpPlatformConfig for_product(snp::Product product);

  // Fails for: a product without an SEV-SNP hierarchy to simulate (Venice), a chip ID that is
  // not 64 bytes (or, for Turin, has non-zero bytes after the first 8), a TCB whose FMC SPL does
  // not match the product's layout, a REPORTED or COMMITTED TCB above CURRENT in any component,
  // a committed firmware version above the current one, and PLATFORM_INFO bits above bit 7.
  Status validate() const;
};

// The CPUID family, model and stepping a simulated platform reports for its product: those of
// the product's real report in shared/vectors/snp (Milan 19h/01h/1, Genoa 19h/11h/1, Turin
// 1Ah/02h/1).
snp::CpuidInfo simulated_cpuid(snp::Product product);

struct TdxPlatformConfig {
  // TEE_TCB_SVN: [0] TDX module minor SVN, [1] module major version (names the TCB Info module
  // identity TDX_01, …), [2] SEAM loader SVN; the rest zero on current modules.
  std::array<std::uint8_t, 16> tee_tcb_svn{11, 1, 4};
  std::array<std::uint8_t, 6> fmspc{0x90, 0xc0, 0x6f, 0x00, 0x00, 0x00};
  std::uint16_t pce_svn = 13;
  // The CPUSVN, whose 16 bytes are also the PCK certificate's SGX TCB components.
  std::array<std::uint8_t, 16> cpu_svn{4, 4, 0x19, 0x1b, 4, 0xff, 0, 6};
  // MRSEAM of the simulated module: SHA-384 of "Cloister simulated TDX module" unless set.
  std::optional<tdx::Bytes48> mr_seam;
  tdx::Bytes48 mr_signer_seam{};  // zero: an Intel-signed module
  std::uint16_t qe_svn = 7;       // the Quoting Enclave's ISVSVN
  // Intel has published a newer TCB for this platform (one with a higher PCE SVN): the TCB Info
  // in this platform's collateral rates its TCB OutOfDate (otherwise UpToDate).
  bool vulnerable = false;

  // The MRSEAM in effect (mr_seam or the default).
  tdx::Bytes48 effective_mr_seam() const;

  // Fails for a vulnerable platform whose PCE SVN is 65535 (no newer TCB level can exist).
  Status validate() const;
};

}  // namespace cloister::attestation::sim
