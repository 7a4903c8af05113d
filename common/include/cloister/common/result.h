// Errors as values. Library functions that can fail return Result<T> (a value or an Error) and
// never let exceptions cross a public boundary.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace cloister {

// What kind of failure an Error is, for machines: HTTP statuses and exit codes map from the code,
// never from the message text. The names follow the usual RPC status vocabulary.
enum class ErrorCode {
  kInvalidArgument,     // the input is malformed or refused (exit 2, HTTP 400)
  kNotFound,            // what was asked for does not exist (HTTP 404)
  kUnavailable,         // a peer or resource cannot be reached now; retrying may help (HTTP 503)
  kFailedPrecondition,  // the request is well-formed but the state forbids it (HTTP 409)
  kUnimplemented,       // the operation is not supported (HTTP 501)
  kPermissionDenied,    // the caller is not allowed (HTTP 401/403)
  kInternal,            // anything else (HTTP 500)
};

// The lower-case name of a code ("invalid_argument", …), for logs and JSON error bodies.
constexpr const char* to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kFailedPrecondition:
      return "failed_precondition";
    case ErrorCode::kUnimplemented:
      return "unimplemented";
    case ErrorCode::kPermissionDenied:
      return "permission_denied";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "internal";
}

// A failure described in words (which check or field, what was expected, what was found) and
// by a code. An Error made from words alone has the code kInvalidArgument: most failures in
// this project are refusals of input.
class Error {
 public:
  explicit Error(std::string message) : message_(std::move(message)) {}
  Error(ErrorCode code, std::string message) : message_(std::move(message)), code_(code) {}

  const std::string& message() const { return message_; }
  ErrorCode code() const { return code_; }

  // Returns a copy whose message is prefixed with `context: `, for adding where the failure
  // happened ("VCEK certificate: …") as an error travels up. The code is kept.
  Error with_context(const std::string& context) const {
    return Error(code_, context + ": " + message_);
  }

 private:
  std::string message_;
  ErrorCode code_ = ErrorCode::kInvalidArgument;
};

namespace detail {
[[noreturn]] inline void result_misuse(const char* what, const std::string& message) {
  std::fprintf(stderr, "cloister: %s: %s\n", what, message.c_str());
  std::abort();
}
}  // namespace detail

// Holds either a T or an Error. Reading value() of an error (or error() of a value) is a
// programming error and aborts.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    if (!ok()) detail::result_misuse("value() of a failed Result", error().message());
    return std::get<0>(state_);
  }
  const T& value() const& {
    if (!ok()) detail::result_misuse("value() of a failed Result", error().message());
    return std::get<0>(state_);
  }
  // By value, so that `for (auto& x : f().value())` never refers into a destroyed temporary.
  T value() && {
    if (!ok()) detail::result_misuse("value() of a failed Result", error().message());
    return std::get<0>(std::move(state_));
  }
  const Error& error() const {
    if (ok()) detail::result_misuse("error() of a successful Result", "");
    return std::get<1>(state_);
  }

  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T operator*() && { return std::move(*this).value(); }

 private:
  std::variant<T, Error> state_;
};

// Success or an Error, for operations without a value.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT: implicit

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const {
    if (ok()) detail::result_misuse("error() of a successful Result", "");
    return error_;
  }

 private:
  Error error_{""};
  bool failed_ = false;
};

using Status = Result<void>;

}  // namespace cloister

#define CLOISTER_CONCAT_INNER(a, b) a##b
#define CLOISTER_CONCAT(a, b) CLOISTER_CONCAT_INNER(a, b)

// CLOISTER_TRY(auto x, expr): evaluates expr (a Result); on error returns the error from the
// enclosing function, otherwise declares `x` holding the value.
#define CLOISTER_TRY(decl, expr)                             \
  auto CLOISTER_CONCAT(cloister_try_, __LINE__) = (expr);    \
  if (!CLOISTER_CONCAT(cloister_try_, __LINE__))             \
    return CLOISTER_CONCAT(cloister_try_, __LINE__).error(); \
  decl = std::move(CLOISTER_CONCAT(cloister_try_, __LINE__)).value()

// CLOISTER_CHECK_OK(expr): evaluates expr (a Status) and returns its error, if any.
#define CLOISTER_CHECK_OK(expr)                                                             \
  do {                                                                                      \
    if (auto cloister_status_ = (expr); !cloister_status_) return cloister_status_.error(); \
  } while (false)
