#include "cloister/attestation/sim/amd.h"

#include <openssl/obj_mac.h>

#include <ctime>
#include <future>

#include "cloister/attestation/simulated.h"
#include "cloister/attestation/snp/kds.h"
#include "cloister/common/hex.h"
#include "tdx/der.h"

namespace cloister::attestation::sim {
namespace {

namespace fs = std::filesystem;
namespace der = tdx::der;
using snp::Product;

// Every simulated CA is valid over one fixed window (AMD's ARKs, too, were issued once for
// decades), so evidence verifies at any time a test or a tenant picks inside it.
constexpr UnixTime kCaNotBefore = 1577836800;  // 2020-01-01
constexpr UnixTime kCaNotAfter = 2524608000;   // 2050-01-01
constexpr UnixTime kCrlValidity = 30 * 86400;
constexpr int kVekValidityYears = 7;

struct AmdSerials {
  std::uint64_t ark, ask, asvk;
};

// The serials AMD gave each product's CAs (research/snp.md §c.1).
AmdSerials serials_of(Product product) {
  switch (product) {
    case Product::kMilan:
      return {0x10000, 0x10001, 0x10101};
    case Product::kGenoa:
      return {0x20000, 0x20002, 0x20101};
    case Product::kTurin:
    case Product::kVenice:
      break;
  }
  return {0x30000, 0x30001, 0x30101};
}

UnixTime years_later(UnixTime t, int years) {
  const std::time_t time = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&time, &tm);
  tm.tm_year += years;
  return static_cast<UnixTime>(timegm(&tm));
}

Bytes spl(std::uint8_t value) {
  return der::encode_unsigned(der::kInteger, value);
}

Bytes ia5(const std::string& text) {
  return der::encode(der::kIa5String, as_bytes(text));
}

// The KDS extensions in the order KDS writes them (Milan/Genoa: .1 .2 .3.1 .3.2 .3.4-.3.7 .3.3
// .3.8 .4; Turin: .1 .2 .3.9 .3.1 .3.2 .3.3 .3.5-.3.7 .3.8 .4).
std::vector<std::pair<std::string, Bytes>> vek_extensions(const VekSpec& spec) {
  namespace oid = snp::oid;
  const bool vcek = spec.kind == snp::VekKind::kVcek;
  std::string product_name(snp::product_name(spec.product));
  if (vcek && spec.product == Product::kMilan) product_name = "Milan-B0";  // as KDS names it
  std::vector<std::pair<std::string, Bytes>> exts = {
      {oid::kStructVersion, der::encode_unsigned(der::kInteger, spec.tcb.fmc ? 1 : 0)},
      {oid::kProductName, ia5(product_name)}};
  if (spec.tcb.fmc) {
    exts.insert(exts.end(), {{oid::kFmcSpl, spl(*spec.tcb.fmc)},
                             {oid::kBlSpl, spl(spec.tcb.bl)},
                             {oid::kTeeSpl, spl(spec.tcb.tee)},
                             {oid::kSnpSpl, spl(spec.tcb.snp)},
                             {oid::kSpl5, spl(0)},
                             {oid::kSpl6, spl(0)},
                             {oid::kSpl7, spl(0)}});
  } else {
    exts.insert(exts.end(), {{oid::kBlSpl, spl(spec.tcb.bl)},
                             {oid::kTeeSpl, spl(spec.tcb.tee)},
                             {oid::kSpl4, spl(0)},
                             {oid::kSpl5, spl(0)},
                             {oid::kSpl6, spl(0)},
                             {oid::kSpl7, spl(0)},
                             {oid::kSnpSpl, spl(spec.tcb.snp)}});
  }
  exts.emplace_back(oid::kUcodeSpl, spl(spec.tcb.ucode));
  if (vcek) {
    exts.emplace_back(oid::kHwId, spec.hw_id);
  } else {
    exts.emplace_back(oid::kCspId, ia5(spec.csp_id));
  }
  return exts;
}

Result<CertifiedKey> issue_ca(const std::string& cn, std::uint64_t serial,
                              std::optional<int> path_length, const PrivateKey& key,
                              const CertifiedKey* issuer) {
  CertificateSpec spec;
  spec.subject = amd_name(cn);
  spec.serial = serial;
  spec.not_before = kCaNotBefore;
  spec.not_after = kCaNotAfter;
  spec.ca = true;
  spec.path_length = path_length;
  const Certificate* issuer_cert = issuer ? &issuer->cert : nullptr;
  const PrivateKey& signer = issuer ? issuer->key : key;
  CLOISTER_TRY(Certificate cert, issue_certificate(spec, key.public_key(), issuer_cert, signer,
                                                   SignatureScheme::kRsaPssSha384));
  return CertifiedKey{std::move(cert), key};
}

// Generates the product's ARK, ASK, ASVK and chip ID into `dir`.
Status generate_hierarchy(Product product, const fs::path& dir) {
  // The three RSA-4096 keys take seconds each: generate them side by side.
  std::vector<std::future<Result<PrivateKey>>> keys;
  for (int i = 0; i < 3; ++i)
    keys.push_back(std::async(std::launch::async, [] { return PrivateKey::generate_rsa(4096); }));
  CLOISTER_TRY(PrivateKey ark_key, keys[0].get());
  CLOISTER_TRY(PrivateKey ask_key, keys[1].get());
  CLOISTER_TRY(PrivateKey asvk_key, keys[2].get());
  const AmdSerials serials = serials_of(product);
  CLOISTER_TRY(CertifiedKey ark,
               issue_ca(snp::ark_cn(product), serials.ark, std::nullopt, ark_key, nullptr));
  CLOISTER_TRY(CertifiedKey ask,
               issue_ca(snp::ica_cn(product, snp::VekKind::kVcek), serials.ask, 0, ask_key, &ark));
  CLOISTER_TRY(CertifiedKey asvk, issue_ca(snp::ica_cn(product, snp::VekKind::kVlek), serials.asvk,
                                           0, asvk_key, &ark));
  CLOISTER_CHECK_OK(StateDir::write_key(dir, "ark", ark));
  CLOISTER_CHECK_OK(StateDir::write_key(dir, "ask", ask));
  CLOISTER_CHECK_OK(StateDir::write_key(dir, "asvk", asvk));
  Bytes chip_id = random_bytes(64);
  if (snp::uses_fmc_tcb_layout(product)) std::fill(chip_id.begin() + 8, chip_id.end(), 0);
  return StateDir::write_hex(dir, "chip_id", chip_id, false);
}

}  // namespace

X509Name amd_name(const std::string& cn) {
  return {{"OU", kSimulatedOrganizationalUnit}, {"C", "US"}, {"L", "Santa Clara"}, {"ST", "CA"},
          {"O", "Advanced Micro Devices"},      {"CN", cn}};
}

Result<CertifiedKey> issue_vek(const VekSpec& spec, const CertifiedKey& issuer) {
  CLOISTER_TRY(PrivateKey key, PrivateKey::generate_ec(NID_secp384r1));
  CertificateSpec cert;
  cert.subject = amd_name(snp::vek_cn(spec.kind));
  cert.serial = 0;  // AMD issues every VCEK and VLEK with serial 0
  cert.not_before = spec.not_before;
  cert.not_after = spec.not_after;
  cert.extensions = vek_extensions(spec);
  CLOISTER_TRY(Certificate issued, issue_certificate(cert, key.public_key(), &issuer.cert,
                                                     issuer.key, SignatureScheme::kRsaPssSha384));
  return CertifiedKey{std::move(issued), std::move(key)};
}

SimulatedAmd::SimulatedAmd(StateDir state, Product product, CertifiedKey ark, CertifiedKey ask,
                           CertifiedKey asvk, Bytes chip_id)
    : state_(std::move(state)),
      product_(product),
      ark_(std::move(ark)),
      ask_(std::move(ask)),
      asvk_(std::move(asvk)),
      chip_id_(std::move(chip_id)) {}

Result<SimulatedAmd> SimulatedAmd::open(const StateDir& state, Product product) {
  if (product == Product::kVenice)
    return Error("simulated AMD hierarchy: Venice has no published hierarchy to simulate");
  CLOISTER_TRY(StateDir::Lock lock, state.lock());
  CLOISTER_TRY(
      fs::path dir,
      state.ensure_directory(lock, fs::path("amd") / snp::product_name(product),
                             [&](const fs::path& d) { return generate_hierarchy(product, d); }));
  CLOISTER_TRY(CertifiedKey ark, StateDir::read_key(dir, "ark"));
  CLOISTER_TRY(CertifiedKey ask, StateDir::read_key(dir, "ask"));
  CLOISTER_TRY(CertifiedKey asvk, StateDir::read_key(dir, "asvk"));
  CLOISTER_TRY(Bytes chip_id, StateDir::read_hex(dir, "chip_id", 64, false));
  return SimulatedAmd(state, product, std::move(ark), std::move(ask), std::move(asvk),
                      std::move(chip_id));
}

snp::AmdCa SimulatedAmd::ca() const {
  return {product_, ark_.cert, ask_.cert, asvk_.cert};
}

Result<CertifiedKey> SimulatedAmd::vcek(ByteView chip_id, const snp::TcbParts& tcb) const {
  CLOISTER_TRY(Bytes hw_id, snp::kds_hw_id(product_, chip_id));
  CLOISTER_TRY(snp::TcbVersion version, snp::TcbVersion::from_parts(product_, tcb));
  const fs::path relative = fs::path("amd") / snp::product_name(product_) / "vcek" /
                            (to_hex(hw_id) + "-" + version.to_hex());
  CLOISTER_TRY(StateDir::Lock lock, state_.lock());
  CLOISTER_TRY(fs::path dir,
               state_.ensure_directory(lock, relative, [&](const fs::path& d) -> Status {
                 const UnixTime now = unix_now();
                 VekSpec spec{snp::VekKind::kVcek,
                              product_,
                              tcb,
                              hw_id,
                              {},
                              now,
                              years_later(now, kVekValidityYears)};
                 CLOISTER_TRY(CertifiedKey vcek, issue_vek(spec, ask_));
                 return StateDir::write_key(d, "vcek", vcek);
               }));
  return StateDir::read_key(dir, "vcek");
}

Result<Crl> SimulatedAmd::crl(UnixTime this_update) const {
  return issue_crl({{}, this_update, this_update + kCrlValidity, 1}, ark_.cert, ark_.key,
                   SignatureScheme::kRsaPssSha384);
}

}  // namespace cloister::attestation::sim
