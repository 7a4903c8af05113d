// A Store that forwards to another and watches the audit chain: it counts the records appended
// and the appends that failed, and with `refuse_audit` set it fails every append as a full
// disk or a lost database connection would (kUnavailable), without touching the store beneath.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cloister/service/store.h"

namespace cloister::service::testing {

class ObservedStore final : public Store {
 public:
  explicit ObservedStore(std::shared_ptr<Store> inner) : inner_(std::move(inner)) {}

  std::atomic<bool> refuse_audit{false};
  std::atomic<std::size_t> appended{0};
  std::atomic<std::size_t> failed_appends{0};

  Result<bool> consume_nonce(const std::string& nonce, UnixTime expires_at, UnixTime now) override {
    return inner_->consume_nonce(nonce, expires_at, now);
  }
  Status put_policy(const std::string& id, const std::string& document) override {
    return inner_->put_policy(id, document);
  }
  Result<std::string> get_policy(const std::string& id) override { return inner_->get_policy(id); }
  Result<std::vector<std::string>> list_policies() override { return inner_->list_policies(); }
  Status delete_policy(const std::string& id) override { return inner_->delete_policy(id); }
  Status put_resource(const std::string& path, const StoredResource& resource) override {
    return inner_->put_resource(path, resource);
  }
  Result<StoredResource> get_resource(const std::string& path) override {
    return inner_->get_resource(path);
  }
  Result<std::vector<std::string>> list_resources() override { return inner_->list_resources(); }
  Status delete_resource(const std::string& path) override { return inner_->delete_resource(path); }
  Result<audit::Head> append_audit(const audit::Record& record) override {
    auto head = refuse_audit ? Result<audit::Head>(Error(ErrorCode::kUnavailable,
                                                         "audit store: no space left on device"))
                             : inner_->append_audit(record);
    if (head) {
      ++appended;
    } else {
      ++failed_appends;
    }
    return head;
  }
  Result<AuditExport> export_audit() override { return inner_->export_audit(); }
  Result<std::string> claim_setting(const std::string& name, const std::string& value) override {
    return inner_->claim_setting(name, value);
  }

 private:
  std::shared_ptr<Store> inner_;
};

}  // namespace cloister::service::testing
