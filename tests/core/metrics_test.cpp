// Prometheus registry as a specification: the exact exposition text, escaping, number formatting,
// name validation, lock-free updates that lose nothing under contention, and (when promtool is
// installed) that promtool accepts what we render.
#include "core/metrics.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <sys/wait.h>

#include <gtest/gtest.h>

namespace hearth {
namespace {

template <typename T>
T* ok(Result<T*> r) {
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? r.value() : nullptr;
}

std::vector<double> bounds(std::initializer_list<double> b) {
  return b;
}

TEST(Metrics, SmallRegistryRendersExactly) {
  Registry reg;
  auto* tokens =
      ok(reg.counter("hearth:prompt_tokens", "Number of prefill tokens processed.", {"model_name"}));
  auto* running = ok(reg.gauge("hearth:num_requests_running", "Number of requests running."));
  auto* kv = ok(reg.callback_gauge("hearth:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
                                   {"model_name"}));
  auto* ttft = ok(reg.histogram("hearth:time_to_first_token_seconds", "Time to first token.",
                                bounds({0.25, 0.5, 1}), {"model_name"}));
  ASSERT_TRUE(tokens && running && kv && ttft);

  tokens->labels({"model-a"}).inc(3);
  tokens->labels({"model-b"}).inc(1.5);
  tokens->labels({"model-a"}).inc();
  running->labels({}).set(2);
  ASSERT_TRUE(kv->add({"model-a"}, [] { return 0.25; }).is_ok());
  Histogram& h = ttft->labels({"model-a"});
  for (double v : {0.125, 0.25 /* equal to a bound: counted in le="0.25" */, 0.75, 3.0}) h.observe(v);

  EXPECT_EQ(reg.render(),
            "# HELP hearth:prompt_tokens_total Number of prefill tokens processed.\n"
            "# TYPE hearth:prompt_tokens_total counter\n"
            "hearth:prompt_tokens_total{model_name=\"model-a\"} 4\n"
            "hearth:prompt_tokens_total{model_name=\"model-b\"} 1.5\n"
            "# HELP hearth:num_requests_running Number of requests running.\n"
            "# TYPE hearth:num_requests_running gauge\n"
            "hearth:num_requests_running 2\n"
            "# HELP hearth:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n"
            "# TYPE hearth:kv_cache_usage_perc gauge\n"
            "hearth:kv_cache_usage_perc{model_name=\"model-a\"} 0.25\n"
            "# HELP hearth:time_to_first_token_seconds Time to first token.\n"
            "# TYPE hearth:time_to_first_token_seconds histogram\n"
            "hearth:time_to_first_token_seconds_bucket{model_name=\"model-a\",le=\"0.25\"} 2\n"
            "hearth:time_to_first_token_seconds_bucket{model_name=\"model-a\",le=\"0.5\"} 2\n"
            "hearth:time_to_first_token_seconds_bucket{model_name=\"model-a\",le=\"1\"} 3\n"
            "hearth:time_to_first_token_seconds_bucket{model_name=\"model-a\",le=\"+Inf\"} 4\n"
            "hearth:time_to_first_token_seconds_sum{model_name=\"model-a\"} 4.125\n"
            "hearth:time_to_first_token_seconds_count{model_name=\"model-a\"} 4\n");
}

TEST(Metrics, UnlabelledFamiliesRenderZeroBeforeAnyUpdateAndLabelledOnesNothing) {
  Registry reg;
  ASSERT_TRUE(reg.counter("requests", "Requests.").is_ok());
  ASSERT_TRUE(reg.histogram("latency_seconds", "Latency.", bounds({1})).is_ok());
  ASSERT_TRUE(reg.gauge("per_model", "Per model.", {"model_name"}).is_ok());
  EXPECT_EQ(reg.render(),
            "# HELP requests_total Requests.\n"
            "# TYPE requests_total counter\n"
            "requests_total 0\n"
            "# HELP latency_seconds Latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{le=\"1\"} 0\n"
            "latency_seconds_bucket{le=\"+Inf\"} 0\n"
            "latency_seconds_sum 0\n"
            "latency_seconds_count 0\n"
            "# HELP per_model Per model.\n"
            "# TYPE per_model gauge\n");
}

TEST(Metrics, CounterNameWithOrWithoutTotalExposesTotal) {
  Registry reg;
  auto* a = ok(reg.counter("a_total", "A."));
  auto* b = ok(reg.counter("b", "B."));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->name(), "a_total");
  EXPECT_EQ(b->name(), "b_total");
  // Both spellings name the same series, so the second registration clashes.
  EXPECT_FALSE(reg.counter("a", "again").is_ok());
  EXPECT_FALSE(reg.counter("b_total", "again").is_ok());
  EXPECT_FALSE(reg.gauge("b_total", "a gauge on the counter's series").is_ok());
  EXPECT_FALSE(reg.counter("_total", "nothing before the suffix").is_ok());
}

TEST(Metrics, ChildrenAreStableAndSharedPerLabelValues) {
  Registry reg;
  auto* f = ok(reg.counter("c", "C.", {"model_name", "engine"}));
  Counter& x = f->labels({"m", "0"});
  Counter& y = f->labels(std::vector<std::string>{"m", "0"});
  Counter& z = f->labels({"m", "1"});
  EXPECT_EQ(&x, &y);
  EXPECT_NE(&x, &z);
  for (int i = 0; i < 1000; ++i) f->labels({"m", std::to_string(i + 2)});  // growth moves nothing
  EXPECT_EQ(&x, &f->labels({"m", "0"}));
}

TEST(Metrics, WrongNumberOfLabelValuesIsAProgrammerError) {
  Registry reg;
  auto* f = ok(reg.counter("c", "C.", {"model_name"}));
  // Debug: asserts. Release: a detached child that works but is never rendered.
  EXPECT_DEBUG_DEATH(f->labels({"a", "b"}).inc(), "wrong number of label values");
#ifdef NDEBUG
  EXPECT_EQ(reg.render(), "# HELP c_total C.\n# TYPE c_total counter\n");
#endif
}

TEST(Metrics, CounterGaugeSemantics) {
  Counter c;
  c.inc(2);
  c.inc(-5);  // ignored: counters never go down
  c.inc(NAN);
  c.inc(0.5);
  EXPECT_EQ(c.value(), 2.5);

  Gauge g;
  g.set(10);
  g.inc();
  g.dec(3.5);
  EXPECT_EQ(g.value(), 7.5);
  g.set(-1);
  EXPECT_EQ(g.value(), -1);
}

TEST(Metrics, HistogramBucketsAreInclusiveAndNaNIsIgnored) {
  const std::vector<double> b = {1, 2, 4};
  Histogram h(b);
  for (double v : std::initializer_list<double>{-7.0, 0.5, 1.0, 1.0000001, 2.0, 4.0, 4.5, INFINITY, NAN})
    h.observe(v);
  EXPECT_EQ(h.cumulative_counts(), (std::vector<uint64_t>{3, 5, 6, 8}));
  EXPECT_EQ(h.count(), 8u);
  EXPECT_TRUE(std::isinf(h.sum()));
}

TEST(Metrics, LabelValuesAndHelpAreEscaped) {
  Registry reg;
  auto* f = ok(reg.gauge("g", "Line one\\two\nline \"three\"", {"path"}));
  f->labels({"C:\\dir \"quoted\"\nnext"}).set(1);
  f->labels({std::string_view("bad\xff utf8 \xc3\xa9")}).set(2);
  EXPECT_EQ(reg.render(),
            "# HELP g Line one\\\\two\\nline \"three\"\n"
            "# TYPE g gauge\n"
            "g{path=\"C:\\\\dir \\\"quoted\\\"\\nnext\"} 1\n"
            "g{path=\"bad\xef\xbf\xbd utf8 \xc3\xa9\"} 2\n");
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(escape_help("a\\b\"c\nd"), "a\\\\b\"c\\nd");
}

TEST(Metrics, NumbersFormatAsPrometheusReadsThem) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(-0.0), "0");
  EXPECT_EQ(format_value(1), "1");
  EXPECT_EQ(format_value(-3), "-3");
  EXPECT_EQ(format_value(1e6), "1000000");
  EXPECT_EQ(format_value(123456789012345.0), "123456789012345");
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(0.1), "0.1");
  EXPECT_EQ(format_value(2560.5), "2560.5");
  EXPECT_EQ(format_value(1e300), "1e+300");
  EXPECT_EQ(format_value(1e-7), "1e-07");
  EXPECT_EQ(format_value(INFINITY), "+Inf");
  EXPECT_EQ(format_value(-INFINITY), "-Inf");
  EXPECT_EQ(format_value(NAN), "NaN");
  for (double v : {0.1, 1.0 / 3, 2.5e-9, 6.02e23, 9007199254740993.0}) {
    EXPECT_EQ(std::stod(format_value(v)), v) << format_value(v);  // round-trips
  }
}

TEST(Metrics, NamesAreValidatedAtRegistration) {
  EXPECT_TRUE(is_valid_metric_name("hearth:time_to_first_token_seconds"));
  EXPECT_TRUE(is_valid_metric_name(":a"));
  EXPECT_TRUE(is_valid_metric_name("_a1"));
  EXPECT_FALSE(is_valid_metric_name(""));
  EXPECT_FALSE(is_valid_metric_name("1a"));
  EXPECT_FALSE(is_valid_metric_name("a-b"));
  EXPECT_FALSE(is_valid_metric_name("a b"));
  EXPECT_TRUE(is_valid_label_name("model_name"));
  EXPECT_FALSE(is_valid_label_name("model:name"));
  EXPECT_FALSE(is_valid_label_name("1x"));

  Registry reg;
  const Result<GaugeFamily*> bad = reg.gauge("hearth-bad", "x");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("hearth-bad"), std::string::npos);
  EXPECT_FALSE(reg.gauge("g1", "x", {"model:name"}).is_ok());
  EXPECT_FALSE(reg.gauge("g2", "x", {"__name"}).is_ok());
  EXPECT_FALSE(reg.gauge("g3", "x", {"a", "a"}).is_ok());
  EXPECT_TRUE(reg.gauge("g4", "x", {"le"}).is_ok());  // only histograms reserve "le"
  EXPECT_FALSE(reg.histogram("h1", "x", bounds({1}), {"le"}).is_ok());
  EXPECT_FALSE(reg.histogram("h2", "x", bounds({1, 1})).is_ok());
  EXPECT_FALSE(reg.histogram("h3", "x", bounds({2, 1})).is_ok());
  EXPECT_FALSE(reg.histogram("h4", "x", bounds({NAN})).is_ok());
  EXPECT_FALSE(reg.histogram("h5", "x", bounds({-INFINITY, 1})).is_ok());
  auto* h6 = ok(reg.histogram("h6", "x", bounds({1, INFINITY})));  // trailing +Inf: implicit anyway
  ASSERT_NE(h6, nullptr);
  EXPECT_EQ(h6->labels({}).bounds().size(), 1u);
  EXPECT_TRUE(reg.histogram("h7", "x", bounds({})).is_ok());  // only +Inf
  // Series clashes across types: a histogram owns name, _bucket, _sum and _count.
  EXPECT_FALSE(reg.gauge("h6_count", "x").is_ok());
  EXPECT_FALSE(reg.gauge("h6", "x").is_ok());
  EXPECT_FALSE(reg.callback_gauge("g4", "x").is_ok());
  // Nothing refused above was added.
  const std::string text = reg.render();
  EXPECT_EQ(text.find("hearth-bad"), std::string::npos);
  EXPECT_EQ(text.find("# HELP g1 "), std::string::npos);
}

TEST(Metrics, CallbacksAreReadAtScrapeTime) {
  Registry reg;
  auto* running = ok(reg.callback_gauge("running", "Running.", {"model_name"}));
  auto* steps = ok(reg.callback_counter("engine_steps", "Steps."));
  ASSERT_TRUE(running && steps);
  std::atomic<int> n{1};
  ASSERT_TRUE(running->add({"a"}, [&] { return static_cast<double>(n.load()); }).is_ok());
  ASSERT_TRUE(running->add({"b"}, []() -> double { throw std::runtime_error("stat unavailable"); }).is_ok());
  ASSERT_TRUE(steps->add({}, [] { return 12.0; }).is_ok());
  EXPECT_FALSE(running->add({"a"}, [] { return 0.0; }).is_ok());       // duplicate values
  EXPECT_FALSE(running->add({"c", "d"}, [] { return 0.0; }).is_ok());  // wrong arity
  EXPECT_FALSE(running->add({"e"}, nullptr).is_ok());
  EXPECT_NE(reg.render().find("running{model_name=\"a\"} 1\n"), std::string::npos);
  n = 5;
  const std::string text = reg.render();
  EXPECT_NE(text.find("running{model_name=\"a\"} 5\n"), std::string::npos);
  EXPECT_NE(text.find("running{model_name=\"b\"} NaN\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE engine_steps_total counter\nengine_steps_total 12\n"), std::string::npos);
}

TEST(Metrics, ConcurrentIncrementsAreExact) {
  Registry reg;
  auto* c = ok(reg.counter("c", "C.", {"model_name"}));
  auto* h = ok(reg.histogram("h", "H.", bounds({1, 2, 3}), {"model_name"}));
  ASSERT_TRUE(c && h);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      // Every thread looks the children up itself: creation races must yield one child.
      Counter& counter = c->labels({"m"});
      Histogram& hist = h->labels({"m"});
      for (int i = 0; i < kPerThread; ++i) {
        counter.inc();
        hist.observe(static_cast<double>(i % 4) + 0.5);  // 0.5, 1.5, 2.5, 3.5: a quarter per bucket
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c->labels({"m"}).value(), static_cast<double>(kThreads * kPerThread));
  Histogram& hist = h->labels({"m"});
  EXPECT_EQ(hist.count(), static_cast<uint64_t>(kThreads * kPerThread));
  const uint64_t q = kThreads * kPerThread / 4;
  EXPECT_EQ(hist.cumulative_counts(), (std::vector<uint64_t>{q, 2 * q, 3 * q, 4 * q}));
  EXPECT_EQ(hist.sum(), static_cast<double>(q) * (0.5 + 1.5 + 2.5 + 3.5));  // exact: all halves
  const std::string text = reg.render();
  EXPECT_NE(text.find("c_total{model_name=\"m\"} 400000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_count{model_name=\"m\"} 400000\n"), std::string::npos) << text;
}

// Bucket lines of one histogram child, in order, parsed back from the exposition.
std::vector<uint64_t> parse_buckets(const std::string& text, const std::string& prefix, uint64_t* count) {
  std::vector<uint64_t> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(prefix + "_bucket")) out.push_back(std::stoull(line.substr(line.rfind(' ') + 1)));
    if (line.starts_with(prefix + "_count")) *count = std::stoull(line.substr(line.rfind(' ') + 1));
  }
  return out;
}

TEST(Metrics, CumulativeBucketsAreMonotonicEvenWhileObservationsRace) {
  Registry reg;
  auto* h = ok(reg.histogram("ttft_seconds", "TTFT.", buckets::time_to_first_token()));
  ASSERT_NE(h, nullptr);
  Histogram& hist = h->labels({});
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    uint64_t x = 12345;
    while (!stop.load(std::memory_order_relaxed)) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      hist.observe(static_cast<double>(x >> 11) * 0x1.0p-53 * 3000.0);  // uniform in [0, 3000)
    }
  });
  while (hist.count() < 1000) std::this_thread::yield();  // scrape while the writer is busy
  uint64_t last_count = 0;
  for (int scrape = 0; scrape < 200; ++scrape) {
    uint64_t count = 0;
    const std::vector<uint64_t> b = parse_buckets(reg.render(), "ttft_seconds", &count);
    ASSERT_EQ(b.size(), buckets::time_to_first_token().size() + 1);
    EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
    EXPECT_EQ(b.back(), count);  // _count is the +Inf bucket
    EXPECT_GE(count, last_count);
    last_count = count;
  }
  stop = true;
  writer.join();
  uint64_t final_count = 0;
  const std::vector<uint64_t> b = parse_buckets(reg.render(), "ttft_seconds", &final_count);
  EXPECT_EQ(final_count, hist.count());  // quiescent: the scrape sees every observation
  EXPECT_GE(final_count, last_count);
  EXPECT_EQ(b, hist.cumulative_counts());
}

TEST(Metrics, VllmDefaultBuckets) {
  const auto ttft = buckets::time_to_first_token();
  const auto itl = buckets::inter_token_latency();
  const auto e2e = buckets::request_latency();
  ASSERT_EQ(ttft.size(), 22u);
  ASSERT_EQ(itl.size(), 19u);
  ASSERT_EQ(e2e.size(), 21u);
  EXPECT_EQ(ttft.front(), 0.001);
  EXPECT_EQ(ttft.back(), 2560.0);
  EXPECT_EQ(itl.front(), 0.01);
  EXPECT_EQ(itl.back(), 80.0);
  EXPECT_EQ(e2e.front(), 0.3);
  EXPECT_EQ(e2e.back(), 7680.0);
  for (auto b : {ttft, itl, e2e}) {
    EXPECT_TRUE(std::adjacent_find(b.begin(), b.end(), std::greater_equal<>()) == b.end());
  }
}

// promtool's verdict on a rendered registry: exit status and what it printed.
std::pair<int, std::string> promtool_check(const std::string& text) {
  const auto dir = std::filesystem::temp_directory_path();
  const auto path =
      dir / ("hearth_metrics_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".txt");
  std::ofstream(path) << text;
  const std::string cmd = "promtool check metrics < '" + path.string() + "' 2>&1";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return {-1, ""};
  char buf[256];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int status = pclose(p);
  std::filesystem::remove(path);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

void fill(Registry& reg, const std::string& prefix) {
  auto* c = ok(reg.counter(prefix + "prompt_tokens_total", "Prefill tokens.", {"model_name"}));
  auto* g = ok(reg.gauge(prefix + "num_requests_running", "Running.", {"model_name"}));
  auto* cb = ok(reg.callback_gauge(prefix + "kv_cache_usage_perc", "KV usage.", {"model_name"}));
  auto* h = ok(reg.histogram(prefix + "time_to_first_token_seconds", "TTFT \\ with\nnewline.",
                             buckets::time_to_first_token(), {"model_name"}));
  ASSERT_TRUE(c && g && cb && h);
  c->labels({"deepseek \"v3\"\n"}).inc(7);
  g->labels({"deepseek"}).set(3);
  ASSERT_TRUE(cb->add({"deepseek"}, [] { return 0.5; }).is_ok());
  for (double v : {0.001, 0.3, 7.0, 1e4}) h->labels({"deepseek"}).observe(v);
}

TEST(Metrics, PromtoolAcceptsTheExposition) {
  if (!std::filesystem::exists("/usr/bin/promtool")) GTEST_SKIP() << "promtool not installed";
  Registry reg;
  fill(reg, "hearth_");
  const auto [rc, out] = promtool_check(reg.render());
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "");
}

TEST(Metrics, PromtoolOnlyObjectsToTheColonsInVllmStyleNames) {
  if (!std::filesystem::exists("/usr/bin/promtool")) GTEST_SKIP() << "promtool not installed";
  Registry reg;
  fill(reg, "hearth:");
  const auto [rc, out] = promtool_check(reg.render());
  // promtool 2.42 lints colons (reserved for recording rules) and exits 3; the format itself is fine.
  EXPECT_EQ(rc, 3) << out;
  std::istringstream in(out);
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    EXPECT_TRUE(line.ends_with(" metric names should not contain ':'")) << line;
  }
  EXPECT_EQ(lines, 4) << out;
}

}  // namespace
}  // namespace hearth
