#include "cloister/attestation/azure/evidence.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "cloister/attestation/azure/hcl.h"
#include "cloister/attestation/tpm/abi.h"
#include "cloister/common/base64.h"
#include "cloister/common/hex.h"
#include "cloister/common/json.h"

namespace cloister::attestation::azure {
namespace {

using json = nlohmann::json;

// Limits far above anything a vTPM produces (an RSA-4096 signature is 512 bytes, a quote over
// every bank a few hundred), so a hostile length cannot make the parser allocate much.
constexpr std::uint64_t kMaxSignature = 1024;
constexpr std::uint64_t kMaxMessage = 4096;
constexpr std::uint64_t kMaxPcrs = 64;

std::string_view as_text(ByteView bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

bool starts_json_object(ByteView bytes) {
  const std::string_view text = as_text(bytes);
  const std::size_t first = text.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && text[first] == '{';
}

// A JSON array of byte values (v0's serde form of Vec<u8>).
Result<Bytes> byte_array(const json& v, const std::string& where) {
  if (!v.is_array()) return Error(where + ": expected an array of byte values");
  Bytes out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number_unsigned() || v[i].get<std::uint64_t>() > 255)
      return Error(where + "/" + std::to_string(i) + ": expected a byte value 0..255");
    out.push_back(static_cast<std::uint8_t>(v[i].get<std::uint64_t>()));
  }
  return out;
}

enum class Encoding { kByteArray, kBase64Url, kHex };

Result<Bytes> binary(const json& v, Encoding encoding, const std::string& where) {
  if (encoding == Encoding::kByteArray) return byte_array(v, where);
  if (!v.is_string())
    return Error(where + ": expected a " +
                 (encoding == Encoding::kHex ? std::string("hex") : std::string("base64url")) +
                 " string");
  auto bytes = encoding == Encoding::kHex
                   ? from_hex(v.get<std::string>())
                   : from_base64url(v.get<std::string>(), Base64UrlPadding::kOptional);
  if (!bytes) return Error(where + ": " + bytes.error().message());
  return bytes;
}

Status only(const json& object, std::initializer_list<const char*> keys, const std::string& where) {
  std::set<std::string> allowed(keys.begin(), keys.end());
  for (const auto& [key, unused] : object.items()) {
    if (!allowed.count(key)) {
      std::string list;
      for (const auto& k : allowed) list += (list.empty() ? "" : ", ") + k;
      return Error(where + ": unknown member '" + printable(key, 64) + "' (expected " + list + ")");
    }
  }
  return {};
}

const json* member(const json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

Result<const json*> required(const json& object, const char* key, const std::string& where) {
  const json* v = member(object, key);
  if (v == nullptr) return Error(where + ": member '" + key + "' is missing");
  return v;
}

Result<VtpmQuote> quote_from_json(const json& q, Encoding encoding, const std::string& where) {
  if (!q.is_object()) return Error(where + ": expected an object");
  CLOISTER_CHECK_OK(only(q, {"signature", "message", "pcrs"}, where));
  VtpmQuote out;
  CLOISTER_TRY(const json* signature, required(q, "signature", where));
  CLOISTER_TRY(out.signature, binary(*signature, encoding, where + "/signature"));
  CLOISTER_TRY(const json* message, required(q, "message", where));
  CLOISTER_TRY(out.message, binary(*message, encoding, where + "/message"));
  CLOISTER_TRY(const json* pcrs, required(q, "pcrs", where));
  if (!pcrs->is_array()) return Error(where + "/pcrs: expected an array of PCR values");
  if (pcrs->size() > kMaxPcrs)
    return Error(where + "/pcrs: " + std::to_string(pcrs->size()) + " values, at most " +
                 std::to_string(kMaxPcrs));
  for (std::size_t i = 0; i < pcrs->size(); ++i) {
    CLOISTER_TRY(Bytes pcr, binary((*pcrs)[i], encoding, where + "/pcrs/" + std::to_string(i)));
    out.pcrs.push_back(std::move(pcr));
  }
  return out;
}

Result<json> parse_object(ByteView bytes, const std::string& what) {
  CLOISTER_TRY(json doc, parse_json_strict(as_text(bytes), what));
  if (!doc.is_object()) return Error(what + ": expected a JSON object");
  return doc;
}

Result<AzureEvidence> evidence_from_json(const json& doc) {
  const std::string where = "Azure evidence";
  AzureEvidence out;
  unsigned version = 0;
  if (const json* v = member(doc, "version")) {
    if (!v->is_number_unsigned() || (v->get<std::uint64_t>() != 1 && v->get<std::uint64_t>() != 2))
      return Error(where + " version: expected 1 or 2 (or no version member for v0)");
    version = static_cast<unsigned>(v->get<std::uint64_t>());
  }
  out.version = version;
  if (version == 0 && member(doc, "report") != nullptr) {
    // v0 SEV-SNP: {quote, report, vcek (PEM)}.
    CLOISTER_CHECK_OK(only(doc, {"quote", "report", "vcek"}, where + " (v0 SEV-SNP)"));
    CLOISTER_TRY(const json* quote, required(doc, "quote", where));
    CLOISTER_TRY(out.tpm_quote, quote_from_json(*quote, Encoding::kByteArray, where + " quote"));
    CLOISTER_TRY(out.hcl_report, byte_array(doc["report"], where + " report"));
    CLOISTER_TRY(const json* vcek, required(doc, "vcek", where));
    if (!vcek->is_string()) return Error(where + " vcek: expected PEM text");
    const std::string pem = vcek->get<std::string>();
    out.vcek = Bytes(pem.begin(), pem.end());
    return out;
  }
  // v0 TDX {tpm_quote, hcl_report, td_quote}; v1/v2 {version, tpm_quote, hcl_report, vcek |
  // td_quote}.
  const Encoding bytes_encoding = version == 0 ? Encoding::kByteArray : Encoding::kBase64Url;
  const Encoding quote_encoding = version == 0 ? Encoding::kByteArray : Encoding::kHex;
  const std::string shape = where + " (v" + std::to_string(version) + ")";
  CLOISTER_CHECK_OK(only(doc, {"version", "tpm_quote", "hcl_report", "vcek", "td_quote"}, shape));
  if (member(doc, "vcek") != nullptr && member(doc, "td_quote") != nullptr)
    return Error(shape + ": both 'vcek' (SEV-SNP) and 'td_quote' (TDX)");
  CLOISTER_TRY(const json* quote, required(doc, "tpm_quote", shape));
  CLOISTER_TRY(out.tpm_quote, quote_from_json(*quote, quote_encoding, where + " tpm_quote"));
  CLOISTER_TRY(const json* hcl, required(doc, "hcl_report", shape));
  CLOISTER_TRY(out.hcl_report, binary(*hcl, bytes_encoding, where + " hcl_report"));
  if (const json* vcek = member(doc, "vcek")) {
    CLOISTER_TRY(out.vcek, binary(*vcek, bytes_encoding, where + " vcek"));
  }
  if (const json* td = member(doc, "td_quote")) {
    CLOISTER_TRY(out.td_quote, binary(*td, bytes_encoding, where + " td_quote"));
  }
  return out;
}

// az-cvm-vtpm's bincode vtpm::Quote.
Result<VtpmQuote> quote_from_bincode(ByteView bytes) {
  ByteReader r(bytes);
  VtpmQuote out;
  auto blob = [&](std::uint64_t max, const char* field) -> Result<Bytes> {
    CLOISTER_TRY(std::uint64_t size, r.u64(std::string(field) + " length"));
    if (size > max)
      return Error(std::string("vTPM quote ") + field + " length " + std::to_string(size) +
                   " exceeds " + std::to_string(max));
    CLOISTER_TRY(ByteView b, r.bytes(static_cast<std::size_t>(size), field));
    return Bytes(b.begin(), b.end());
  };
  CLOISTER_TRY(out.signature, blob(kMaxSignature, "signature"));
  CLOISTER_TRY(out.message, blob(kMaxMessage, "message"));
  CLOISTER_TRY(std::uint64_t count, r.u64("PCR count"));
  if (count > kMaxPcrs)
    return Error("vTPM quote PCR count " + std::to_string(count) + " exceeds " +
                 std::to_string(kMaxPcrs));
  for (std::uint64_t i = 0; i < count; ++i) {
    CLOISTER_TRY(ByteView pcr, r.bytes(32, "PCR value"));
    out.pcrs.emplace_back(pcr.begin(), pcr.end());
  }
  if (!r.at_end())
    return Error("vTPM quote: " + std::to_string(r.remaining()) + " bytes after the PCR values");
  return out;
}

bool is_tpms_attest(ByteView bytes) {
  return bytes.size() >= 4 && (std::uint32_t{bytes[0]} << 24 | std::uint32_t{bytes[1]} << 16 |
                               std::uint32_t{bytes[2]} << 8 | bytes[3]) == tpm::kGeneratedValue;
}

}  // namespace

bool looks_like_azure_evidence(ByteView bytes) {
  return parse_if_azure_evidence(bytes).has_value();
}

std::optional<Result<AzureEvidence>> parse_if_azure_evidence(ByteView bytes) {
  if (looks_like_hcl_report(bytes)) return parse_azure_evidence(bytes);
  if (!starts_json_object(bytes)) return std::nullopt;
  auto doc = parse_object(bytes, "Azure evidence");
  if (!doc) return std::nullopt;
  if (!(doc->contains("hcl_report") && doc->contains("tpm_quote")) &&
      !(doc->contains("report") && doc->contains("quote")))
    return std::nullopt;
  return evidence_from_json(*doc);
}

Result<AzureEvidence> parse_azure_evidence(ByteView bytes) {
  if (looks_like_hcl_report(bytes)) {
    AzureEvidence out;
    out.hcl_report.assign(bytes.begin(), bytes.end());
    return out;
  }
  CLOISTER_TRY(json doc, parse_object(bytes, "Azure evidence"));
  return evidence_from_json(doc);
}

Result<VtpmQuote> parse_vtpm_quote(const std::vector<ByteView>& parts) {
  if (parts.size() == 1) {
    if (starts_json_object(parts[0])) {
      CLOISTER_TRY(json doc, parse_object(parts[0], "vTPM quote"));
      return quote_from_json(doc, Encoding::kHex, "vTPM quote");
    }
    if (is_tpms_attest(parts[0]))
      return Error(
          "vTPM quote: a TPMS_ATTEST message alone; its signature must be given too (two files)");
    return quote_from_bincode(parts[0]);
  }
  if (parts.size() == 2) {
    const bool first = is_tpms_attest(parts[0]);
    if (first == is_tpms_attest(parts[1]))
      return Error(
          "vTPM quote in two parts: expected one TPMS_ATTEST message (starting ff544347) and one "
          "signature");
    const ByteView message = first ? parts[0] : parts[1];
    const ByteView signature = first ? parts[1] : parts[0];
    if (message.size() > kMaxMessage || signature.size() > kMaxSignature)
      return Error("vTPM quote: message or signature larger than a vTPM produces");
    VtpmQuote out;
    out.message.assign(message.begin(), message.end());
    out.signature.assign(signature.begin(), signature.end());
    return out;
  }
  return Error(
      "vTPM quote: expected one part (JSON or bincode) or two (message and signature), "
      "found " +
      std::to_string(parts.size()));
}

}  // namespace cloister::attestation::azure
