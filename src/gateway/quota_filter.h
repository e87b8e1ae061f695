#pragma once
// QuotaFilter: per-tenant limits from the store — requests per minute, tokens per minute, a token budget —
// plus a gateway-wide cap on concurrent requests per tenant. A request reserves before it is forwarded,
// atomically under the tenant's lock: one request slot, and tokens = its prompt estimate + max_tokens. On
// completion the reservation is reconciled with the usage the upstream reported. So a burst of concurrent
// requests can never overspend a budget: each one's worst case is held until it finishes.
//   rpm / tpm: token buckets refilled continuously (capacity one minute's worth); refusals carry
//     Retry-After (seconds until the bucket holds enough) and x-ratelimit-* headers.
//   budget_tokens: total tokens since the tenant was created (the store's usage records + what is in
//     flight); refused with 429 insufficient_quota, no Retry-After (waiting does not help).
// This replica's view: with several gateway replicas each enforces the limits on its own traffic; a shared
// budget across replicas reads the store's usage (refreshed every limits_ttl_ms).
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/metrics.h"
#include "gateway/filter.h"
#include "store/store.h"

namespace hearth::gateway {

struct QuotaConfig {
  int max_concurrent_per_tenant = 0;  // 0 = unlimited
  int limits_ttl_ms = 5000;           // tenant limits and budget usage are re-read this often
};

class QuotaFilter final : public Filter {
 public:
  QuotaFilter(QuotaConfig config, store::Store& store, Registry& metrics);
  const char* name() const override { return "quota"; }
  std::optional<Rejection> on_request(RequestContext& ctx) override;
  void on_complete(RequestContext& ctx) override;

 private:
  struct TenantState {
    std::mutex mu;
    store::TenantLimits limits;
    Clock::time_point limits_at{};
    double rpm_tokens = 0, tpm_tokens = 0;  // bucket levels
    Clock::time_point refilled{};
    int64_t budget_used = 0;      // finished requests' tokens (from the store at refresh, then counted here)
    int64_t budget_reserved = 0;  // in flight
    int concurrent = 0;
  };
  std::shared_ptr<TenantState> state_of(const std::string& tenant);
  Status refresh(const std::string& tenant, TenantState& st, Clock::time_point now);
  Rejection reject(RequestContext& ctx, const char* reason, std::string message, double retry_after_s);

  const QuotaConfig config_;
  store::Store& store_;
  CounterFamily* rejections_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<TenantState>> tenants_;
};

}  // namespace hearth::gateway
