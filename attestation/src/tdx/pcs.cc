#include "cloister/attestation/tdx/pcs.h"

#include "cloister/common/file.h"
#include "cloister/common/hex.h"

namespace cloister::attestation::tdx {

std::string pcs_tcb_info_url(std::string_view base_url, const std::array<std::uint8_t, 6>& fmspc) {
  return std::string(base_url) + "/tdx/certification/v4/tcb?fmspc=" + to_hex(fmspc);
}

std::string pcs_qe_identity_url(std::string_view base_url) {
  return std::string(base_url) + "/tdx/certification/v4/qe/identity";
}

std::string pcs_pck_crl_url(std::string_view base_url, PckCaType ca) {
  return std::string(base_url) + "/sgx/certification/v4/pckcrl?ca=" + std::string(to_string(ca)) +
         "&encoding=der";
}

Result<std::string> url_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i] == '+' ? ' ' : text[i];
      continue;
    }
    if (i + 2 >= text.size())
      return Error("URL-encoded text ends inside an escape at position " + std::to_string(i));
    auto byte = hex_byte(text.substr(i + 1, 2));
    if (!byte)
      return Error("URL-encoded text has an invalid escape at position " + std::to_string(i));
    out += static_cast<char>(*byte);
    i += 2;
  }
  return out;
}

PcsClient::PcsClient(PcsOptions options)
    : options_(std::move(options)), fetches_(std::make_unique<FetchGroup>(options_.http)) {}

Result<HttpResponse> PcsClient::fetch(const std::string& url) {
  const RetryPolicy policy{options_.max_attempts, options_.max_retry_wait_seconds, "PCS",
                           "PCS has no such collateral", options_.deadline_seconds};
  return fetches_->get(url, policy);
}

Status PcsClient::signed_json(const std::string& url, const std::filesystem::path& relative,
                              const char* chain_header, UnixTime now, bool tcb_info,
                              TdxCollateral& out) {
  std::optional<std::filesystem::path> path, chain_path;
  const std::size_t before_tcb = out.tcb_infos.size(), before_qe = out.qe_identities.size();
  if (options_.cache_dir) {
    path = *options_.cache_dir / relative;
    chain_path =
        *options_.cache_dir / relative.parent_path() / (relative.stem().string() + ".chain.pem");
    CLOISTER_TRY(const bool hit, cache_file_exists(*path));
    if (hit) {
      TdxCollateral cached;
      CLOISTER_TRY(Bytes body, read_file(*path, kCollateralFileLimit));
      CLOISTER_CHECK_OK(add_collateral(body, "cache " + path->string(), cached));
      CLOISTER_TRY(const bool chain_hit, cache_file_exists(*chain_path));
      if (chain_hit) {
        CLOISTER_TRY(Bytes chain, read_file(*chain_path, kCollateralFileLimit));
        CLOISTER_CHECK_OK(add_collateral(chain, "cache " + chain_path->string(), cached));
      }
      if ((tcb_info ? cached.tcb_infos.size() : cached.qe_identities.size()) != 1) {
        return Error("cache " + path->string() + ": expected " +
                     (tcb_info ? "a TCB Info" : "a QE Identity") + " response");
      }
      const UnixTime next = tcb_info ? cached.tcb_infos[0].value.value.next_update
                                     : cached.qe_identities[0].value.value.next_update;
      if (!options_.online || now < next) {
        for (auto& x : cached.tcb_infos) out.tcb_infos.push_back(std::move(x));
        for (auto& x : cached.qe_identities) out.qe_identities.push_back(std::move(x));
        for (auto& x : cached.certificates) out.certificates.push_back(std::move(x));
        return {};
      }
    }
  }
  if (!options_.online) return {};
  CLOISTER_TRY(HttpResponse response, fetch(url));
  const std::string source = "fetched " + url;
  CLOISTER_CHECK_OK(add_collateral(response.body, source, out));
  if ((tcb_info ? out.tcb_infos.size() - before_tcb : out.qe_identities.size() - before_qe) != 1) {
    return Error(source + ": expected " + (tcb_info ? "a TCB Info" : "a QE Identity") +
                 " response");
  }
  std::string chain;
  if (auto it = response.headers.find(chain_header); it != response.headers.end()) {
    CLOISTER_TRY(chain, url_decode(it->second));
    auto added = add_collateral(as_bytes(chain), source + " " + chain_header, out);
    if (!added) return added.error();
  }
  if (path) {
    CLOISTER_CHECK_OK(write_cache_file(*path, response.body));
    if (!chain.empty()) CLOISTER_CHECK_OK(write_cache_file(*chain_path, as_bytes(chain)));
  }
  return {};
}

Status PcsClient::crl(const std::string& url, const std::filesystem::path& relative,
                      const char* chain_header, UnixTime now, TdxCollateral& out) {
  std::optional<std::filesystem::path> path, chain_path;
  if (options_.cache_dir) {
    path = *options_.cache_dir / relative;
    chain_path =
        *options_.cache_dir / relative.parent_path() / (relative.stem().string() + ".chain.pem");
    CLOISTER_TRY(const bool cached, cache_file_exists(*path));
    if (cached) {
      CLOISTER_TRY(Bytes der, read_file(*path, kCrlFileLimit));
      auto parsed = Crl::parse(der);
      if (!parsed) return parsed.error().with_context("cached CRL " + path->string());
      auto next = parsed->next_update();
      if (!options_.online || (next && now < *next)) {
        out.crls.push_back({std::move(parsed).value(), "cache " + path->string()});
        CLOISTER_TRY(const bool chain_hit, cache_file_exists(*chain_path));
        if (chain_header != nullptr && chain_hit) {
          CLOISTER_TRY(Bytes chain, read_file(*chain_path, kCollateralFileLimit));
          CLOISTER_CHECK_OK(add_collateral(chain, "cache " + chain_path->string(), out));
        }
        return {};
      }
    }
  }
  if (!options_.online) return {};
  CLOISTER_TRY(HttpResponse response, fetch(url));
  auto parsed = Crl::parse(response.body);
  if (!parsed) return parsed.error().with_context("CRL from " + url);
  out.crls.push_back({std::move(parsed).value(), "fetched " + url});
  std::string chain;
  if (chain_header != nullptr) {
    if (auto it = response.headers.find(chain_header); it != response.headers.end()) {
      CLOISTER_TRY(chain, url_decode(it->second));
      auto added = add_collateral(as_bytes(chain), "fetched " + url + " " + chain_header, out);
      if (!added) return added.error();
    }
  }
  if (path) {
    CLOISTER_CHECK_OK(write_cache_file(*path, response.body));
    if (!chain.empty()) CLOISTER_CHECK_OK(write_cache_file(*chain_path, as_bytes(chain)));
  }
  return {};
}

Status PcsClient::tcb_info(const std::array<std::uint8_t, 6>& fmspc, UnixTime now,
                           TdxCollateral& out) {
  return signed_json(pcs_tcb_info_url(options_.base_url, fmspc),
                     std::filesystem::path("tdx/v4/tcb") / (to_hex(fmspc) + ".json"),
                     "tcb-info-issuer-chain", now, true, out);
}

Status PcsClient::qe_identity(UnixTime now, TdxCollateral& out) {
  return signed_json(pcs_qe_identity_url(options_.base_url), "tdx/v4/qe/identity.json",
                     "sgx-enclave-identity-issuer-chain", now, false, out);
}

Status PcsClient::pck_crl(PckCaType ca, UnixTime now, TdxCollateral& out) {
  return crl(pcs_pck_crl_url(options_.base_url, ca),
             std::filesystem::path("sgx/v4/pckcrl") / (std::string(to_string(ca)) + ".der"),
             "sgx-pck-crl-issuer-chain", now, out);
}

Status PcsClient::root_ca_crl(UnixTime now, TdxCollateral& out) {
  return crl(options_.root_ca_crl_url, "sgx/rootcacrl.der", nullptr, now, out);
}

}  // namespace cloister::attestation::tdx
