// Test helpers over the simulated AMD hierarchy (cloister::attestation_sim, in the tests' shared
// state directory) for exercising what real vectors cannot: revoked intermediates, other chips,
// unsigned reports, VLEKs, VEKs with a wrong TCB or an expired validity.
#pragma once

#include <string>
#include <vector>

#include "cloister/attestation/sim/amd.h"
#include "cloister/attestation/snp/report.h"

namespace cloister::testing {

using attestation::Certificate;
using attestation::Crl;
using attestation::snp::Product;
using attestation::snp::TcbParts;
using FakeVek = attestation::sim::CertifiedKey;

struct VekSpec {
  TcbParts tcb{};
  Bytes hw_id{};         // VCEK
  std::string csp_id{};  // VLEK
  UnixTime not_before = 1600000000;
  UnixTime not_after = 2000000000;
};

class FakeAmd {
 public:
  // The product's simulated hierarchy; fails the calling test if it cannot be opened.
  explicit FakeAmd(Product product);

  attestation::snp::AmdCa ca() const { return amd_.ca(); }
  const Certificate& ark() const { return amd_.ark().cert; }
  const Certificate& ask() const { return amd_.ask().cert; }
  const Certificate& asvk() const { return amd_.asvk().cert; }

  FakeVek vcek(const VekSpec& spec) const;
  FakeVek vlek(const VekSpec& spec) const;
  // A CRL signed by the ARK listing `revoked` serials (big-endian magnitudes).
  Crl crl(const std::vector<Bytes>& revoked, UnixTime this_update, UnixTime next_update) const;
  // A CRL naming the ARK as issuer but signed by the ASK.
  Crl crl_signed_by_ask(UnixTime this_update, UnixTime next_update) const;

 private:
  attestation::sim::SimulatedAmd amd_;
};

// A v3 report for `product` with the given TCB in every TCB field and chip ID, signed by `vek`.
Bytes make_signed_report(Product product, const FakeVek& vek, std::uint64_t tcb_raw,
                         ByteView chip_id, std::uint32_t signer_info = 0);

// Re-signs a report (after a test changed fields) with `vek`.
void sign_report(Bytes& report, const FakeVek& vek);

}  // namespace cloister::testing
