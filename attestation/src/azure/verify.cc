#include "cloister/attestation/azure/verify.h"

#include <algorithm>

#include "cloister/attestation/tpm/abi.h"
#include "cloister/common/hex.h"
#include "cloister/common/sha.h"

namespace cloister::attestation::azure {
namespace {

std::string short_hex(ByteView bytes) {
  std::string h = to_hex(bytes);
  return h.size() > 16 ? h.substr(0, 16) + "…" : h;
}

// The HCL asks the hardware for a report whose REPORT_DATA is SHA-256 of its runtime data followed
// by 32 zero bytes (in every report of the vectors); anything else in [32:64] is not the HCL's.
void check_binding(const HclReport& hcl, ByteView report_data, const std::string& source,
                   Checks& checks) {
  const auto digest = sha256(hcl.runtime_data);
  const std::string expected =
      "SHA-256(runtime data) " + to_hex(digest) + " in " + source + "[0:32], zeros in [32:64]";
  const ByteView tail = report_data.subspan(32, 32);
  const bool tail_zero = std::all_of(tail.begin(), tail.end(), [](auto b) { return b == 0; });
  const std::string found = source + "[0:32] " + to_hex(report_data.first(32)) +
                            (tail_zero ? ", zeros in [32:64]" : ", [32:64] " + to_hex(tail));
  if (!std::equal(digest.begin(), digest.end(), report_data.begin())) {
    checks.fail("azure.runtime_data.binding", expected, found,
                "the hardware report does not bind this runtime data (it was altered, or belongs "
                "to another report)");
  } else if (!tail_zero) {
    checks.fail("azure.runtime_data.binding", expected, found,
                "REPORT_DATA[32:64] is not zero: the HCL did not ask for this report");
  } else {
    checks.pass("azure.runtime_data.binding", expected, found,
                std::to_string(hcl.runtime_data.size()) + " bytes of runtime data");
  }
}

void check_quote(const std::optional<VtpmQuote>& quote, const std::optional<PublicKey>& ak,
                 const VtpmVerifyOptions& options, VtpmVerification& out, Checks& checks) {
  const std::string format_expected = "a TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE";
  const std::string sig_expected = "RSASSA-PKCS1-v1_5/SHA-256 over the TPMS_ATTEST by HCLAkPub";
  const std::string nonce_expected =
      options.nonce ? "extraData " + to_hex(*options.nonce) : std::string("extraData");
  const std::string digest_expected = "pcrDigest = SHA-256 over the selected PCR values";
  if (!quote) {
    const std::string why = "no vTPM quote supplied (the evidence has none; pass --tpm-quote)";
    checks.fail("azure.tpm.quote.format", format_expected, "none", why);
    checks.fail("azure.tpm.quote.signature", sig_expected, "none", why);
    checks.fail("azure.tpm.quote.nonce", nonce_expected, "none", why);
    checks.fail("azure.tpm.pcr_digest", digest_expected, "none", why);
    return;
  }
  auto attest = tpm::parse_tpms_attest(quote->message);
  if (!attest) {
    checks.fail("azure.tpm.quote.format", format_expected,
                std::to_string(quote->message.size()) + " bytes", attest.error().message());
  } else {
    std::string selection;
    for (const auto& s : attest->pcr_select)
      selection += (selection.empty() ? "" : ", ") + tpm::alg_name(s.hash) + " " +
                   std::to_string(s.pcrs().size()) + " PCRs";
    checks.pass("azure.tpm.quote.format", format_expected,
                "quote over " + (selection.empty() ? std::string("no PCRs") : selection) +
                    ", clock " + std::to_string(attest->clock));
    out.attest = *attest;
  }

  bool signature_ok = false;
  if (!ak) {
    checks.fail("azure.tpm.quote.signature", sig_expected, "no attestation key",
                "the runtime data carries no usable HCLAkPub");
  } else if (auto ok =
                 ak->verify_rsa_pkcs1(HashAlgorithm::kSha256, quote->message, quote->signature);
             !ok) {
    checks.fail("azure.tpm.quote.signature", sig_expected, "does not verify",
                "the vTPM quote is not signed by the attestation key the hardware report binds "
                "(the quote, its signature or the runtime data was altered)");
  } else {
    signature_ok = true;
    checks.pass("azure.tpm.quote.signature", sig_expected,
                "verifies with " + ak->describe() + " HCLAkPub");
  }

  if (!attest) {
    checks.fail("azure.tpm.quote.nonce", nonce_expected, "unknown", "the quote does not parse");
  } else if (!options.nonce) {
    checks.skip("azure.tpm.quote.nonce",
                "no expected nonce given (--nonce): the quote's extraData " +
                    to_hex(attest->extra_data) +
                    " is not checked, so freshness is not established");
  } else if (attest->extra_data == *options.nonce) {
    checks.pass("azure.tpm.quote.nonce", nonce_expected, "extraData " + to_hex(attest->extra_data));
  } else {
    checks.fail("azure.tpm.quote.nonce", nonce_expected, "extraData " + to_hex(attest->extra_data),
                "the quote was made for another nonce (replayed or not this session's)");
  }

  if (!attest) {
    checks.fail("azure.tpm.pcr_digest", digest_expected, "unknown", "the quote does not parse");
    return;
  }
  const auto selected = attest->selected_pcrs();
  if (quote->pcrs.empty()) {
    checks.fail("azure.tpm.pcr_digest", digest_expected, "no PCR values",
                "the evidence carries no PCR values, so what the quote's pcrDigest " +
                    short_hex(attest->pcr_digest) + " commits to is unknown");
    return;
  }
  if (quote->pcrs.size() != selected.size()) {
    checks.fail("azure.tpm.pcr_digest", std::to_string(selected.size()) + " PCR values",
                std::to_string(quote->pcrs.size()) + " PCR values",
                "the evidence's PCR values do not match the quote's selection");
    return;
  }
  Hasher hasher(HashAlgorithm::kSha256);
  for (std::size_t i = 0; i < selected.size(); ++i) {
    const std::size_t size = tpm::alg_digest_size(selected[i].first);
    if (selected[i].first != tpm::kAlgSha256 || quote->pcrs[i].size() != size) {
      checks.fail("azure.tpm.pcr_digest", "SHA-256 PCR values of 32 bytes",
                  tpm::alg_name(selected[i].first) + " PCR " + std::to_string(selected[i].second) +
                      " of " + std::to_string(quote->pcrs[i].size()) + " bytes",
                  "only quotes over the SHA-256 bank are supported");
      return;
    }
    hasher.update(quote->pcrs[i]);
  }
  const Bytes digest = hasher.finish();
  for (std::size_t i = 0; i < selected.size(); ++i)
    out.pcrs.emplace_back(selected[i].second, quote->pcrs[i]);
  if (digest != attest->pcr_digest) {
    checks.fail("azure.tpm.pcr_digest", "pcrDigest " + to_hex(attest->pcr_digest),
                "SHA-256 of the PCR values " + to_hex(digest),
                "the PCR values are not the ones the quote was made over (a value was altered)");
    return;
  }
  out.pcrs_verified = signature_ok;
  checks.pass("azure.tpm.pcr_digest", "pcrDigest " + to_hex(attest->pcr_digest),
              std::to_string(selected.size()) + " PCR values hash to it");
}

void check_user_data(const VtpmVerifyOptions& options, const VtpmVerification& out,
                     Checks& checks) {
  if (!options.user_data_carries_nonce || !options.nonce || !out.runtime_data) return;
  Bytes expected = *options.nonce;
  const std::string name = "azure.runtime_data.user_data";
  const std::string what = "user-data = nonce zero-padded to 64 bytes";
  if (expected.size() > 64) {
    checks.fail(name, what, std::to_string(expected.size()) + "-byte nonce",
                "a nonce longer than 64 bytes cannot be carried in user-data");
    return;
  }
  expected.resize(64, 0);
  const auto& user_data = out.runtime_data->user_data;
  if (!user_data) {
    checks.fail(name, what, "no user-data", "evidence v2 carries the nonce in user-data");
  } else if (*user_data == expected) {
    checks.pass(name, what, to_hex(*user_data));
  } else {
    checks.fail(name, what + " (" + to_hex(expected) + ")", to_hex(*user_data),
                "the runtime data's user-data is not this nonce");
  }
}

void check_event_log(const Bytes& bytes, VtpmVerification& out, Checks& checks) {
  const std::string expected = "a TCG PC Client crypto-agile event log with SHA-256 digests";
  auto log = tpm::parse_tpm_event_log(bytes);
  if (!log) {
    checks.fail("azure.eventlog.format", expected, std::to_string(bytes.size()) + " bytes",
                log.error().message());
    return;
  }
  checks.pass("azure.eventlog.format", expected,
              std::to_string(log->events.size()) + " events in " + std::to_string(log->bytes_used) +
                  " bytes");
  const tpm::PcrReplay replay = tpm::replay_sha256_pcrs(*log);
  for (unsigned i = 0; i < tpm::kPcrCount; ++i) {
    if (replay.events[i] == 0) continue;
    const std::string name = "azure.eventlog.pcr" + std::to_string(i);
    const std::string replayed = to_hex(replay.pcrs[i]);
    const std::string found =
        "replayed " + std::to_string(replay.events[i]) + " events: " + replayed;
    const Bytes* quoted = out.pcr(i);
    if (quoted == nullptr) {
      checks.fail(
          name, "PCR" + std::to_string(i) + " from the quote", found,
          "the evidence carries no value for PCR" + std::to_string(i) + " to compare the log with");
    } else if (!out.pcrs_verified) {
      checks.fail(name, "PCR" + std::to_string(i) + " " + to_hex(*quoted), found,
                  "the PCR values are not verified by the quote, so the log cannot be checked "
                  "against them");
    } else if (to_hex(*quoted) == replayed) {
      checks.pass(name, "PCR" + std::to_string(i) + " " + to_hex(*quoted), found);
    } else {
      checks.fail(name, "PCR" + std::to_string(i) + " " + to_hex(*quoted), found,
                  "replaying the event log does not reproduce the quoted PCR" + std::to_string(i) +
                      " (the log is incomplete or altered)");
    }
  }
  out.event_log = std::move(log).value();
  out.replay = replay;
}

}  // namespace

const Bytes* VtpmVerification::pcr(unsigned index) const {
  for (const auto& [i, value] : pcrs)
    if (i == index) return &value;
  return nullptr;
}

VtpmVerification verify_vtpm(const HclReport& hcl, ByteView report_data,
                             const std::string& report_data_source,
                             const std::optional<VtpmQuote>& quote,
                             const VtpmVerifyOptions& options, Checks& checks) {
  VtpmVerification out;
  std::optional<PublicKey> ak;
  const std::string format_expected =
      "runtime data JSON with keys (HCLAkPub), vm-configuration and user-data";
  auto runtime = parse_runtime_data(hcl.runtime_data);
  if (!runtime) {
    checks.fail("azure.runtime_data.format", format_expected,
                std::to_string(hcl.runtime_data.size()) + " bytes", runtime.error().message());
  } else if (auto key = attestation_key(*runtime); !key) {
    checks.fail("azure.runtime_data.format", format_expected, "no usable attestation key",
                key.error().message());
    out.runtime_data = std::move(runtime).value();
  } else {
    ak = *key;
    std::string kids;
    for (const auto& k : runtime->keys) kids += (kids.empty() ? "" : ", ") + printable(k.kid, 64);
    checks.pass("azure.runtime_data.format", format_expected,
                "keys " + kids + (runtime->user_data ? ", user-data" : ", no user-data"));
    out.runtime_data = std::move(runtime).value();
  }
  check_binding(hcl, report_data, report_data_source, checks);
  check_quote(quote, ak, options, out, checks);
  check_user_data(options, out, checks);
  if (options.event_log) check_event_log(*options.event_log, out, checks);
  return out;
}

void check_td_report_match(const tdx::TdReportStruct& td_report, const tdx::TdReport& quoted,
                           Checks& checks) {
  std::vector<std::string> differ;
  auto compare = [&](const char* field, ByteView a, ByteView b) {
    if (!std::equal(a.begin(), a.end(), b.begin(), b.end())) differ.push_back(field);
  };
  const auto& tcb = td_report.tee_tcb_info;
  const auto& info = td_report.td_info;
  compare("TEE_TCB_SVN", tcb.tee_tcb_svn, quoted.tee_tcb_svn);
  compare("MRSEAM", tcb.mr_seam, quoted.mr_seam);
  compare("MRSIGNERSEAM", tcb.mr_signer_seam, quoted.mr_signer_seam);
  compare("SEAM_ATTRIBUTES", tcb.attributes, quoted.seam_attributes);
  if (info.attributes != quoted.td_attributes) differ.push_back("TD_ATTRIBUTES");
  if (info.xfam != quoted.xfam) differ.push_back("XFAM");
  compare("MRTD", info.mr_td, quoted.mr_td);
  compare("MRCONFIGID", info.mr_config_id, quoted.mr_config_id);
  compare("MROWNER", info.mr_owner, quoted.mr_owner);
  compare("MROWNERCONFIG", info.mr_owner_config, quoted.mr_owner_config);
  for (std::size_t i = 0; i < 4; ++i) {
    static const char* kNames[] = {"RTMR0", "RTMR1", "RTMR2", "RTMR3"};
    compare(kNames[i], info.rtmr[i], quoted.rtmr[i]);
  }
  compare("REPORT_DATA", td_report.mac.report_data, quoted.report_data);
  const std::string expected = "the TD quote's body equals the HCL report's TDREPORT";
  if (differ.empty()) {
    checks.pass("azure.td_report.match", expected,
                "16 fields equal (MRTD " + short_hex(info.mr_td) + ")");
  } else {
    std::string list;
    for (const auto& d : differ) list += (list.empty() ? "" : ", ") + d;
    checks.fail("azure.td_report.match", expected, list + " differ",
                "the TD quote was not made from this HCL report's TDREPORT");
  }
}

}  // namespace cloister::attestation::azure
