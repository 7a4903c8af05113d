// The simulated TDX module and TD Quoting Enclave of one host: TDG.MR.REPORT (TDREPORT_STRUCT
// for a TD's state and REPORTDATA), TDG.MR.RTMR.EXTEND, and quote generation (the QE checks a
// TDREPORT's MAC and signs a quote v4 with its attestation key, certified by a QE report the
// PCK key signs; certification data type 6 around the PEM PCK chain, type 5).
//
// Where it differs from hardware: the CPU MACs a TDREPORT with a key only the TDX module and
// the QE's EVERIFYREPORT2 can use; the simulator uses HMAC-SHA-256 under a per-host key from the
// state directory over REPORTMACSTRUCT bytes 0x00-0xDF (everything but the MAC). Either way only
// the same host can check the MAC; a relying party never sees it.
#pragma once

#include <filesystem>
#include <string>

#include "cloister/attestation/sim/config.h"
#include "cloister/attestation/sim/intel.h"
#include "cloister/attestation/tdx/tdreport.h"

namespace cloister::attestation::sim {

// TDG.MR.RTMR.EXTEND: RTMR[index] = SHA-384(RTMR[index] || digest). Fails for an index above 3
// or a digest that is not 48 bytes.
Status rtmr_extend(tdx::TdInfo& td, unsigned index, ByteView digest);

class SimulatedTdx {
 public:
  // The host's Intel hierarchy, the PCK for `config`'s TCB, the QE report, and the collateral
  // for `config` (valid for 30 days from now), written to collateral_path().
  static Result<SimulatedTdx> open(const StateDir& state, TdxPlatformConfig config);

  const TdxPlatformConfig& config() const { return config_; }
  const SimulatedIntel& intel() const { return intel_; }
  const CertifiedKey& pck() const { return pck_; }
  const tdx::QeReport& qe_report() const { return qe_report_; }
  // The collateral bundle (SimulatedIntel::collateral_bundle()) and where it was written:
  // <state>/intel/collateral/<FMSPC>-<configuration digest>.json.
  const std::string& collateral() const { return collateral_; }
  const std::filesystem::path& collateral_path() const { return collateral_path_; }

  // TDG.MR.REPORT: the TDREPORT_STRUCT of `td` with `report_data`: REPORTTYPE 0x81 version 0,
  // the platform's CPUSVN, TEE_TCB_INFO (TEE_TCB_SVN, MRSEAM, MRSIGNERSEAM, SEAM attributes
  // zero; VALID marks those fields), the hashes of TEE_TCB_INFO and TDINFO, and the MAC.
  std::array<std::uint8_t, tdx::kTdReportStructSize> report(
      const tdx::TdInfo& td, const std::array<std::uint8_t, 64>& report_data) const;

  // The QE: a quote v4 (TD report body 1.0) for `tdreport` (a TDREPORT_STRUCT from a guest),
  // after checking that it parses, that its MAC is this host's and that its hashes match
  // TEE_TCB_INFO and TDINFO. The header carries Intel's QE vendor ID and, in user data, a
  // platform identifier (the first 16 bytes of SHA-256 of the PPID).
  Result<Bytes> quote(ByteView tdreport) const;

 private:
  SimulatedTdx(TdxPlatformConfig config, SimulatedIntel intel, CertifiedKey pck);

  TdxPlatformConfig config_;
  SimulatedIntel intel_;
  CertifiedKey pck_;
  std::array<std::uint8_t, 64> attestation_key_{};  // raw x||y
  tdx::QeReport qe_report_;
  std::array<std::uint8_t, 64> qe_report_signature_{};
  std::string pck_chain_pem_;
  std::string collateral_;
  std::filesystem::path collateral_path_;
};

// The QE auth data the simulated QE binds into its QE report: 32 bytes 00 01 … 1f, as Intel's
// QE writes it.
const Bytes& simulated_qe_auth_data();

}  // namespace cloister::attestation::sim
