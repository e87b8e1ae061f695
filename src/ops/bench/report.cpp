#include "ops/bench/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace hearth::ops {

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double pos = p / 100.0 * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

Distribution summarize(std::vector<double> v) {
  Distribution d;
  d.count = static_cast<int64_t>(v.size());
  if (v.empty()) return d;
  std::sort(v.begin(), v.end());
  const double n = static_cast<double>(v.size());
  d.mean = std::accumulate(v.begin(), v.end(), 0.0) / n;
  double sq = 0;
  for (double x : v) sq += (x - d.mean) * (x - d.mean);
  d.stdev = std::sqrt(sq / n);  // population stdev, as numpy.std
  d.min = v.front();
  d.max = v.back();
  d.p50 = percentile(v, 50);
  d.p90 = percentile(v, 90);
  d.p95 = percentile(v, 95);
  d.p99 = percentile(v, 99);
  return d;
}

BenchSummary summarize(const LoadResult& r, const Slo& slo) {
  BenchSummary s;
  s.duration_s = r.duration_s;
  s.slo = slo;
  std::vector<double> ttft, tpot, itl, e2e;
  int64_t good = 0;
  for (const RequestRecord& rec : r.records) {
    if (rec.warmup) continue;
    if (!rec.ok) {
      ++s.failed;
      ++s.errors[std::string(error_class_name(rec.error))];
      if (s.first_error.empty()) s.first_error = rec.error_detail;
      continue;
    }
    ++s.completed;
    s.input_tokens += rec.input_tokens;
    s.output_tokens += rec.output_tokens;
    ttft.push_back(rec.ttft);
    e2e.push_back(rec.e2e);
    itl.insert(itl.end(), rec.itl.begin(), rec.itl.end());
    double request_tpot = 0;
    if (rec.output_tokens > 1) {
      request_tpot = (rec.e2e - rec.ttft) / static_cast<double>(rec.output_tokens - 1);
      tpot.push_back(request_tpot);
    }
    if (slo.any()) {
      const bool ok = (!slo.ttft_s || rec.ttft <= *slo.ttft_s) &&
                      (!slo.tpot_s || request_tpot <= *slo.tpot_s) && (!slo.e2e_s || rec.e2e <= *slo.e2e_s);
      if (ok) ++good;
    }
  }
  const double dur = s.duration_s > 0 ? s.duration_s : 1e-9;
  s.requests_per_s = static_cast<double>(s.completed) / dur;
  s.input_tokens_per_s = static_cast<double>(s.input_tokens) / dur;
  s.output_tokens_per_s = static_cast<double>(s.output_tokens) / dur;
  s.total_tokens_per_s = s.input_tokens_per_s + s.output_tokens_per_s;
  s.ttft = summarize(std::move(ttft));
  s.tpot = summarize(std::move(tpot));
  s.itl = summarize(std::move(itl));
  s.e2e = summarize(std::move(e2e));
  if (slo.any()) {
    s.good = good;
    s.goodput_requests_per_s = static_cast<double>(good) / dur;
  }
  return s;
}

namespace {

nlohmann::json dist_json(const Distribution& d) {
  return nlohmann::json{{"count", d.count}, {"mean", d.mean}, {"stdev", d.stdev},
                        {"min", d.min},     {"max", d.max},   {"p50", d.p50},
                        {"p90", d.p90},     {"p95", d.p95},   {"p99", d.p99}};
}

std::string ms(double s) {
  return fmt::format("{:.2f}", s * 1e3);
}

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

nlohmann::json to_json(const BenchSummary& s) {
  nlohmann::json j;
  j["label"] = s.label;
  j["concurrency"] = s.concurrency;
  j["rate"] = s.rate ? nlohmann::json(*s.rate) : nlohmann::json(nullptr);
  j["completed"] = s.completed;
  j["failed"] = s.failed;
  j["errors"] = s.errors;
  if (!s.first_error.empty()) j["first_error"] = s.first_error;
  j["duration_s"] = s.duration_s;
  j["total_input_tokens"] = s.input_tokens;
  j["total_output_tokens"] = s.output_tokens;
  j["requests_per_s"] = s.requests_per_s;
  j["input_tokens_per_s"] = s.input_tokens_per_s;
  j["output_tokens_per_s"] = s.output_tokens_per_s;
  j["total_tokens_per_s"] = s.total_tokens_per_s;
  j["ttft"] = dist_json(s.ttft);
  j["tpot"] = dist_json(s.tpot);
  j["itl"] = dist_json(s.itl);
  j["e2e"] = dist_json(s.e2e);
  if (s.slo.any()) {
    nlohmann::json slo = nlohmann::json::object();
    if (s.slo.ttft_s) slo["ttft_s"] = *s.slo.ttft_s;
    if (s.slo.tpot_s) slo["tpot_s"] = *s.slo.tpot_s;
    if (s.slo.e2e_s) slo["e2e_s"] = *s.slo.e2e_s;
    j["slo"] = slo;
    j["good_requests"] = *s.good;
    j["goodput_requests_per_s"] = *s.goodput_requests_per_s;
  }
  j["units"] = "seconds; tokens";
  return j;
}

std::string format_table(const BenchSummary& s) {
  std::string t;
  auto row = [&](std::string_view k, const std::string& v) { t += fmt::format("{:<34}{:>16}\n", k, v); };
  t += fmt::format("============ hearth bench: {} ============\n", s.label);
  row("Successful requests:", fmt::format("{}", s.completed));
  row("Failed requests:", fmt::format("{}", s.failed));
  for (const auto& [k, v] : s.errors) row(fmt::format("  {}:", k), fmt::format("{}", v));
  row("Benchmark duration (s):", fmt::format("{:.2f}", s.duration_s));
  row("Total input tokens:", fmt::format("{}", s.input_tokens));
  row("Total generated tokens:", fmt::format("{}", s.output_tokens));
  row("Request throughput (req/s):", fmt::format("{:.2f}", s.requests_per_s));
  if (s.goodput_requests_per_s)
    row("Request goodput (req/s):", fmt::format("{:.2f}", *s.goodput_requests_per_s));
  row("Output token throughput (tok/s):", fmt::format("{:.2f}", s.output_tokens_per_s));
  row("Total token throughput (tok/s):", fmt::format("{:.2f}", s.total_tokens_per_s));
  auto block = [&](std::string_view title, std::string_view abbr, const Distribution& d) {
    t += fmt::format("{:-^50}\n", fmt::format(" {} ", title));
    row(fmt::format("Mean {} (ms):", abbr), ms(d.mean));
    row(fmt::format("Median {} (ms):", abbr), ms(d.p50));
    row(fmt::format("P90 {} (ms):", abbr), ms(d.p90));
    row(fmt::format("P99 {} (ms):", abbr), ms(d.p99));
  };
  block("Time to First Token", "TTFT", s.ttft);
  block("Time per Output Token (excl. 1st token)", "TPOT", s.tpot);
  block("Inter-token Latency", "ITL", s.itl);
  block("End-to-end Latency", "E2EL", s.e2e);
  t += std::string(50, '=') + "\n";
  if (!s.first_error.empty()) t += fmt::format("first error: {}\n", s.first_error);
  return t;
}

std::string format_sweep_table(const std::vector<BenchSummary>& runs) {
  std::string t =
      fmt::format("{:<18}{:>8}{:>7}{:>10}{:>12}{:>11}{:>11}{:>11}{:>11}{:>11}\n", "run", "done", "fail",
                  "req/s", "out tok/s", "TTFT p50", "TTFT p99", "TPOT p50", "E2E p50", "E2E p99");
  for (const BenchSummary& s : runs) {
    t += fmt::format("{:<18}{:>8}{:>7}{:>10.2f}{:>12.1f}{:>9}ms{:>9}ms{:>9}ms{:>9}ms{:>9}ms\n", s.label,
                     s.completed, s.failed, s.requests_per_s, s.output_tokens_per_s, ms(s.ttft.p50),
                     ms(s.ttft.p99), ms(s.tpot.p50), ms(s.e2e.p50), ms(s.e2e.p99));
  }
  return t;
}

std::string html_report(const std::vector<BenchSummary>& runs, const std::string& title) {
  // One SVG per latency metric: x = output tokens/s, y = latency (ms), p50 and p99 series.
  auto chart = [&](const char* name, auto get50, auto get99) {
    const double W = 520, H = 300, L = 60, R = 20, T = 30, B = 45;
    double xmax = 1, ymax = 1e-6;
    for (const auto& s : runs) {
      xmax = std::max(xmax, s.output_tokens_per_s);
      ymax = std::max(ymax, get99(s) * 1e3);
    }
    xmax *= 1.08;
    ymax *= 1.1;
    auto X = [&](double v) { return L + v / xmax * (W - L - R); };
    auto Y = [&](double v) { return H - B - v / ymax * (H - T - B); };
    std::string svg = fmt::format(
        R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="11">)",
        W, H);
    svg += fmt::format(
        R"(<text x="{}" y="18" font-size="13" font-weight="bold">{} vs output throughput</text>)", L, name);
    svg += fmt::format(
        R"(<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="#333"/><line x1="{0}" y1="{3}" x2="{0}" y2="{1}" stroke="#333"/>)",
        L, H - B, W - R, T);
    for (int i = 0; i <= 4; ++i) {
      const double xv = xmax * i / 4, yv = ymax * i / 4;
      svg += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle">{:.0f}</text>)", X(xv), H - B + 15, xv);
      svg += fmt::format(R"(<text x="{}" y="{}" text-anchor="end">{:.1f}</text>)", L - 5, Y(yv) + 4, yv);
      svg += fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#eee"/>)", L, Y(yv), W - R, Y(yv));
    }
    svg += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle">output tokens/s</text>)", (L + W - R) / 2,
                       H - 8);
    svg +=
        fmt::format(R"x(<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">ms</text>)x",
                    (T + H - B) / 2, (T + H - B) / 2);
    auto series = [&](auto get, const char* color, const char* label, int row) {
      std::string pts;
      for (const auto& s : runs)
        pts += fmt::format("{:.1f},{:.1f} ", X(s.output_tokens_per_s), Y(get(s) * 1e3));
      svg += fmt::format(R"(<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>)", color, pts);
      for (const auto& s : runs) {
        svg += fmt::format(
            R"(<circle cx="{:.1f}" cy="{:.1f}" r="3" fill="{}"><title>{}: {:.2f} ms at {:.1f} tok/s</title></circle>)",
            X(s.output_tokens_per_s), Y(get(s) * 1e3), color, html_escape(s.label), get(s) * 1e3,
            s.output_tokens_per_s);
      }
      svg +=
          fmt::format(R"(<text x="{}" y="{}" fill="{}">{}</text>)", W - R - 40, T + 12 * row, color, label);
    };
    series(get50, "#1f77b4", "p50", 1);
    series(get99, "#d62728", "p99", 2);
    svg += "</svg>";
    return svg;
  };
  std::string page = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" + html_escape(title) +
                     "</title><style>body{font-family:sans-serif;margin:24px}table{border-collapse:collapse}"
                     "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}"
                     "</style></head><body><h1>" +
                     html_escape(title) + "</h1><div>";
  page += chart(
      "TTFT", [](const BenchSummary& s) { return s.ttft.p50; },
      [](const BenchSummary& s) { return s.ttft.p99; });
  page += chart(
      "TPOT", [](const BenchSummary& s) { return s.tpot.p50; },
      [](const BenchSummary& s) { return s.tpot.p99; });
  page += chart(
      "E2E latency", [](const BenchSummary& s) { return s.e2e.p50; },
      [](const BenchSummary& s) { return s.e2e.p99; });
  page +=
      "</div><table><tr><th>run</th><th>completed</th><th>failed</th><th>req/s</th><th>output tok/s</th>"
      "<th>TTFT p50 ms</th><th>TTFT p99 ms</th><th>TPOT p50 ms</th><th>ITL p99 ms</th><th>E2E p50 ms</th>"
      "<th>E2E p99 ms</th><th>goodput req/s</th></tr>";
  for (const auto& s : runs) {
    page += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.2f}</td><td>{:.1f}</td><td>{}</td><td>{}</td><td>{}</"
        "td><td>{}</td>"
        "<td>{}</td><td>{}</td><td>{}</td></tr>",
        html_escape(s.label), s.completed, s.failed, s.requests_per_s, s.output_tokens_per_s, ms(s.ttft.p50),
        ms(s.ttft.p99), ms(s.tpot.p50), ms(s.itl.p99), ms(s.e2e.p50), ms(s.e2e.p99),
        s.goodput_requests_per_s ? fmt::format("{:.2f}", *s.goodput_requests_per_s) : std::string("-"));
  }
  page +=
      "</table><p>Definitions as vLLM's benchmark_serving: TTFT = request sent to first streamed text; TPOT "
      "= "
      "(E2E - TTFT) / (output tokens - 1); ITL = gaps between streamed text chunks; E2E = request sent to "
      "end of "
      "stream. Generated by hearth bench.</p></body></html>\n";
  return page;
}

}  // namespace hearth::ops
