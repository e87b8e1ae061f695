// hearth plan: size and price a deployment from a model's config.json (or a preset), a GPU type and a
// workload (docs/plan.md). Plain output is a table; --json the numbers; --html a report with a chart.
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "commands.h"
#include "ops/plan/planner.h"

namespace hearth::app {
namespace {

struct PlanArgs {
  std::string model;
  std::string precision = "bf16";
  std::string kv_precision = "bf16";
  std::string gpu = "h100-sxm";
  int gpus_per_node = 8;
  double gpu_memory_utilization = 0.9;
  double qps = 0;
  double calls_per_day = 100000;
  double peak_to_average = 3.0;
  int64_t input_len = 1024;
  int64_t output_len = 512;
  double slo_ttft_ms = 1000;
  double slo_e2e_s = 30;
  double tokens_per_s_per_user = 20;
  double batch_fraction = 0;
  double target_utilization = 0.75;
  std::string calibrate;
  int years = 3;
  double pue = 1.3;
  double tariff_peak = 0.15, tariff_valley = 0.06, peak_hours = 12;
  double gpu_price = 0;
  double cloud_price = 0;
  std::string licence = "auto";
  bool json = false;
  std::string html;
  bool list_gpus = false;
};

int run_plan(const PlanArgs& a) {
  if (a.list_gpus) {
    fmt::print("{:<13}{:<34}{:>8}{:>9}{:>10}{:>9}{:>7}{:>9}{:>10}\n", "id", "name", "GB", "TB/s", "BF16 TF",
               "FP8 TF", "W", "USD", "USD/h");
    for (const auto& g : ops::gpu_catalog()) {
      fmt::print("{:<13}{:<34}{:>8.0f}{:>9.2f}{:>10.0f}{:>9.0f}{:>7.0f}{:>9.0f}{:>10.2f}\n", g.id, g.name,
                 g.memory_gb, g.bandwidth_tbs, g.bf16_tflops, g.fp8_tflops, g.power_w, g.price_usd,
                 g.cloud_usd_per_hour);
    }
    return 0;
  }
  if (a.model.empty()) {
    std::string names;
    for (const auto& n : ops::plan_model_presets()) names += " " + n;
    std::fprintf(stderr, "error: give --model (a model directory, a config.json, or a preset:%s)\n",
                 names.c_str());
    return 2;
  }
  ops::PlanInputs in;
  auto spec = ops::plan_model(a.model);
  if (!spec.is_ok()) {
    std::fprintf(stderr, "error: %s\n", spec.status().message().c_str());
    return 1;
  }
  in.spec = std::move(*spec);
  in.model_name = a.model;
  auto prec = ops::parse_precision(a.precision);
  auto kvp = ops::parse_precision(a.kv_precision);
  if (!prec.is_ok() || !kvp.is_ok()) {
    std::fprintf(stderr, "error: %s\n", (!prec.is_ok() ? prec.status() : kvp.status()).message().c_str());
    return 2;
  }
  in.precision = *prec;
  in.kv_precision = *kvp;
  auto gpu = ops::find_gpu(a.gpu);
  if (!gpu) {
    std::string ids;
    for (const auto& g : ops::gpu_catalog()) ids += " " + g.id;
    std::fprintf(stderr, "error: --gpu %s: unknown; known:%s (hearth plan --list-gpus)\n", a.gpu.c_str(),
                 ids.c_str());
    return 2;
  }
  in.gpu = *gpu;
  in.gpus_per_node = a.gpus_per_node;
  in.gpu_memory_utilization = a.gpu_memory_utilization;
  in.target_utilization = a.target_utilization;
  ops::Workload& w = in.workload;
  w.calls_per_day = a.calls_per_day;
  if (a.qps > 0) w.qps = a.qps;
  w.peak_to_average = a.peak_to_average;
  w.input_len = a.input_len;
  w.output_len = a.output_len;
  w.slo_ttft_s = a.slo_ttft_ms / 1e3;
  w.slo_e2e_s = a.slo_e2e_s;
  w.tokens_per_s_per_user = a.tokens_per_s_per_user;
  w.batch_fraction = a.batch_fraction;
  in.tco.years = a.years;
  in.tco.pue = a.pue;
  in.tco.tariff_peak = a.tariff_peak;
  in.tco.tariff_valley = a.tariff_valley;
  in.tco.peak_hours = a.peak_hours;
  in.tco.licence = a.licence;
  if (a.gpu_price > 0) in.gpu_price_usd = a.gpu_price;
  if (a.cloud_price > 0) in.tco.cloud_usd_per_gpu_hour = a.cloud_price;
  std::optional<ops::Calibration> cal;
  if (!a.calibrate.empty()) {
    std::ifstream f(a.calibrate, std::ios::binary);
    if (!f) {
      std::fprintf(stderr, "error: --calibrate %s: cannot open\n", a.calibrate.c_str());
      return 1;
    }
    std::stringstream buf;
    buf << f.rdbuf();
    auto c = ops::parse_calibration(buf.str());
    if (!c.is_ok()) {
      std::fprintf(stderr, "error: %s\n", c.status().message().c_str());
      return 1;
    }
    cal = *c;
  }
  auto plan = ops::make_plan(in, cal);
  if (!plan.is_ok()) {
    std::fprintf(stderr, "error: %s\n", plan.status().message().c_str());
    return 1;
  }
  if (a.json) {
    fmt::print("{}\n", ops::plan_to_json(in, *plan).dump(2));
  } else {
    fmt::print("{}", ops::format_plan(in, *plan));
  }
  if (!a.html.empty()) {
    std::ofstream(a.html) << ops::plan_html(in, *plan);
    std::fprintf(stderr, "plan: wrote %s\n", a.html.c_str());
  }
  return 0;
}

}  // namespace

void add_plan_command(CLI::App& app, RunFn* run) {
  auto a = std::make_shared<PlanArgs>();
  auto* cmd = app.add_subcommand(
      "plan", "Size and price a deployment: GPUs, nodes, parallelism, throughput, 3-year TCO");
  cmd->add_option("--model", a->model,
                  "Model directory, config.json, or a preset (deepseek-v3, r1-distill-qwen-7b, ...)");
  cmd->add_option("--precision", a->precision, "Weights: bf16, fp8, int8, int4")->capture_default_str();
  cmd->add_option("--kv-precision", a->kv_precision, "KV cache: bf16 or fp8")->capture_default_str();
  cmd->add_option("--gpu", a->gpu, "GPU type (--list-gpus)")->capture_default_str();
  cmd->add_flag("--list-gpus", a->list_gpus, "List the GPU catalog and exit");
  cmd->add_option("--gpus-per-node", a->gpus_per_node, "GPUs per node")->capture_default_str();
  cmd->add_option("--gpu-memory-utilization", a->gpu_memory_utilization,
                  "Share of GPU memory the engine uses")
      ->capture_default_str();
  cmd->add_option("--qps", a->qps, "Average requests per second (overrides --calls-per-day)");
  cmd->add_option("--calls-per-day", a->calls_per_day, "Average calls per day")->capture_default_str();
  cmd->add_option("--peak-to-average", a->peak_to_average, "Peak QPS / average QPS")->capture_default_str();
  cmd->add_option("--input-len", a->input_len, "Prompt tokens per request")->capture_default_str();
  cmd->add_option("--output-len", a->output_len, "Output tokens per request")->capture_default_str();
  cmd->add_option("--slo-ttft-ms", a->slo_ttft_ms, "Time to first token target")->capture_default_str();
  cmd->add_option("--slo-e2e-s", a->slo_e2e_s, "End-to-end latency target per request")
      ->capture_default_str();
  cmd->add_option("--tokens-per-s-per-user", a->tokens_per_s_per_user, "Streaming speed each user must see")
      ->capture_default_str();
  cmd->add_option("--batch-fraction", a->batch_fraction,
                  "Share of calls that are batch work (run in valley hours)")
      ->capture_default_str();
  cmd->add_option("--target-utilization", a->target_utilization, "Peak load per replica (60-80% band)")
      ->capture_default_str();
  cmd->add_option("--calibrate", a->calibrate, "A hearth bench --json run of this model on this GPU type");
  cmd->add_option("--years", a->years, "TCO horizon")->capture_default_str();
  cmd->add_option("--pue", a->pue, "IDC power usage effectiveness")->capture_default_str();
  cmd->add_option("--tariff-peak", a->tariff_peak, "USD per kWh, peak hours")->capture_default_str();
  cmd->add_option("--tariff-valley", a->tariff_valley, "USD per kWh, valley hours")->capture_default_str();
  cmd->add_option("--peak-hours", a->peak_hours, "Peak-tariff hours per day")->capture_default_str();
  cmd->add_option("--gpu-price", a->gpu_price, "USD per GPU (default: the catalog's)");
  cmd->add_option("--cloud-price", a->cloud_price, "USD per GPU-hour on demand (default: the catalog's)");
  cmd->add_option("--licence", a->licence, "none, basic, advanced, custom or auto")->capture_default_str();
  cmd->add_flag("--json", a->json, "Print the plan as JSON");
  cmd->add_option("--html", a->html, "Write a report with a chart");
  cmd->callback([run, a] { *run = [a] { return run_plan(*a); }; });
}

}  // namespace hearth::app
