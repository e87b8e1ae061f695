// hearth bench: load an OpenAI-compatible endpoint (hearth serve, vLLM, SGLang, DeepSeek's API) and
// report TTFT, TPOT, ITL, end-to-end latency, throughput and goodput (docs/bench.md). A list of
// concurrencies or rates runs a sweep; --json writes the numbers, --html a report with charts.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "commands.h"
#include "model/model_files.h"
#include "ops/bench/load_generator.h"
#include "ops/bench/prompts.h"
#include "ops/bench/report.h"

namespace hearth::app {
namespace {

struct BenchArgs {
  std::string url;
  std::string model;
  std::string api_key;
  std::string endpoint = "completions";
  std::vector<int> concurrency;
  std::vector<double> rate;
  int64_t requests = 0;
  double duration = 0;
  int64_t warmup = 0;
  int64_t input_len = 128;
  int64_t output_len = 128;
  double input_range = 0;
  double output_range = 0;
  std::string dataset;
  std::string tokenizer;
  uint64_t seed = 0;
  double temperature = 0;
  bool no_ignore_eos = false;
  double timeout = 600;
  int threads = 1;
  double slo_ttft_ms = 0, slo_tpot_ms = 0, slo_e2e_ms = 0;
  std::string json;
  std::string html;
  std::string tenant;
  bool quiet = false;
};

int fail(const Status& st) {
  std::fprintf(stderr, "error: %s\n", st.message().c_str());
  return 1;
}

int run_bench(BenchArgs a) {
  auto ep = ops::parse_url(a.url);
  if (!ep.is_ok()) return fail(ep.status());
  if (a.endpoint != "completions" && a.endpoint != "chat") {
    std::fprintf(stderr, "error: --endpoint must be completions or chat\n");
    return 2;
  }
  ep->chat = a.endpoint == "chat";
  ep->api_key =
      a.api_key.empty() && std::getenv("OPENAI_API_KEY") ? std::getenv("OPENAI_API_KEY") : a.api_key;
  ep->ignore_eos = !a.no_ignore_eos;
  ep->temperature = a.temperature;
  ep->tenant = a.tenant;
  if (a.requests <= 0 && a.duration <= 0) {
    std::fprintf(stderr, "error: give --requests N and/or --duration SECONDS\n");
    return 2;
  }
  if (!a.rate.empty() && a.concurrency.size() > 1) {
    std::fprintf(stderr, "error: sweep either --concurrency or --rate, not both\n");
    return 2;
  }
  if (a.concurrency.empty()) a.concurrency.push_back(a.rate.empty() ? 1 : 0);
  ep->model = a.model;
  if (ep->model.empty()) {
    auto m = ops::discover_model(*ep);
    if (!m.is_ok()) return fail(m.status());
    ep->model = *m;
  }

  std::shared_ptr<const tok::Tokenizer> tokenizer;
  if (!a.tokenizer.empty()) {
    auto t = load_tokenizer_for(a.tokenizer);
    if (!t.is_ok()) return fail(t.status());
    tokenizer = *t;
  }
  const int64_t distinct = a.requests > 0 ? std::min<int64_t>(a.requests + a.warmup, 4096) : 4096;
  std::vector<ops::BenchPrompt> prompts;
  if (!a.dataset.empty()) {
    auto d = ops::load_dataset(a.dataset, a.output_len, static_cast<size_t>(distinct), ep->chat);
    if (!d.is_ok()) return fail(d.status());
    prompts = std::move(*d);
  } else {
    ops::SyntheticSpec spec;
    spec.input_len = a.input_len;
    spec.output_len = a.output_len;
    spec.input_range = a.input_range;
    spec.output_range = a.output_range;
    spec.count = distinct;
    spec.seed = a.seed;
    spec.tokenizer = tokenizer.get();
    spec.token_ids = tokenizer != nullptr && !ep->chat;
    auto p = ops::synthetic_prompts(spec);
    if (!p.is_ok()) return fail(p.status());
    prompts = std::move(*p);
  }

  ops::Slo slo;
  if (a.slo_ttft_ms > 0) slo.ttft_s = a.slo_ttft_ms / 1e3;
  if (a.slo_tpot_ms > 0) slo.tpot_s = a.slo_tpot_ms / 1e3;
  if (a.slo_e2e_ms > 0) slo.e2e_s = a.slo_e2e_ms / 1e3;

  struct Point {
    int concurrency;
    std::optional<double> rate;
  };
  std::vector<Point> points;
  if (!a.rate.empty()) {
    for (double r : a.rate) points.push_back({a.concurrency[0], r});
  } else {
    for (int c : a.concurrency) points.push_back({c, std::nullopt});
  }
  const bool tty = isatty(2) != 0 && !a.quiet;
  std::vector<ops::BenchSummary> runs;
  for (const Point& pt : points) {
    ops::LoadConfig cfg;
    cfg.endpoint = *ep;
    cfg.concurrency = pt.concurrency;
    cfg.rate = pt.rate;
    cfg.requests = a.requests;
    cfg.duration_s = a.duration;
    cfg.warmup_requests = a.warmup;
    cfg.timeout_s = a.timeout;
    cfg.seed = a.seed;
    cfg.threads = a.threads;
    const std::string label =
        pt.rate ? fmt::format("rate {:g}/s{}", *pt.rate,
                              pt.concurrency > 0 ? fmt::format(" (max {})", pt.concurrency) : "")
                : fmt::format("concurrency {}", pt.concurrency);
    if (!a.quiet) {
      std::fprintf(stderr, "bench: %s -> %s:%u%s/%s, model %s, %s\n", label.c_str(), ep->host.c_str(),
                   ep->port, ep->base_path.c_str(), ep->chat ? "chat/completions" : "completions",
                   ep->model.c_str(),
                   a.requests > 0 ? fmt::format("{} requests", a.requests).c_str()
                                  : fmt::format("{:g} s", a.duration).c_str());
    }
    const int64_t total = a.requests;
    if (tty) {
      cfg.progress = [total, dur = a.duration](int64_t done, int64_t failed, int64_t tokens, double elapsed) {
        const double frac = total > 0 ? static_cast<double>(done + failed) / static_cast<double>(total)
                                      : (dur > 0 ? std::min(1.0, elapsed / dur) : 0.0);
        const int width = 30;
        const int filled = static_cast<int>(frac * width);
        std::fprintf(stderr, "\r[%s%s] %lld done, %lld failed, %.0f tok/s, %.1f s   ",
                     std::string(static_cast<size_t>(filled), '#').c_str(),
                     std::string(static_cast<size_t>(width - filled), ' ').c_str(),
                     static_cast<long long>(done), static_cast<long long>(failed),
                     elapsed > 0 ? static_cast<double>(tokens) / elapsed : 0.0, elapsed);
      };
    }
    auto res = ops::run_load(cfg, prompts);
    if (tty) std::fputc('\n', stderr);
    if (!res.is_ok()) return fail(res.status());
    ops::BenchSummary s = ops::summarize(*res, slo);
    s.label = label;
    s.concurrency = pt.concurrency;
    s.rate = pt.rate;
    // A run where nothing succeeded has no table to show: the error goes to stderr below.
    if ((!a.quiet || points.size() == 1) && s.completed > 0) std::fputs(ops::format_table(s).c_str(), stdout);
    runs.push_back(std::move(s));
  }
  if (runs.size() > 1) std::fputs(ops::format_sweep_table(runs).c_str(), stdout);

  if (!a.json.empty()) {
    nlohmann::json j;
    if (runs.size() == 1) {
      j = ops::to_json(runs[0]);
    } else {
      j["sweep"] = a.rate.empty() ? "concurrency" : "rate";
      j["runs"] = nlohmann::json::array();
      for (const auto& s : runs) j["runs"].push_back(ops::to_json(s));
    }
    j["url"] = a.url;
    j["model"] = ep->model;
    j["endpoint"] = a.endpoint;
    j["input_len"] = a.dataset.empty() ? nlohmann::json(a.input_len) : nlohmann::json(nullptr);
    j["output_len"] = a.output_len;
    j["dataset"] = a.dataset.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.dataset);
    std::ofstream(a.json) << j.dump(2) << "\n";
    if (!a.quiet) std::fprintf(stderr, "bench: wrote %s\n", a.json.c_str());
  }
  if (!a.html.empty()) {
    std::ofstream(a.html) << ops::html_report(runs, fmt::format("hearth bench: {} ({})", ep->model, a.url));
    if (!a.quiet) std::fprintf(stderr, "bench: wrote %s\n", a.html.c_str());
  }
  int64_t completed = 0;
  for (const auto& s : runs) completed += s.completed;
  if (completed == 0) {
    std::string classes;
    for (const auto& s : runs)
      for (const auto& [k, v] : s.errors) classes += fmt::format(" {} {}", k, v);
    std::fprintf(stderr, "error: no request succeeded (failed:%s); first error: %s\n", classes.c_str(),
                 runs.empty() ? "" : runs[0].first_error.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, RunFn* run) {
  auto a = std::make_shared<BenchArgs>();
  auto* cmd =
      app.add_subcommand("bench", "Load an OpenAI-compatible endpoint and report latency and throughput");
  cmd->add_option("--url", a->url, "Base URL, e.g. http://127.0.0.1:8000 (path defaults to /v1)")->required();
  cmd->add_option("--model", a->model, "Model name (default: the first of GET /v1/models)");
  cmd->add_option("--api-key", a->api_key, "Bearer key (or OPENAI_API_KEY)");
  cmd->add_option("--endpoint", a->endpoint, "completions or chat")->capture_default_str();
  cmd->add_option("--concurrency,-c", a->concurrency,
                  "Closed loop: requests in flight (a list sweeps: 1,4,16); with --rate: a cap")
      ->delimiter(',');
  cmd->add_option("--rate", a->rate, "Open loop: Poisson arrivals per second (a list sweeps)")
      ->delimiter(',');
  cmd->add_option("--requests,-n", a->requests, "Measured requests per run");
  cmd->add_option("--duration", a->duration, "Seconds to send requests per run");
  cmd->add_option("--warmup", a->warmup, "Requests sent first and not measured")->capture_default_str();
  cmd->add_option("--input-len", a->input_len, "Prompt tokens (synthetic prompts)")->capture_default_str();
  cmd->add_option("--output-len", a->output_len, "max_tokens per request")->capture_default_str();
  cmd->add_option("--input-len-range", a->input_range, "Lengths uniform in len x [1-r, 1+r]")
      ->capture_default_str();
  cmd->add_option("--output-len-range", a->output_range, "As --input-len-range for outputs")
      ->capture_default_str();
  cmd->add_option(
      "--dataset", a->dataset,
      "JSONL prompts: {\"prompt\"} | {\"messages\"} | ShareGPT {\"conversations\"}, optional \"output_len\"");
  cmd->add_option("--tokenizer", a->tokenizer,
                  "Model directory or .gguf whose tokenizer makes prompts exactly --input-len tokens");
  cmd->add_option("--seed", a->seed, "Prompt order and arrivals")->capture_default_str();
  cmd->add_option("--temperature", a->temperature, "Sampling temperature")->capture_default_str();
  cmd->add_flag(
      "--no-ignore-eos", a->no_ignore_eos,
      "Do not send ignore_eos (for servers that refuse it, e.g. DeepSeek's API); outputs may end early");
  cmd->add_option("--timeout", a->timeout, "Seconds per request")->capture_default_str();
  cmd->add_option("--threads", a->threads, "Client I/O threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--slo-ttft-ms", a->slo_ttft_ms, "Goodput: TTFT at most this");
  cmd->add_option("--slo-tpot-ms", a->slo_tpot_ms, "Goodput: TPOT at most this");
  cmd->add_option("--slo-e2e-ms", a->slo_e2e_ms, "Goodput: end-to-end latency at most this");
  cmd->add_option("--json", a->json, "Write the results as JSON");
  cmd->add_option("--html", a->html, "Write a self-contained HTML report with charts");
  cmd->add_option("--tenant", a->tenant, "Send x-hearth-tenant (hearth's fairness key)");
  cmd->add_flag("--quiet,-q", a->quiet, "No progress output");
  cmd->callback([run, a] { *run = [a] { return run_bench(*a); }; });
}

}  // namespace hearth::app
