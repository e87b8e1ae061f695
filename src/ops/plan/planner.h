#pragma once
// hearth plan: from a model's shape (config.json or a preset), a GPU type and a workload, how many GPUs
// and nodes a deployment needs and what it costs over three years. Every number comes from a stated
// formula (docs/plan.md): memory fit (weights + KV at the target concurrency + runtime overhead),
// parallel degree, a roofline model of decode and prefill (bytes moved / bandwidth vs FLOPs / peak,
// scaled by efficiency factors that `--calibrate bench.json` corrects with a measured run), replicas for
// the peak load at a 60-80% utilisation band, and TCO for on-prem IDC, private cloud and hybrid.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "model/model_spec.h"
#include "ops/plan/hardware.h"

namespace hearth::ops {

enum class Precision { kBf16, kFp8, kInt8, kInt4 };
Result<Precision> parse_precision(std::string_view s);
std::string_view precision_name(Precision p);
// Stored bytes per weight, scales included: bf16 2; fp8 1 (+ 4 bytes per 128x128 block); int8 1 (+ a
// per-row scale); int4 0.5 + a 2-byte scale per 32 weights.
double bytes_per_weight(Precision p);

// A model for planning: a preset name or a directory / config.json path.
Result<ModelSpec> plan_model(const std::string& name_or_path);
std::vector<std::string> plan_model_presets();

struct Workload {
  double calls_per_day = 100000;
  std::optional<double> qps;     // average requests/s; overrides calls_per_day
  double peak_to_average = 3.0;  // peak QPS / average QPS
  int64_t input_len = 1024;      // tokens per request
  int64_t output_len = 512;
  double slo_ttft_s = 1.0;            // time to first token at low load
  double slo_e2e_s = 30.0;            // end-to-end latency of one request at the operating point
  double tokens_per_s_per_user = 20;  // streaming speed each user sees: TPOT <= 1 / this
  double batch_fraction = 0;          // share of calls that are batch work (runs in valley hours)
  double average_qps() const { return qps ? *qps : calls_per_day / 86400.0; }
};

struct Efficiency {
  double bandwidth = 0.75;  // fraction of peak memory bandwidth a decode step reaches
  double compute = 0.5;     // fraction of peak tensor FLOPS prefill reaches
};

struct TcoInputs {
  int years = 3;
  double pue = 1.3;                          // IDC power usage effectiveness (liquid cooling: < 1.1)
  double tariff_peak = 0.15;                 // USD per kWh in peak hours
  double tariff_valley = 0.06;               // USD per kWh in valley (night) hours
  double peak_hours = 12;                    // of 24
  double server_usd_per_node = 60000;        // chassis, CPUs, memory, NICs, storage of one GPU node
  double maintenance_per_year = 0.08;        // of the hardware capex
  double hosting_usd_per_node_year = 12000;  // rack space, network, IDC fees
  double node_overhead_w = 1500;             // CPUs, fans, NICs per node
  double idle_power = 0.3;                   // GPU draw at idle as a fraction of board power
  double cloud_discount = 0.4;  // private cloud: reserved (3-year) discount on the on-demand rate
  std::optional<double> cloud_usd_per_gpu_hour;  // default: the catalog's
  double hybrid_owned_share =
      0.5;                       // hybrid: share of replicas owned; the rest rented on demand at peak hours
  std::string licence = "auto";  // none | basic | advanced | custom | auto
  double licence_custom_usd_per_year = 0;
  double usd_per_cny = 1.0 / 7.2;  // the seed's licence prices are in CNY
};

struct PlanInputs {
  ModelSpec spec;
  std::string model_name;
  Precision precision = Precision::kBf16;     // weights
  Precision kv_precision = Precision::kBf16;  // KV cache (bf16 or fp8)
  GpuSpec gpu;
  int gpus_per_node = 8;
  double gpu_memory_utilization = 0.9;  // of device memory the engine may use
  double runtime_overhead_gb = 3.0;     // per GPU: CUDA context, workspaces, activations
  double target_utilization = 0.75;     // plan replicas so the peak load lands here (60-80% band)
  Workload workload;
  Efficiency efficiency;
  TcoInputs tco;
  std::optional<double> gpu_price_usd;
};

// A measured `hearth bench` run (its --json) of the same model on the same GPU type, to correct the
// roofline: the ratio measured / predicted output throughput at the run's concurrency scales every
// throughput, and the TPOT ratio every latency.
struct Calibration {
  int concurrency = 0;
  int64_t input_len = 0, output_len = 0;
  double output_tokens_per_s = 0;
  double tpot_p50_s = 0;
};
Result<Calibration> parse_calibration(std::string_view bench_json);

struct DeploymentCost {
  std::string form;  // "on-prem IDC", "private cloud", "hybrid"
  double capex_usd = 0;
  double opex_usd_per_year = 0;
  double energy_usd_per_year = 0;
  double licence_usd_per_year = 0;
  double total_usd = 0;  // capex + years x opex
  double usd_per_million_output_tokens = 0;
  double usd_per_million_tokens = 0;  // input + output
};

struct Plan {
  // Memory
  uint64_t weights_bytes = 0;
  uint64_t kv_bytes_per_token = 0;
  uint64_t total_params = 0, active_params = 0;
  double usable_bytes_per_gpu = 0;
  int gpus_per_replica = 0;
  int tensor_parallel = 0;    // within a node
  int pipeline_parallel = 0;  // across nodes
  int expert_parallel = 1;    // MoE: experts spread over the replica's GPUs
  int nodes_per_replica = 0;
  double kv_capacity_tokens = 0;  // per replica
  int64_t max_concurrency = 0;    // sequences of input_len + output_len that fit the KV cache
  double memory_load = 0;         // (weights + KV at the operating batch) / usable, per GPU
  // Speed (per replica)
  int64_t batch = 0;  // operating decode batch: KV, TPOT SLO and E2E SLO bound it
  double tpot_s = 0;
  double ttft_s = 0;  // one request at low load
  double e2e_s = 0;   // at the operating batch
  double output_tokens_per_s = 0;
  double requests_per_s = 0;
  double decode_bound_by_bandwidth = 0;  // share of the step time that is memory traffic (vs compute)
  std::optional<double> calibration_factor;
  // Fleet
  double peak_qps = 0;
  int replicas = 0;
  int gpus = 0;
  int nodes = 0;
  double utilization_at_peak = 0;
  double utilization_average = 0;
  std::string licence_tier;
  std::vector<DeploymentCost> tco;
  double valley_saving_usd_per_year = 0;  // from running batch work in valley hours
  double energy_kwh_per_year = 0;
  double joules_per_output_token = 0;
  std::vector<std::string> notes;  // what limits the plan, what to watch
};

Result<Plan> make_plan(const PlanInputs& in, const std::optional<Calibration>& calibration = std::nullopt);

nlohmann::json plan_to_json(const PlanInputs& in, const Plan& p);
std::string format_plan(const PlanInputs& in, const Plan& p);
std::string plan_html(const PlanInputs& in, const Plan& p);

}  // namespace hearth::ops
