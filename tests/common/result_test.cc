#include "cloister/common/result.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "cloister/common/fd.h"

namespace cloister {
namespace {

TEST(ErrorCodeTest, WordsAloneAreARefusedInput) {
  EXPECT_EQ(Error("nonce: expected 44 characters, found 3").code(), ErrorCode::kInvalidArgument);
}

TEST(ErrorCodeTest, ContextKeepsTheCode) {
  const Error e = Error(ErrorCode::kUnavailable, "KDS answered 503").with_context("VCEK");
  EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(e.message(), "VCEK: KDS answered 503");
  EXPECT_STREQ(to_string(e.code()), "unavailable");
}

TEST(ErrorCodeTest, OsErrorsCarryTheCodeOfTheirErrno) {
  EXPECT_EQ(os_error("open", ENOENT).code(), ErrorCode::kNotFound);
  EXPECT_EQ(os_error("open", EACCES).code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(os_error("connect", ECONNREFUSED).code(), ErrorCode::kUnavailable);
  EXPECT_EQ(os_error("read", EIO).code(), ErrorCode::kInternal);
  EXPECT_EQ(os_error("open", ENOENT).message(), "open: No such file or directory (errno 2)");
}

}  // namespace
}  // namespace cloister
