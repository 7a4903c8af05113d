#include "cloister/attestation/snp/kds.h"

#include "cloister/common/file.h"
#include "cloister/common/hex.h"

namespace cloister::attestation::snp {
namespace {

std::string kind_path(VekKind kind) {
  return kind == VekKind::kVcek ? "vcek" : "vlek";
}

std::filesystem::path product_dir(const std::filesystem::path& cache, Product product,
                                  VekKind kind) {
  return cache / kind_path(kind) / "v1" / std::string(product_name(product));
}

}  // namespace

Result<Bytes> kds_hw_id(Product product, ByteView chip_id) {
  if (chip_id.size() != 64)
    return Error("CHIP_ID must be 64 bytes, found " + std::to_string(chip_id.size()));
  if (is_all_zero(chip_id)) {
    return Error(
        "CHIP_ID is all zero (masked by the host), so KDS cannot be asked for this chip's VCEK; "
        "supply the VCEK with the evidence");
  }
  if (uses_fmc_tcb_layout(product)) {
    if (!is_all_zero(chip_id.subspan(8)))
      return Error(std::string(product_name(product)) +
                   " CHIP_ID must have only its first 8 bytes set, found bytes beyond");
    return Bytes(chip_id.begin(), chip_id.begin() + 8);
  }
  return Bytes(chip_id.begin(), chip_id.end());
}

Result<std::string> kds_vcek_url(std::string_view base_url, Product product, ByteView chip_id,
                                 const TcbParts& tcb) {
  CLOISTER_TRY(Bytes hw_id, kds_hw_id(product, chip_id));
  std::string url = std::string(base_url) + "/vcek/v1/" + std::string(product_name(product)) + "/" +
                    to_hex(hw_id) + "?";
  if (uses_fmc_tcb_layout(product)) url += "fmcSPL=" + std::to_string(tcb.fmc.value_or(0)) + "&";
  url += "blSPL=" + std::to_string(tcb.bl) + "&teeSPL=" + std::to_string(tcb.tee) +
         "&snpSPL=" + std::to_string(tcb.snp) + "&ucodeSPL=" + std::to_string(tcb.ucode);
  return url;
}

std::string kds_cert_chain_url(std::string_view base_url, Product product, VekKind kind) {
  return std::string(base_url) + "/" + kind_path(kind) + "/v1/" +
         std::string(product_name(product)) + "/cert_chain";
}

std::string kds_crl_url(std::string_view base_url, Product product, VekKind kind) {
  return std::string(base_url) + "/" + kind_path(kind) + "/v1/" +
         std::string(product_name(product)) + "/crl";
}

KdsClient::KdsClient(KdsOptions options)
    : options_(std::move(options)), fetches_(std::make_unique<FetchGroup>(options_.http)) {}

Result<Bytes> KdsClient::fetch(const std::string& url) {
  const RetryPolicy policy{options_.max_attempts, options_.max_retry_wait_seconds, "KDS",
                           "KDS has no such certificate", options_.deadline_seconds};
  CLOISTER_TRY(HttpResponse response, fetches_->get(url, policy));
  return std::move(response.body);
}

Result<std::optional<Sourced<Certificate>>> KdsClient::vcek(Product product, ByteView chip_id,
                                                            const TcbVersion& reported_tcb) {
  CLOISTER_TRY(Bytes hw_id, kds_hw_id(product, chip_id));
  std::optional<std::filesystem::path> path;
  if (options_.cache_dir) {
    path = product_dir(*options_.cache_dir, product, VekKind::kVcek) / to_hex(hw_id) /
           (reported_tcb.to_hex() + ".der");
    CLOISTER_TRY(const bool hit, cache_file_exists(*path));
    if (hit) {
      CLOISTER_TRY(Bytes der, read_file(*path, kCertificateFileLimit));
      auto cert = Certificate::from_der(der);
      if (!cert) return cert.error().with_context("cached VCEK " + path->string());
      return std::optional<Sourced<Certificate>>(
          Sourced<Certificate>{std::move(cert).value(), "cache " + path->string()});
    }
  }
  if (!options_.online) return std::optional<Sourced<Certificate>>();
  CLOISTER_TRY(std::string url,
               kds_vcek_url(options_.base_url, product, chip_id, reported_tcb.parts(product)));
  CLOISTER_TRY(Bytes der, fetch(url));
  auto cert = Certificate::from_der(der);
  if (!cert) return cert.error().with_context("VCEK from " + url);
  if (path) CLOISTER_CHECK_OK(write_cache_file(*path, der));
  return std::optional<Sourced<Certificate>>(
      Sourced<Certificate>{std::move(cert).value(), "fetched " + url});
}

Result<std::optional<Sourced<std::vector<Certificate>>>> KdsClient::cert_chain(Product product,
                                                                               VekKind kind) {
  using Out = std::optional<Sourced<std::vector<Certificate>>>;
  auto check = [](std::vector<Certificate> certs, const std::string& where) -> Result<Out> {
    if (certs.size() != 2) {
      return Error(where + ": expected 2 certificates (intermediate, ARK), found " +
                   std::to_string(certs.size()));
    }
    return Out(Sourced<std::vector<Certificate>>{std::move(certs), where});
  };
  std::optional<std::filesystem::path> path;
  if (options_.cache_dir) {
    path = product_dir(*options_.cache_dir, product, kind) / "cert_chain.pem";
    CLOISTER_TRY(const bool hit, cache_file_exists(*path));
    if (hit) {
      CLOISTER_TRY(Bytes pem, read_file(*path, kCertificateFileLimit));
      auto certs = parse_certificates(pem);
      if (!certs) return certs.error().with_context("cached " + path->string());
      return check(std::move(certs).value(), "cache " + path->string());
    }
  }
  if (!options_.online) return Out();
  std::string url = kds_cert_chain_url(options_.base_url, product, kind);
  CLOISTER_TRY(Bytes pem, fetch(url));
  auto certs = parse_certificates(pem);
  if (!certs) return certs.error().with_context(url);
  CLOISTER_TRY(Out out, check(std::move(certs).value(), "fetched " + url));
  if (path) CLOISTER_CHECK_OK(write_cache_file(*path, pem));
  return out;
}

Result<std::optional<Sourced<Crl>>> KdsClient::crl(Product product, VekKind kind, UnixTime now) {
  using Out = std::optional<Sourced<Crl>>;
  std::optional<std::filesystem::path> path;
  std::optional<Sourced<Crl>> cached;
  if (options_.cache_dir) {
    path = product_dir(*options_.cache_dir, product, kind) / "crl.der";
    CLOISTER_TRY(const bool hit, cache_file_exists(*path));
    if (hit) {
      CLOISTER_TRY(Bytes der, read_file(*path, kCrlFileLimit));
      auto crl = Crl::parse(der);
      if (!crl) return crl.error().with_context("cached CRL " + path->string());
      cached = Sourced<Crl>{std::move(crl).value(), "cache " + path->string()};
      auto next = cached->value.next_update();
      bool fresh = next && now < *next;
      if (fresh || !options_.online) return Out(std::move(cached));
    }
  }
  if (!options_.online) return Out();
  std::string url = kds_crl_url(options_.base_url, product, kind);
  CLOISTER_TRY(Bytes der, fetch(url));
  auto crl = Crl::parse(der);
  if (!crl) return crl.error().with_context("CRL from " + url);
  if (path) CLOISTER_CHECK_OK(write_cache_file(*path, der));
  return Out(Sourced<Crl>{std::move(crl).value(), "fetched " + url});
}

}  // namespace cloister::attestation::snp
