#include "cloister/attestation/snp/report_json.h"

#include "cloister/common/hex.h"

namespace cloister::attestation::snp {
namespace {

using json = nlohmann::json;

json tcb_json(const TcbVersion& tcb, std::optional<Product> product) {
  json out = {{"raw", tcb.to_hex()}};
  if (product) {
    TcbParts p = tcb.parts(*product);
    if (p.fmc) out["fmc"] = *p.fmc;
    out["bl"] = p.bl;
    out["tee"] = p.tee;
    out["snp"] = p.snp;
    out["ucode"] = p.ucode;
  }
  return out;
}

}  // namespace

json snp_report_to_json(const SnpReport& r, std::optional<Product> product) {
  const GuestPolicy gp = r.guest_policy();
  const PlatformInfo pi = r.platform_info_bits();
  const SignerInfo si = r.signer();
  json out;
  out["version"] = r.version;
  out["guest_svn"] = r.guest_svn;
  out["policy"] = {{"raw", hex_number(r.policy)},
                   {"abi_major", gp.abi_major},
                   {"abi_minor", gp.abi_minor},
                   {"smt", gp.smt},
                   {"reserved_bit17", gp.reserved_bit17},
                   {"migrate_ma", gp.migrate_ma},
                   {"debug", gp.debug},
                   {"single_socket", gp.single_socket},
                   {"cxl_allow", gp.cxl_allow},
                   {"mem_aes_256_xts", gp.mem_aes_256_xts},
                   {"rapl_dis", gp.rapl_dis},
                   {"ciphertext_hiding", gp.ciphertext_hiding},
                   {"page_swap_disable", gp.page_swap_disable}};
  out["family_id"] = to_hex(r.family_id);
  out["image_id"] = to_hex(r.image_id);
  out["vmpl"] = r.vmpl;
  out["signature_algo"] = r.signature_algo;
  out["current_tcb"] = tcb_json(r.current_tcb, product);
  out["platform_info"] = {{"raw", hex_number(r.platform_info)},
                          {"smt_en", pi.smt_en},
                          {"tsme_en", pi.tsme_en},
                          {"ecc_en", pi.ecc_en},
                          {"rapl_dis", pi.rapl_dis},
                          {"ciphertext_hiding_en", pi.ciphertext_hiding_en},
                          {"alias_check_complete", pi.alias_check_complete},
                          {"unknown_bit6", pi.unknown_bit6},
                          {"tio_en", pi.tio_en}};
  out["signer_info"] = {{"raw", hex_number(r.signer_info)},
                        {"author_key_en", si.author_key_en},
                        {"mask_chip_key", si.mask_chip_key},
                        {"signing_key", std::string(to_string(si.signing_key))}};
  out["report_data"] = to_hex(r.report_data);
  out["measurement"] = to_hex(r.measurement);
  out["host_data"] = to_hex(r.host_data);
  out["id_key_digest"] = to_hex(r.id_key_digest);
  out["author_key_digest"] = to_hex(r.author_key_digest);
  out["report_id"] = to_hex(r.report_id);
  out["report_id_ma"] = to_hex(r.report_id_ma);
  out["reported_tcb"] = tcb_json(r.reported_tcb, product);
  if (r.cpuid) {
    out["cpuid_fam_id"] = hex_number(r.cpuid->family);
    out["cpuid_mod_id"] = hex_number(r.cpuid->model);
    out["cpuid_step"] = hex_number(r.cpuid->stepping);
  }
  out["chip_id"] = to_hex(r.chip_id);
  out["committed_tcb"] = tcb_json(r.committed_tcb, product);
  out["current_version"] = r.current_version.to_string();
  out["committed_version"] = r.committed_version.to_string();
  out["launch_tcb"] = tcb_json(r.launch_tcb, product);
  if (r.launch_mit_vector) out["launch_mit_vector"] = hex_number(*r.launch_mit_vector);
  if (r.current_mit_vector) out["current_mit_vector"] = hex_number(*r.current_mit_vector);
  out["signature"] = {{"r", to_hex(r.signature_r)}, {"s", to_hex(r.signature_s)}};
  if (product) out["product"] = std::string(product_name(*product));
  return out;
}

}  // namespace cloister::attestation::snp
