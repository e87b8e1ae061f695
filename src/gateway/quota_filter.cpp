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

CalendarWindows calendar_windows(int64_t ms) {
  using namespace std::chrono;
  const sys_days day = floor<days>(sys_time<milliseconds>(milliseconds(ms)));
  const year_month_day ymd(day);
  const sys_days month_start = sys_days(ymd.year() / ymd.month() / 1);
  const sys_days next_month = sys_days((ymd.year() / ymd.month() + months(1)) / 1);
  const auto to_ms = [](sys_days d) { return duration_cast<milliseconds>(d.time_since_epoch()).count(); };
  return {to_ms(day), to_ms(day + days(1)), to_ms(month_start), to_ms(next_month)};
}

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
    if (limit <= 0) return Status::ok();
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

std::optional<Rejection> QuotaFilter::on_request(RequestContext& ctx) {
  auto sp = state_of(ctx.tenant);
  TenantState& st = *sp;
  const Clock::time_point now = Clock::now();
  const int64_t wall_ms = wall_now_ms();
  std::lock_guard lk(st.mu);
  if (Status s = refresh(ctx.tenant, st, now, wall_ms); !s.is_ok()) {
    HEARTH_LOG_ERROR("gateway: tenant limits of '{}' not readable: {}", ctx.tenant, s.to_string());
    return unavailable("the gateway cannot read this tenant's limits right now; retry shortly");
  }
  const store::TenantLimits& l = st.limits;
  const double dt = std::chrono::duration<double>(now - st.refilled).count();
  st.refilled = now;
  if (l.rpm > 0)
    st.rpm_tokens = std::min<double>(static_cast<double>(l.rpm), st.rpm_tokens + dt * l.rpm / 60.0);
  if (l.tpm > 0)
    st.tpm_tokens = std::min<double>(static_cast<double>(l.tpm), st.tpm_tokens + dt * l.tpm / 60.0);
  const int64_t want = ctx.info.prompt_estimate + ctx.info.max_tokens;
  if (l.rpm > 0) {
    ctx.response_headers.emplace_back("x-ratelimit-limit-requests", std::to_string(l.rpm));
    ctx.response_headers.emplace_back(
        "x-ratelimit-remaining-requests",
        std::to_string(std::max<int64_t>(0, static_cast<int64_t>(st.rpm_tokens) - 1)));
  }
  if (l.tpm > 0) {
    ctx.response_headers.emplace_back("x-ratelimit-limit-tokens", std::to_string(l.tpm));
    ctx.response_headers.emplace_back(
        "x-ratelimit-remaining-tokens",
        std::to_string(std::max<int64_t>(0, static_cast<int64_t>(st.tpm_tokens) - want)));
  }
  if (config_.max_concurrent_per_tenant > 0 && st.concurrent >= config_.max_concurrent_per_tenant) {
    return reject(
        ctx, "concurrency",
        fmt::format("tenant '{}' has {} requests in flight, the most allowed", ctx.tenant, st.concurrent), 1);
  }
  if (l.rpm > 0 && st.rpm_tokens < 1.0) {
    return reject(ctx, "rpm",
                  fmt::format("tenant '{}' is over its {} requests per minute", ctx.tenant, l.rpm),
                  (1.0 - st.rpm_tokens) * 60.0 / static_cast<double>(l.rpm));
  }
  if (l.tpm > 0) {
    if (want > l.tpm) {
      return reject(
          ctx, "tpm",
          fmt::format("this request may use {} tokens (prompt ~{} + max_tokens {}), more than tenant '{}''s "
                      "{} tokens per minute: lower max_tokens",
                      want, ctx.info.prompt_estimate, ctx.info.max_tokens, ctx.tenant, l.tpm),
          0);
    }
    if (st.tpm_tokens < static_cast<double>(want)) {
      return reject(ctx, "tpm",
                    fmt::format("tenant '{}' is over its {} tokens per minute", ctx.tenant, l.tpm),
                    (static_cast<double>(want) - st.tpm_tokens) * 60.0 / static_cast<double>(l.tpm));
    }
  }
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
  const CalendarWindows w = calendar_windows(wall_ms);
  struct Slot {
    Budget& b;
    BudgetCheck c;
  };
  Slot slots[] = {
      {st.total, {"token budget", l.budget_tokens, want, false, 0}},
      {st.tokens_day, {"daily token budget", l.budget_tokens_day, want, false, w.day_end_ms}},
      {st.tokens_month, {"monthly token budget", l.budget_tokens_month, want, false, w.month_end_ms}},
      {st.money_day, {"daily budget", l.budget_money_day, want_micros, true, w.day_end_ms}},
      {st.money_month, {"monthly budget", l.budget_money_month, want_micros, true, w.month_end_ms}},
  };
  for (const Slot& s : slots) {
    if (s.c.limit <= 0 || s.b.used + s.b.reserved + s.c.want <= s.c.limit) continue;
    const auto amount = [&](int64_t v) {
      return s.c.money ? fmt::format("{} {}", store::format_money(v), price ? price->currency : "")
                       : fmt::format("{} tokens", v);
    };
    std::string resets;
    if (s.c.resets_ms > 0) {
      using namespace std::chrono;
      const year_month_day ymd(floor<days>(sys_time<milliseconds>(milliseconds(s.c.resets_ms))));
      resets = fmt::format("; it resets at {:04d}-{:02d}-{:02d} 00:00 UTC", static_cast<int>(ymd.year()),
                           static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
    }
    return reject(
        ctx, "budget",
        fmt::format("tenant '{}' would exceed its {} of {} ({} used, {} reserved by requests in flight, "
                    "this one may use {}){}",
                    ctx.tenant, s.c.what, amount(s.c.limit), amount(s.b.used), amount(s.b.reserved),
                    amount(s.c.want), resets),
        s.c.resets_ms > 0 ? static_cast<double>(s.c.resets_ms - wall_ms) / 1000.0 : 0.0);
  }
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
  for (Budget* b : {&st.total, &st.tokens_day, &st.tokens_month}) {
    b->reserved -= ctx.reserved_tokens;
    b->used += used;
  }
  for (Budget* b : {&st.money_day, &st.money_month}) {
    b->reserved -= ctx.reserved_micros;
    b->used += ctx.cost_micros;
  }
  if (st.limits.tpm > 0) st.tpm_tokens += static_cast<double>(ctx.reserved_tokens - used);  // refund or debit
  ctx.holds_concurrency = false;
}

}  // namespace hearth::gateway
