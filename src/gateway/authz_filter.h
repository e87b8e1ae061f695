#pragma once
// AuthzFilter: what the caller may use. After authn (the tenant) and decode (the model), the tenant's model
// allow-list from the store decides: a model outside it is answered as OpenAI answers a model the key cannot
// see — 404 model_not_found, "does not exist or you do not have access to it" — so the list does not leak
// which models exist. Every denial goes to the audit log (tenant, key prefix, model, request id). The
// allow-lists are re-read from the store every limits_ttl_ms (one query for all tenants), so a change made
// with `hearth admin tenant update` takes effect within that time on every replica.
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/metrics.h"
#include "gateway/filter.h"
#include "gateway/record_writer.h"
#include "store/store.h"

namespace hearth::gateway {

struct AuthzConfig {
  int limits_ttl_ms = 5000;
};

class AuthzFilter final : public Filter {
 public:
  AuthzFilter(AuthzConfig config, store::Store& store, RecordWriter& records, Registry& metrics);
  const char* name() const override { return "authz"; }
  std::optional<Rejection> on_request(RequestContext& ctx) override;

  // The tenant's allow-list (null = every model); fails when the store cannot be read.
  using ModelList = std::shared_ptr<const std::vector<std::string>>;
  Result<ModelList> allowed_models(const std::string& tenant);

 private:
  const AuthzConfig config_;
  store::Store& store_;
  RecordWriter& records_;
  CounterFamily* denials_;
  std::mutex mu_;
  std::map<std::string, ModelList> models_;  // tenant -> allow-list (tenants without one: absent)
  Clock::time_point read_at_{};
};

}  // namespace hearth::gateway
