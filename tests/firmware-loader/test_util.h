// Small helpers shared by the firmware-loader tests.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "cloister/common/result.h"
#include "cloister/firmware_loader/ovmf.h"
#include "ovmf_builder.h"

namespace cloister::testing {

// The error message of a failed Result, or "<no error>" so a HasSubstr assertion fails.
template <typename T>
std::string error_of(const Result<T>& r) {
  return r.ok() ? std::string("<no error>") : r.error().message();
}

// Parses a built image, failing the test if the parser rejects it.
inline fw::OvmfImage image_of(const OvmfImageBuilder& builder) {
  auto image = fw::OvmfImage::parse(builder.shared());
  EXPECT_TRUE(image.ok()) << image.error().message();
  return std::move(image).value();
}

}  // namespace cloister::testing
