#include "ear_cbor.h"

#include <cbor.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <span>
#include <vector>

#include "cloister/common/base64.h"
#include "cloister/common/json.h"

namespace cloister::service::ear::cbor {
namespace {

// EAR claim keys (draft-ietf-rats-ear; EAT RFC 9711 for iss, exp, iat, eat_nonce, eat_profile).
namespace key {
constexpr std::uint64_t kIss = 1;
constexpr std::uint64_t kExp = 4;
constexpr std::uint64_t kIat = 6;
constexpr std::uint64_t kNonce = 10;
constexpr std::uint64_t kProfile = 265;
constexpr std::uint64_t kSubmods = 266;
constexpr std::uint64_t kStatus = 1000;
constexpr std::uint64_t kTrustVector = 1001;
constexpr std::uint64_t kRawEvidence = 1002;
constexpr std::uint64_t kPolicyId = 1003;
constexpr std::uint64_t kVerifierId = 1004;
}  // namespace key

// COSE (RFC 9052 §3.1, RFC 9053 §2.1).
constexpr std::uint64_t kCoseAlg = 1;
constexpr std::uint64_t kCoseKid = 4;
constexpr std::uint64_t kEs384NegintValue = 34;  // -35 = -1 - 34
constexpr std::uint64_t kCoseSign1Tag = 18;
constexpr std::uint8_t kCoseSign1TagByte = 0xd2;  // major type 6, value 18
// A COSE_Sign1 larger than this is refused before decoding (EAR tokens are a few KiB).
constexpr std::size_t kMaxCoseSize = 64 * 1024;

struct ItemDeleter {
  void operator()(cbor_item_t* item) const { cbor_decref(&item); }
};
using Item = std::unique_ptr<cbor_item_t, ItemDeleter>;

// libcbor 0.8's cbor_load allocates a definite array or map for the count its header declares
// before it reads one element, so a five-byte header can ask for gigabytes. Every element takes at
// least one byte (a map pair two), so a pass of the streaming decoder over the headers refuses any
// count above what the bytes after it can hold; malformed input is left to cbor_load to report.
struct CountCheck {
  std::size_t remaining = 0;  // bytes from the current header to the end of the input
  bool too_large = false;
};

void check_array_count(void* context, std::size_t elements) {
  auto* check = static_cast<CountCheck*>(context);
  if (elements > check->remaining) check->too_large = true;
}

void check_map_count(void* context, std::size_t pairs) {
  auto* check = static_cast<CountCheck*>(context);
  if (pairs > check->remaining / 2) check->too_large = true;
}

bool declares_more_than_it_holds(ByteView bytes) {
  cbor_callbacks callbacks = cbor_empty_callbacks;
  callbacks.array_start = check_array_count;
  callbacks.map_start = check_map_count;
  CountCheck check;
  for (std::size_t offset = 0; offset < bytes.size() && !check.too_large;) {
    check.remaining = bytes.size() - offset;
    const cbor_decoder_result r =
        cbor_stream_decode(bytes.data() + offset, check.remaining, &callbacks, &check);
    if (r.status != CBOR_DECODER_FINISHED) break;
    offset += r.read;
  }
  return check.too_large;
}

// Integers in their shortest encoding (libcbor keeps the width it is given).
cbor_item_t* uint_item(std::uint64_t v) {
  if (v <= 0xff) return cbor_build_uint8(static_cast<std::uint8_t>(v));
  if (v <= 0xffff) return cbor_build_uint16(static_cast<std::uint16_t>(v));
  if (v <= 0xffffffff) return cbor_build_uint32(static_cast<std::uint32_t>(v));
  return cbor_build_uint64(v);
}

cbor_item_t* int_item(std::int64_t v) {
  if (v >= 0) return uint_item(static_cast<std::uint64_t>(v));
  const std::uint64_t n = static_cast<std::uint64_t>(-(v + 1));
  if (n <= 0xff) return cbor_build_negint8(static_cast<std::uint8_t>(n));
  if (n <= 0xffff) return cbor_build_negint16(static_cast<std::uint16_t>(n));
  if (n <= 0xffffffff) return cbor_build_negint32(static_cast<std::uint32_t>(n));
  return cbor_build_negint64(n);
}

cbor_item_t* text_item(std::string_view s) {
  return cbor_build_stringn(s.data(), s.size());
}

cbor_item_t* bytes_item(ByteView b) {
  return cbor_build_bytestring(b.data(), b.size());
}

// A map built in deterministic key order: callers add integer keys in ascending order; text
// keys are sorted here by (length, bytes), the order of their encodings.
// Owns what it is given until build() hands the map over, so an error on the way out (a value
// that has no CBOR form, say) frees every item already added.
class MapBuilder {
 public:
  void add(std::uint64_t k, cbor_item_t* value) {
    int_pairs_.emplace_back(Item(uint_item(k)), Item(value));
  }
  void add(const std::string& k, cbor_item_t* value) { text_pairs_.emplace_back(k, Item(value)); }
  Result<cbor_item_t*> build() {
    std::sort(text_pairs_.begin(), text_pairs_.end(), [](const auto& a, const auto& b) {
      return a.first.size() != b.first.size() ? a.first.size() < b.first.size() : a.first < b.first;
    });
    // cbor_map_add takes a reference of its own to each key and value.
    Item map(cbor_new_definite_map(int_pairs_.size() + text_pairs_.size()));
    bool ok = map != nullptr;
    for (auto& [k, v] : int_pairs_)
      ok = ok && k && v && cbor_map_add(map.get(), {k.get(), v.get()});
    for (auto& [k, v] : text_pairs_) {
      Item key(text_item(k));
      ok = ok && key && v && cbor_map_add(map.get(), {key.get(), v.get()});
    }
    if (!ok) return Error("CBOR: out of memory building a map");
    return map.release();
  }

 private:
  std::vector<std::pair<Item, Item>> int_pairs_;
  std::vector<std::pair<std::string, Item>> text_pairs_;
};

Result<Bytes> serialize(cbor_item_t* raw) {
  Item item(raw);
  unsigned char* buffer = nullptr;
  std::size_t capacity = 0;
  const std::size_t length = cbor_serialize_alloc(item.get(), &buffer, &capacity);
  if (length == 0) return Error("CBOR: serialization failed");
  Bytes out(buffer, buffer + length);
  free(buffer);
  return out;
}

std::int64_t tier_value(Tier tier) {
  switch (tier) {
    case Tier::kNone:
      return 0;
    case Tier::kAffirming:
      return 2;
    case Tier::kWarning:
      return 32;
    case Tier::kContraindicated:
      return 96;
  }
  return 0;
}

// Names the JSON form gives the claims the CBOR form carries under integer keys: a text key
// spelling one of them would mean the same claim twice.
constexpr std::array<std::string_view, 8> kClaimNames = {
    "eat_profile", "iat", "ear.verifier-id", "submods", "eat_nonce", "ear.raw-evidence",
    "exp",         "iss"};
constexpr std::array<std::string_view, 4> kAppraisalNames = {
    "ear.status", "ear.trustworthiness-vector", "ear.appraisal-policy-id",
    "ear.veraison.key-attestation"};

bool is_reserved(std::string_view name, std::span<const std::string_view> reserved) {
  return std::find(reserved.begin(), reserved.end(), name) != reserved.end();
}

// A JSON extension member's value as CBOR (RFC 8949 §6.2): null, booleans, integers, doubles,
// text, arrays and maps with text keys, maps in deterministic key order.
Result<cbor_item_t*> json_item(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return cbor_build_ctrl(CBOR_CTRL_NULL);
    case nlohmann::json::value_t::boolean:
      return cbor_build_bool(value.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return int_item(value.get<std::int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      return uint_item(value.get<std::uint64_t>());
    case nlohmann::json::value_t::number_float:
      return cbor_build_float8(value.get<double>());
    case nlohmann::json::value_t::string:
      return text_item(value.get_ref<const std::string&>());
    case nlohmann::json::value_t::array: {
      Item array(cbor_new_definite_array(value.size()));
      if (!array) return Error("CBOR: out of memory building an array");
      for (const auto& element : value) {
        CLOISTER_TRY(cbor_item_t * raw, json_item(element));
        const Item item(raw);  // cbor_array_push takes a reference of its own
        if (!item || !cbor_array_push(array.get(), item.get()))
          return Error("CBOR: out of memory building an array");
      }
      return array.release();
    }
    case nlohmann::json::value_t::object: {
      MapBuilder map;
      for (const auto& [name, member] : value.items()) {
        CLOISTER_TRY(cbor_item_t * item, json_item(member));
        map.add(name, item);
      }
      return map.build();
    }
    case nlohmann::json::value_t::binary:
    case nlohmann::json::value_t::discarded:
      break;
  }
  return Error("CBOR: a JSON value of type " + std::string(value.type_name()) +
               " has no CBOR form here");
}

Result<cbor_item_t*> appraisal_item(const std::string& name, const Appraisal& a) {
  if (a.key_attestation_akpub) {
    return Error("EAR CWT: submod " + name +
                 " has a key attestation, which the CBOR form does not carry");
  }
  MapBuilder m;
  for (const auto& [member, value] : a.extensions.items()) {
    CLOISTER_TRY(cbor_item_t * item, json_item(value));
    m.add(member, item);
  }
  m.add(key::kStatus, int_item(tier_value(a.status)));
  bool any = false;
  MapBuilder vector;
  for (std::size_t i = 0; i < kTrustClaimCount; ++i) {
    if (a.trust_vector[i]) {
      vector.add(i, int_item(*a.trust_vector[i]));
      any = true;
    }
  }
  if (any) {
    CLOISTER_TRY(cbor_item_t * v, vector.build());
    m.add(key::kTrustVector, v);
  }
  if (a.policy_id) m.add(key::kPolicyId, text_item(*a.policy_id));
  return m.build();
}

// Reading.
std::string key_name(std::uint64_t k) {
  return "key " + std::to_string(k);
}

Result<std::int64_t> read_int(const cbor_item_t* item, const std::string& where) {
  if (cbor_isa_uint(item)) {
    const std::uint64_t v = cbor_get_int(item);
    if (v > static_cast<std::uint64_t>(INT64_MAX)) return Error(where + ": integer out of range");
    return static_cast<std::int64_t>(v);
  }
  if (cbor_isa_negint(item)) {
    const std::uint64_t v = cbor_get_int(item);
    if (v > static_cast<std::uint64_t>(INT64_MAX)) return Error(where + ": integer out of range");
    return -1 - static_cast<std::int64_t>(v);
  }
  return Error(where + ": expected an integer");
}

Result<std::string> read_text(const cbor_item_t* item, const std::string& where) {
  if (!cbor_isa_string(item) || !cbor_string_is_definite(item)) {
    return Error(where + ": expected a definite-length text string");
  }
  return std::string(reinterpret_cast<const char*>(cbor_string_handle(item)),
                     cbor_string_length(item));
}

Result<Bytes> read_bytes(const cbor_item_t* item, const std::string& where) {
  if (!cbor_isa_bytestring(item) || !cbor_bytestring_is_definite(item)) {
    return Error(where + ": expected a definite-length byte string");
  }
  const unsigned char* data = cbor_bytestring_handle(item);
  return Bytes(data, data + cbor_bytestring_length(item));
}

Result<std::vector<cbor_pair>> read_map(const cbor_item_t* item, const std::string& where) {
  if (!cbor_isa_map(item) || !cbor_map_is_definite(item)) {
    return Error(where + ": expected a definite-length map");
  }
  const cbor_pair* pairs = cbor_map_handle(item);
  return std::vector<cbor_pair>(pairs, pairs + cbor_map_size(item));
}

Result<std::uint64_t> read_uint_key(const cbor_item_t* key, const std::string& where) {
  if (!cbor_isa_uint(key)) return Error(where + ": expected unsigned integer keys");
  return cbor_get_int(key);
}

// The inverse of json_item(), for extension members read back: refuses what JSON cannot carry
// (byte strings, tags, undefined, non-text map keys, indefinite lengths) and nesting deeper
// than kMaxJsonDepth; `where` names the value.
Result<nlohmann::json> json_value(const cbor_item_t* item, const std::string& where, int depth) {
  if (depth > kMaxJsonDepth) {
    return Error(where + ": nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  if (cbor_isa_uint(item)) return nlohmann::json(cbor_get_int(item));
  if (cbor_isa_negint(item)) {
    CLOISTER_TRY(const std::int64_t v, read_int(item, where));
    return nlohmann::json(v);
  }
  if (cbor_isa_string(item)) {
    CLOISTER_TRY(std::string text, read_text(item, where));
    return nlohmann::json(std::move(text));
  }
  if (cbor_isa_array(item)) {
    if (!cbor_array_is_definite(item)) return Error(where + ": expected a definite-length array");
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t i = 0; i < cbor_array_size(item); ++i) {
      CLOISTER_TRY(nlohmann::json element, json_value(cbor_array_handle(item)[i],
                                                      where + "/" + std::to_string(i), depth + 1));
      out.push_back(std::move(element));
    }
    return out;
  }
  if (cbor_isa_map(item)) {
    CLOISTER_TRY(const auto pairs, read_map(item, where));
    nlohmann::json out = nlohmann::json::object();
    for (const auto& p : pairs) {
      CLOISTER_TRY(const std::string name, read_text(p.key, where + ": a map key"));
      if (out.contains(name)) return Error(where + ": duplicate key \"" + name + "\"");
      CLOISTER_TRY(out[name], json_value(p.value, where + "/" + name, depth + 1));
    }
    return out;
  }
  if (cbor_isa_float_ctrl(item)) {
    if (cbor_float_ctrl_is_ctrl(item)) {
      if (cbor_is_null(item)) return nlohmann::json(nullptr);
      if (cbor_is_bool(item)) return nlohmann::json(cbor_get_bool(item));
      return Error(where + ": a simple value other than null, true and false");
    }
    const double v = cbor_float_get_float(item);
    if (!std::isfinite(v)) return Error(where + ": a number JSON cannot carry (NaN or infinite)");
    return nlohmann::json(v);
  }
  return Error(where + ": a byte string or tag, which JSON extensions cannot carry");
}

// Text-keyed members of a claims or appraisal map: the JSON extensions. Their values must be
// JSON (text strings are valid UTF-8: libcbor refuses to decode any that is not).
Status read_extension(const cbor_pair& p, const std::string& where,
                      std::span<const std::string_view> reserved, nlohmann::json& extensions) {
  CLOISTER_TRY(const std::string name, read_text(p.key, where));
  if (is_reserved(name, reserved)) {
    return Error(where + ": text key \"" + name +
                 "\" names a claim the CBOR form carries under its integer key");
  }
  if (extensions.contains(name)) return Error(where + ": duplicate key \"" + name + "\"");
  CLOISTER_TRY(nlohmann::json value, json_value(p.value, where + "/" + name, 1));
  extensions[name] = std::move(value);
  return {};
}

Result<Appraisal> read_appraisal(const cbor_item_t* item, const std::string& where) {
  CLOISTER_TRY(const auto pairs, read_map(item, where));
  Appraisal a;
  bool has_status = false;
  for (const auto& p : pairs) {
    if (cbor_isa_string(p.key)) {
      CLOISTER_CHECK_OK(read_extension(p, where, kAppraisalNames, a.extensions));
      continue;
    }
    CLOISTER_TRY(const std::uint64_t k, read_uint_key(p.key, where));
    const std::string at = where + "." + key_name(k);
    if (k == key::kStatus) {
      CLOISTER_TRY(const std::int64_t v, read_int(p.value, at));
      if (v != 0 && v != 2 && v != 32 && v != 96) {
        return Error(at + ": expected a tier (0, 2, 32 or 96), found " + std::to_string(v));
      }
      a.status = tier_of(static_cast<int>(v));
      has_status = true;
    } else if (k == key::kTrustVector) {
      CLOISTER_TRY(const auto claims, read_map(p.value, at));
      for (const auto& c : claims) {
        CLOISTER_TRY(const std::uint64_t index, read_uint_key(c.key, at));
        CLOISTER_TRY(const std::int64_t v, read_int(c.value, at + "." + key_name(index)));
        if (index >= kTrustClaimCount || v < -128 || v > 127) {
          return Error(at + "." + key_name(index) + ": not a trust claim in -128..127");
        }
        a.trust_vector[index] = static_cast<std::int8_t>(v);
      }
    } else if (k == key::kPolicyId) {
      CLOISTER_TRY(a.policy_id, read_text(p.value, at));
    } else {
      return Error(at + ": unknown appraisal claim");
    }
  }
  if (!has_status) return Error(where + ": missing ear.status (key 1000)");
  return a;
}

}  // namespace

Result<Bytes> claims_to_cbor(const Claims& c) {
  MapBuilder m;
  for (const auto& [member, value] : c.extensions.items()) {
    CLOISTER_TRY(cbor_item_t * item, json_item(value));
    m.add(member, item);
  }
  if (c.issuer) m.add(key::kIss, text_item(*c.issuer));
  if (c.expires_at) m.add(key::kExp, int_item(*c.expires_at));
  m.add(key::kIat, int_item(c.issued_at));
  if (c.nonce) m.add(key::kNonce, text_item(*c.nonce));
  m.add(key::kProfile, text_item(c.profile));
  MapBuilder submods;
  for (const auto& [name, appraisal] : c.submods) {
    CLOISTER_TRY(cbor_item_t * item, appraisal_item(name, appraisal));
    submods.add(name, item);
  }
  CLOISTER_TRY(cbor_item_t * submods_item, submods.build());
  m.add(key::kSubmods, submods_item);
  if (c.raw_evidence) {
    CLOISTER_TRY(const Bytes raw, from_base64url(*c.raw_evidence));
    m.add(key::kRawEvidence, bytes_item(raw));
  }
  MapBuilder verifier;
  verifier.add(std::uint64_t{0}, text_item(c.verifier_developer));
  verifier.add(std::uint64_t{1}, text_item(c.verifier_build));
  CLOISTER_TRY(cbor_item_t * verifier_item, verifier.build());
  m.add(key::kVerifierId, verifier_item);
  CLOISTER_TRY(cbor_item_t * map, m.build());
  return serialize(map);
}

Result<Claims> claims_from_cbor(ByteView cbor) {
  if (declares_more_than_it_holds(cbor)) {
    return Error("EAR CWT payload: an array or map declares more elements than the input holds");
  }
  cbor_load_result result;
  Item root(cbor_load(cbor.data(), cbor.size(), &result));
  if (!root || result.read != cbor.size()) return Error("EAR CWT payload: not one CBOR item");
  constexpr std::string_view at = "EAR CWT payload";
  CLOISTER_TRY(const auto pairs, read_map(root.get(), std::string(at)));
  Claims c;
  bool has_profile = false, has_iat = false, has_verifier = false, has_submods = false;
  for (const auto& p : pairs) {
    if (cbor_isa_string(p.key)) {
      CLOISTER_CHECK_OK(read_extension(p, std::string(at), kClaimNames, c.extensions));
      continue;
    }
    CLOISTER_TRY(const std::uint64_t k, read_uint_key(p.key, std::string(at)));
    const std::string where = std::string(at) + "." + key_name(k);
    switch (k) {
      case key::kIss: {
        CLOISTER_TRY(c.issuer, read_text(p.value, where));
        break;
      }
      case key::kExp: {
        CLOISTER_TRY(c.expires_at, read_int(p.value, where));
        break;
      }
      case key::kIat: {
        CLOISTER_TRY(c.issued_at, read_int(p.value, where));
        has_iat = true;
        break;
      }
      case key::kNonce: {
        CLOISTER_TRY(c.nonce, read_text(p.value, where));
        break;
      }
      case key::kProfile: {
        CLOISTER_TRY(c.profile, read_text(p.value, where));
        has_profile = true;
        break;
      }
      case key::kSubmods: {
        CLOISTER_TRY(const auto submods, read_map(p.value, where));
        for (const auto& s : submods) {
          CLOISTER_TRY(const std::string name, read_text(s.key, where));
          CLOISTER_TRY(c.submods[name], read_appraisal(s.value, where + "." + name));
        }
        has_submods = !submods.empty();
        break;
      }
      case key::kRawEvidence: {
        CLOISTER_TRY(const Bytes raw, read_bytes(p.value, where));
        c.raw_evidence = to_base64url(raw);
        break;
      }
      case key::kVerifierId: {
        CLOISTER_TRY(const auto ids, read_map(p.value, where));
        for (const auto& id : ids) {
          CLOISTER_TRY(const std::uint64_t idk, read_uint_key(id.key, where));
          if (idk > 1) return Error(where + "." + key_name(idk) + ": unknown verifier-id member");
          CLOISTER_TRY(const std::string value, read_text(id.value, where + "." + key_name(idk)));
          (idk == 0 ? c.verifier_developer : c.verifier_build) = value;
        }
        has_verifier = ids.size() == 2;
        break;
      }
      default:
        return Error(where + ": unknown EAR claim");
    }
  }
  if (!has_profile) return Error("EAR CWT payload: missing eat_profile (key 265)");
  if (!has_iat) return Error("EAR CWT payload: missing iat (key 6)");
  if (!has_verifier) {
    return Error("EAR CWT payload: missing ear.verifier-id (key 1004) with developer and build");
  }
  if (!has_submods) return Error("EAR CWT payload: missing or empty submods (key 266)");
  return c;
}

Bytes es384_protected_header() {
  // {1: -35}: a map of one pair, key 0x01, value negint 34 (0x38 0x22).
  return Bytes{0xa1, 0x01, 0x38, static_cast<std::uint8_t>(kEs384NegintValue)};
}

Result<Bytes> sig_structure(ByteView protected_header, ByteView payload) {
  cbor_item_t* array = cbor_new_definite_array(4);
  if (!array || !cbor_array_push(array, cbor_move(text_item("Signature1"))) ||
      !cbor_array_push(array, cbor_move(bytes_item(protected_header))) ||
      !cbor_array_push(array, cbor_move(bytes_item({}))) ||
      !cbor_array_push(array, cbor_move(bytes_item(payload)))) {
    if (array) cbor_decref(&array);
    return Error("CBOR: out of memory building Sig_structure");
  }
  return serialize(array);
}

Result<Bytes> cose_sign1(ByteView protected_header, std::string_view kid, ByteView payload,
                         ByteView signature) {
  MapBuilder unprotected;
  unprotected.add(kCoseKid, bytes_item(as_bytes(kid)));
  CLOISTER_TRY(cbor_item_t * unprotected_item, unprotected.build());
  cbor_item_t* array = cbor_new_definite_array(4);
  if (!array || !cbor_array_push(array, cbor_move(bytes_item(protected_header))) ||
      !cbor_array_push(array, cbor_move(unprotected_item)) ||
      !cbor_array_push(array, cbor_move(bytes_item(payload))) ||
      !cbor_array_push(array, cbor_move(bytes_item(signature)))) {
    if (array) cbor_decref(&array);
    return Error("CBOR: out of memory building COSE_Sign1");
  }
  return serialize(cbor_build_tag(kCoseSign1Tag, cbor_move(array)));
}

Result<CoseSign1> parse_cose_sign1(ByteView bytes) {
  if (bytes.size() > kMaxCoseSize) {
    return Error("COSE_Sign1: " + std::to_string(bytes.size()) + " bytes, above the limit of " +
                 std::to_string(kMaxCoseSize));
  }
  // Tag 18 in its one-byte form (0xd2) is read here: libcbor 0.8's decoder refuses tags 6-20,
  // unassigned when it was written.
  if (bytes.empty() || bytes[0] != kCoseSign1TagByte) return Error("COSE_Sign1: expected tag 18");
  if (declares_more_than_it_holds(bytes.subspan(1))) {
    return Error("COSE_Sign1: an array or map declares more elements than the input holds");
  }
  cbor_load_result result;
  Item array(cbor_load(bytes.data() + 1, bytes.size() - 1, &result));
  if (!array || result.read != bytes.size() - 1) return Error("COSE_Sign1: not one CBOR item");
  if (!cbor_isa_array(array.get()) || !cbor_array_is_definite(array.get()) ||
      cbor_array_size(array.get()) != 4) {
    return Error("COSE_Sign1: expected an array of 4 items");
  }
  cbor_item_t** items = cbor_array_handle(array.get());
  CoseSign1 out;
  CLOISTER_TRY(out.protected_header, read_bytes(items[0], "COSE_Sign1.protected"));
  if (out.protected_header != es384_protected_header()) {
    return Error("COSE_Sign1.protected: expected exactly {1: -35} (ES384)");
  }
  CLOISTER_TRY(const auto unprotected, read_map(items[1], "COSE_Sign1.unprotected"));
  bool has_kid = false;
  for (const auto& p : unprotected) {
    if (cbor_isa_uint(p.key) && cbor_get_int(p.key) == kCoseKid) {
      CLOISTER_TRY(const Bytes kid, read_bytes(p.value, "COSE_Sign1.unprotected.kid"));
      out.kid.assign(kid.begin(), kid.end());
      has_kid = true;
    } else if (cbor_isa_uint(p.key) && cbor_get_int(p.key) == kCoseAlg) {
      return Error("COSE_Sign1.unprotected: alg must be in the protected header");
    }
  }
  if (!has_kid) return Error("COSE_Sign1.unprotected: missing kid (4)");
  CLOISTER_TRY(out.payload, read_bytes(items[2], "COSE_Sign1.payload"));
  CLOISTER_TRY(out.signature, read_bytes(items[3], "COSE_Sign1.signature"));
  return out;
}

}  // namespace cloister::service::ear::cbor
