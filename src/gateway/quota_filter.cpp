#include "gateway/quota_filter.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/log.h"

namespace hearth::gateway {

QuotaFilter::QuotaFilter(QuotaConfig config, store::Store& store, Registry& metrics)
    : config_(config), store_(store) {
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

// Under st.mu: the tenant's limits and its budget usage from the store.
Status QuotaFilter::refresh(const std::string& tenant, TenantState& st, Clock::time_point now) {
  if (st.limits_at != Clock::time_point{} &&
      now - st.limits_at < std::chrono::milliseconds(config_.limits_ttl_ms))
    return Status::ok();
  HEARTH_ASSIGN_OR_RETURN(auto tenants, store_.list_tenants());
  const bool first = st.limits_at == Clock::time_point{};
  for (const auto& t : tenants)
    if (t.name == tenant) st.limits = t.limits;
  if (st.limits.budget_tokens > 0) {
    HEARTH_ASSIGN_OR_RETURN(int64_t used, store_.tokens_used(tenant, 0));
    // The store counts every replica's finished requests; ours are in it once written.
    st.budget_used = std::max(st.budget_used, used);
  }
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
  Rejection r;
  r.status = 429;
  r.message = std::move(message);
  r.code = std::string(reason) == "budget" ? "insufficient_quota" : "rate_limit_exceeded";
  r.type = std::string(reason) == "budget" ? "insufficient_quota" : "requests";
  if (retry_after_s > 0)
    r.headers.emplace_back("Retry-After", std::to_string(static_cast<int64_t>(std::ceil(retry_after_s))));
  for (auto& h : ctx.response_headers) r.headers.push_back(h);
  return r;
}

std::optional<Rejection> QuotaFilter::on_request(RequestContext& ctx) {
  auto sp = state_of(ctx.tenant);
  TenantState& st = *sp;
  const Clock::time_point now = Clock::now();
  std::lock_guard lk(st.mu);
  if (Status s = refresh(ctx.tenant, st, now); !s.is_ok()) {
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
  if (l.budget_tokens > 0 && st.budget_used + st.budget_reserved + want > l.budget_tokens) {
    return reject(
        ctx, "budget",
        fmt::format("tenant '{}' would exceed its budget of {} tokens ({} used, {} reserved by requests in "
                    "flight, this one may use {})",
                    ctx.tenant, l.budget_tokens, st.budget_used, st.budget_reserved, want),
        0);
  }
  // Admitted: reserve.
  if (l.rpm > 0) st.rpm_tokens -= 1.0;
  if (l.tpm > 0) st.tpm_tokens -= static_cast<double>(want);
  st.budget_reserved += want;
  ++st.concurrent;
  ctx.reserved_tokens = want;
  ctx.holds_concurrency = true;
  return std::nullopt;
}

void QuotaFilter::on_complete(RequestContext& ctx) {
  if (!ctx.holds_concurrency) return;
  auto sp = state_of(ctx.tenant);
  TenantState& st = *sp;
  std::lock_guard lk(st.mu);
  --st.concurrent;
  st.budget_reserved -= ctx.reserved_tokens;
  // What it really used (the upstream's count, or the gateway's estimate when the client hung up).
  const int64_t used = ctx.usage.prompt_tokens + ctx.usage.completion_tokens;
  st.budget_used += used;
  if (st.limits.tpm > 0) st.tpm_tokens += static_cast<double>(ctx.reserved_tokens - used);  // refund or debit
  ctx.holds_concurrency = false;
}

}  // namespace hearth::gateway
