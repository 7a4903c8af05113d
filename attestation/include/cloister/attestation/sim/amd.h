// The simulated AMD hierarchy of one host and product, kept in a StateDir: ARK (RSA-4096,
// self-signed) -> ASK and ASVK (RSA-4096) -> VCEK (ECDSA P-384), every signature RSASSA-PSS
// SHA-384 with salt 48 as AMD signs, names shaped like AMD's but with the OU
// kSimulatedOrganizationalUnit, and VCEKs carrying AMD's KDS extensions (research/snp.md §c).
#pragma once

#include <string>

#include "cloister/attestation/sim/state_dir.h"
#include "cloister/attestation/sim/x509_builder.h"
#include "cloister/attestation/snp/certs.h"

namespace cloister::attestation::sim {

// AMD's subject attributes (C=US, L=Santa Clara, ST=CA, O=Advanced Micro Devices) with the
// simulated OU, and `cn`.
X509Name amd_name(const std::string& cn);

// What one VCEK or VLEK certifies; issue_vek() writes it as AMD's KDS does: serial 0, subject
// SEV-VCEK / SEV-VLEK, structVersion (1 when there is an FMC SPL, else 0), productName
// ("Milan-B0", "Genoa", "Turin"; "Milan" for VLEKs), the SPLs (spl_4..spl_7 = 0 without FMC,
// spl_5..spl_7 with it, in KDS's order), and hwID (VCEK: raw bytes) or cspID (VLEK).
struct VekSpec {
  snp::VekKind kind = snp::VekKind::kVcek;
  snp::Product product = snp::Product::kGenoa;
  snp::TcbParts tcb;
  Bytes hw_id;         // VCEK: 64 bytes (Turin: 8)
  std::string csp_id;  // VLEK: e.g. "CN=cc-us-east-2.amazonaws.com"
  UnixTime not_before = 0;
  UnixTime not_after = 0;
};

// A fresh P-384 key certified by `issuer` (the ASK for a VCEK, the ASVK for a VLEK).
Result<CertifiedKey> issue_vek(const VekSpec& spec, const CertifiedKey& issuer);

class SimulatedAmd {
 public:
  // The product's hierarchy in <state>/amd/<product>/, generated on first use (three RSA-4096
  // keys: seconds), with the product's simulated chip ID.
  static Result<SimulatedAmd> open(const StateDir& state, snp::Product product);

  snp::Product product() const { return product_; }
  const CertifiedKey& ark() const { return ark_; }
  const CertifiedKey& ask() const { return ask_; }
  const CertifiedKey& asvk() const { return asvk_; }
  // The hierarchy as SnpVerifierConfig::trusted_cas takes it.
  snp::AmdCa ca() const;
  // The simulated chip: 64 random bytes (Turin: 8 followed by 56 zero bytes).
  const Bytes& chip_id() const { return chip_id_; }

  // The VCEK of `chip_id` at `tcb`, issued (valid for 7 years from now, as AMD issues them) on
  // first request and kept in <state>/amd/<product>/vcek/<hwID>-<TCB_VERSION>/. `chip_id` is a
  // report's CHIP_ID (64 bytes); Turin VCEKs carry its first 8 bytes as hwID.
  Result<CertifiedKey> vcek(ByteView chip_id, const snp::TcbParts& tcb) const;

  // The CRL KDS serves for this product: signed by the ARK, nothing revoked, valid from
  // `this_update` for 30 days.
  Result<Crl> crl(UnixTime this_update) const;

 private:
  SimulatedAmd(StateDir state, snp::Product product, CertifiedKey ark, CertifiedKey ask,
               CertifiedKey asvk, Bytes chip_id);

  StateDir state_;
  snp::Product product_;
  CertifiedKey ark_, ask_, asvk_;
  Bytes chip_id_;
};

}  // namespace cloister::attestation::sim
