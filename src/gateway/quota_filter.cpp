#include "gateway/quota_filter.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/log.h"

namespace hearth::gateway {

namespace {

int64_t wall_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The reservation a request holds against one budget, or its refusal.
struct BudgetCheck {
  const char* what;   // "token budget", "daily token budget", ...
  int64_t limit;      // 0: off
  int64_t want;       // this request's worst case
  bool money;         // amounts are micro-units
  int64_t resets_ms;  // 0: never (the total budget)
};

}  // namespace

Result<std::optional<store::Price>> PriceBook::find(const std::string& model) {
  const Clock::time_point now = Clock::now();
  std::lock_guard lk(mu_);
  if (read_at_ == Clock::time_point{} || now - read_at_ >= std::chrono::milliseconds(ttl_ms_)) {
    HEARTH_ASSIGN_OR_RETURN(auto all, store_.list_prices());
    prices_.clear();
    for (auto& p : all) prices_[p.model] = std::move(p);
    read_at_ = now;
  }
  auto it = prices_.find(model);
  if (it == prices_.end()) return std::optional<store::Price>();
  return std::optional<store::Price>(it->second);
}

QuotaFilter::QuotaFilter(QuotaConfig config, store::Store& store, Registry& metrics)
    : config_(config), store_(store), prices_(store, config.limits_ttl_ms) {
  rejections_ = metrics
                    .counter("hearth_gateway_quota_rejections",
                             "Requests refused by a quota, by tenant and reason.", {"tenant", "reason"})
                    .value();
}

std::shared_ptr<QuotaFilter::TenantState> QuotaFilter::state_of(const std::string& tenant) {
  std::lock_guard lk(mu_);
  auto& s = tenants_[tenant];
  if (!s) s = std::make_shared<TenantState>();
  return s;
}

// Under st.mu: the tenant's limits and its budgets' usage from the store; a window that has moved on
// starts again from the store's count (in-flight reservations carry over).
Status QuotaFilter::refresh(const std::string& tenant, TenantState& st, Clock::time_point now,
                            int64_t wall_ms) {
  const CalendarWindows w = calendar_windows(wall_ms);
  const bool rolled =
      st.tokens_day.window_start != w.day_start_ms || st.money_day.window_start != w.day_start_ms ||
      st.tokens_month.window_start != w.month_start_ms || st.money_month.window_start != w.month_start_ms;
  if (!rolled && st.limits_at != Clock::time_point{} &&
      now - st.limits_at < std::chrono::milliseconds(config_.limits_ttl_ms))
    return Status::ok();
  HEARTH_ASSIGN_OR_RETURN(auto tenants, store_.list_tenants());
  const bool first = st.limits_at == Clock::time_point{};
  for (const auto& t : tenants)
    if (t.name == tenant) st.limits = t.limits;
  const store::TenantLimits& l = st.limits;
  // The store counts every replica's finished requests; ours are in it once written.
  const auto read = [&](Budget& b, int64_t limit, int64_t start, bool money) -> Status {
    if (b.window_start != start) {
      b.window_start = start;
      b.used = 0;
    }
    if (limit <= 0 || config_.shared) return Status::ok();  // shared mode reads usage in each admission
    HEARTH_ASSIGN_OR_RETURN(int64_t used,
                            money ? store_.money_used(tenant, start) : store_.tokens_used(tenant, start));
    b.used = std::max(b.used, used);
    return Status::ok();
  };
  HEARTH_RETURN_IF_ERROR(read(st.total, l.budget_tokens, 0, false));
  HEARTH_RETURN_IF_ERROR(read(st.tokens_day, l.budget_tokens_day, w.day_start_ms, false));
  HEARTH_RETURN_IF_ERROR(read(st.tokens_month, l.budget_tokens_month, w.month_start_ms, false));
  HEARTH_RETURN_IF_ERROR(read(st.money_day, l.budget_money_day, w.day_start_ms, true));
  HEARTH_RETURN_IF_ERROR(read(st.money_month, l.budget_money_month, w.month_start_ms, true));
  if (first) {  // full buckets
    st.rpm_tokens = static_cast<double>(st.limits.rpm);
    st.tpm_tokens = static_cast<double>(st.limits.tpm);
    st.refilled = now;
  }
  st.limits_at = now;
  return Status::ok();
}

Rejection QuotaFilter::reject(RequestContext& ctx, const char* reason, std::string message,
                              double retry_after_s) {
  rejections_->labels({ctx.tenant, reason}).inc();
  const bool budget = std::string(reason) == "budget";
  Rejection r;
  r.status = 429;
  r.message = std::move(message);
  r.code = budget ? "insufficient_quota" : "rate_limit_exceeded";
  r.type = budget ? "insufficient_quota" : "requests";
  if (retry_after_s > 0)
    r.headers.emplace_back("Retry-After", std::to_string(static_cast<int64_t>(std::ceil(retry_after_s))));
  for (auto& h : ctx.response_headers) r.headers.push_back(h);
  return r;
}

QuotaFilter::Verdict QuotaFilter::decide(const RequestContext& ctx, const store::TenantLimits& l,
                                         const Snapshot& s, int64_t want, int64_t want_micros,
                                         const std::optional<store::Price>& price, int64_t wall_ms) const {
  Verdict v;
  if (l.rpm > 0) {
    v.headers.emplace_back("x-ratelimit-limit-requests", std::to_string(l.rpm));
    v.headers.emplace_back("x-ratelimit-remaining-requests",
                           std::to_string(std::max<int64_t>(0, static_cast<int64_t>(s.rpm_level) - 1)));
  }
  if (l.tpm > 0) {
    v.headers.emplace_back("x-ratelimit-limit-tokens", std::to_string(l.tpm));
    v.headers.emplace_back("x-ratelimit-remaining-tokens",
                           std::to_string(std::max<int64_t>(0, static_cast<int64_t>(s.tpm_level) - want)));
  }
  if (config_.max_concurrent_per_tenant > 0 && s.concurrent >= config_.max_concurrent_per_tenant) {
    v.reason = "concurrency";
    v.message =
        fmt::format("tenant '{}' has {} requests in flight, the most allowed", ctx.tenant, s.concurrent);
    v.retry_after_s = 1;
    return v;
  }
  if (l.rpm > 0 && s.rpm_level < 1.0) {
    v.reason = "rpm";
    v.message = fmt::format("tenant '{}' is over its {} requests per minute", ctx.tenant, l.rpm);
    v.retry_after_s = (1.0 - s.rpm_level) * 60.0 / static_cast<double>(l.rpm);
    return v;
  }
  if (l.tpm > 0) {
    if (want > l.tpm) {
      v.reason = "tpm";
      v.message = fmt::format(
          "this request may use {} tokens (prompt ~{} + max_tokens {}), more than tenant '{}''s {} tokens "
          "per "
          "minute: lower max_tokens",
          want, ctx.info.prompt_estimate, ctx.info.max_tokens, ctx.tenant, l.tpm);
      return v;
    }
    if (s.tpm_level < static_cast<double>(want)) {
      v.reason = "tpm";
      v.message = fmt::format("tenant '{}' is over its {} tokens per minute", ctx.tenant, l.tpm);
      v.retry_after_s = (static_cast<double>(want) - s.tpm_level) * 60.0 / static_cast<double>(l.tpm);
      return v;
    }
  }
  const CalendarWindows w = calendar_windows(wall_ms);
  const BudgetCheck checks[5] = {
      {"token budget", l.budget_tokens, want, false, 0},
      {"daily token budget", l.budget_tokens_day, want, false, w.day_end_ms},
      {"monthly token budget", l.budget_tokens_month, want, false, w.month_end_ms},
      {"daily budget", l.budget_money_day, want_micros, true, w.day_end_ms},
      {"monthly budget", l.budget_money_month, want_micros, true, w.month_end_ms},
  };
  for (int i = 0; i < 5; ++i) {
    const BudgetCheck& c = checks[i];
    if (c.limit <= 0 || s.used[i] + s.reserved[i] + c.want <= c.limit) continue;
    const auto amount = [&](int64_t x) {
      return c.money ? fmt::format("{} {}", store::format_money(x), price ? price->currency : "")
                     : fmt::format("{} tokens", x);
    };
    std::string resets;
    if (c.resets_ms > 0) {
      using namespace std::chrono;
      const year_month_day ymd(floor<days>(sys_time<milliseconds>(milliseconds(c.resets_ms))));
      resets = fmt::format("; it resets at {:04d}-{:02d}-{:02d} 00:00 UTC", static_cast<int>(ymd.year()),
                           static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
    }
    v.reason = "budget";
    v.message = fmt::format(
        "tenant '{}' would exceed its {} of {} ({} used, {} reserved by requests in flight, this one may use "
        "{}){}",
        ctx.tenant, c.what, amount(c.limit), amount(s.used[i]), amount(s.reserved[i]), amount(c.want),
        resets);
    v.retry_after_s = c.resets_ms > 0 ? static_cast<double>(c.resets_ms - wall_ms) / 1000.0 : 0.0;
    return v;
  }
  return v;
}

bool QuotaFilter::may_block(const RequestContext& ctx) const {
  if (!config_.shared) return false;
  if (config_.max_concurrent_per_tenant > 0) return true;
  std::shared_ptr<TenantState> sp;
  {
    std::lock_guard lk(mu_);
    auto it = tenants_.find(ctx.tenant);
    if (it == tenants_.end()) return true;  // limits not read yet
    sp = it->second;
  }
  std::lock_guard lk(sp->mu);
  const store::TenantLimits& l = sp->limits;
  return sp->limits_at == Clock::time_point{} || l.rpm > 0 || l.tpm > 0 || l.budget_tokens > 0 ||
         l.budget_tokens_day > 0 || l.budget_tokens_month > 0 || l.budget_money_day > 0 ||
         l.budget_money_month > 0;
}

std::optional<Rejection> QuotaFilter::on_request(RequestContext& ctx) {
  auto sp = state_of(ctx.tenant);
  TenantState& st = *sp;
  const Clock::time_point now = Clock::now();
  const int64_t wall_ms = wall_now_ms();
  std::unique_lock lk(st.mu);
  if (Status s = refresh(ctx.tenant, st, now, wall_ms); !s.is_ok()) {
    HEARTH_LOG_ERROR("gateway: tenant limits of '{}' not readable: {}", ctx.tenant, s.to_string());
    return unavailable("the gateway cannot read this tenant's limits right now; retry shortly");
  }
  const store::TenantLimits l = st.limits;
  const int64_t want = ctx.info.prompt_estimate + ctx.info.max_tokens;
  // Money: the model's price (a tenant with a money budget cannot use an unpriced model).
  std::optional<store::Price> price;
  int64_t want_micros = 0;
  {
    auto p = prices_.find(ctx.info.model);
    if (!p.is_ok()) {
      HEARTH_LOG_ERROR("gateway: the price book is not readable: {}", p.status().to_string());
      return unavailable("the gateway cannot read its price book right now; retry shortly");
    }
    price = std::move(*p);
    if (price)
      want_micros = store::request_cost_micros(*price, ctx.info.prompt_estimate, 0, ctx.info.max_tokens);
  }
  if ((l.budget_money_day > 0 || l.budget_money_month > 0) && !price) {
    rejections_->labels({ctx.tenant, "unpriced"}).inc();
    Rejection r;
    r.status = 403;
    r.type = "invalid_request_error";
    r.code = "model_not_priced";
    r.message = fmt::format(
        "tenant '{}' has a money budget and model '{}' has no price in the gateway's price book "
        "(hearth admin price set)",
        ctx.tenant, ctx.info.model);
    return r;
  }
  if (config_.shared) {
    lk.unlock();  // the store's tenant lock orders admissions; this replica's lock need not be held
    return admit_shared(ctx, st, want, want_micros, price, wall_ms);
  }
  const double dt = std::chrono::duration<double>(now - st.refilled).count();
  st.refilled = now;
  if (l.rpm > 0)
    st.rpm_tokens = std::min<double>(static_cast<double>(l.rpm), st.rpm_tokens + dt * l.rpm / 60.0);
  if (l.tpm > 0)
    st.tpm_tokens = std::min<double>(static_cast<double>(l.tpm), st.tpm_tokens + dt * l.tpm / 60.0);
  Snapshot snap;
  snap.rpm_level = st.rpm_tokens;
  snap.tpm_level = st.tpm_tokens;
  snap.concurrent = st.concurrent;
  const Budget* budgets[5] = {&st.total, &st.tokens_day, &st.tokens_month, &st.money_day, &st.money_month};
  for (int i = 0; i < 5; ++i) {
    snap.used[i] = budgets[i]->used;
    snap.reserved[i] = budgets[i]->reserved;
  }
  Verdict v = decide(ctx, l, snap, want, want_micros, price, wall_ms);
  for (auto& h : v.headers) ctx.response_headers.push_back(std::move(h));
  if (v.reason != nullptr) return reject(ctx, v.reason, std::move(v.message), v.retry_after_s);
  // Admitted: reserve.
  if (l.rpm > 0) st.rpm_tokens -= 1.0;
  if (l.tpm > 0) st.tpm_tokens -= static_cast<double>(want);
  for (Budget* b : {&st.total, &st.tokens_day, &st.tokens_month}) b->reserved += want;
  for (Budget* b : {&st.money_day, &st.money_month}) b->reserved += want_micros;
  ++st.concurrent;
  ctx.reserved_tokens = want;
  ctx.reserved_micros = want_micros;
  ctx.price = std::move(price);
  ctx.holds_concurrency = true;
  return std::nullopt;
}

// Shared mode: one store transaction reads every replica's numbers, decides, and writes the buckets and
// this request's hold.
std::optional<Rejection> QuotaFilter::admit_shared(RequestContext& ctx, TenantState& st, int64_t want,
                                                   int64_t want_micros,
                                                   const std::optional<store::Price>& price,
                                                   int64_t wall_ms) {
  store::TenantLimits l;
  {
    std::lock_guard lk(st.mu);
    l = st.limits;
  }
  const bool any_limit = l.rpm > 0 || l.tpm > 0 || l.budget_tokens > 0 || l.budget_tokens_day > 0 ||
                         l.budget_tokens_month > 0 || l.budget_money_day > 0 || l.budget_money_month > 0 ||
                         config_.max_concurrent_per_tenant > 0;
  if (any_limit) {
    Verdict v;
    const auto refill = [wall_ms](double level, int64_t at_ms, int64_t per_min) {
      if (per_min <= 0) return 0.0;
      if (level < 0) return static_cast<double>(per_min);  // no bucket yet: full
      const double dt = static_cast<double>(std::max<int64_t>(0, wall_ms - at_ms)) / 1000.0;
      return std::min<double>(static_cast<double>(per_min), level + dt * static_cast<double>(per_min) / 60.0);
    };
    const Status s = store_.quota_transaction(ctx.tenant, wall_ms, [&](const store::QuotaState& q) {
      Snapshot snap;
      snap.rpm_level = refill(q.rpm_level, q.rpm_updated_ms, l.rpm);
      snap.tpm_level = refill(q.tpm_level, q.tpm_updated_ms, l.tpm);
      snap.concurrent = q.holds;
      const int64_t used[5] = {q.tokens_total, q.tokens_day, q.tokens_month, q.micros_day, q.micros_month};
      for (int i = 0; i < 5; ++i) {
        snap.used[i] = used[i];
        snap.reserved[i] = i < 3 ? q.held_tokens : q.held_micros;
      }
      v = decide(ctx, l, snap, want, want_micros, price, wall_ms);
      store::QuotaChange ch;
      if (v.reason != nullptr) return ch;
      ch.admit = true;
      if (l.rpm > 0) ch.rpm_level = snap.rpm_level - 1.0;
      if (l.tpm > 0) ch.tpm_level = snap.tpm_level - static_cast<double>(want);
      ch.hold_id = ctx.request_id;
      ch.hold_tokens = want;
      ch.hold_micros = want_micros;
      ch.hold_expires_ms = wall_ms + static_cast<int64_t>(config_.hold_ttl_s) * 1000;
      return ch;
    });
    if (!s.is_ok()) {
      HEARTH_LOG_ERROR("gateway: shared quota of '{}' not available: {}", ctx.tenant, s.to_string());
      return unavailable("the gateway cannot check this tenant's quotas right now; retry shortly");
    }
    for (auto& h : v.headers) ctx.response_headers.push_back(std::move(h));
    if (v.reason != nullptr) return reject(ctx, v.reason, std::move(v.message), v.retry_after_s);
    ctx.quota_hold = ctx.request_id;
  }
  {
    std::lock_guard lk(st.mu);
    ++st.concurrent;
  }
  ctx.reserved_tokens = want;
  ctx.reserved_micros = want_micros;
  ctx.price = price;
  ctx.holds_concurrency = true;
  return std::nullopt;
}

void QuotaFilter::on_complete(RequestContext& ctx) {
  if (!ctx.holds_concurrency) return;
  // What it really used (the upstream's count, or the gateway's estimate when the client hung up), and
  // what that cost at the price it was admitted with.
  const int64_t used = ctx.usage.prompt_tokens + ctx.usage.completion_tokens;
  ctx.cost_micros = ctx.price
                        ? store::request_cost_micros(*ctx.price, ctx.usage.prompt_tokens,
                                                     ctx.usage.cached_tokens, ctx.usage.completion_tokens)
                        : 0;
  auto sp = state_of(ctx.tenant);
  TenantState& st = *sp;
  std::lock_guard lk(st.mu);
  --st.concurrent;
  ctx.holds_concurrency = false;
  if (config_.shared) {
    // The store releases the hold and refunds the bucket with the usage record, in one transaction.
    if (!ctx.quota_hold.empty() && st.limits.tpm > 0) ctx.quota_refund_tokens = ctx.reserved_tokens - used;
    return;
  }
  for (Budget* b : {&st.total, &st.tokens_day, &st.tokens_month}) {
    b->reserved -= ctx.reserved_tokens;
    b->used += used;
  }
  for (Budget* b : {&st.money_day, &st.money_month}) {
    b->reserved -= ctx.reserved_micros;
    b->used += ctx.cost_micros;
  }
  if (st.limits.tpm > 0) st.tpm_tokens += static_cast<double>(ctx.reserved_tokens - used);  // refund or debit
}

}  // namespace hearth::gateway
