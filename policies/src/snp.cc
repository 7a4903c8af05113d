#include "cloister/policy/snp.h"

#include <algorithm>

#include "cloister/common/hex.h"

namespace cloister::policy {
namespace {

using attestation::Checks;
using attestation::snp::Product;
using attestation::snp::SnpReport;
using attestation::snp::TcbParts;

template <std::size_t N>
bool equals(const std::array<std::uint8_t, N>& a, const Bytes& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

template <std::size_t N>
bool listed(const std::array<std::uint8_t, N>& value, const std::vector<Bytes>& list) {
  return std::any_of(list.begin(), list.end(), [&](const Bytes& b) { return equals(value, b); });
}

std::string list_string(const std::vector<Bytes>& list) {
  std::string out = "one of [";
  for (std::size_t i = 0; i < list.size(); ++i) out += (i ? ", " : "") + to_hex(list[i]);
  return out + "]";
}

template <std::size_t N>
void exact(Checks& out, const char* name, const std::optional<Bytes>& want,
           const std::array<std::uint8_t, N>& found, const char* field) {
  if (!want) return;
  if (equals(found, *want)) {
    out.pass(name, to_hex(*want), to_hex(found));
  } else {
    out.fail(name, to_hex(*want), to_hex(found), std::string(field) + " does not match the policy");
  }
}

// A guest-policy bit the report may set only if allowed.
void allow_bit(Checks& out, const char* name, const char* what, bool set, bool allowed) {
  std::string expected = allowed ? std::string(what) + " allowed" : std::string(what) + " not set";
  std::string found = std::string(what) + (set ? " set" : " not set");
  if (set && !allowed) {
    out.fail(
        name, expected, found,
        std::string("the guest policy permits ") + what + ", which the appraisal policy forbids");
  } else {
    out.pass(name, expected, found);
  }
}

// A guest-policy bit the report must set when required.
void require_bit(Checks& out, const char* name, const char* what, bool set, bool required) {
  if (!required) return;
  if (set) {
    out.pass(name, std::string(what) + " set", std::string(what) + " set");
  } else {
    out.fail(name, std::string(what) + " set", std::string(what) + " not set",
             std::string("the appraisal policy requires ") + what);
  }
}

std::string tcb_minimum_string(const TcbMinimum& m) {
  std::string out;
  auto add = [&](const char* n, const std::optional<std::uint8_t>& v) {
    if (v) out += (out.empty() ? "" : ", ") + std::string(n) + " >= " + std::to_string(*v);
  };
  add("fmc", m.fmc);
  add("bl", m.bl);
  add("tee", m.tee);
  add("snp", m.snp);
  add("ucode", m.ucode);
  return out;
}

void tcb_minimum(Checks& out, const char* name, const char* field, const TcbMinimum& min,
                 const attestation::snp::TcbVersion& tcb, std::optional<Product> product) {
  if (min.empty()) return;
  std::string expected = tcb_minimum_string(min);
  if (!product) {
    out.fail(name, expected, "unknown",
             std::string(field) + " cannot be decoded without the product");
    return;
  }
  TcbParts parts = tcb.parts(*product);
  std::vector<std::string> low;
  auto cmp = [&](const char* n, const std::optional<std::uint8_t>& want,
                 std::optional<std::uint8_t> have) {
    if (!want) return;
    if (!have) {
      low.push_back(std::string(n) + " absent in " + std::string(product_name(*product)) + " TCBs");
    } else if (*have < *want) {
      low.push_back(std::string(n) + " " + std::to_string(*have) + " < " + std::to_string(*want));
    }
  };
  cmp("fmc", min.fmc, parts.fmc);
  cmp("bl", min.bl, parts.bl);
  cmp("tee", min.tee, parts.tee);
  cmp("snp", min.snp, parts.snp);
  cmp("ucode", min.ucode, parts.ucode);
  if (low.empty()) {
    out.pass(name, expected, parts.to_string());
  } else {
    std::string why = std::string(field) + " below the policy minimum: ";
    for (std::size_t i = 0; i < low.size(); ++i) why += (i ? ", " : "") + low[i];
    out.fail(name, expected, parts.to_string(), why);
  }
}

void mitigation(Checks& out, const char* name, const char* field,
                const std::optional<std::uint64_t>& want, const std::optional<std::uint64_t>& have,
                std::uint32_t version) {
  if (!want) return;
  std::string expected = "bits " + hex_number(*want) + " set";
  if (!have) {
    out.fail(name, expected, "absent",
             std::string(field) + " exists only in report version 5 and later (this is v" +
                 std::to_string(version) + ")");
  } else if ((*have & *want) != *want) {
    out.fail(name, expected, hex_number(*have),
             std::string(field) + " lacks mitigation bits " + hex_number(*want & ~*have));
  } else {
    out.pass(name, expected, hex_number(*have));
  }
}

}  // namespace

void apply_snp_policy_options(const SnpPolicy& policy,
                              attestation::snp::SnpVerifyOptions& options) {
  options.require_crl = policy.require_crl;
  options.allow_stale_crl = policy.allow_stale_crl;
}

void evaluate_snp_policy(const SnpPolicy& p, const attestation::snp::SnpVerification& v,
                         Checks& out) {
  if (!v.report) return;
  const SnpReport& r = *v.report;

  if (!p.measurements.empty()) {
    if (listed(r.measurement, p.measurements)) {
      out.pass("policy.measurement", list_string(p.measurements), to_hex(r.measurement));
    } else {
      out.fail("policy.measurement", list_string(p.measurements), to_hex(r.measurement),
               "MEASUREMENT is not in the policy's allowlist");
    }
  }
  exact(out, "policy.host_data", p.host_data, r.host_data, "HOST_DATA");
  exact(out, "policy.report_data", p.report_data, r.report_data, "REPORT_DATA");
  exact(out, "policy.family_id", p.family_id, r.family_id, "FAMILY_ID");
  exact(out, "policy.image_id", p.image_id, r.image_id, "IMAGE_ID");
  exact(out, "policy.report_id", p.report_id, r.report_id, "REPORT_ID");
  exact(out, "policy.report_id_ma", p.report_id_ma, r.report_id_ma, "REPORT_ID_MA");

  if (p.require_id_block || !p.id_key_digests.empty()) {
    std::string expected = p.id_key_digests.empty() ? "an ID block (non-zero ID_KEY_DIGEST)"
                                                    : list_string(p.id_key_digests);
    if (is_all_zero(r.id_key_digest)) {
      out.fail("policy.id_key", expected, "none", "the guest was launched without an ID block");
    } else if (!p.id_key_digests.empty() && !listed(r.id_key_digest, p.id_key_digests)) {
      out.fail("policy.id_key", expected, to_hex(r.id_key_digest),
               "ID_KEY_DIGEST is not a trusted ID key");
    } else {
      out.pass("policy.id_key", expected, to_hex(r.id_key_digest));
    }
  }
  if (p.require_author_key || !p.author_key_digests.empty()) {
    std::string expected = p.author_key_digests.empty() ? "an author key (AUTHOR_KEY_EN)"
                                                        : list_string(p.author_key_digests);
    if (!r.signer().author_key_en) {
      out.fail("policy.author_key", expected, "AUTHOR_KEY_EN not set",
               "the ID block was not signed with an author key");
    } else if (!p.author_key_digests.empty() &&
               !listed(r.author_key_digest, p.author_key_digests)) {
      out.fail("policy.author_key", expected, to_hex(r.author_key_digest),
               "AUTHOR_KEY_DIGEST is not a trusted author key");
    } else {
      out.pass("policy.author_key", expected, to_hex(r.author_key_digest));
    }
  }

  const auto gp = r.guest_policy();
  const auto& rules = p.guest_policy;
  allow_bit(out, "policy.guest.debug", "DEBUG", gp.debug, rules.allow_debug);
  allow_bit(out, "policy.guest.migration_agent", "MIGRATE_MA", gp.migrate_ma,
            rules.allow_migration_agent);
  allow_bit(out, "policy.guest.smt", "SMT", gp.smt, rules.allow_smt);
  allow_bit(out, "policy.guest.cxl", "CXL_ALLOW", gp.cxl_allow, rules.allow_cxl);
  require_bit(out, "policy.guest.single_socket", "SINGLE_SOCKET", gp.single_socket,
              rules.require_single_socket);
  require_bit(out, "policy.guest.mem_aes_256_xts", "MEM_AES_256_XTS", gp.mem_aes_256_xts,
              rules.require_mem_aes_256_xts);
  require_bit(out, "policy.guest.rapl_disabled", "RAPL_DIS", gp.rapl_dis,
              rules.require_rapl_disabled);
  require_bit(out, "policy.guest.ciphertext_hiding", "CIPHERTEXT_HIDING", gp.ciphertext_hiding,
              rules.require_ciphertext_hiding);
  require_bit(out, "policy.guest.page_swap_disabled", "PAGE_SWAP_DISABLE", gp.page_swap_disable,
              rules.require_page_swap_disabled);
  if (rules.abi_minimum) {
    auto [major, minor] = *rules.abi_minimum;
    std::string expected = "ABI >= " + std::to_string(major) + "." + std::to_string(minor);
    std::string found = "ABI " + std::to_string(gp.abi_major) + "." + std::to_string(gp.abi_minor);
    if (std::make_pair(gp.abi_major, gp.abi_minor) < std::make_pair(major, minor)) {
      out.fail("policy.guest.abi", expected, found, "the guest policy's minimum ABI is too old");
    } else {
      out.pass("policy.guest.abi", expected, found);
    }
  }

  if (p.minimum_guest_svn) {
    std::string expected = ">= " + std::to_string(*p.minimum_guest_svn);
    if (r.guest_svn < *p.minimum_guest_svn) {
      out.fail("policy.guest_svn", expected, std::to_string(r.guest_svn), "GUEST_SVN is too low");
    } else {
      out.pass("policy.guest_svn", expected, std::to_string(r.guest_svn));
    }
  }

  tcb_minimum(out, "policy.tcb.reported", "REPORTED_TCB", p.minimum_reported_tcb, r.reported_tcb,
              v.product);
  tcb_minimum(out, "policy.tcb.committed", "COMMITTED_TCB", p.minimum_committed_tcb,
              r.committed_tcb, v.product);
  tcb_minimum(out, "policy.tcb.current", "CURRENT_TCB", p.minimum_current_tcb, r.current_tcb,
              v.product);
  tcb_minimum(out, "policy.tcb.launch", "LAUNCH_TCB", p.minimum_launch_tcb, r.launch_tcb,
              v.product);

  if (p.minimum_build) {
    std::string expected = "CURRENT_BUILD >= " + std::to_string(*p.minimum_build);
    if (r.current_version.build < *p.minimum_build) {
      out.fail("policy.firmware.build", expected, std::to_string(r.current_version.build),
               "the firmware build is older than the policy allows");
    } else {
      out.pass("policy.firmware.build", expected, std::to_string(r.current_version.build));
    }
  }
  if (p.minimum_version) {
    auto [major, minor] = *p.minimum_version;
    std::string expected = "firmware >= " + std::to_string(major) + "." + std::to_string(minor);
    if (std::make_pair(r.current_version.major, r.current_version.minor) <
        std::make_pair(major, minor)) {
      out.fail("policy.firmware.version", expected, r.current_version.to_string(),
               "the firmware version is older than the policy allows");
    } else {
      out.pass("policy.firmware.version", expected, r.current_version.to_string());
    }
  }
  {
    bool provisional =
        !(r.committed_tcb == r.current_tcb) || !(r.committed_version == r.current_version);
    std::string found = "committed " + r.committed_version.to_string() + " TCB " +
                        r.committed_tcb.to_hex() + ", current " + r.current_version.to_string() +
                        " TCB " + r.current_tcb.to_hex();
    if (provisional && !p.allow_provisional_firmware) {
      out.fail("policy.firmware.provisional", "COMMITTED == CURRENT (no provisional firmware)",
               found,
               "the platform runs provisional firmware (committed != current); set "
               "allow_provisional_firmware to accept it");
    } else {
      out.pass("policy.firmware.provisional",
               p.allow_provisional_firmware ? "provisional firmware allowed"
                                            : "COMMITTED == CURRENT (no provisional firmware)",
               found);
    }
  }

  {
    const auto pi = r.platform_info_bits();
    const auto& pr = p.platform_info;
    std::vector<std::string> expected, violations;
    auto allow = [&](bool allowed, bool set, const char* what) {
      if (allowed) return;
      expected.push_back(std::string(what) + " off");
      if (set) violations.push_back(std::string(what) + " is enabled");
    };
    auto need = [&](bool required, bool set, const char* what) {
      if (!required) return;
      expected.push_back(std::string(what) + " on");
      if (!set) violations.push_back(std::string(what) + " is not enabled");
    };
    allow(pr.allow_smt, pi.smt_en, "SMT_EN");
    allow(pr.allow_tsme, pi.tsme_en, "TSME_EN");
    allow(pr.allow_tio, pi.tio_en, "TIO_EN");
    need(pr.require_ecc, pi.ecc_en, "ECC_EN");
    need(pr.require_rapl_disabled, pi.rapl_dis, "RAPL_DIS");
    need(pr.require_ciphertext_hiding, pi.ciphertext_hiding_en, "CIPHERTEXT_HIDING_EN");
    need(pr.require_alias_check_complete, pi.alias_check_complete, "ALIAS_CHECK_COMPLETE");
    if (!expected.empty()) {
      std::string e;
      for (const auto& x : expected) e += (e.empty() ? "" : ", ") + x;
      if (violations.empty()) {
        out.pass("policy.platform_info", e, hex_number(r.platform_info));
      } else {
        std::string why;
        for (const auto& x : violations) why += (why.empty() ? "" : "; ") + x;
        out.fail("policy.platform_info", e, hex_number(r.platform_info), why);
      }
    }
  }

  {
    std::string expected = "VMPL in [";
    for (std::size_t i = 0; i < p.vmpls.size(); ++i)
      expected += (i ? ", " : "") + std::to_string(p.vmpls[i]);
    expected += "]";
    if (std::find(p.vmpls.begin(), p.vmpls.end(), r.vmpl) == p.vmpls.end()) {
      out.fail("policy.vmpl", expected, std::to_string(r.vmpl),
               "the report was requested from a VMPL the policy does not accept");
    } else {
      out.pass("policy.vmpl", expected, std::to_string(r.vmpl));
    }
  }

  if (!p.chip_ids.empty()) {
    if (listed(r.chip_id, p.chip_ids)) {
      out.pass("policy.chip_id", list_string(p.chip_ids), to_hex(r.chip_id));
    } else {
      out.fail("policy.chip_id", list_string(p.chip_ids), to_hex(r.chip_id),
               "CHIP_ID is not in the policy's allowlist");
    }
  }

  {
    using attestation::snp::SigningKey;
    const auto key = r.signer().signing_key;
    std::string expected = p.allow_vcek && p.allow_vlek ? "VCEK or VLEK"
                           : p.allow_vcek               ? "VCEK"
                                                        : "VLEK";
    bool ok =
        (key == SigningKey::kVcek && p.allow_vcek) || (key == SigningKey::kVlek && p.allow_vlek);
    if (ok) {
      out.pass("policy.signing_key", expected, std::string(to_string(key)));
    } else {
      out.fail("policy.signing_key", expected, std::string(to_string(key)),
               "the report is signed with a key type the policy does not accept");
    }
  }

  if (!p.products.empty()) {
    std::string expected = "one of [";
    for (std::size_t i = 0; i < p.products.size(); ++i) expected += (i ? ", " : "") + p.products[i];
    expected += "]";
    std::string found = v.product ? std::string(product_name(*v.product)) : "unknown";
    if (std::find(p.products.begin(), p.products.end(), found) == p.products.end()) {
      out.fail("policy.product", expected, found,
               "the report comes from a product the policy does not accept");
    } else {
      out.pass("policy.product", expected, found);
    }
  }

  mitigation(out, "policy.mit_vector.launch", "LAUNCH_MIT_VECTOR", p.minimum_launch_mit_vector,
             r.launch_mit_vector, r.version);
  mitigation(out, "policy.mit_vector.current", "CURRENT_MIT_VECTOR", p.minimum_current_mit_vector,
             r.current_mit_vector, r.version);
}

}  // namespace cloister::policy
