#pragma once
// Monthly bills from the store (licence tiers + metered usage): a tenant's tier base fee, its per-call fee
// for requests beyond the included ones, and the usage cost at the price book's prices. Shared by `hearth
// admin usage bill` and the admin API's GET /admin/v1/bills.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "store/store.h"

namespace hearth::gateway {

struct Bill {
  std::string tenant, month, tier, currency;
  store::UsageTotals usage;
  int64_t base_fee_micros = 0, billable_calls = 0, calls_fee_micros = 0, total_micros = 0;  // saturating
};

// "YYYY-MM" -> [first ms of the month, first ms of the next) in UTC; the error names the input.
Result<std::pair<int64_t, int64_t>> month_range(std::string_view month);
// Every tenant's bill for the month, or one tenant's ("" = all; kNotFound for an unknown tenant).
Result<std::vector<Bill>> monthly_bills(store::Store& store, std::string_view month,
                                        const std::string& tenant);
nlohmann::json bill_json(const Bill& bill);

}  // namespace hearth::gateway
