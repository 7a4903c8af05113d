#include "cloister/vmm/tee/quote.h"

#include <atomic>

#include "cloister/attestation/tdx/qgs.h"
#include "cloister/common/hex.h"
#include "cloister/vmm/seccomp/seccomp.h"

namespace cloister::vmm {
namespace {

class QgsProvider final : public QuoteProvider {
 public:
  explicit QgsProvider(attestation::tdx::QgsClient client) : client_(std::move(client)) {}

  Result<Bytes> get_quote(ByteView tdreport, std::chrono::milliseconds timeout) override {
    return client_.get_quote(tdreport, timeout);
  }
  std::string describe() const override { return "QGS at " + client_.address(); }
  std::vector<int> socket_families() const override { return {client_.socket_family()}; }

 private:
  attestation::tdx::QgsClient client_;
};

}  // namespace

Result<std::unique_ptr<QuoteProvider>> qgs_quote_provider(const std::string& address) {
  CLOISTER_TRY(auto client, attestation::tdx::QgsClient::create(address));
  return std::unique_ptr<QuoteProvider>(new QgsProvider(std::move(client)));
}

Result<Bytes> read_get_quote_request(const GuestMemory& memory, std::uint64_t gpa,
                                     std::uint64_t size) {
  const std::string what =
      "GetQuote buffer at GPA " + hex_number(gpa) + " (" + hex_number(size) + " bytes)";
  if (gpa % 4096 != 0 || size % 4096 != 0 || size == 0 || size > kGetQuoteBufferMax)
    return Error(what + ": expected 4 KiB aligned, a multiple of 4 KiB and at most " +
                 hex_number(kGetQuoteBufferMax) + " bytes (GHCI GetQuote)");
  CLOISTER_TRY(auto buffer, memory.view(gpa, size, Access::kWrite, what));
  const std::uint64_t version = load_le64(buffer, 0);
  const std::uint32_t in_len = load_le32(buffer, 16);
  if (version != 1) return Error(what + ": version " + std::to_string(version) + ", expected 1");
  if (in_len != kTdReportSize)
    return Error(what + ": in_len " + std::to_string(in_len) + ", expected a " +
                 std::to_string(kTdReportSize) + "-byte TDREPORT");
  const auto report = buffer.subspan(kGetQuoteHeaderSize, kTdReportSize);
  return Bytes(report.begin(), report.end());
}

void write_get_quote_result(const GuestMemory& memory, std::uint64_t gpa, std::uint64_t size,
                            const Result<Bytes>& quote, std::uint64_t failure_status) {
  auto view = memory.view(gpa, size, Access::kWrite, "GetQuote buffer");
  if (!view) return;  // validated when the request came in; the guest cannot remap RAM
  std::span<std::uint8_t> buffer = *view;
  std::uint64_t status = failure_status;
  std::uint32_t out_len = 0;
  if (quote && quote->size() <= size - kGetQuoteHeaderSize) {
    std::copy(quote->begin(), quote->end(), buffer.begin() + kGetQuoteHeaderSize);
    out_len = static_cast<std::uint32_t>(quote->size());
    status = kGetQuoteStatusSuccess;
  }
  for (int i = 0; i < 4; ++i) buffer[20 + i] = static_cast<std::uint8_t>(out_len >> (8 * i));
  std::atomic_thread_fence(std::memory_order_release);
  std::atomic_ref<std::uint64_t> status_field(*reinterpret_cast<std::uint64_t*>(buffer.data() + 8));
  status_field.store(status, std::memory_order_release);
}

Result<std::unique_ptr<GetQuoteService>> GetQuoteService::start(
    const GuestMemory& memory, std::unique_ptr<QuoteProvider> provider, Logger& log, bool sandbox) {
  SeccompScope scope;
  scope.socket_families = provider->socket_families();
  std::unique_ptr<GetQuoteService> service(new GetQuoteService(memory, std::move(provider), log));
  CLOISTER_TRY(service->worker_,
               start_sandboxed_thread(ThreadClass::kQuote, sandbox, std::move(scope),
                                      [s = service.get()] { s->work(); }));
  return service;
}

GetQuoteService::~GetQuoteService() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

std::uint64_t GetQuoteService::submit(std::uint64_t gpa, std::uint64_t size) {
  auto report = read_get_quote_request(memory_, gpa, size);
  if (!report) {
    refusals_.log(log_, LogLevel::kWarn, "tdx.get_quote_refused", report.error().message());
    return kTdvmcallInvalidOperand;
  }
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= kMaxInFlight) return kTdvmcallRetry;
    write_get_quote_result(memory_, gpa, size, Error("in flight"), kGetQuoteStatusInFlight);
    queue_.push_back({gpa, size, std::move(*report)});
  }
  cv_.notify_one();
  return kTdvmcallSuccess;
}

void GetQuoteService::work() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    const auto started = std::chrono::steady_clock::now();
    auto quote = provider_->get_quote(job.tdreport, kTimeout);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
    if (quote && quote->size() > job.size - kGetQuoteHeaderSize)
      quote =
          Error("the " + std::to_string(quote->size()) + "-byte quote does not fit the guest's " +
                std::to_string(job.size) + "-byte buffer");
    if (quote)
      log_.info("tdx.quote", "quote delivered to the guest",
                {{"bytes", quote->size()}, {"ms", ms}, {"provider", provider_->describe()}});
    else
      refusals_.log(log_, LogLevel::kWarn, "tdx.quote_failed", quote.error().message(),
                    {{"ms", ms}});
    write_get_quote_result(memory_, job.gpa, job.size, quote, kGetQuoteStatusError);
  }
}

}  // namespace cloister::vmm
