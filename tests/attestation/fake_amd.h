// A test-only certificate hierarchy shaped exactly like AMD's (RSA-4096 ARK -> ASK/ASVK,
// RSASSA-PSS SHA-384 salt 48, P-384 VCEK/VLEK with KDS extensions), for exercising what real
// vectors cannot: revoked intermediates, other chips, unsigned reports. Its RSA keys are
// generated at build time (CLOISTER_FAKE_AMD_KEYS_DIR), never committed.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cloister/attestation/snp/certs.h"
#include "cloister/attestation/snp/report.h"
#include "cloister/attestation/x509.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace cloister::testing {

using attestation::Certificate;
using attestation::Crl;
using attestation::snp::Product;
using attestation::snp::TcbParts;

struct FakeVek {
  Certificate cert;
  std::shared_ptr<EVP_PKEY> key;
};

struct VekSpec {
  TcbParts tcb{};
  Bytes hw_id{};         // VCEK
  std::string csp_id{};  // VLEK
  UnixTime not_before = 1600000000;
  UnixTime not_after = 2000000000;
  std::string issuer_cn{};     // defaults to the product's ASK/ASVK name
  std::string product_name{};  // defaults to the product name
};

class FakeAmd {
 public:
  // Loads the build-time keys; fails the calling test if they are missing.
  explicit FakeAmd(Product product);

  attestation::snp::AmdCa ca() const;
  const Certificate& ark() const { return ark_; }
  const Certificate& ask() const { return ask_; }
  const Certificate& asvk() const { return asvk_; }

  FakeVek vcek(const VekSpec& spec) const;
  FakeVek vlek(const VekSpec& spec) const;
  // A CRL signed by the ARK listing `revoked` serials (big-endian magnitudes).
  Crl crl(const std::vector<Bytes>& revoked, UnixTime this_update, UnixTime next_update) const;
  // A CRL signed by another key than the ARK.
  Crl crl_signed_by_ask(UnixTime this_update, UnixTime next_update) const;

 private:
  Product product_;
  std::shared_ptr<EVP_PKEY> ark_key_, ask_key_, asvk_key_;
  Certificate ark_, ask_, asvk_;
};

// A v3 report for `product` with the given TCB in every TCB field and chip ID, signed by `vek`.
Bytes make_signed_report(Product product, const FakeVek& vek, std::uint64_t tcb_raw,
                         ByteView chip_id, std::uint32_t signer_info = 0);

// Re-signs a report (after a test changed fields) with `vek`.
void sign_report(Bytes& report, const FakeVek& vek);

}  // namespace cloister::testing
