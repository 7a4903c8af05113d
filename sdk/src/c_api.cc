#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <map>

#include "cloister/cloister.h"
#include "cloister/common/json.h"
#include "cloister/sdk/verifier.h"

struct cloister_verifier {
  cloister::sdk::Verifier verifier;
};

namespace {

char* duplicate(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out != nullptr) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

cloister::Bytes copy(const cloister_bytes& b) {
  return b.data == nullptr ? cloister::Bytes() : cloister::Bytes(b.data, b.data + b.len);
}

// {"error": message}; never throws, so it may answer for an exception too.
int invalid(char** out, const std::string& message) noexcept {
  if (out == nullptr) return CLOISTER_EINVAL;
  try {
    *out = duplicate(cloister::dump_json(nlohmann::json{{"error", message}}));
  } catch (const std::exception&) {
    *out = duplicate(R"({"error": "out of memory"})");
  }
  return CLOISTER_EINVAL;
}

// cloister_verifier_new() once its arguments are checked; may throw (allocation only).
int new_verifier(const char* options_json, cloister_verifier** out, char** error) {
  cloister::sdk::VerifierOptions options;
  if (options_json != nullptr) {
    auto doc = cloister::parse_json_strict(options_json, "options");
    if (!doc || !doc->is_object()) {
      if (error != nullptr) {
        *error = duplicate(doc ? std::string("options: not a JSON object") : doc.error().message());
      }
      return CLOISTER_EINVAL;
    }
    for (const auto& [key, value] : doc->items()) {
      if (key == "cache_dir" && value.is_string()) {
        options.cache_dir = value.get<std::string>();
      } else if (key == "online" && value.is_boolean()) {
        options.online = value.get<bool>();
      } else if (key == "kds_url" && value.is_string()) {
        options.kds_url = value.get<std::string>();
      } else if (key == "pcs_url" && value.is_string()) {
        options.pcs_url = value.get<std::string>();
      } else {
        static const std::map<std::string, const char*> kTypes = {{"cache_dir", "string"},
                                                                  {"online", "boolean"},
                                                                  {"kds_url", "string"},
                                                                  {"pcs_url", "string"}};
        const auto known = kTypes.find(key);
        if (error != nullptr)
          *error = duplicate(known == kTypes.end()
                                 ? "options: unknown key '" + key +
                                       "' (expected cache_dir, online, kds_url, pcs_url)"
                                 : "options: " + key + ": expected a " + known->second +
                                       ", found " + value.type_name());
        return CLOISTER_EINVAL;
      }
    }
  }
  *out = new cloister_verifier{cloister::sdk::Verifier(std::move(options))};
  return CLOISTER_PASS;
}

}  // namespace

extern "C" {

int cloister_verifier_new(const char* options_json, cloister_verifier** out, char** error) {
  if (error != nullptr) *error = nullptr;
  if (out == nullptr) return CLOISTER_EINVAL;
  try {
    return new_verifier(options_json, out, error);
  } catch (const std::exception& e) {  // allocation failure: it must not cross the C boundary
    if (error != nullptr) *error = duplicate(e.what());
    return CLOISTER_EINVAL;
  }
}

void cloister_verifier_free(cloister_verifier* verifier) {
  delete verifier;
}

int cloister_verify(const cloister_verifier* verifier, const cloister_verify_request* request,
                    char** verdict_json) {
  if (verdict_json == nullptr) return CLOISTER_EINVAL;
  *verdict_json = nullptr;
  if (verifier == nullptr || request == nullptr)
    return invalid(verdict_json, "verifier and request must not be NULL");
  if (request->struct_size < CLOISTER_VERIFY_REQUEST_V1_SIZE)
    return invalid(verdict_json, "request.struct_size is smaller than any request version");
  // A field added after 0.1 is read only when the caller's struct has it.
  auto has = [&](std::size_t offset, std::size_t size) {
    return request->struct_size >= offset + size;
  };
  try {
    cloister::sdk::VerifyRequest r;
    r.evidence = copy(request->evidence);
    for (std::size_t i = 0; i < request->certificate_count; ++i)
      r.certificates.push_back(copy(request->certificates[i]));
    for (std::size_t i = 0; i < request->crl_count; ++i) r.crls.push_back(copy(request->crls[i]));
    if (request->cert_table.data != nullptr) r.cert_table = copy(request->cert_table);
    if (request->policy_json != nullptr) {
      auto policy = cloister::policy::parse_policy(request->policy_json);
      if (!policy) return invalid(verdict_json, policy.error().message());
      r.policy = std::move(policy).value();
    }
    if (request->product != nullptr) r.product = request->product;
    if (request->time != 0) r.time = request->time;
    if (has(offsetof(cloister_verify_request, tee), sizeof request->tee) && request->tee != nullptr)
      r.tee = request->tee;
    if (has(offsetof(cloister_verify_request, collateral_count),
            sizeof request->collateral_count)) {
      for (std::size_t i = 0; i < request->collateral_count; ++i)
        r.collateral.push_back(copy(request->collateral[i]));
    }
    if (has(offsetof(cloister_verify_request, event_log), sizeof request->event_log) &&
        request->event_log.data != nullptr)
      r.event_log = copy(request->event_log);
    if (has(offsetof(cloister_verify_request, tpm_quote_count), sizeof request->tpm_quote_count)) {
      for (std::size_t i = 0; i < request->tpm_quote_count; ++i)
        r.tpm_quote.push_back(copy(request->tpm_quote[i]));
    }
    if (has(offsetof(cloister_verify_request, nonce), sizeof request->nonce) &&
        request->nonce.data != nullptr) {
      if (request->nonce.len == 0)  // would check an empty extraData and call it fresh
        return invalid(verdict_json,
                       "request.nonce: empty; pass {NULL, 0} to leave freshness unchecked");
      r.nonce = copy(request->nonce);
    }
    auto verdict = verifier->verifier.verify(r);
    if (!verdict) return invalid(verdict_json, verdict.error().message());
    *verdict_json = duplicate(cloister::dump_json(verdict->to_json()));
    return verdict->passed() ? CLOISTER_PASS : CLOISTER_FAIL;
  } catch (const std::exception& e) {  // allocation failure: it must not cross the C boundary
    return invalid(verdict_json, e.what());
  }
}

void cloister_free(void* p) {
  std::free(p);
}

const char* cloister_version(void) {
  return CLOISTER_VERSION;
}

}  // extern "C"
