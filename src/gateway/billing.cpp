#include "gateway/billing.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>

namespace hearth::gateway {

Result<std::pair<int64_t, int64_t>> month_range(std::string_view month) {
  int y = 0, m = 0;
  char tail = 0;
  const std::string s(month);
  if (s.size() != 7 || std::sscanf(s.c_str(), "%4d-%2d%c", &y, &m, &tail) != 2 || m < 1 || m > 12 || y < 1970)
    return make_error(ErrorCode::kInvalidArgument, "the month must be YYYY-MM, got '{}'", s);
  using namespace std::chrono;
  const year_month ym{year(y), std::chrono::month(static_cast<unsigned>(m))};
  const auto ms = [](sys_days d) { return duration_cast<milliseconds>(d.time_since_epoch()).count(); };
  return std::pair<int64_t, int64_t>(ms(sys_days(ym / 1)), ms(sys_days((ym + months(1)) / 1)));
}

Result<std::vector<Bill>> monthly_bills(store::Store& store, std::string_view month,
                                        const std::string& tenant) {
  HEARTH_ASSIGN_OR_RETURN(auto range, month_range(month));
  HEARTH_ASSIGN_OR_RETURN(auto tenants, store.list_tenants());
  HEARTH_ASSIGN_OR_RETURN(auto tiers, store.list_tiers());
  HEARTH_ASSIGN_OR_RETURN(auto prices, store.list_prices());
  const std::string currency = prices.empty() ? std::string() : prices.front().currency;
  std::vector<Bill> out;
  for (const auto& t : tenants) {
    if (!tenant.empty() && t.name != tenant) continue;
    Bill b;
    b.tenant = t.name;
    b.month = std::string(month);
    b.tier = t.limits.tier;
    b.currency = currency;
    HEARTH_ASSIGN_OR_RETURN(b.usage, store.usage_totals(t.name, range.first, range.second));
    store::Tier tier;
    for (const auto& x : tiers)
      if (x.name == t.limits.tier) tier = x;
    b.base_fee_micros = tier.base_fee_micros;
    b.billable_calls = std::max<int64_t>(0, b.usage.requests - tier.included_calls);
    if (__builtin_mul_overflow(b.billable_calls, tier.per_call_micros, &b.calls_fee_micros))
      b.calls_fee_micros = INT64_MAX;
    if (__builtin_add_overflow(tier.base_fee_micros, b.calls_fee_micros, &b.total_micros) ||
        __builtin_add_overflow(b.total_micros, b.usage.cost_micros, &b.total_micros))
      b.total_micros = INT64_MAX;
    out.push_back(std::move(b));
  }
  if (out.empty() && !tenant.empty()) return make_error(ErrorCode::kNotFound, "no tenant '{}'", tenant);
  return out;
}

nlohmann::json bill_json(const Bill& b) {
  return {{"tenant", b.tenant},
          {"month", b.month},
          {"tier", b.tier},
          {"currency", b.currency},
          {"requests", b.usage.requests},
          {"prompt_tokens", b.usage.prompt_tokens},
          {"cached_tokens", b.usage.cached_tokens},
          {"completion_tokens", b.usage.completion_tokens},
          {"base_fee", store::format_money(b.base_fee_micros)},
          {"billable_calls", b.billable_calls},
          {"calls_fee", store::format_money(b.calls_fee_micros)},
          {"usage_cost", store::format_money(b.usage.cost_micros)},
          {"total", store::format_money(b.total_micros)}};
}

}  // namespace hearth::gateway
