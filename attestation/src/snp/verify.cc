#include "cloister/attestation/snp/verify.h"

#include <algorithm>

#include "cloister/common/hex.h"

namespace cloister::attestation::snp {
namespace {

std::string hex_byte(unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", v);
  return buf;
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

// A supplied certificate with its AMD identity, worked out once.
struct Supplied {
  const Sourced<Certificate>* cert;
  AmdCertIdentity id;
};

struct SuppliedCerts {
  std::vector<Supplied> arks, asks, asvks, vceks, vleks;
  // AMD CA certificates whose product differs from the report's (cross-product chains).
  std::vector<std::string> foreign(Product product) const {
    std::vector<std::string> out;
    for (const auto* list : {&arks, &asks, &asvks}) {
      for (const auto& s : *list)
        if (s.id.product && *s.id.product != product) out.push_back(s.cert->value.subject_cn());
    }
    return out;
  }
  static const Sourced<Certificate>* find(const std::vector<Supplied>& list, Product product) {
    for (const auto& s : list)
      if (s.id.product == product) return s.cert;
    return nullptr;
  }
};

SuppliedCerts sort_certs(const std::vector<Sourced<Certificate>>& certs) {
  SuppliedCerts out;
  for (const auto& c : certs) {
    Supplied s{&c, identify_amd_cert(c.value)};
    switch (s.id.role) {
      case AmdCertRole::kArk:
        out.arks.push_back(s);
        break;
      case AmdCertRole::kAsk:
        out.asks.push_back(s);
        break;
      case AmdCertRole::kAsvk:
        out.asvks.push_back(s);
        break;
      case AmdCertRole::kVcek:
        out.vceks.push_back(s);
        break;
      case AmdCertRole::kVlek:
        out.vleks.push_back(s);
        break;
      case AmdCertRole::kOther:
        break;
    }
  }
  return out;
}

// Of several supplied VEKs, the one whose hwID matches the report's CHIP_ID.
const Supplied* pick_vek(const std::vector<Supplied>& candidates, const SnpReport& report) {
  for (const auto& c : candidates) {
    auto hw_id = c.cert->value.extension_value(oid::kHwId);
    if (hw_id && hw_id->size() <= report.chip_id.size() &&
        std::equal(hw_id->begin(), hw_id->end(), report.chip_id.begin()))
      return &c;
  }
  return candidates.empty() ? nullptr : &candidates.front();
}

// Decides the product: CPUID fields (v3+), else --product, else the VEK's productName; and
// rejects a VEK or --product naming another product. Appends "snp.product".
std::optional<Product> determine_product(const SnpReport& r, const SnpVerifyOptions& options,
                                         const Supplied* vek, Checks& checks) {
  std::optional<Product> product;
  std::string how;
  if (r.cpuid) {
    std::string cpuid = "CPUID family " + hex_byte(r.cpuid->family) + " model " +
                        hex_byte(r.cpuid->model) + " stepping " + hex_byte(r.cpuid->stepping);
    if (auto p = r.cpuid_product()) {
      if (options.product && *options.product != *p) {
        checks.fail("snp.product", std::string(product_name(*options.product)) + " (--product)",
                    std::string(product_name(*p)) + " (" + cpuid + ")",
                    "the report's CPUID fields name a different product than --product");
        return std::nullopt;
      }
      product = *p;
      how = cpuid;
    } else if (options.product) {
      product = *options.product;
      how = "--product; " + cpuid + " is not a known SEV-SNP product";
    } else {
      checks.fail("snp.product", "a known SEV-SNP product", cpuid,
                  "unrecognised CPUID family/model; pass --product to name the product");
      return std::nullopt;
    }
  } else if (options.product) {
    product = *options.product;
    how = "--product (report v" + std::to_string(r.version) + " has no CPUID fields)";
  } else if (vek != nullptr && vek->id.product) {
    product = *vek->id.product;
    how = "VEK productName (report v" + std::to_string(r.version) + " has no CPUID fields)";
  } else {
    checks.fail("snp.product", "the product the report came from", "unknown",
                "a v" + std::to_string(r.version) +
                    " report carries no CPUID fields; pass --product or supply the VCEK");
    return std::nullopt;
  }
  if (vek != nullptr) {
    auto vp = vek->id.product;
    if (!vp) {
      checks.fail("snp.product", std::string(product_name(*product)), "unreadable productName",
                  "the VEK's productName extension does not name an AMD product");
      return std::nullopt;
    }
    if (*vp != *product) {
      checks.fail("snp.product", std::string(product_name(*product)) + " (" + how + ")",
                  std::string(product_name(*vp)) + " (VEK productName)",
                  "the VEK was issued for another product (cross-product chain)");
      return std::nullopt;
    }
  }
  checks.pass("snp.product", "a known SEV-SNP product", std::string(product_name(*product)),
              "from " + how);
  return product;
}

}  // namespace

Bytes report_signature_der(const SnpReport& report) {
  return ecdsa_signature_der(report.signature_r, report.signature_s, ByteOrder::kLittleEndian);
}

void check_revocation(const std::vector<Sourced<Crl>>& crls, const Certificate& anchor,
                      const Certificate& ica, const Certificate& vek, Product product,
                      const SnpVerifyOptions& options, Checks& out) {
  const std::string issuer = ark_cn(product);
  std::vector<const Sourced<Crl>*> own;
  std::vector<std::string> others;
  for (const auto& c : crls) {
    if (c.value.issuer_cn() == issuer) {
      own.push_back(&c);
    } else {
      others.push_back(c.value.issuer_cn());
    }
  }
  if (own.empty()) {
    std::string why = others.empty() ? "no CRL supplied, cached or fetched"
                                     : "only CRLs issued by " + join(others, ", ") + " supplied";
    if (!others.empty() || options.require_crl) {
      out.fail("snp.crl", "a CRL issued by " + issuer, "none", why);
      out.fail("snp.revocation", "intermediate and VEK not revoked", "unknown",
               "revocation cannot be checked without " + issuer + "'s CRL");
    } else {
      out.skip("snp.crl", why + "; the policy does not require one");
      out.skip("snp.revocation", "no CRL; revocation not checked");
    }
    return;
  }
  auto describe = [](const Sourced<Crl>& s) {
    const Crl& c = s.value;
    return "CRL #" + (c.crl_number() ? std::to_string(*c.crl_number()) : "?") + " from " +
           s.source + ", " + format_rfc3339(c.this_update()) + ".." +
           (c.next_update() ? format_rfc3339(*c.next_update()) : "(no nextUpdate)");
  };
  std::string expected = "signed by " + issuer + ", current at " + format_rfc3339(options.time);
  // Every CRL naming the ARK as issuer must be the ARK's; one that is not fails the check.
  for (const Sourced<Crl>* s : own) {
    const Crl& c = s->value;
    std::string problem;
    if (auto ok = c.verify_signed_by(anchor.public_key()); !ok) {
      problem = ok.error().message() + " (" + issuer + ")";
    } else if (auto pss = c.rsa_pss_params(); !pss || pss->hash != "SHA384" ||
                                              pss->mgf1_hash != "SHA384" ||
                                              pss->salt_length != 48) {
      problem = "CRL signature algorithm is " + c.signature_algorithm() +
                ", expected RSASSA-PSS SHA-384 (salt 48)";
    } else if (options.time < c.this_update()) {
      problem =
          "CRL thisUpdate " + format_rfc3339(c.this_update()) + " is after the verification time";
    }
    if (!problem.empty()) {
      out.fail("snp.crl", expected, describe(*s), problem);
      out.fail("snp.revocation", "intermediate and VEK not revoked", "unknown",
               "the CRL cannot be trusted");
      return;
    }
  }
  // Currency is judged by the newest CRL; revocation by all of them, so an older CRL (or one
  // for the other VEK kind) offered beside the current one hides nothing.
  const Sourced<Crl>* newest = own.front();
  std::vector<std::string> found;
  for (const Sourced<Crl>* s : own) {
    found.push_back(describe(*s));
    auto next = s->value.next_update();
    auto best = newest->value.next_update();
    if (next && (!best || *next > *best)) newest = s;
  }
  const auto next = newest->value.next_update();
  bool stale = !next || options.time >= *next;
  if (stale && !options.allow_stale_crl) {
    out.fail("snp.crl", expected, join(found, "; "),
             "CRL is stale: nextUpdate " + (next ? format_rfc3339(*next) : std::string("absent")) +
                 " is not after the verification time " + format_rfc3339(options.time));
  } else {
    out.pass("snp.crl", expected, join(found, "; "),
             stale ? "CRL is stale, accepted because the policy allows stale CRLs" : "");
  }
  std::vector<std::string> revoked;
  std::size_t listed = 0;
  for (const Sourced<Crl>* s : own) listed += s->value.revoked().size();
  for (const Certificate* cert : {&ica, &vek}) {
    for (const Sourced<Crl>* s : own) {
      if (auto entry = s->value.find_revoked(cert->serial())) {
        revoked.push_back(cert->subject_cn() + " serial " + cert->serial_hex() + " revoked " +
                          format_rfc3339(entry->revocation_date));
        break;
      }
    }
  }
  std::string checked = ica.subject_cn() + " " + ica.serial_hex() + ", " + vek.subject_cn() + " " +
                        vek.serial_hex() + " against " + std::to_string(listed) +
                        " revoked serials" +
                        (own.size() > 1 ? " in " + std::to_string(own.size()) + " CRLs" : "");
  if (revoked.empty()) {
    out.pass("snp.revocation", "intermediate and VEK not revoked", checked);
  } else {
    out.fail("snp.revocation", "intermediate and VEK not revoked", join(revoked, "; "),
             "a certificate in the chain is revoked");
  }
}

SnpVerifier::SnpVerifier(SnpVerifierConfig config)
    : kds_(std::move(config.kds)),
      trusted_cas_(std::move(config.trusted_cas)),
      trusted_arks_(std::move(config.trusted_arks)) {}

std::optional<SnpVerifier::TrustedCerts> SnpVerifier::trusted_certs(
    Product product, VekKind kind, const Certificate* presented_ark,
    const Certificate* presented_ica) const {
  for (const auto& ark : trusted_arks_) {
    if (ark.subject_cn() != ark_cn(product)) continue;
    if ((presented_ark != nullptr && presented_ark->public_key().equals(ark.public_key())) ||
        (presented_ark == nullptr && presented_ica != nullptr &&
         presented_ica->verify_signed_by(ark.public_key())))
      return TrustedCerts{&ark, nullptr};
  }
  if (trusted_cas_.empty()) {
    const Certificate* ark = builtin_amd_ark(product);
    if (ark == nullptr) return std::nullopt;
    return TrustedCerts{ark, builtin_amd_ica(product, kind)};
  }
  for (const auto& ca : trusted_cas_)
    if (ca.product == product) return TrustedCerts{&ca.ark, &ca.ica(kind)};
  return std::nullopt;
}

std::shared_ptr<const SnpVerifier::ChainResult> SnpVerifier::chain_result(
    const Certificate& anchor, const Certificate& ark, const Certificate& ica,
    const Certificate& vek, Product product, VekKind kind) const {
  std::string key = to_hex(anchor.fingerprint()) + to_hex(ark.fingerprint()) +
                    to_hex(ica.fingerprint()) + to_hex(vek.fingerprint()) +
                    std::string(product_name(product)) + std::string(to_string(kind));
  {
    std::lock_guard lock(mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  }
  auto result = std::make_shared<ChainResult>();
  Checks checks;
  check_vek_chain(anchor, ark, ica, vek, product, kind, checks);
  result->checks = checks.all();
  if (auto ext = parse_vek_extensions(vek)) {
    result->extensions = std::move(ext).value();
  } else {
    result->extensions_error = ext.error().message();
  }
  result->vek_key = vek.public_key();
  constexpr std::size_t kMaxCached = 4096;
  std::lock_guard lock(mutex_);
  if (cache_.size() >= kMaxCached) cache_.clear();
  cache_.emplace(key, result);
  return result;
}

SnpVerification SnpVerifier::verify(const SnpEvidence& evidence,
                                    const SnpVerifyOptions& options) const {
  SnpVerification out;
  Checks& checks = out.checks;

  auto decoded = decode_snp_report(evidence.report);
  if (!decoded) {
    checks.fail("snp.report.format", std::to_string(kReportSize) + "-byte ATTESTATION_REPORT",
                std::to_string(evidence.report.size()) + " bytes", decoded.error().message());
    return out;
  }
  out.report = std::move(decoded).value();
  const SnpReport& r = *out.report;
  if (r.format_problems.empty()) {
    checks.pass("snp.report.format", "ATTESTATION_REPORT v2-v5 with reserved fields zero",
                "version " + std::to_string(r.version));
  } else {
    checks.fail("snp.report.format", "ATTESTATION_REPORT v2-v5 with reserved fields zero",
                "version " + std::to_string(r.version), join(r.format_problems, "; "));
  }

  const SignerInfo signer = r.signer();
  const SuppliedCerts supplied = sort_certs(evidence.certificates);
  std::optional<VekKind> kind;
  if (signer.signing_key == SigningKey::kVcek) kind = VekKind::kVcek;
  if (signer.signing_key == SigningKey::kVlek) kind = VekKind::kVlek;
  const Supplied* vek_supplied = nullptr;
  if (kind) vek_supplied = pick_vek(*kind == VekKind::kVcek ? supplied.vceks : supplied.vleks, r);

  out.product = determine_product(r, options, vek_supplied, checks);
  const std::optional<Product> product = out.product;

  if (product && kind == VekKind::kVcek) {
    if (auto url = kds_vcek_url(kKdsBaseUrl, *product, r.chip_id, r.reported_tcb.parts(*product)))
      out.vcek_url = *url;
  }

  // The VEK: supplied, else (VCEK only) cache or KDS.
  std::optional<Sourced<Certificate>> vek;
  std::string vek_expected =
      kind ? std::string(to_string(*kind)) + " named by SIGNER_INFO" : "a signing key";
  if (!kind) {
    checks.fail(
        "snp.vek", vek_expected, "SIGNING_KEY " + std::string(to_string(signer.signing_key)),
        signer.signing_key == SigningKey::kNone ? "the report is unsigned (SIGNING_KEY = none)"
                                                : "SIGNING_KEY names no endorsement key");
  } else if (vek_supplied != nullptr) {
    vek = *vek_supplied->cert;
  } else if (*kind == VekKind::kVlek) {
    checks.fail("snp.vek", vek_expected, "none",
                "no VLEK supplied; VLEKs cannot be fetched from KDS by a relying party, they must "
                "come with the evidence (extended report or --certs)");
  } else if (product && kds_) {
    auto found = kds_->vcek(*product, r.chip_id, r.reported_tcb);
    if (!found) {
      checks.fail("snp.vek", vek_expected, "none", found.error().message());
    } else if (*found) {
      vek = std::move(**found);
    } else {
      checks.fail("snp.vek", vek_expected, "none",
                  "no VCEK supplied or cached, and fetching is off (--online)" +
                      (out.vcek_url ? "; KDS serves it at " + *out.vcek_url : std::string()));
    }
  } else {
    checks.fail("snp.vek", vek_expected, "none",
                std::string("no VCEK supplied") +
                    (out.vcek_url ? "; KDS serves it at " + *out.vcek_url : std::string()));
  }
  if (vek) {
    out.vek = vek->value;
    out.vek_kind = kind;
    checks.pass("snp.vek", vek_expected,
                vek->value.subject_cn() + " (" + to_hex(vek->value.fingerprint()).substr(0, 16) +
                    "…) from " + vek->source);
  }

  // The chain to AMD's pinned root.
  std::shared_ptr<const ChainResult> chain;
  if (vek && product) {
    const auto& ica_list = *kind == VekKind::kVcek ? supplied.asks : supplied.asvks;
    const Sourced<Certificate>* supplied_ica = SuppliedCerts::find(ica_list, *product);
    const Sourced<Certificate>* supplied_ark = SuppliedCerts::find(supplied.arks, *product);
    const auto trusted =
        trusted_certs(*product, *kind, supplied_ark ? &supplied_ark->value : nullptr,
                      supplied_ica ? &supplied_ica->value : nullptr);
    auto foreign = supplied.foreign(*product);
    if (!foreign.empty()) {
      checks.fail("snp.chain.product",
                  "AMD certificates for " + std::string(product_name(*product)),
                  join(foreign, ", "),
                  "certificates of another product were supplied (cross-product chain)");
    }
    std::optional<Certificate> ica;
    std::optional<Certificate> kds_ark;
    if (!trusted) {
      checks.fail("snp.chain.ark", "AMD root for " + std::string(product_name(*product)), "none",
                  "no trusted ARK for " + std::string(product_name(*product)) +
                      " (AMD has published none this library pins)");
    } else if (supplied_ica) {
      ica = supplied_ica->value;
    } else {
      if (kds_) {
        auto fetched = kds_->cert_chain(*product, *kind);
        if (fetched && *fetched) {
          ica = (*fetched)->value[0];
          kds_ark = (*fetched)->value[1];
        }
      }
      if (!ica && trusted->ica) ica = *trusted->ica;
    }
    if (trusted && !ica) {
      checks.fail("snp.chain.ica", ica_cn(*product, *kind), "none",
                  "the evidence carries no intermediate certificate for the trusted " +
                      trusted->ark->subject_cn() + " (supply it with --certs)");
    } else if (trusted) {
      out.anchor = *trusted->ark;
      const Certificate& ark =
          supplied_ark ? supplied_ark->value : (kds_ark ? *kds_ark : *trusted->ark);
      chain = chain_result(*trusted->ark, ark, *ica, vek->value, *product, *kind);
      for (const auto& c : chain->checks) checks.add(c);
      check_chain_validity({&ark, &*ica, &vek->value}, options.time, checks);

      // The cached or KDS CRL for this chain's kind is consulted even when the evidence brings
      // one: the host chooses what the certificate table holds.
      std::vector<Sourced<Crl>> crls = evidence.crls;
      if (kds_) {
        auto fetched = kds_->crl(*product, *kind, options.time);
        if (!fetched) {
          checks.fail("snp.crl.fetch", "the CRL for " + ark_cn(*product), "none",
                      fetched.error().message());
        } else if (*fetched) {
          crls.push_back(std::move(**fetched));
        }
      }
      check_revocation(crls, *trusted->ark, *ica, vek->value, *product, options, checks);
    }
  } else if (vek) {
    checks.fail("snp.chain.ark", "AMD root for the report's product", "product unknown",
                "the certificate chain cannot be checked without the product");
  }

  // The signature.
  const std::string sig_expected = "ECDSA P-384/SHA-384 over bytes 0x000-0x29F";
  if (r.signature_algo != kSignatureAlgoEcdsaP384Sha384) {
    checks.fail("snp.signature", sig_expected, "SIGNATURE_ALGO " + std::to_string(r.signature_algo),
                "the report names an unknown signature algorithm");
  } else if (signer.mask_chip_key) {
    checks.fail("snp.signature", sig_expected, "MASK_CHIP_KEY set",
                "the firmware did not sign this report (MASK_CHIP_KEY)");
  } else if (!vek) {
    checks.fail("snp.signature", sig_expected, "no endorsement key",
                "the signature cannot be verified without the VCEK/VLEK");
  } else {
    const PublicKey key = chain ? *chain->vek_key : vek->value.public_key();
    auto ok = key.verify_ecdsa(HashAlgorithm::kSha384, r.signed_bytes(), report_signature_der(r));
    if (ok) {
      checks.pass("snp.signature", sig_expected, "verifies with " + vek->value.subject_cn());
    } else {
      checks.fail("snp.signature", sig_expected, "does not verify",
                  "report signature does not verify with " + vek->value.subject_cn() +
                      " (the report was altered, or signed by another chip or TCB)");
    }
  }

  // Binding between the VEK and the report.
  if (chain && product) {
    if (!chain->extensions) {
      checks.fail("snp.vek.extensions", "decodable AMD extensions", "invalid",
                  chain->extensions_error);
    } else {
      const VekExtensions& ext = *chain->extensions;
      out.vek_extensions = ext;
      TcbParts reported = r.reported_tcb.parts(*product);
      TcbParts certified = ext.tcb();
      std::string tcb_problem;
      if (uses_fmc_tcb_layout(*product) && !certified.fmc) {
        tcb_problem = "the VEK lacks the fmcSPL extension " + std::string(product_name(*product)) +
                      " VEKs carry";
      } else if (!uses_fmc_tcb_layout(*product) && certified.fmc) {
        tcb_problem = "the VEK carries fmcSPL, which " + std::string(product_name(*product)) +
                      " TCBs do not have";
      } else if (!(certified == reported)) {
        tcb_problem = "REPORTED_TCB differs from the TCB the VEK certifies";
      }
      if (tcb_problem.empty()) {
        checks.pass("snp.vek.tcb", "REPORTED_TCB " + reported.to_string(), certified.to_string());
      } else {
        checks.fail("snp.vek.tcb", "REPORTED_TCB " + reported.to_string(), certified.to_string(),
                    tcb_problem);
      }

      if (*kind == VekKind::kVcek) {
        if (ext.csp_id || !ext.hw_id) {
          checks.fail("snp.vek.identity", "VCEK with hwID and no cspID",
                      ext.csp_id ? "cspID " + *ext.csp_id : "no hwID",
                      "the VCEK's identity extensions are inconsistent");
        } else if (is_all_zero(r.chip_id)) {
          checks.skip("snp.vek.identity",
                      "CHIP_ID is all zero (masked by the host): the VCEK's hwID cannot be "
                      "compared; the signature still binds the report to this VCEK");
        } else {
          auto want = kds_hw_id(*product, r.chip_id);
          if (!want) {
            checks.fail("snp.vek.identity",
                        "CHIP_ID in " + std::string(product_name(*product)) + " form",
                        to_hex(r.chip_id), want.error().message());
          } else if (*want != *ext.hw_id) {
            checks.fail("snp.vek.identity", "hwID " + to_hex(*want), "hwID " + to_hex(*ext.hw_id),
                        "the VCEK belongs to another chip");
          } else {
            checks.pass("snp.vek.identity", "hwID == CHIP_ID", to_hex(*ext.hw_id));
          }
        }
      } else if (!ext.csp_id || ext.hw_id) {
        checks.fail("snp.vek.identity", "VLEK with cspID and no hwID",
                    ext.hw_id ? "hwID present" : "no cspID",
                    "the VLEK's identity extensions are inconsistent");
      } else {
        checks.pass("snp.vek.identity", "VLEK with cspID", "cspID " + *ext.csp_id);
      }
    }

    TcbParts current = r.current_tcb.parts(*product);
    TcbParts reported = r.reported_tcb.parts(*product);
    TcbParts committed = r.committed_tcb.parts(*product);
    std::vector<std::string> inconsistent;
    if (!current.at_least(reported)) inconsistent.push_back("REPORTED_TCB exceeds CURRENT_TCB");
    if (!current.at_least(committed)) inconsistent.push_back("COMMITTED_TCB exceeds CURRENT_TCB");
    std::string found = "reported " + reported.to_string() + "; committed " +
                        committed.to_string() + "; current " + current.to_string();
    if (inconsistent.empty()) {
      checks.pass("snp.tcb.consistency",
                  "REPORTED_TCB <= CURRENT_TCB, COMMITTED_TCB <= CURRENT_TCB", found);
    } else {
      checks.fail("snp.tcb.consistency",
                  "REPORTED_TCB <= CURRENT_TCB, COMMITTED_TCB <= CURRENT_TCB", found,
                  join(inconsistent, "; "));
    }
  }
  return out;
}

}  // namespace cloister::attestation::snp
