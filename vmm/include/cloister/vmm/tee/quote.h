// TDX quotes for guests: TDG.VP.VMCALL<GetQuote> (GHCI 1.5) hands the VMM a shared buffer with
// a TDREPORT; a quote provider turns the TDREPORT into a quote; the VMM writes the quote back
// and the guest, which polls the buffer's status, reads it (research/vmm.md §a.7, §b.1).
//
// Providers: Intel's Quote Generation Service (QGS) over its socket protocol (as QEMU's
// quote-generation-socket), and the simulated Quoting Enclave of sim-tdx. The buffer format
// and its checks live here once for both TDX backends.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"
#include "cloister/vmm/log.h"
#include "cloister/vmm/memory/guest_memory.h"

namespace cloister::vmm {

class QuoteProvider {
 public:
  virtual ~QuoteProvider() = default;
  // The quote for `tdreport` (a 1024-byte TDREPORT_STRUCT), within `timeout`.
  virtual Result<Bytes> get_quote(ByteView tdreport, std::chrono::milliseconds timeout) = 0;
  virtual std::string describe() const = 0;  // "QGS at unix:/run/qgs.sock"
  // The socket(2) families get_quote() creates sockets in: what the quote worker's seccomp
  // filter permits. None by default.
  virtual std::vector<int> socket_families() const { return {}; }
};

// Intel QGS (DCAP's qgs, tdx-qgs) through attestation::tdx::QgsClient: `address` is unix:PATH,
// vsock:CID:PORT or HOST:PORT (resolved here, once); its worker may create sockets of the
// address's family only.
Result<std::unique_ptr<QuoteProvider>> qgs_quote_provider(const std::string& address);

// The GHCI GetQuote shared buffer: {u64 version = 1, u64 status, u32 in_len, u32 out_len,
// data[]}, at most this many bytes (QEMU's TDX_GET_QUOTE_MAX_BUF_LEN).
inline constexpr std::uint64_t kGetQuoteBufferMax = 128 * 1024;
inline constexpr std::size_t kGetQuoteHeaderSize = 24;
inline constexpr std::size_t kTdReportSize = 1024;
inline constexpr std::uint64_t kGetQuoteStatusSuccess = 0;
inline constexpr std::uint64_t kGetQuoteStatusInFlight = ~0ull;
inline constexpr std::uint64_t kGetQuoteStatusError = 0x8000000000000000ull;
inline constexpr std::uint64_t kGetQuoteStatusServiceUnavailable = 0x8000000000000001ull;

// Checks the guest's buffer at [gpa, gpa + size): 4 KiB aligned, within the limit, in guest
// RAM, version 1, in_len = 1024. Returns the TDREPORT.
Result<Bytes> read_get_quote_request(const GuestMemory& memory, std::uint64_t gpa,
                                     std::uint64_t size);

// Writes the outcome: the quote and SUCCESS, or `failure_status` with out_len 0. A quote that
// does not fit the buffer is an error. The status is written last, so a guest polling it never
// sees a partial quote.
void write_get_quote_result(const GuestMemory& memory, std::uint64_t gpa, std::uint64_t size,
                            const Result<Bytes>& quote, std::uint64_t failure_status);

// Serves GetQuote asynchronously, as hardware TDX guests expect: submit() validates the buffer,
// marks it IN_FLIGHT and queues it; one worker asks the provider and writes the result. At most
// kMaxInFlight requests wait; more are refused with RETRY. The destructor waits for the
// request in progress (each is bounded by the provider timeout) and drops the queued ones.
// With `sandbox`, the worker runs under the kQuote seccomp filter, which permits sockets in the
// provider's families only; start() returns once it is installed.
class GetQuoteService {
 public:
  static constexpr std::size_t kMaxInFlight = 16;
  static constexpr std::chrono::seconds kTimeout{30};  // the Linux guest driver's deadline

  static Result<std::unique_ptr<GetQuoteService>> start(const GuestMemory& memory,
                                                        std::unique_ptr<QuoteProvider> provider,
                                                        Logger& log, bool sandbox);
  ~GetQuoteService();
  GetQuoteService(const GetQuoteService&) = delete;
  GetQuoteService& operator=(const GetQuoteService&) = delete;

  // The TDVMCALL status for the guest: SUCCESS (queued), INVALID_OPERAND (bad buffer) or
  // RETRY (too many requests in flight).
  std::uint64_t submit(std::uint64_t gpa, std::uint64_t size);
  const QuoteProvider& provider() const { return *provider_; }

 private:
  struct Job {
    std::uint64_t gpa;
    std::uint64_t size;
    Bytes tdreport;
  };
  GetQuoteService(const GuestMemory& memory, std::unique_ptr<QuoteProvider> provider, Logger& log)
      : memory_(memory), provider_(std::move(provider)), log_(log) {}
  void work();

  const GuestMemory& memory_;
  std::unique_ptr<QuoteProvider> provider_;
  Logger& log_;
  RepeatBudget refusals_;  // the guest can repeat a refused request at will
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

// TDVMCALL status codes (GHCI 1.5; Linux arch/x86/include/asm/shared/tdx.h).
inline constexpr std::uint64_t kTdvmcallSuccess = 0;
inline constexpr std::uint64_t kTdvmcallRetry = 1;
inline constexpr std::uint64_t kTdvmcallInvalidOperand = 0x8000000000000000ull;

}  // namespace cloister::vmm
