#include "support/vectors.h"

#include <cstdlib>

#include "cloister/common/file.h"

namespace cloister::testing {

std::optional<std::filesystem::path> vectors_dir() {
  for (const char* var : {"CLOISTER_VECTORS", "CLOISTER_VECTORS_DEFAULT"}) {
    const char* value = std::getenv(var);
    if (value != nullptr && *value != '\0') {
      std::filesystem::path dir(value);
      if (std::filesystem::is_directory(dir)) return dir;
      if (std::string(var) == "CLOISTER_VECTORS") return std::nullopt;
    }
  }
  return std::nullopt;
}

std::optional<std::filesystem::path> vector_path(const std::string& relative) {
  auto dir = vectors_dir();
  if (!dir) return std::nullopt;
  auto path = *dir / relative;
  if (!std::filesystem::exists(path)) return std::nullopt;
  return path;
}

Bytes read_vector(const std::filesystem::path& path) {
  auto bytes = read_file(path, kTestFileLimit);
  if (!bytes) {
    ADD_FAILURE() << bytes.error().message();
    return {};
  }
  return std::move(bytes).value();
}

std::string vectors_missing_message(const std::string& relative) {
  const char* env = std::getenv("CLOISTER_VECTORS");
  const char* def = std::getenv("CLOISTER_VECTORS_DEFAULT");
  return "shared test vector '" + relative +
         "' not found (looked in $CLOISTER_VECTORS=" + (env ? env : "<unset>") +
         ", then CLOISTER_VECTORS_DIR=" + (def ? def : "<unset>") +
         "); check out ../shared beside the repository or point CLOISTER_VECTORS at it";
}

}  // namespace cloister::testing
