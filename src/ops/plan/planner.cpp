#include "ops/plan/planner.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/json_guard.h"
#include "model/arch_tensors.h"
#include "model/synth.h"

namespace hearth::ops {

Result<Precision> parse_precision(std::string_view s) {
  if (s == "bf16" || s == "fp16" || s == "f16") return Precision::kBf16;
  if (s == "fp8") return Precision::kFp8;
  if (s == "int8") return Precision::kInt8;
  if (s == "int4") return Precision::kInt4;
  return make_error(ErrorCode::kInvalidArgument, "precision '{}': expected bf16, fp8, int8 or int4", s);
}

std::string_view precision_name(Precision p) {
  switch (p) {
    case Precision::kBf16: return "bf16";
    case Precision::kFp8: return "fp8";
    case Precision::kInt8: return "int8";
    case Precision::kInt4: return "int4";
  }
  return "?";
}

double bytes_per_weight(Precision p) {
  switch (p) {
    case Precision::kBf16: return 2.0;
    case Precision::kFp8: return 1.0 + 4.0 / (128.0 * 128.0);
    case Precision::kInt8: return 1.0 + 1.0 / 1024.0;  // a 2-byte scale per row of ~2k
    case Precision::kInt4: return 0.5 + 2.0 / 32.0;
  }
  return 2.0;
}

// ---------------------------------------------------------------------------------------------------
// Models

namespace {

ModelSpec dense_like(ModelSpec s, int64_t hidden, int64_t layers, int64_t heads, int64_t kv_heads,
                     int64_t ffn, int64_t vocab) {
  s.hidden_size = hidden;
  s.num_hidden_layers = layers;
  s.num_attention_heads = heads;
  s.num_key_value_heads = kv_heads;
  s.head_dim = hidden / heads;
  s.intermediate_size = ffn;
  s.vocab_size = vocab;
  return s;
}

}  // namespace

std::vector<std::string> plan_model_presets() {
  return {"deepseek-v3",          "deepseek-r1",         "deepseek-v2-lite",
          "r1-distill-qwen-1.5b", "r1-distill-qwen-7b",  "r1-distill-llama-8b",
          "r1-distill-qwen-14b",  "r1-distill-qwen-32b", "r1-distill-llama-70b"};
}

Result<ModelSpec> plan_model(const std::string& name) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(name, ec)) {
    const fs::path p = fs::is_directory(name, ec) ? fs::path(name) / "config.json" : fs::path(name);
    return load_model_spec(p.string());
  }
  if (name == "deepseek-v3" || name == "deepseek-r1") {
    HEARTH_ASSIGN_OR_RETURN(SynthPreset p, find_synth_preset("deepseek-v3-reduced"));
    p.spec.num_hidden_layers = 61;  // the real model; the synth preset keeps 4
    return p.spec;
  }
  for (const char* synth :
       {"deepseek-v2-lite", "r1-distill-qwen-1.5b", "r1-distill-qwen-7b", "r1-distill-llama-8b"}) {
    if (name == synth) {
      HEARTH_ASSIGN_OR_RETURN(SynthPreset p, find_synth_preset(synth));
      return p.spec;
    }
  }
  if (name == "r1-distill-qwen-14b" || name == "r1-distill-qwen-32b") {
    HEARTH_ASSIGN_OR_RETURN(SynthPreset p, find_synth_preset("r1-distill-qwen-7b"));
    return name == "r1-distill-qwen-14b" ? dense_like(p.spec, 5120, 48, 40, 8, 13824, 152064)
                                         : dense_like(p.spec, 5120, 64, 40, 8, 27648, 152064);
  }
  if (name == "r1-distill-llama-70b") {
    HEARTH_ASSIGN_OR_RETURN(SynthPreset p, find_synth_preset("r1-distill-llama-8b"));
    return dense_like(p.spec, 8192, 80, 64, 8, 28672, 128256);
  }
  std::string names;
  for (const auto& n : plan_model_presets()) names += (names.empty() ? "" : ", ") + n;
  return make_error(ErrorCode::kNotFound, "--model {}: neither a path nor a preset ({})", name, names);
}

Result<Calibration> parse_calibration(std::string_view text) {
  HEARTH_RETURN_IF_ERROR(check_json_limits(text, {.max_bytes = 64u << 20, .max_depth = 16}, "--calibrate"));
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return make_error(ErrorCode::kInvalidArgument, "--calibrate: not a JSON object");
  const nlohmann::json* run = &j;
  if (j.contains("runs") && j["runs"].is_array() && !j["runs"].empty())
    run = &j["runs"].back();  // the largest sweep point
  Calibration c;
  auto num = [](const nlohmann::json& o, const char* k) -> std::optional<double> {
    if (o.contains(k) && o[k].is_number()) return o[k].get<double>();
    return std::nullopt;
  };
  const auto conc = num(*run, "concurrency");
  const auto tput = num(*run, "output_tokens_per_s");
  const auto in = num(j, "input_len");
  const auto out = num(j, "output_len");
  if (!conc || *conc < 1 || !tput || *tput <= 0 || !in || !out) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "--calibrate: expected hearth bench --json output of a closed-loop run with synthetic prompts "
        "(concurrency, output_tokens_per_s, input_len, output_len)");
  }
  c.concurrency = static_cast<int>(*conc);
  c.output_tokens_per_s = *tput;
  c.input_len = static_cast<int64_t>(*in);
  c.output_len = static_cast<int64_t>(*out);
  if ((*run).contains("tpot") && (*run)["tpot"].is_object()) c.tpot_p50_s = (*run)["tpot"].value("p50", 0.0);
  return c;
}

// ---------------------------------------------------------------------------------------------------
// The roofline model

namespace {

struct Model {
  const PlanInputs& in;
  double bpw = 2;
  double kv_bpt = 0;
  double total = 0, active = 0;
  double routed_bytes_per_expert_layer = 0;  // one expert of one MoE layer
  int64_t moe_layers = 0;
  double dense_bytes = 0;  // everything but the routed experts
  double weights = 0;
  double hd_eff = 0;  // attention width per head for FLOPs
  double peak_flops = 0;
  double bw = 0;  // bytes/s per GPU
  double eff_bw = 0.75, eff_c = 0.5;
  int n = 1, tp = 1, pp = 1;

  explicit Model(const PlanInputs& i) : in(i) {}

  double experts_touched(double tokens) const {
    const auto& m = *in.spec.moe;
    const double e = static_cast<double>(m.n_routed_experts);
    const double k = static_cast<double>(m.num_experts_per_tok);
    return e * (1.0 - std::pow(1.0 - k / e, tokens));
  }
  double weight_bytes_read(double tokens) const {
    if (!in.spec.is_moe()) return weights;
    return dense_bytes +
           routed_bytes_per_expert_layer * experts_touched(tokens) * static_cast<double>(moe_layers);
  }
  double comm(double tokens) const {
    const GpuSpec& g = in.gpu;
    const double layers = static_cast<double>(in.spec.num_hidden_layers);
    const double hidden = static_cast<double>(in.spec.hidden_size);
    const double link = g.interconnect_gbs * 1e9;
    double t = 0;
    if (tp > 1) {  // two all-reduces per layer (attention, MLP), ring: 2 (tp-1)/tp of the activations
      t += 2 * layers * (8e-6 + 2.0 * (tp - 1) / tp * tokens * hidden * 2 / link);
    }
    if (in.spec.is_moe() && n > 1) {  // expert parallel: dispatch + combine per MoE layer
      const double k = static_cast<double>(in.spec.moe->num_experts_per_tok);
      t += static_cast<double>(moe_layers) * (2 * 10e-6 + 2 * tokens * k * hidden * 2 / (link * n));
    }
    if (pp > 1) t += (pp - 1) * 25e-6;  // a hop between nodes per stage
    return t;
  }
  // One decode step of `b` sequences whose context averages `ctx` tokens.
  double step(double b, double ctx, double* bw_share = nullptr) const {
    const double bytes = weight_bytes_read(b) + b * ctx * kv_bpt;
    const double layers = static_cast<double>(in.spec.num_hidden_layers);
    const double heads = static_cast<double>(in.spec.num_attention_heads);
    const double flops = 2 * active * b + 4 * b * ctx * layers * heads * hd_eff;
    const double t_mem = bytes / (n * bw * eff_bw);
    const double t_c = flops / (n * peak_flops * eff_c);
    if (bw_share) *bw_share = t_mem >= t_c ? 1.0 : t_mem / t_c;
    return std::max(t_mem, t_c) + comm(b);
  }
  // The prompt of one request: compute for its tokens (causal attention), at least one read of the weights.
  double prefill(double len) const {
    const double layers = static_cast<double>(in.spec.num_hidden_layers);
    const double heads = static_cast<double>(in.spec.num_attention_heads);
    const double flops = 2 * active * len + 2 * len * len * layers * heads * hd_eff;
    const double t_c = flops / (n * peak_flops * eff_c);
    const double t_mem = weight_bytes_read(len) / (n * bw * eff_bw);
    return std::max(t_c, t_mem) + comm(len);
  }
  // GPU-seconds of one replica per request at decode batch b (prefill batched with decode: compute only).
  double request_seconds(double b, double in_len, double out_len) const {
    const double layers = static_cast<double>(in.spec.num_hidden_layers);
    const double heads = static_cast<double>(in.spec.num_attention_heads);
    const double pre =
        (2 * active * in_len + 2 * in_len * in_len * layers * heads * hd_eff) / (n * peak_flops * eff_c);
    return pre + out_len * step(b, in_len + out_len / 2) / b;
  }
};

double licence_usd(const TcoInputs& t, const std::string& tier) {
  if (tier == "basic") return 150000 * t.usd_per_cny;
  if (tier == "advanced") return 280000 * t.usd_per_cny;
  if (tier == "custom") return t.licence_custom_usd_per_year;
  return 0;
}

}  // namespace

Result<Plan> make_plan(const PlanInputs& in, const std::optional<Calibration>& calibration) {
  const Workload& w = in.workload;
  if (in.gpus_per_node < 1 || in.gpus_per_node > 64)
    return make_error(ErrorCode::kInvalidArgument, "--gpus-per-node must be in [1, 64]");
  if (w.input_len < 1 || w.output_len < 1)
    return make_error(ErrorCode::kInvalidArgument, "input and output lengths must be >= 1");
  if (!(w.average_qps() > 0))
    return make_error(ErrorCode::kInvalidArgument, "the workload needs --qps or --calls-per-day > 0");
  if (!(in.target_utilization > 0 && in.target_utilization <= 1))
    return make_error(ErrorCode::kInvalidArgument, "--target-utilization must be in (0, 1]");
  if (in.kv_precision != Precision::kBf16 && in.kv_precision != Precision::kFp8)
    return make_error(ErrorCode::kInvalidArgument, "--kv-precision must be bf16 or fp8");
  Plan p;
  Model m(in);
  const ParameterCounts pc = count_parameters(in.spec);
  p.total_params = pc.total;
  p.active_params = pc.active_per_token;
  m.bpw = bytes_per_weight(in.precision);
  m.total = static_cast<double>(pc.total);
  m.active = static_cast<double>(pc.active_per_token);
  m.weights = m.total * m.bpw;
  p.weights_bytes = static_cast<uint64_t>(std::llround(m.weights));
  const uint64_t kv_bf16 = kv_cache_bytes_per_token(in.spec, DType::kBF16);
  p.kv_bytes_per_token = in.kv_precision == Precision::kFp8 ? kv_bf16 / 2 : kv_bf16;
  m.kv_bpt = static_cast<double>(p.kv_bytes_per_token);
  if (in.spec.is_moe()) {
    const auto& moe = *in.spec.moe;
    for (int64_t l = 0; l < in.spec.num_hidden_layers; ++l) m.moe_layers += in.spec.is_moe_layer(l) ? 1 : 0;
    m.routed_bytes_per_expert_layer = 3.0 * static_cast<double>(in.spec.hidden_size) *
                                      static_cast<double>(moe.moe_intermediate_size) * m.bpw;
    m.dense_bytes = m.weights - static_cast<double>(pc.routed_experts) * m.bpw;
  }
  if (in.spec.is_mla()) {
    const auto& mla = *in.spec.mla;
    m.hd_eff =
        static_cast<double>(2 * mla.kv_lora_rank + mla.qk_rope_head_dim) / 2.0;  // absorbed: QK 576, V 512
  } else {
    m.hd_eff = static_cast<double>(in.spec.head_dim);
  }
  const GpuSpec& g = in.gpu;
  m.bw = g.bandwidth_tbs * 1e12;
  const bool fp8_compute = in.precision == Precision::kFp8 && g.fp8_tflops > 0;
  m.peak_flops = (fp8_compute ? g.fp8_tflops : g.bf16_tflops) * 1e12;
  if (in.precision == Precision::kFp8 && g.fp8_tflops <= 0)
    p.notes.push_back(
        fmt::format("{} has no FP8 tensor cores: FP8 weights are dequantized and computed in BF16", g.name));
  m.eff_bw = in.efficiency.bandwidth;
  m.eff_c = in.efficiency.compute;

  // Memory fit: the fewest GPUs whose memory holds the weights at <= 80% (the rest is KV cache).
  p.usable_bytes_per_gpu = g.memory_gb * 1e9 * in.gpu_memory_utilization - in.runtime_overhead_gb * 1e9;
  if (p.usable_bytes_per_gpu <= 0)
    return make_error(ErrorCode::kInvalidArgument, "{}: no memory left after overheads", g.name);
  const double seq_tokens = static_cast<double>(w.input_len + w.output_len);
  // Candidates: 1, 2, 4, ... within a node (dividing it), then whole nodes (pipeline across nodes).
  std::vector<int> cands;
  for (int c = 1; c <= in.gpus_per_node; c *= 2) {
    if (in.gpus_per_node % c == 0) cands.push_back(c);
  }
  if (cands.back() != in.gpus_per_node) cands.push_back(in.gpus_per_node);
  for (int k = 2; k * in.gpus_per_node <= 1024; ++k) cands.push_back(k * in.gpus_per_node);
  int n = 0;
  for (int c : cands) {
    if (m.weights / c <= 0.8 * p.usable_bytes_per_gpu &&
        c * p.usable_bytes_per_gpu - m.weights >= seq_tokens * m.kv_bpt) {
      n = c;
      break;
    }
  }
  if (n == 0) return make_error(ErrorCode::kOutOfRange, "the model does not fit 1024 x {}", g.name);
  m.n = n;
  m.tp = std::min(n, in.gpus_per_node);
  m.pp = (n + in.gpus_per_node - 1) / in.gpus_per_node;
  p.gpus_per_replica = n;
  p.tensor_parallel = m.tp;
  p.pipeline_parallel = m.pp;
  p.expert_parallel = in.spec.is_moe() ? n : 1;
  p.nodes_per_replica = m.pp;
  p.kv_capacity_tokens = n * p.usable_bytes_per_gpu - m.weights;
  p.kv_capacity_tokens /= m.kv_bpt;
  p.max_concurrency = static_cast<int64_t>(p.kv_capacity_tokens / seq_tokens);

  // Calibration: scale both efficiencies so the model reproduces the measured throughput.
  if (calibration) {
    const Calibration& c = *calibration;
    const double b = std::min<double>(
        c.concurrency,
        std::max<int64_t>(
            1, static_cast<int64_t>(p.kv_capacity_tokens / static_cast<double>(c.input_len + c.output_len))));
    // request_seconds is a replica's time per request at batch b: throughput = output_len / request_seconds.
    const double predicted =
        static_cast<double>(c.output_len) /
        m.request_seconds(b, static_cast<double>(c.input_len), static_cast<double>(c.output_len));
    const double factor = c.output_tokens_per_s / predicted;
    p.calibration_factor = factor;
    m.eff_bw *= factor;
    m.eff_c *= factor;
    p.notes.push_back(
        fmt::format("calibrated: measured {:.0f} output tok/s at concurrency {} vs {:.0f} predicted "
                    "(efficiencies x {:.2f})",
                    c.output_tokens_per_s, c.concurrency, predicted, factor));
  }

  // Operating batch: as large as KV, the streaming-speed SLO and the end-to-end SLO allow.
  const double in_len = static_cast<double>(w.input_len), out_len = static_cast<double>(w.output_len);
  const double ctx = in_len + out_len / 2;
  p.ttft_s = m.prefill(in_len);
  const double tpot_cap = 1.0 / w.tokens_per_s_per_user;
  const double e2e_cap = (w.slo_e2e_s - p.ttft_s) / out_len;
  auto ok = [&](int64_t b) {
    const double t = m.step(static_cast<double>(b), ctx);
    return t <= tpot_cap && t <= e2e_cap;
  };
  int64_t hi = std::max<int64_t>(1, std::min<int64_t>(p.max_concurrency, 4096));
  int64_t lo = 1;
  if (!ok(1)) {
    p.notes.push_back(
        fmt::format("even one sequence misses the latency targets: TPOT {:.1f} ms vs {:.1f} ms, E2E {:.1f} s "
                    "vs {:.1f} s; a faster GPU, lower precision or more parallelism is needed",
                    m.step(1, ctx) * 1e3, tpot_cap * 1e3, p.ttft_s + out_len * m.step(1, ctx), w.slo_e2e_s));
    hi = 1;
  } else {
    while (lo < hi) {
      const int64_t mid = (lo + hi + 1) / 2;
      if (ok(mid)) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    hi = lo;
  }
  p.batch = hi;
  double bw_share = 0;
  p.tpot_s = m.step(static_cast<double>(p.batch), ctx, &bw_share);
  p.decode_bound_by_bandwidth = bw_share;
  p.e2e_s = p.ttft_s + out_len * p.tpot_s;
  p.requests_per_s = 1.0 / m.request_seconds(static_cast<double>(p.batch), in_len, out_len);
  p.output_tokens_per_s = p.requests_per_s * out_len;
  if (p.ttft_s > w.slo_ttft_s)
    p.notes.push_back(fmt::format("TTFT of a {}-token prompt is {:.0f} ms, above the {:.0f} ms SLO",
                                  w.input_len, p.ttft_s * 1e3, w.slo_ttft_s * 1e3));
  p.memory_load =
      (m.weights + static_cast<double>(p.batch) * seq_tokens * m.kv_bpt) / (n * p.usable_bytes_per_gpu);

  // Fleet for the peak.
  p.peak_qps = w.average_qps() * w.peak_to_average;
  p.replicas = std::max(
      1, static_cast<int>(std::ceil(p.peak_qps / (p.requests_per_s * in.target_utilization) - 1e-9)));
  p.gpus = p.replicas * n;
  if (n <= in.gpus_per_node) {
    const int per_node = in.gpus_per_node / n;
    p.nodes = (p.replicas + per_node - 1) / per_node;
  } else {
    p.nodes = p.replicas * p.nodes_per_replica;
  }
  p.utilization_at_peak = p.peak_qps / (p.replicas * p.requests_per_s);
  p.utilization_average = p.utilization_at_peak / w.peak_to_average;
  if (p.utilization_at_peak < 0.6 && p.replicas == 1)
    p.notes.push_back(
        fmt::format("one replica is more than the peak needs ({:.0f}% busy at peak): a smaller GPU or "
                    "a lower precision may do",
                    p.utilization_at_peak * 100));

  // Energy and TCO.
  const TcoInputs& t = in.tco;
  const double hours = 8760;
  auto power_w = [&](int gpus, int nodes, double util) {
    return gpus * g.power_w * (t.idle_power + (1 - t.idle_power) * util) + nodes * t.node_overhead_w;
  };
  const double blend = (t.peak_hours * t.tariff_peak + (24 - t.peak_hours) * t.tariff_valley) / 24;
  auto energy = [&](int gpus, int nodes, double util, double* kwh_out, double* saving_out) {
    const double kwh = power_w(gpus, nodes, util) * hours * t.pue / 1000;
    const double dynamic_kwh = gpus * g.power_w * (1 - t.idle_power) * util * hours * t.pue / 1000;
    const double saving = dynamic_kwh * w.batch_fraction * (blend - t.tariff_valley);
    if (kwh_out) *kwh_out = kwh;
    if (saving_out) *saving_out = saving;
    return kwh * blend - saving;
  };
  const double energy_usd =
      energy(p.gpus, p.nodes, p.utilization_average, &p.energy_kwh_per_year, &p.valley_saving_usd_per_year);
  const double avg_tokens_per_s = w.average_qps() * out_len;
  p.joules_per_output_token = power_w(p.gpus, p.nodes, p.utilization_average) * t.pue / avg_tokens_per_s;
  std::string tier = t.licence;
  if (tier == "auto") tier = (p.nodes <= 5 && w.calls_per_day < 50000 && !w.qps) ? "basic" : "advanced";
  p.licence_tier = tier;
  const double licence = licence_usd(t, tier);
  const double price = in.gpu_price_usd.value_or(g.price_usd);
  const double cloud_hour = t.cloud_usd_per_gpu_hour.value_or(g.cloud_usd_per_hour);
  const double years = t.years;
  const double out_tokens = avg_tokens_per_s * 86400 * 365 * years;
  const double all_tokens = w.average_qps() * (in_len + out_len) * 86400 * 365 * years;
  auto finish = [&](DeploymentCost c) {
    c.total_usd = c.capex_usd + years * c.opex_usd_per_year;
    c.usd_per_million_output_tokens = c.total_usd / (out_tokens / 1e6);
    c.usd_per_million_tokens = c.total_usd / (all_tokens / 1e6);
    p.tco.push_back(c);
  };
  {
    DeploymentCost c;
    c.form = "on-prem IDC";
    c.capex_usd = p.gpus * price + p.nodes * t.server_usd_per_node;
    c.energy_usd_per_year = energy_usd;
    c.licence_usd_per_year = licence;
    c.opex_usd_per_year =
        energy_usd + t.maintenance_per_year * c.capex_usd + t.hosting_usd_per_node_year * p.nodes + licence;
    finish(c);
  }
  {
    DeploymentCost c;
    c.form = "private cloud";
    c.licence_usd_per_year = licence;
    c.opex_usd_per_year = p.gpus * cloud_hour * (1 - t.cloud_discount) * hours + licence;
    finish(c);
  }
  {
    DeploymentCost c;
    c.form = "hybrid";
    const int owned = std::max(1, static_cast<int>(std::ceil(p.replicas * t.hybrid_owned_share - 1e-9)));
    const int rented = std::max(0, p.replicas - owned);
    const int gpus_owned = owned * n;
    const int nodes_owned = n <= in.gpus_per_node
                                ? (owned + in.gpus_per_node / n - 1) / (in.gpus_per_node / n)
                                : owned * p.nodes_per_replica;
    // Owned replicas carry the base load; rented ones only the peak hours.
    const double util_owned = std::min(1.0, p.utilization_average * p.replicas / owned);
    c.capex_usd = gpus_owned * price + nodes_owned * t.server_usd_per_node;
    c.energy_usd_per_year = energy(gpus_owned, nodes_owned, util_owned, nullptr, nullptr);
    c.licence_usd_per_year = licence;
    c.opex_usd_per_year = c.energy_usd_per_year + t.maintenance_per_year * c.capex_usd +
                          t.hosting_usd_per_node_year * nodes_owned +
                          rented * n * cloud_hour * hours * t.peak_hours / 24 + licence;
    finish(c);
  }
  if (p.utilization_at_peak > 0.8)
    p.notes.push_back("peak utilisation above 80%: latency will rise at peak; add a replica for headroom");
  return p;
}

// ---------------------------------------------------------------------------------------------------
// Output

nlohmann::json plan_to_json(const PlanInputs& in, const Plan& p) {
  nlohmann::json j;
  j["model"] = in.model_name;
  j["gpu"] = in.gpu.id;
  j["precision"] = precision_name(in.precision);
  j["kv_precision"] = precision_name(in.kv_precision);
  j["total_params"] = p.total_params;
  j["active_params"] = p.active_params;
  j["weights_bytes"] = p.weights_bytes;
  j["kv_bytes_per_token"] = p.kv_bytes_per_token;
  j["usable_bytes_per_gpu"] = p.usable_bytes_per_gpu;
  j["gpus_per_replica"] = p.gpus_per_replica;
  j["tensor_parallel"] = p.tensor_parallel;
  j["pipeline_parallel"] = p.pipeline_parallel;
  j["expert_parallel"] = p.expert_parallel;
  j["kv_capacity_tokens"] = p.kv_capacity_tokens;
  j["max_concurrency"] = p.max_concurrency;
  j["memory_load"] = p.memory_load;
  j["batch"] = p.batch;
  j["ttft_s"] = p.ttft_s;
  j["tpot_s"] = p.tpot_s;
  j["e2e_s"] = p.e2e_s;
  j["output_tokens_per_s_per_replica"] = p.output_tokens_per_s;
  j["requests_per_s_per_replica"] = p.requests_per_s;
  j["decode_bandwidth_bound_share"] = p.decode_bound_by_bandwidth;
  if (p.calibration_factor) j["calibration_factor"] = *p.calibration_factor;
  j["peak_qps"] = p.peak_qps;
  j["replicas"] = p.replicas;
  j["gpus"] = p.gpus;
  j["nodes"] = p.nodes;
  j["gpus_per_node"] = in.gpus_per_node;
  j["utilization_at_peak"] = p.utilization_at_peak;
  j["utilization_average"] = p.utilization_average;
  j["energy_kwh_per_year"] = p.energy_kwh_per_year;
  j["joules_per_output_token"] = p.joules_per_output_token;
  nlohmann::json tco;
  tco["years"] = in.tco.years;
  tco["currency"] = "USD";
  tco["licence_tier"] = p.licence_tier;
  tco["valley_saving_usd_per_year"] = p.valley_saving_usd_per_year;
  tco["forms"] = nlohmann::json::array();
  for (const auto& c : p.tco) {
    tco["forms"].push_back(nlohmann::json{{"form", c.form},
                                          {"capex_usd", c.capex_usd},
                                          {"opex_usd_per_year", c.opex_usd_per_year},
                                          {"energy_usd_per_year", c.energy_usd_per_year},
                                          {"licence_usd_per_year", c.licence_usd_per_year},
                                          {"total_usd", c.total_usd},
                                          {"usd_per_million_output_tokens", c.usd_per_million_output_tokens},
                                          {"usd_per_million_tokens", c.usd_per_million_tokens}});
  }
  j["tco"] = tco;
  j["notes"] = p.notes;
  const Workload& w = in.workload;
  j["workload"] = nlohmann::json{{"average_qps", w.average_qps()},
                                 {"peak_to_average", w.peak_to_average},
                                 {"input_len", w.input_len},
                                 {"output_len", w.output_len},
                                 {"slo_ttft_s", w.slo_ttft_s},
                                 {"slo_e2e_s", w.slo_e2e_s},
                                 {"tokens_per_s_per_user", w.tokens_per_s_per_user}};
  return j;
}

namespace {
std::string gb(double bytes) {
  return fmt::format("{:.1f} GB", bytes / 1e9);
}
std::string usd(double v) {
  if (std::abs(v) >= 1e6) return fmt::format("${:.2f}M", v / 1e6);
  if (std::abs(v) >= 1e3) return fmt::format("${:.0f}k", v / 1e3);
  return fmt::format("${:.2f}", v);
}
}  // namespace

std::string format_plan(const PlanInputs& in, const Plan& p) {
  const Workload& w = in.workload;
  std::string s;
  auto row = [&](std::string_view k, const std::string& v) { s += fmt::format("  {:<34}{}\n", k, v); };
  s += fmt::format("hearth plan: {} ({} weights, {} KV) on {}\n", in.model_name, precision_name(in.precision),
                   precision_name(in.kv_precision), in.gpu.name);
  s += "Model\n";
  row("parameters (total / active)",
      fmt::format("{:.1f} B / {:.1f} B", p.total_params / 1e9, p.active_params / 1e9));
  row("weights", gb(static_cast<double>(p.weights_bytes)));
  row("KV cache per token", fmt::format("{} bytes", p.kv_bytes_per_token));
  s += "Replica\n";
  row("GPUs (TP x PP, EP)",
      fmt::format("{} ({} x {}{})", p.gpus_per_replica, p.tensor_parallel, p.pipeline_parallel,
                  p.expert_parallel > 1 ? fmt::format(", EP {}", p.expert_parallel) : ""));
  row("usable memory per GPU", gb(p.usable_bytes_per_gpu));
  row("KV capacity", fmt::format("{:.0f} tokens = {} sequences of {}+{}", p.kv_capacity_tokens,
                                 p.max_concurrency, w.input_len, w.output_len));
  row("operating batch", fmt::format("{} (memory load {:.0f}%)", p.batch, p.memory_load * 100));
  row("TTFT (low load)", fmt::format("{:.0f} ms", p.ttft_s * 1e3));
  row("TPOT at the batch", fmt::format("{:.1f} ms ({:.0f} tok/s per user)", p.tpot_s * 1e3, 1 / p.tpot_s));
  row("end-to-end per request", fmt::format("{:.1f} s", p.e2e_s));
  row("throughput",
      fmt::format("{:.0f} output tok/s, {:.2f} req/s", p.output_tokens_per_s, p.requests_per_s));
  row("decode bound by", p.decode_bound_by_bandwidth >= 0.999 ? "memory bandwidth" : "compute");
  s += "Fleet\n";
  row("peak load", fmt::format("{:.2f} req/s ({:.0f} calls/day average x {:.1f})", p.peak_qps,
                               w.average_qps() * 86400, w.peak_to_average));
  row("replicas / GPUs / nodes",
      fmt::format("{} / {} / {} ({} GPUs per node)", p.replicas, p.gpus, p.nodes, in.gpus_per_node));
  row("utilisation at peak / average",
      fmt::format("{:.0f}% / {:.0f}%", p.utilization_at_peak * 100, p.utilization_average * 100));
  row("energy", fmt::format("{:.0f} MWh/year, {:.2f} J per output token", p.energy_kwh_per_year / 1000,
                            p.joules_per_output_token));
  s += fmt::format("TCO over {} years (USD; licence tier: {})\n", in.tco.years, p.licence_tier);
  s += fmt::format("  {:<16}{:>12}{:>14}{:>12}{:>14}{:>16}\n", "form", "capex", "opex/year", "total",
                   "per M out tok", "per M tokens");
  for (const auto& c : p.tco) {
    s += fmt::format("  {:<16}{:>12}{:>14}{:>12}{:>14}{:>16}\n", c.form, usd(c.capex_usd),
                     usd(c.opex_usd_per_year), usd(c.total_usd), usd(c.usd_per_million_output_tokens),
                     usd(c.usd_per_million_tokens));
  }
  if (p.valley_saving_usd_per_year > 0)
    row("batch work in valley hours saves",
        fmt::format("{}/year of power", usd(p.valley_saving_usd_per_year)));
  for (const auto& n : p.notes) s += fmt::format("note: {}\n", n);
  return s;
}

std::string plan_html(const PlanInputs& in, const Plan& p) {
  // A bar chart of the three forms' 3-year totals (capex and opex stacked) and the plan's table.
  double max_total = 1;
  for (const auto& c : p.tco) max_total = std::max(max_total, c.total_usd);
  std::string bars;
  const double W = 560, row_h = 40;
  int i = 0;
  for (const auto& c : p.tco) {
    const double y = 30 + i * row_h;
    const double wc = c.capex_usd / max_total * (W - 200);
    const double wo = (c.total_usd - c.capex_usd) / max_total * (W - 200);
    bars += fmt::format(
        R"(<text x="0" y="{:.0f}">{}</text><rect x="120" y="{:.0f}" width="{:.1f}" height="24" fill="#1f77b4"/>)"
        R"(<rect x="{:.1f}" y="{:.0f}" width="{:.1f}" height="24" fill="#ff7f0e"/><text x="{:.1f}" y="{:.0f}">{}</text>)",
        y + 16, c.form, y, wc, 120 + wc, y, wo, 125 + wc + wo, y + 16, usd(c.total_usd));
    ++i;
  }
  std::string table = format_plan(in, p);
  std::string esc;
  for (char ch : table) {
    if (ch == '<') {
      esc += "&lt;";
    } else if (ch == '&') {
      esc += "&amp;";
    } else {
      esc += ch;
    }
  }
  return fmt::format(
      "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>hearth "
      "plan</title><style>body{{font-family:sans-serif;"
      "margin:24px}}pre{{background:#f6f6f6;padding:12px}}</style></head><body><h1>hearth plan: {}</h1>"
      "<h2>{}-year TCO (blue: capex, orange: opex)</h2><svg xmlns=\"http://www.w3.org/2000/svg\" "
      "width=\"{}\" "
      "height=\"{}\" font-size=\"12\">{}</svg><pre>{}</pre></body></html>\n",
      in.model_name, in.tco.years, W, 40 + row_h * static_cast<double>(p.tco.size()), bars, esc);
}

}  // namespace hearth::ops
