// The simulated Intel DCAP hierarchy of one host, kept in a StateDir: Root CA (P-256,
// self-signed) -> PCK Platform CA -> PCK certificates with Intel's SGX extension, and Root CA ->
// TCB Signing, which signs the collateral (TCB Info v3 for TDX, the TD_QE Identity) over the
// exact JSON text as Intel's PCS does (research/tdx.md §b). Names are Intel's with the OU
// kSimulatedOrganizationalUnit added.
#pragma once

#include <array>
#include <nlohmann/json.hpp>
#include <string>

#include "cloister/attestation/sim/config.h"
#include "cloister/attestation/sim/state_dir.h"
#include "cloister/attestation/sim/x509_builder.h"
#include "cloister/attestation/tdx/pck.h"

namespace cloister::attestation::sim {

// CN, the simulated OU, then Intel's O=Intel Corporation, L=Santa Clara, ST=CA, C=US.
X509Name intel_name(const std::string& cn);

// What a PCK certificate certifies: the members of the SGX extension
// (OID 1.2.840.113741.1.13.1) of a PCK Platform CA leaf.
struct PckSpec {
  std::array<std::uint8_t, 16> ppid{};
  std::array<std::uint8_t, 16> cpu_svn{};  // also the 16 SGX TCB component SVNs
  std::uint16_t pce_svn = 0;
  std::array<std::uint8_t, 2> pce_id{};
  std::array<std::uint8_t, 6> fmspc{};
  tdx::SgxType sgx_type = tdx::SgxType::kScalable;
  std::array<std::uint8_t, 16> platform_instance_id{};
  tdx::PckConfiguration configuration{true, false, true};  // dynamic, cached keys, SMT
  std::uint64_t serial = 1;
  UnixTime not_before = 0;
  UnixTime not_after = 0;
};

// A fresh P-256 key certified by the PCK Platform CA `issuer` (CN "Intel SGX PCK Certificate").
Result<CertifiedKey> issue_pck(const PckSpec& spec, const CertifiedKey& issuer);

class SimulatedIntel {
 public:
  // The hierarchy in <state>/intel/, generated on first use with the host's PPID and platform
  // instance ID, the Quoting Enclave's attestation key and the TDX module's report MAC key.
  static Result<SimulatedIntel> open(const StateDir& state);

  const CertifiedKey& root() const { return root_; }
  const CertifiedKey& platform_ca() const { return platform_ca_; }
  const CertifiedKey& tcb_signing() const { return tcb_signing_; }
  const std::array<std::uint8_t, 16>& ppid() const { return ppid_; }
  const std::array<std::uint8_t, 16>& platform_instance_id() const { return instance_id_; }
  const PrivateKey& qe_attestation_key() const { return qe_attestation_key_; }
  // The 32-byte key the simulated TDX module MACs TDREPORTs with (secret; never leaves the host).
  const Bytes& report_mac_key() const { return report_mac_key_; }

  // The PCK certificate of this host at a TCB, issued (valid for 7 years from now) on first
  // request and kept in <state>/intel/pck/<FMSPC>-<CPUSVN>-<PCESVN>/.
  Result<CertifiedKey> pck(const std::array<std::uint8_t, 6>& fmspc,
                           const std::array<std::uint8_t, 16>& cpu_svn,
                           std::uint16_t pce_svn) const;

  // CRLs as PCS serves them: the Root CA's and the PCK Platform CA's.
  Result<Crl> root_crl(const CrlSpec& spec) const;
  Result<Crl> pck_crl(const CrlSpec& spec) const;

  // The collateral bundle verify-report --collateral reads (tdx/collateral.h add_collateral():
  // the keys of Phala's dcap-qvl format): `tcb_info` and `qe_identity` signed by the TCB
  // Signing key over their exact compact JSON text, both issuer chains, and both CRLs (nothing
  // revoked) valid over [issue_date, next_update).
  Result<std::string> collateral_bundle(const nlohmann::json& tcb_info,
                                        const nlohmann::json& qe_identity, UnixTime issue_date,
                                        UnixTime next_update) const;

  // An ECDSA P-256/SHA-256 signature by the TCB Signing key as raw r||s hex, as Intel signs
  // TCB Info and QE Identity bodies.
  Result<std::string> sign_collateral(std::string_view body) const;

  const StateDir& state() const { return state_; }

 private:
  SimulatedIntel(StateDir state, CertifiedKey root, CertifiedKey platform_ca,
                 CertifiedKey tcb_signing, PrivateKey qe_attestation_key);

  StateDir state_;
  CertifiedKey root_, platform_ca_, tcb_signing_;
  std::array<std::uint8_t, 16> ppid_{}, instance_id_{};
  PrivateKey qe_attestation_key_;
  Bytes report_mac_key_;
};

// The simulated TD Quoting Enclave's identity (SGX REPORT fields of its QE report).
struct QeIdentityValues {
  std::array<std::uint8_t, 32> mr_signer;
  std::array<std::uint8_t, 32> mr_enclave;
  std::array<std::uint8_t, 16> attributes;  // INIT, MODE64BIT, PROVISIONKEY; XFRM x87|SSE|AVX…
  std::uint16_t isv_prod_id = 2;            // TD_QE
};
const QeIdentityValues& simulated_qe();

// The TCB Info (id "TDX", version 3) the simulated Intel publishes for `config`'s platform:
// tdxModule and a module identity TDX_<TEE_TCB_SVN[1]> for MRSIGNERSEAM with one UpToDate level
// at TEE_TCB_SVN[0], and TCB levels whose SGX components, PCE SVN and TDX components are the
// platform's: UpToDate, or, when `config.vulnerable`, OutOfDate below an UpToDate level with a
// PCE SVN one higher.
nlohmann::json tdx_tcb_info_json(const TdxPlatformConfig& config, UnixTime issue_date,
                                 UnixTime next_update);
// The TD_QE Identity (version 2) matching simulated_qe(), UpToDate from `qe_svn`.
nlohmann::json td_qe_identity_json(std::uint16_t qe_svn, UnixTime issue_date, UnixTime next_update);

}  // namespace cloister::attestation::sim
