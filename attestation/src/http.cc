#include "cloister/attestation/http.h"

#include <curl/curl.h>
#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

namespace cloister::attestation {
namespace {

// The libcurl entry points we use, resolved once.
struct Curl {
  CURLcode (*global_init)(long);
  CURL* (*easy_init)();
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_perform)(CURL*);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  void (*easy_cleanup)(CURL*);
  void (*easy_reset)(CURL*);
  const char* (*easy_strerror)(CURLcode);
  curl_slist* (*slist_append)(curl_slist*, const char*);
  void (*slist_free_all)(curl_slist*);
};

Result<const Curl*> load_curl() {
  static std::once_flag once;
  static Curl curl;
  static std::string error;
  std::call_once(once, [] {
    void* lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      error = std::string("cannot load libcurl.so.4 for online fetching (install libcurl4): ") +
              dlerror();
      return;
    }
    auto sym = [&](const char* name) {
      void* p = dlsym(lib, name);
      if (p == nullptr) error = std::string("libcurl.so.4 lacks ") + name;
      return p;
    };
    curl.global_init = reinterpret_cast<decltype(curl.global_init)>(sym("curl_global_init"));
    curl.easy_init = reinterpret_cast<decltype(curl.easy_init)>(sym("curl_easy_init"));
    curl.easy_setopt = reinterpret_cast<decltype(curl.easy_setopt)>(sym("curl_easy_setopt"));
    curl.easy_perform = reinterpret_cast<decltype(curl.easy_perform)>(sym("curl_easy_perform"));
    curl.easy_getinfo = reinterpret_cast<decltype(curl.easy_getinfo)>(sym("curl_easy_getinfo"));
    curl.easy_cleanup = reinterpret_cast<decltype(curl.easy_cleanup)>(sym("curl_easy_cleanup"));
    curl.easy_reset = reinterpret_cast<decltype(curl.easy_reset)>(sym("curl_easy_reset"));
    curl.easy_strerror = reinterpret_cast<decltype(curl.easy_strerror)>(sym("curl_easy_strerror"));
    curl.slist_append = reinterpret_cast<decltype(curl.slist_append)>(sym("curl_slist_append"));
    curl.slist_free_all =
        reinterpret_cast<decltype(curl.slist_free_all)>(sym("curl_slist_free_all"));
    if (error.empty() && curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      error = "curl_global_init failed";
  });
  if (!error.empty()) return Error(error);
  return &curl;
}

struct Transfer {
  HttpResponse response;
  std::size_t limit = 0;
  bool too_large = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::size_t n = size * count;
  if (t->response.body.size() + n > t->limit) {
    t->too_large = true;
    return 0;
  }
  t->response.body.insert(t->response.body.end(), data, data + n);
  return n;
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::size_t n = size * count;
  std::string line(data, n);
  std::string lower;
  for (char c : line) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (auto colon = line.find(':'); colon != std::string::npos && colon > 0) {
    std::string value = line.substr(colon + 1);
    auto first = value.find_first_not_of(" \t\r\n");
    auto last = value.find_last_not_of(" \t\r\n");
    t->response.headers[lower.substr(0, colon)] =
        first == std::string::npos ? std::string() : value.substr(first, last - first + 1);
  }
  if (lower.rfind("retry-after:", 0) == 0) {
    std::string value = line.substr(12);
    std::size_t i = value.find_first_not_of(" \t");
    if (i != std::string::npos && std::isdigit(static_cast<unsigned char>(value[i])))
      t->response.retry_after_seconds = std::stol(value.substr(i, 9));
  }
  return n;
}

class CurlHttpClient : public HttpClient {
 public:
  CurlHttpClient(const Curl* curl, HttpClientOptions options) : curl_(curl), options_(options) {}
  ~CurlHttpClient() override {
    if (kept_ != nullptr) curl_->easy_cleanup(kept_);
  }

  Result<HttpResponse> get(const std::string& url) override {
    return send(HttpRequest{"GET", url, {}, {}});
  }

  Result<HttpResponse> send(const HttpRequest& request) override {
    const std::string what = request.method + " " + request.url;
    // With keep_alive one handle (and so its connection cache) serves every request in turn.
    std::unique_lock<std::mutex> kept_lock(kept_mutex_, std::defer_lock);
    CURL* handle = nullptr;
    if (options_.keep_alive) {
      kept_lock.lock();
      if (kept_ == nullptr)
        kept_ = curl_->easy_init();
      else
        curl_->easy_reset(kept_);
      handle = kept_;
    } else {
      handle = curl_->easy_init();
    }
    if (handle == nullptr) return Error(ErrorCode::kInternal, "curl_easy_init failed");
    Transfer transfer;
    transfer.limit = options_.max_body_bytes;
    curl_slist* headers = nullptr;
    for (const auto& h : request.headers) headers = curl_->slist_append(headers, h.c_str());
    curl_->easy_setopt(handle, CURLOPT_URL, request.url.c_str());
    if (request.method == "GET") {
      if (options_.follow_redirects) {
        curl_->easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 1L);
        curl_->easy_setopt(handle, CURLOPT_MAXREDIRS, 5L);
      }
    } else {
      curl_->easy_setopt(handle, CURLOPT_CUSTOMREQUEST, request.method.c_str());
      curl_->easy_setopt(handle, CURLOPT_POSTFIELDS, request.body.data());
      curl_->easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(request.body.size()));
    }
    if (headers != nullptr) curl_->easy_setopt(handle, CURLOPT_HTTPHEADER, headers);
    if (!options_.ca_file.empty()) {
      curl_->easy_setopt(handle, CURLOPT_CAINFO, options_.ca_file.c_str());
      // Only that file: libcurl would also trust its built-in CA directory (/etc/ssl/certs).
      curl_->easy_setopt(handle, CURLOPT_CAPATH, static_cast<const char*>(nullptr));
    }
    if (options_.https_only) {
      curl_->easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "https");
      curl_->easy_setopt(handle, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    }
    curl_->easy_setopt(handle, CURLOPT_TIMEOUT, options_.timeout_seconds);
    curl_->easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
    curl_->easy_setopt(handle, CURLOPT_USERAGENT, "cloister/0.1");
    curl_->easy_setopt(handle, CURLOPT_WRITEFUNCTION, &on_body);
    curl_->easy_setopt(handle, CURLOPT_WRITEDATA, &transfer);
    curl_->easy_setopt(handle, CURLOPT_HEADERFUNCTION, &on_header);
    curl_->easy_setopt(handle, CURLOPT_HEADERDATA, &transfer);
    CURLcode rc = curl_->easy_perform(handle);
    long status = 0;
    char* content_type = nullptr;
    curl_->easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status);
    curl_->easy_getinfo(handle, CURLINFO_CONTENT_TYPE, &content_type);
    if (content_type != nullptr) transfer.response.content_type = content_type;
    if (!options_.keep_alive) curl_->easy_cleanup(handle);
    curl_->slist_free_all(headers);
    if (transfer.too_large) {
      return Error(
          ErrorCode::kInvalidArgument,
          what + ": response larger than " + std::to_string(options_.max_body_bytes) + " bytes");
    }
    if (rc != CURLE_OK) {
      return Error(ErrorCode::kUnavailable, what + ": " + curl_->easy_strerror(rc));
    }
    transfer.response.status = status;
    return std::move(transfer.response);
  }

 private:
  const Curl* curl_;
  HttpClientOptions options_;
  std::mutex kept_mutex_;
  CURL* kept_ = nullptr;
};

}  // namespace

Result<HttpResponse> get_with_retry(HttpClient& http, const std::string& url,
                                    const RetryPolicy& policy) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(policy.deadline_seconds);
  std::string last;
  const int attempts = std::max(1, policy.max_attempts);
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    auto response = http.get(url);
    long wait = 1L << (attempt - 1);
    if (!response) {
      last = response.error().message();
    } else if (response->status == 200) {
      if (response->body.empty()) return Error("GET " + url + ": empty response body");
      return std::move(response).value();
    } else if (response->status == 429 || response->status >= 500) {
      last = "GET " + url + ": HTTP " + std::to_string(response->status) +
             (response->status == 429 ? " (" + policy.service + " rate limit)" : "");
      if (response->retry_after_seconds) wait = *response->retry_after_seconds;
    } else {
      return Error("GET " + url + ": HTTP " + std::to_string(response->status) +
                   (response->status == 404 && !policy.not_found_hint.empty()
                        ? " (" + policy.not_found_hint + ")"
                        : ""));
    }
    if (attempt == attempts) break;
    const auto pause = std::chrono::seconds(std::clamp(wait, 0L, policy.max_retry_wait_seconds));
    if (std::chrono::steady_clock::now() + pause > deadline) {
      return Error(last + " (gave up after " + std::to_string(attempt) + " of " +
                   std::to_string(attempts) + " attempts: waiting " +
                   std::to_string(pause.count()) + " s more would pass the " +
                   std::to_string(policy.deadline_seconds) + " s deadline)");
    }
    std::this_thread::sleep_for(pause);
  }
  return Error(last + " (gave up after " + std::to_string(attempts) + " attempts)");
}

struct FetchGroup::Flight {
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  std::optional<Result<HttpResponse>> result;
  std::size_t waiters = 0;  // guarded by FetchGroup::mutex_
};

FetchGroup::FetchGroup(std::shared_ptr<HttpClient> http) : http_(std::move(http)) {}

Result<HttpResponse> FetchGroup::get(const std::string& url, const RetryPolicy& policy) {
  std::shared_ptr<Flight> flight;
  std::shared_ptr<HttpClient> http;
  bool leader = false;
  {
    std::lock_guard lock(mutex_);
    if (!http_) {
      CLOISTER_TRY(auto client, make_http_client());
      http_ = std::move(client);
    }
    http = http_;
    auto [it, inserted] = in_flight_.try_emplace(url);
    if (inserted) it->second = std::make_shared<Flight>();
    flight = it->second;
    leader = inserted;
    if (!leader) ++flight->waiters;
  }
  if (!leader) {
    std::unique_lock lock(flight->mutex);
    flight->done_cv.wait(lock, [&] { return flight->done; });
    return *flight->result;
  }
  Result<HttpResponse> result = get_with_retry(*http, url, policy);
  {
    std::lock_guard lock(mutex_);
    in_flight_.erase(url);
  }
  {
    std::lock_guard lock(flight->mutex);
    flight->result = result;
    flight->done = true;
  }
  flight->done_cv.notify_all();
  return result;
}

std::size_t FetchGroup::waiters(const std::string& url) const {
  std::lock_guard lock(mutex_);
  auto it = in_flight_.find(url);
  return it == in_flight_.end() ? 0 : it->second->waiters;
}

Result<std::unique_ptr<HttpClient>> make_http_client(const HttpClientOptions& options) {
  CLOISTER_TRY(const Curl* curl, load_curl());
  return std::unique_ptr<HttpClient>(std::make_unique<CurlHttpClient>(curl, options));
}

}  // namespace cloister::attestation
