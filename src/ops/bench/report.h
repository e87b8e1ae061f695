#pragma once
// hearth bench's numbers: distributions and throughput from the per-request records, defined as vLLM's
// benchmark_serving defines them (so results compare; docs/bench.md), and their renderings: a
// readable table, JSON, and a self-contained HTML report (SVG charts) for sweeps.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ops/bench/load_generator.h"

namespace hearth::ops {

struct Distribution {
  int64_t count = 0;
  double mean = 0, stdev = 0, min = 0, max = 0, p50 = 0, p90 = 0, p95 = 0, p99 = 0;
};

// Percentiles by linear interpolation between closest ranks (numpy.percentile's default).
Distribution summarize(std::vector<double> values);
double percentile(const std::vector<double>& sorted, double p);

struct Slo {
  std::optional<double> ttft_s, tpot_s, e2e_s;  // a request is "good" when it meets every SLO given
  bool any() const { return ttft_s || tpot_s || e2e_s; }
};

struct BenchSummary {
  std::string label;    // "concurrency 4", "rate 2.0/s"
  int concurrency = 0;  // 0 when open loop without a cap
  std::optional<double> rate;
  int64_t completed = 0;
  int64_t failed = 0;
  std::map<std::string, int64_t> errors;  // by class
  std::string first_error;
  double duration_s = 0;
  int64_t input_tokens = 0, output_tokens = 0;
  double requests_per_s = 0, input_tokens_per_s = 0, output_tokens_per_s = 0, total_tokens_per_s = 0;
  Distribution ttft, tpot, itl, e2e;
  Slo slo;
  std::optional<int64_t> good;  // requests meeting the SLOs
  std::optional<double> goodput_requests_per_s;
};

BenchSummary summarize(const LoadResult& result, const Slo& slo);

nlohmann::json to_json(const BenchSummary& s);
std::string format_table(const BenchSummary& s);
std::string format_sweep_table(const std::vector<BenchSummary>& runs);
// A self-contained page: output throughput vs TTFT / TPOT / E2E (p50 and p99) across the runs, and a
// table of every run.
std::string html_report(const std::vector<BenchSummary>& runs, const std::string& title);

}  // namespace hearth::ops
