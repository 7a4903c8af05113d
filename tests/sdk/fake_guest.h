// A fake VMM vsock socket with a guest behind it, for tests of the guest-evidence client: a
// thread listens on a UNIX socket, takes one connection, reads the "CONNECT <port>\n" line,
// answers as told, reads the 64-byte REPORT_DATA and writes the stream the test builds from it,
// a few bytes at a time.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "cloister/common/bytes.h"

namespace cloister::testing {

// The guest side of the protocol: the stream header, then {kind, length, bytes} frames.
Bytes evidence_stream(const std::vector<std::pair<std::uint32_t, Bytes>>& frames);
// Just a frame (or a frame header when `bytes` is shorter than `length`).
Bytes evidence_frame(std::uint32_t kind, std::uint32_t length, const Bytes& bytes);

class FakeGuest {
 public:
  struct Behavior {
    // Written after "CONNECT <port>\n"; empty: close instead (no guest listens on the port).
    std::string answer = "OK 1024\n";
    // The guest's stream for the REPORT_DATA it received.
    std::function<Bytes(const std::array<std::uint8_t, 64>&)> stream;
    // After the stream, keep the connection open until the client closes it.
    bool hold_open = false;
  };

  explicit FakeGuest(Behavior behavior);
  ~FakeGuest();
  FakeGuest(const FakeGuest&) = delete;
  FakeGuest& operator=(const FakeGuest&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // What the client sent; waits for the exchange to end (call after the client returned).
  std::string connect_line();
  std::array<std::uint8_t, 64> report_data();

 private:
  void serve(int listener);

  std::filesystem::path path_;
  Behavior behavior_;
  std::thread thread_;
  std::string connect_line_;
  std::array<std::uint8_t, 64> report_data_{};
};

}  // namespace cloister::testing
