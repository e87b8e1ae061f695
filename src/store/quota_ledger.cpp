// Shared quotas in SQL both backends run (store_internal.h: SqlRunner): a tenant's window totals, the holds
// of requests in flight and its rate-limit buckets. The backends wrap quota_admit in their transaction and
// tenant lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-scoped advisory lock) and call quota_record
// inside record_usage. An admission reads everything in one statement (one snapshot, taken after the lock),
// so a usage record committed concurrently is seen whole or not at all: its hold or its usage, never neither.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <functional>
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

// Everything an admission reads, in one statement (one snapshot): the buckets (level, updated_ms for rpm and
// tpm), the totals of the total, day and month windows (tokens; micros for day and month; "" when a row is
// missing), and the unexpired holds (count, tokens, micros).
constexpr const char* kReadState =
    "SELECT (SELECT level FROM quota_buckets WHERE tenant = $1 AND kind = 'rpm'),"
    " (SELECT updated_ms FROM quota_buckets WHERE tenant = $1 AND kind = 'rpm'),"
    " (SELECT level FROM quota_buckets WHERE tenant = $1 AND kind = 'tpm'),"
    " (SELECT updated_ms FROM quota_buckets WHERE tenant = $1 AND kind = 'tpm'),"
    " (SELECT tokens FROM quota_usage WHERE tenant = $1 AND period = 'total' AND window_start = 0),"
    " (SELECT tokens FROM quota_usage WHERE tenant = $1 AND period = 'day' AND window_start = $2),"
    " (SELECT micros FROM quota_usage WHERE tenant = $1 AND period = 'day' AND window_start = $2),"
    " (SELECT tokens FROM quota_usage WHERE tenant = $1 AND period = 'month' AND window_start = $3),"
    " (SELECT micros FROM quota_usage WHERE tenant = $1 AND period = 'month' AND window_start = $3),"
    " (SELECT COUNT(*) FROM quota_holds WHERE tenant = $1 AND expires_ms > $4),"
    " (SELECT COALESCE(SUM(tokens), 0) FROM quota_holds WHERE tenant = $1 AND expires_ms > $4),"
    " (SELECT COALESCE(SUM(micros), 0) FROM quota_holds WHERE tenant = $1 AND expires_ms > $4)";

}  // namespace

Status quota_admit(SqlRunner& db, const std::string& tenant, int64_t now_ms, const QuotaDecider& decide,
                   const std::vector<SqlStatement>& prelude, const std::vector<SqlStatement>& epilogue) {
  const auto w = windows_of(now_ms);
  const SqlStatement read{kReadState, {tenant, w[1].start, w[2].start, now_ms}};
  std::vector<SqlStatement> batch = prelude;
  batch.push_back(read);
  std::vector<SqlRows> results;
  HEARTH_RETURN_IF_ERROR(db.run_all(batch, results));
  SqlRows rows = std::move(results.back());
  if (rows.size() != 1 || rows[0].size() != 12)
    return make_error(ErrorCode::kInternal, "quota state of tenant '{}' not readable", tenant);
  // A window without its totals row yet (its first admission, or totals lost): filled from the usage table.
  if (rows[0][4].empty() || rows[0][5].empty() || rows[0][7].empty()) {
    for (const Window& win : w) HEARTH_RETURN_IF_ERROR(fill_window(db, tenant, win).status());
    rows.clear();
    HEARTH_RETURN_IF_ERROR(db.run(read.sql.c_str(), read.params, &rows).status());
    if (rows.size() != 1 || rows[0].size() != 12)
      return make_error(ErrorCode::kInternal, "quota state of tenant '{}' not readable", tenant);
  }
  const auto& r = rows[0];
  QuotaState st;
  if (!r[0].empty()) {
    st.rpm_level = cell_f64(r[0]);
    st.rpm_updated_ms = cell_i64(r[1]);
  }
  if (!r[2].empty()) {
    st.tpm_level = cell_f64(r[2]);
    st.tpm_updated_ms = cell_i64(r[3]);
  }
  st.tokens_total = cell_i64(r[4]);
  st.tokens_day = cell_i64(r[5]);
  st.micros_day = cell_i64(r[6]);
  st.tokens_month = cell_i64(r[7]);
  st.micros_month = cell_i64(r[8]);
  st.holds = cell_i64(r[9]);
  st.held_tokens = cell_i64(r[10]);
  st.held_micros = cell_i64(r[11]);
  const QuotaChange ch = decide(st);
  std::vector<SqlStatement> writes;
  if (ch.admit && (ch.rpm_level >= 0 || ch.tpm_level >= 0)) {
    // Both buckets in one statement; a bucket the decider leaves alone keeps its row (or gets none). An
    // existing row moves by the decider's change (new - read), so a refund that a usage record's transaction
    // committed meanwhile (it does not take the tenant lock) is kept.
    SqlStatement up{"INSERT INTO quota_buckets (tenant, kind, level, updated_ms) VALUES ",
                    {tenant, now_ms, std::max(0.0, st.rpm_level), std::max(0.0, st.tpm_level)}};
    for (const auto& [kind, level] :
         {std::pair<const char*, double>{"rpm", ch.rpm_level}, {"tpm", ch.tpm_level}}) {
      if (level < 0) continue;
      up.params.emplace_back(level);
      up.sql +=
          fmt::format("{}($1, '{}', ${}, $2)", up.params.size() > 5 ? ", " : "", kind, up.params.size());
    }
    up.sql +=
        " ON CONFLICT (tenant, kind) DO UPDATE SET updated_ms = excluded.updated_ms, level = "
        "quota_buckets.level"
        " + excluded.level - CASE excluded.kind WHEN 'rpm' THEN CAST($3 AS DOUBLE PRECISION)"
        " ELSE CAST($4 AS DOUBLE PRECISION) END";
    writes.push_back(std::move(up));
  }
  if (ch.admit && !ch.hold_id.empty()) {
    writes.push_back(
        {"INSERT INTO quota_holds (id, tenant, tokens, micros, expires_ms) VALUES ($1, $2, $3, $4, $5)",
         {ch.hold_id, tenant, ch.hold_tokens, ch.hold_micros, ch.hold_expires_ms}});
    // Expired holds are not counted; now and then (1 admission in 64, by the hold's id) they are removed.
    if ((std::hash<std::string>{}(ch.hold_id) & 63) == 0)
      writes.push_back({"DELETE FROM quota_holds WHERE tenant = $1 AND expires_ms <= $2", {tenant, now_ms}});
  }
  writes.insert(writes.end(), epilogue.begin(), epilogue.end());
  return db.run_all(writes, results);
}

Status quota_record(SqlRunner& db, const UsageRecord& u) {
  const int64_t tokens = u.prompt_tokens + u.completion_tokens;
  const auto w = windows_of(u.ts_ms);
  // The three windows in one statement; a window without its row (rare: its first record) is filled from the
  // usage table (which holds this record already), unless another writer's row appeared meanwhile — then that
  // row lacks this record: add it.
  SqlRows updated;  // the periods whose rows took the record
  HEARTH_RETURN_IF_ERROR(
      db.run("UPDATE quota_usage SET tokens = tokens + $4, micros = micros + $5 WHERE tenant = $1 AND"
             " ((period = 'total' AND window_start = 0) OR (period = 'day' AND window_start = $2) OR"
             " (period = 'month' AND window_start = $3)) RETURNING period",
             {u.tenant, w[1].start, w[2].start, tokens, u.cost_micros}, &updated)
          .status());
  if (updated.size() < 3) {
    for (const Window& win : w) {
      if (std::any_of(updated.begin(), updated.end(),
                      [&](const std::vector<std::string>& r) { return !r.empty() && r[0] == win.period; }))
        continue;
      HEARTH_ASSIGN_OR_RETURN(int64_t inserted, fill_window(db, u.tenant, win));
      if (inserted == 0)
        HEARTH_RETURN_IF_ERROR(db.run("UPDATE quota_usage SET tokens = tokens + $4, micros = micros + $5"
                                      " WHERE tenant = $1 AND period = $2 AND window_start = $3",
                                      {u.tenant, std::string(win.period), win.start, tokens, u.cost_micros})
                                   .status());
    }
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
