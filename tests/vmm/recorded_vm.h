// Where the tests of the KVM layer start: the KVM implementation under test over the recording
// ioctl layer (kvm_recorder.h), with one VM created, and the recorded payloads read back as the
// structs they carry.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "cloister/vmm/hypervisor/kvm.h"
#include "kvm_recorder.h"

namespace cloister::testing {

// open_kvm() over `recorder` and a VM created with `options`. A failure of either is a test
// failure naming the error, and leaves the pointers it could not fill null.
struct RecordedVm {
  explicit RecordedVm(KvmRecorder& recorder, const vmm::VmOptions& options = {}) {
    auto opened = vmm::open_kvm("/dev/kvm", recorder);
    EXPECT_TRUE(opened.ok()) << opened.error().message();
    if (!opened.ok()) return;
    hypervisor = std::move(opened).value();
    auto created = hypervisor->create_vm(options);
    EXPECT_TRUE(created.ok()) << created.error().message();
    if (created.ok()) vm = std::move(created).value();
  }
  std::unique_ptr<vmm::Hypervisor> hypervisor;
  std::unique_ptr<vmm::Vm> vm;
};

// A recorded call's payload as T; a payload of another size is a test failure naming the call.
template <typename T>
T payload_as(const RecordedCall& call) {
  T value{};
  EXPECT_EQ(call.payload.size(), sizeof value) << call.name;
  std::memcpy(&value, call.payload.data(), std::min(call.payload.size(), sizeof value));
  return value;
}

}  // namespace cloister::testing
