// The quota filter's calendar windows (UTC days and months: where daily and monthly budgets reset).
// The budgets themselves run against a real store and upstream in tests/integration/gateway.sh.
#include "gateway/quota_filter.h"

#include <gtest/gtest.h>

namespace hearth::gateway {
namespace {

int64_t ms(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0, int milli = 0) {
  using namespace std::chrono;
  const sys_days date = sys_days(year(y) / month(mo) / day(d));
  return duration_cast<milliseconds>(date.time_since_epoch()).count() + ((h * 60 + mi) * 60 + s) * 1000LL +
         milli;
}

TEST(CalendarWindows, DaysAndMonthsInUtc) {
  const CalendarWindows w = calendar_windows(ms(2026, 11, 29, 10, 30));
  EXPECT_EQ(w.day_start_ms, ms(2026, 11, 29));
  EXPECT_EQ(w.day_end_ms, ms(2026, 11, 30));
  EXPECT_EQ(w.month_start_ms, ms(2026, 11, 1));
  EXPECT_EQ(w.month_end_ms, ms(2026, 12, 1));
}

TEST(CalendarWindows, EdgesOfYearsAndLeapDays) {
  CalendarWindows w = calendar_windows(ms(2026, 12, 31, 23, 59, 59, 999));
  EXPECT_EQ(w.day_end_ms, ms(2027, 1, 1));
  EXPECT_EQ(w.month_end_ms, ms(2027, 1, 1));
  w = calendar_windows(ms(2027, 1, 1));  // the first millisecond belongs to the new day and month
  EXPECT_EQ(w.day_start_ms, ms(2027, 1, 1));
  EXPECT_EQ(w.month_start_ms, ms(2027, 1, 1));
  w = calendar_windows(ms(2028, 2, 29, 12));
  EXPECT_EQ(w.month_end_ms, ms(2028, 3, 1));
  EXPECT_EQ(w.day_end_ms - w.day_start_ms, 86'400'000);
}

}  // namespace
}  // namespace hearth::gateway
