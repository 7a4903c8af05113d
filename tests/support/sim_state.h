// The simulated secure processor's state directory all test binaries of a build tree share
// (<build>/tests/sim-state): its RSA-4096 hierarchies are generated once, by whichever test gets
// there first, and reused by every other test and process (StateDir serialises them).
#pragma once

#include <filesystem>
#include <string>

#include "cloister/attestation/sim/state_dir.h"

namespace cloister::testing {

// Opens the shared state directory; aborts the test binary with the reason if it cannot.
const attestation::sim::StateDir& shared_sim_state();

// A second simulated host (its own hierarchies), inside the shared one: <sim-state>/second-host.
const attestation::sim::StateDir& second_sim_host_state();

// A path for a state directory of this test's own (for tests of first use, permissions and
// corruption): <sim-state>/scratch/<name>-<pid>, absent at first and removed when destroyed.
class ScratchSimPath {
 public:
  explicit ScratchSimPath(const std::string& name);
  ~ScratchSimPath();
  ScratchSimPath(const ScratchSimPath&) = delete;
  ScratchSimPath& operator=(const ScratchSimPath&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace cloister::testing
