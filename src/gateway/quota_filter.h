#pragma once
// QuotaFilter: per-tenant limits from the store — requests per minute, tokens per minute, token budgets
// (in total, per UTC day, per UTC calendar month) and money budgets (per day, per month; costs from the
// store's price book) — plus a gateway-wide cap on concurrent requests per tenant. A request reserves before
// it is forwarded, atomically under the tenant's lock: one request slot, tokens = its prompt estimate +
// max_tokens, and money = what that many tokens cost at the model's price. On completion the reservation is
// reconciled with the usage the upstream reported, and the request's cost (at the price it was admitted
// with) goes to ctx.cost_micros for its usage record. So a burst of concurrent requests can never overspend
// a budget: each one's worst case is held until it finishes.
//   rpm / tpm: token buckets refilled continuously (capacity one minute's worth); refusals carry
//     Retry-After (seconds until the bucket holds enough) and x-ratelimit-* headers.
//   budgets: refused with 429 insufficient_quota; a daily or monthly one carries Retry-After (seconds until
//     the window resets: waiting helps), the total one does not. In-flight reservations made before a
//     window reset count against the new window until they finish (conservative).
//   A tenant with a money budget may only use priced models (403 model_not_priced otherwise).
// Two modes. Local (the default with SQLite): each replica keeps the buckets, reservations and concurrency
// counts in memory and reads budget usage from the store (every replica's finished requests) every
// limits_ttl_ms. Shared (`shared`, the default with PostgreSQL): each admission is one store transaction
// under a per-tenant lock (Store::quota_transaction) that reads every replica's usage totals, in-flight holds
// and rate-limit buckets, so the limits hold across replicas exactly; a request's hold is released by the
// transaction that writes its usage record, or lapses after hold_ttl_s (a replica that died mid-request).
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/metrics.h"
#include "gateway/filter.h"
#include "store/store.h"

namespace hearth::gateway {

struct QuotaConfig {
  int max_concurrent_per_tenant = 0;  // 0 = unlimited
  int limits_ttl_ms = 5000;           // tenant limits, prices and budget usage are re-read this often
  bool shared = false;                // admit through the store (consistent across gateway replicas)
  int hold_ttl_s = 3600;              // shared mode: an unreleased hold lapses after this
};

// The store's price book, re-read every ttl_ms (thread-safe).
class PriceBook {
 public:
  PriceBook(store::Store& store, int ttl_ms) : store_(store), ttl_ms_(ttl_ms) {}
  // The model's price; nullopt when it has none. Fails only when the store cannot be read.
  Result<std::optional<store::Price>> find(const std::string& model);

 private:
  store::Store& store_;
  const int ttl_ms_;
  std::mutex mu_;
  std::map<std::string, store::Price> prices_;
  Clock::time_point read_at_{};
};

using store::calendar_windows;
using store::CalendarWindows;

class QuotaFilter final : public Filter {
 public:
  QuotaFilter(QuotaConfig config, store::Store& store, Registry& metrics);
  const char* name() const override { return "quota"; }
  std::optional<Rejection> on_request(RequestContext& ctx) override;
  void on_complete(RequestContext& ctx) override;
  // Shared mode, for a tenant with limits (or not read yet): a store transaction.
  bool may_block(const RequestContext& ctx) const override;

 private:
  // One budget: what finished requests used in its window (from the store at refresh, then counted here)
  // and what requests in flight hold.
  struct Budget {
    int64_t window_start = -1;  // ms; -1: not read yet (0 for the total budget)
    int64_t used = 0;
    int64_t reserved = 0;
  };
  struct TenantState {
    std::mutex mu;
    store::TenantLimits limits;
    Clock::time_point limits_at{};
    double rpm_tokens = 0, tpm_tokens = 0;  // bucket levels
    Clock::time_point refilled{};
    Budget total, tokens_day, tokens_month, money_day, money_month;
    int concurrent = 0;
  };
  // A tenant's numbers at admission, whichever mode holds them: bucket levels after refill, requests in
  // flight, and per budget (total, tokens day, tokens month, money day, money month) what finished requests
  // used and what requests in flight hold.
  struct Snapshot {
    double rpm_level = 0, tpm_level = 0;
    int64_t concurrent = 0;
    int64_t used[5] = {}, reserved[5] = {};
  };
  // The verdict on one request (pure: shared mode may decide more than once per request).
  struct Verdict {
    const char* reason = nullptr;  // null: admitted; else "concurrency", "rpm", "tpm", "budget"
    std::string message;
    double retry_after_s = 0;
    std::vector<std::pair<std::string, std::string>> headers;  // x-ratelimit-*
  };
  Verdict decide(const RequestContext& ctx, const store::TenantLimits& l, const Snapshot& s, int64_t want,
                 int64_t want_micros, const std::optional<store::Price>& price, int64_t wall_ms) const;
  std::optional<Rejection> admit_shared(RequestContext& ctx, TenantState& st, int64_t want,
                                        int64_t want_micros, const std::optional<store::Price>& price,
                                        int64_t wall_ms);

  std::shared_ptr<TenantState> state_of(const std::string& tenant);
  Status refresh(const std::string& tenant, TenantState& st, Clock::time_point now, int64_t wall_ms);
  Rejection reject(RequestContext& ctx, const char* reason, std::string message, double retry_after_s);

  const QuotaConfig config_;
  store::Store& store_;
  PriceBook prices_;
  CounterFamily* rejections_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<TenantState>> tenants_;
};

}  // namespace hearth::gateway
