// Shared quotas in SQL both backends run (store_internal.h: SqlRunner): a tenant's window totals, the holds
// of requests in flight and its rate-limit buckets. The backends wrap quota_admit in their transaction and
// tenant lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a session advisory lock, then a REPEATABLE READ
// transaction, so its snapshot is taken after the lock) and call quota_record inside record_usage.
#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <limits>

#include "store/store_internal.h"

namespace hearth::store {

CalendarWindows calendar_windows(int64_t ms) {
  using namespace std::chrono;
  const sys_days day = floor<days>(sys_time<milliseconds>(milliseconds(ms)));
  const year_month_day ymd(day);
  const sys_days month_start = sys_days(ymd.year() / ymd.month() / 1);
  const sys_days next_month = sys_days((ymd.year() / ymd.month() + months(1)) / 1);
  const auto to_ms = [](sys_days d) { return duration_cast<milliseconds>(d.time_since_epoch()).count(); };
  return {to_ms(day), to_ms(day + days(1)), to_ms(month_start), to_ms(next_month)};
}

namespace detail {
namespace {

struct Window {
  const char* period;
  int64_t start, end;  // [start, end) of usage.ts_ms
};

// The three windows a request finished at `ms` counts in.
std::array<Window, 3> windows_of(int64_t ms) {
  const CalendarWindows w = calendar_windows(ms);
  return {Window{"total", 0, std::numeric_limits<int64_t>::max()},
          Window{"day", w.day_start_ms, w.day_end_ms}, Window{"month", w.month_start_ms, w.month_end_ms}};
}

int64_t cell_i64(const std::string& s) {
  return std::strtoll(s.c_str(), nullptr, 10);
}
double cell_f64(const std::string& s) {
  return std::strtod(s.c_str(), nullptr);
}

// Inserts the window's total row from the usage table unless it exists (ON CONFLICT DO NOTHING: a concurrent
// writer's row wins and already counts what it saw). Returns 1 when it inserted the row, 0 when one existed.
Result<int64_t> fill_window(SqlRunner& db, const std::string& tenant, const Window& w) {
  return db.run(
      "INSERT INTO quota_usage (tenant, period, window_start, tokens, micros)"
      " SELECT $1, $2, $3, COALESCE(SUM(prompt_tokens + completion_tokens), 0), COALESCE(SUM(cost_micros), 0)"
      " FROM usage WHERE tenant = $1 AND ts_ms >= $3 AND ts_ms < $4"
      " ON CONFLICT (tenant, period, window_start) DO NOTHING",
      {tenant, std::string(w.period), w.start, w.end});
}

// The window's totals (tokens, micros), filled from the usage table the first time.
Result<std::pair<int64_t, int64_t>> window_totals(SqlRunner& db, const std::string& tenant, const Window& w) {
  const char* sql =
      "SELECT tokens, micros FROM quota_usage WHERE tenant = $1 AND period = $2 AND window_start = $3";
  SqlRows rows;
  HEARTH_RETURN_IF_ERROR(db.run(sql, {tenant, std::string(w.period), w.start}, &rows).status());
  if (rows.empty()) {
    HEARTH_RETURN_IF_ERROR(fill_window(db, tenant, w).status());
    HEARTH_RETURN_IF_ERROR(db.run(sql, {tenant, std::string(w.period), w.start}, &rows).status());
  }
  if (rows.empty() || rows[0].size() != 2)
    return make_error(ErrorCode::kInternal, "quota totals of tenant '{}' ({}) not readable", tenant,
                      w.period);
  return std::pair<int64_t, int64_t>(cell_i64(rows[0][0]), cell_i64(rows[0][1]));
}

}  // namespace

Status quota_admit(SqlRunner& db, const std::string& tenant, int64_t now_ms, const QuotaDecider& decide) {
  QuotaState st;
  HEARTH_RETURN_IF_ERROR(
      db.run("DELETE FROM quota_holds WHERE tenant = $1 AND expires_ms <= $2", {tenant, now_ms}).status());
  SqlRows rows;
  HEARTH_RETURN_IF_ERROR(
      db.run("SELECT kind, level, updated_ms FROM quota_buckets WHERE tenant = $1", {tenant}, &rows)
          .status());
  for (const auto& r : rows) {
    if (r.size() != 3) continue;
    if (r[0] == "rpm") {
      st.rpm_level = cell_f64(r[1]);
      st.rpm_updated_ms = cell_i64(r[2]);
    } else if (r[0] == "tpm") {
      st.tpm_level = cell_f64(r[1]);
      st.tpm_updated_ms = cell_i64(r[2]);
    }
  }
  const auto w = windows_of(now_ms);
  HEARTH_ASSIGN_OR_RETURN(auto total, window_totals(db, tenant, w[0]));
  HEARTH_ASSIGN_OR_RETURN(auto day, window_totals(db, tenant, w[1]));
  HEARTH_ASSIGN_OR_RETURN(auto month, window_totals(db, tenant, w[2]));
  st.tokens_total = total.first;
  st.tokens_day = day.first;
  st.micros_day = day.second;
  st.tokens_month = month.first;
  st.micros_month = month.second;
  rows.clear();
  HEARTH_RETURN_IF_ERROR(db.run("SELECT COUNT(*), COALESCE(SUM(tokens), 0), COALESCE(SUM(micros), 0)"
                                " FROM quota_holds WHERE tenant = $1",
                                {tenant}, &rows)
                             .status());
  if (rows.size() == 1 && rows[0].size() == 3) {
    st.holds = cell_i64(rows[0][0]);
    st.held_tokens = cell_i64(rows[0][1]);
    st.held_micros = cell_i64(rows[0][2]);
  }
  const QuotaChange ch = decide(st);
  if (!ch.admit) return Status::ok();
  for (const auto& [kind, level] :
       {std::pair<const char*, double>{"rpm", ch.rpm_level}, {"tpm", ch.tpm_level}}) {
    if (level < 0) continue;
    HEARTH_RETURN_IF_ERROR(
        db.run("INSERT INTO quota_buckets (tenant, kind, level, updated_ms) VALUES ($1, $2, $3, $4)"
               " ON CONFLICT (tenant, kind) DO UPDATE SET level = excluded.level,"
               " updated_ms = excluded.updated_ms",
               {tenant, std::string(kind), level, now_ms})
            .status());
  }
  if (!ch.hold_id.empty()) {
    HEARTH_RETURN_IF_ERROR(db.run("INSERT INTO quota_holds (id, tenant, tokens, micros, expires_ms)"
                                  " VALUES ($1, $2, $3, $4, $5)",
                                  {ch.hold_id, tenant, ch.hold_tokens, ch.hold_micros, ch.hold_expires_ms})
                               .status());
  }
  return Status::ok();
}

Status quota_record(SqlRunner& db, const UsageRecord& u) {
  const int64_t tokens = u.prompt_tokens + u.completion_tokens;
  for (const Window& w : windows_of(u.ts_ms)) {
    const char* add =
        "UPDATE quota_usage SET tokens = tokens + $4, micros = micros + $5"
        " WHERE tenant = $1 AND period = $2 AND window_start = $3";
    const std::vector<SqlValue> p{u.tenant, std::string(w.period), w.start, tokens, u.cost_micros};
    HEARTH_ASSIGN_OR_RETURN(int64_t changed, db.run(add, p));
    if (changed > 0) continue;
    // No row yet: one from the usage table (which holds this record already), unless another writer's row
    // appeared meanwhile — then that row lacks this record: add it.
    HEARTH_ASSIGN_OR_RETURN(int64_t inserted, fill_window(db, u.tenant, w));
    if (inserted == 0) HEARTH_RETURN_IF_ERROR(db.run(add, p).status());
  }
  if (!u.quota_hold.empty())
    HEARTH_RETURN_IF_ERROR(db.run("DELETE FROM quota_holds WHERE id = $1", {u.quota_hold}).status());
  if (u.quota_refund_tokens != 0) {
    HEARTH_RETURN_IF_ERROR(
        db.run("UPDATE quota_buckets SET level = level + $2 WHERE tenant = $1 AND kind = 'tpm'",
               {u.tenant, static_cast<double>(u.quota_refund_tokens)})
            .status());
  }
  return Status::ok();
}

}  // namespace detail
}  // namespace hearth::store
