// Input files a tool must refuse without reading them whole: devices, FIFOs, directories, files
// beyond their format's limit. Each tool's CLI test hands them to the real binary and expects exit
// status 2 with the limit named; none of them costs memory or time to create.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "cloister/common/bytes.h"
#include "cloister/common/file.h"

namespace cloister::testing {

class HostileFiles {
 public:
  // A fresh directory under the system temporary directory, removed with the object.
  HostileFiles();
  ~HostileFiles();
  HostileFiles(const HostileFiles&) = delete;
  HostileFiles& operator=(const HostileFiles&) = delete;

  // A FIFO nobody writes to: opening it for reading blocks unless the reader says O_NONBLOCK.
  std::filesystem::path fifo() const { return dir_ / "fifo"; }
  // A directory.
  std::filesystem::path directory() const { return dir_ / "directory"; }
  // A sparse file of `size` bytes (ftruncate): it occupies no disk blocks.
  std::filesystem::path sparse(const std::string& name, std::uint64_t size) const;
  // A sparse file one byte larger than `limit` allows.
  std::filesystem::path over(const std::string& name, const FileLimit& limit) const {
    return sparse(name, limit.max_bytes + 1);
  }
  // A regular file holding `data`.
  std::filesystem::path file(const std::string& name, ByteView data) const;

 private:
  std::filesystem::path dir_;
};

// The words every refusal of an oversized file ends with: "larger than the 1 MiB <format>".
std::string refusal(const FileLimit& limit);

}  // namespace cloister::testing
