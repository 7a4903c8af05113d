#include "support/sim_state.h"

#include <unistd.h>

namespace cloister::testing {

const attestation::sim::StateDir& shared_sim_state() {
  static const attestation::sim::StateDir state =
      attestation::sim::StateDir::open(CLOISTER_SIM_STATE_DIR).value();
  return state;
}

const attestation::sim::StateDir& second_sim_host_state() {
  static const attestation::sim::StateDir state =
      attestation::sim::StateDir::open(shared_sim_state().root() / "second-host").value();
  return state;
}

ScratchSimPath::ScratchSimPath(const std::string& name)
    : path_(shared_sim_state().root() / "scratch" / (name + "-" + std::to_string(::getpid()))) {
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_.parent_path());
}

ScratchSimPath::~ScratchSimPath() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace cloister::testing
