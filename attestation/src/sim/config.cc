#include "cloister/attestation/sim/config.h"

#include "cloister/common/hex.h"
#include "cloister/common/sha.h"

namespace cloister::attestation::sim {
namespace {

using snp::Product;
using snp::TcbParts;

// Component-wise a <= b; the first component above, by name.
std::optional<std::string> first_above(const TcbParts& a, const TcbParts& b) {
  if (a.fmc && b.fmc && *a.fmc > *b.fmc) return "FMC";
  if (a.bl > b.bl) return "BL";
  if (a.tee > b.tee) return "TEE";
  if (a.snp > b.snp) return "SNP";
  if (a.ucode > b.ucode) return "UCODE";
  return std::nullopt;
}

bool version_above(const snp::FirmwareVersion& a, const snp::FirmwareVersion& b) {
  return std::tie(a.major, a.minor, a.build) > std::tie(b.major, b.minor, b.build);
}

}  // namespace

SnpPlatformConfig SnpPlatformConfig::for_product(Product product) {
  SnpPlatformConfig c;
  c.product = product;
  switch (product) {
    case Product::kMilan:
      c.current_tcb = {.fmc = std::nullopt, .bl = 4, .tee = 0, .snp = 24, .ucode = 219};
      c.current_firmware = {1, 55, 29};
      break;
    case Product::kTurin:
      c.current_tcb = {.fmc = 0, .bl = 1, .tee = 0, .snp = 2, .ucode = 71};
      c.current_firmware = {1, 55, 61};
      break;
    case Product::kGenoa:
    case Product::kVenice:
      break;
  }
  c.reported_tcb = c.committed_tcb = c.launch_tcb = c.current_tcb;
  c.committed_firmware = c.current_firmware;
  return c;
}

Status SnpPlatformConfig::validate() const {
  const std::string name(snp::product_name(product));
  if (product == Product::kVenice)
    return Error(
        "product: Venice has no published AMD hierarchy to simulate (Milan, Genoa, Turin)");
  if (!chip_id.empty()) {
    if (chip_id.size() != 64)
      return Error("chip_id: expected 64 bytes, found " + std::to_string(chip_id.size()));
    if (snp::uses_fmc_tcb_layout(product) && !is_all_zero(ByteView(chip_id).subspan(8)))
      return Error("chip_id: a " + name + " CHIP_ID has 8 bytes followed by 56 zero bytes");
  }
  const std::pair<const char*, const TcbParts*> tcbs[] = {{"current_tcb", &current_tcb},
                                                          {"reported_tcb", &reported_tcb},
                                                          {"committed_tcb", &committed_tcb},
                                                          {"launch_tcb", &launch_tcb}};
  for (const auto& [field, tcb] : tcbs) {
    if (auto ok = snp::TcbVersion::from_parts(product, *tcb); !ok)
      return Error(std::string(field) + ": " + ok.error().message());
  }
  for (const auto& [field, tcb] : {tcbs[1], tcbs[2]}) {
    if (auto above = first_above(*tcb, current_tcb)) {
      return Error(std::string(field) + " (" + tcb->to_string() + ") exceeds current_tcb (" +
                   current_tcb.to_string() + ") in " + *above + "; the firmware reports at most " +
                   "the TCB it runs");
    }
  }
  if (version_above(committed_firmware, current_firmware)) {
    return Error("committed_firmware " + committed_firmware.to_string() + " is newer than " +
                 "current_firmware " + current_firmware.to_string());
  }
  if (platform_info >> 8)
    return Error("platform_info: bits above 7 are reserved, found " + hex_number(platform_info));
  return {};
}

snp::CpuidInfo simulated_cpuid(Product product) {
  switch (product) {
    case Product::kMilan:
      return {0x19, 0x01, 0x01};
    case Product::kTurin:
      return {0x1a, 0x02, 0x01};
    case Product::kGenoa:
      return {0x19, 0x11, 0x01};
    case Product::kVenice:
      break;
  }
  return {0x1a, 0x50, 0x00};  // a Venice model (virtee/sev's ranges); validate() rejects Venice
}

tdx::Bytes48 TdxPlatformConfig::effective_mr_seam() const {
  return mr_seam ? *mr_seam : sha384(as_bytes("Cloister simulated TDX module"));
}

Status TdxPlatformConfig::validate() const {
  if (vulnerable && pce_svn == 0xffff)
    return Error("vulnerable: needs a newer TCB level above PCE SVN " + std::to_string(pce_svn) +
                 ", and 65535 is the highest");
  return {};
}

}  // namespace cloister::attestation::sim
