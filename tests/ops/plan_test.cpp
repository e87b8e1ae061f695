// hearth plan against hand-computed cases: memory fit and parallel degree for real shapes, the
// roofline's batch-1 decode, TCO arithmetic, licence tiers, valley-hour savings, calibration.
#include <gtest/gtest.h>

#include <cmath>

#include "ops/plan/planner.h"

namespace hearth::ops {
namespace {

PlanInputs inputs(const std::string& model, Precision p, const std::string& gpu) {
  PlanInputs in;
  auto spec = plan_model(model);
  EXPECT_TRUE(spec.is_ok()) << spec.status().message();
  in.spec = *spec;
  in.model_name = model;
  in.precision = p;
  auto g = find_gpu(gpu);
  EXPECT_TRUE(g.has_value()) << gpu;
  in.gpu = *g;
  return in;
}

TEST(Plan, DeepSeekV3Fp8NeedsMoreThanOneNodeOfH100) {
  PlanInputs in = inputs("deepseek-v3", Precision::kFp8, "h100-80g");
  auto p = make_plan(in);
  ASSERT_TRUE(p.is_ok()) << p.status().message();
  // 671 B parameters x ~1 byte = ~671 GB > 8 x (80 GB x 0.9 - 3 GB) x 0.8 = 442 GB.
  EXPECT_NEAR(static_cast<double>(p->weights_bytes) / 1e9, 671.0, 8.0);
  EXPECT_EQ(p->kv_bytes_per_token, 70272u);  // (512 + 64) x 61 layers x 2 bytes
  EXPECT_EQ(p->gpus_per_replica, 16);
  EXPECT_EQ(p->tensor_parallel, 8);
  EXPECT_EQ(p->pipeline_parallel, 2);
  EXPECT_EQ(p->expert_parallel, 16);
  EXPECT_GE(p->nodes, 2);
  // On H200 (141 GB) one node holds it.
  PlanInputs h200 = inputs("deepseek-v3", Precision::kFp8, "h200");
  auto q = make_plan(h200);
  ASSERT_TRUE(q.is_ok());
  EXPECT_EQ(q->gpus_per_replica, 8);
  // FP8 KV halves the per-token bytes.
  h200.kv_precision = Precision::kFp8;
  EXPECT_EQ(make_plan(h200)->kv_bytes_per_token, 35136u);
}

TEST(Plan, DistillQwen7BBf16FitsOneH100) {
  PlanInputs in = inputs("r1-distill-qwen-7b", Precision::kBf16, "h100-sxm");
  auto p = make_plan(in);
  ASSERT_TRUE(p.is_ok());
  EXPECT_NEAR(static_cast<double>(p->weights_bytes) / 1e9, 15.23, 0.05);  // 7.616 B x 2 bytes
  EXPECT_EQ(p->kv_bytes_per_token, 57344u);  // 2 x 4 heads x 128 x 28 layers x 2 bytes
  EXPECT_EQ(p->gpus_per_replica, 1);
  EXPECT_EQ(p->tensor_parallel, 1);
  // KV capacity: 80 x 0.9 - 3 = 69 GB usable, minus 15.23 GB of weights.
  EXPECT_NEAR(p->kv_capacity_tokens, (69e9 - 15.232e9) / 57344.0, 0.01 * p->kv_capacity_tokens);
}

TEST(Plan, BatchOneDecodeIsTheBandwidthBound) {
  PlanInputs in = inputs("r1-distill-qwen-7b", Precision::kBf16, "h100-sxm");
  in.efficiency.bandwidth = 1.0;
  in.workload.tokens_per_s_per_user = 1e6;  // unreachable: the plan falls back to batch 1 and says so
  in.workload.input_len = 1;
  in.workload.output_len = 1;
  auto p = make_plan(in);
  ASSERT_TRUE(p.is_ok());
  EXPECT_EQ(p->batch, 1);
  // 15.23 GB / 3.35 TB/s = 4.55 ms (ANCHORS.md: the bf16 bound is ~220 tok/s).
  EXPECT_NEAR(p->tpot_s, 15.232e9 / 3.35e12, 0.05e-3);
  EXPECT_DOUBLE_EQ(p->decode_bound_by_bandwidth, 1.0);
  EXPECT_FALSE(p->notes.empty());
}

TEST(Plan, FleetAndTcoArithmetic) {
  PlanInputs in = inputs("r1-distill-qwen-7b", Precision::kBf16, "h100-sxm");
  in.workload.qps = 50;
  auto p = make_plan(in);
  ASSERT_TRUE(p.is_ok());
  EXPECT_NEAR(p->peak_qps, 150, 1e-9);
  EXPECT_GE(p->replicas, static_cast<int>(std::ceil(150 / p->requests_per_s)));
  EXPECT_LE(p->utilization_at_peak, in.target_utilization + 1e-9);
  EXPECT_EQ(p->gpus, p->replicas);
  EXPECT_EQ(p->nodes, (p->gpus + 7) / 8);
  ASSERT_EQ(p->tco.size(), 3u);
  const DeploymentCost& onprem = p->tco[0];
  EXPECT_EQ(onprem.form, "on-prem IDC");
  EXPECT_DOUBLE_EQ(onprem.capex_usd, p->gpus * 30000.0 + p->nodes * 60000.0);
  EXPECT_DOUBLE_EQ(onprem.total_usd, onprem.capex_usd + 3 * onprem.opex_usd_per_year);
  EXPECT_EQ(p->licence_tier, "advanced");  // a QPS workload: the tier with API management and audit logs
  EXPECT_NEAR(onprem.licence_usd_per_year, 280000 / 7.2, 1e-6);
  const DeploymentCost& cloud = p->tco[1];
  EXPECT_DOUBLE_EQ(cloud.capex_usd, 0);
  EXPECT_NEAR(cloud.opex_usd_per_year, p->gpus * 2.5 * 0.6 * 8760 + 280000 / 7.2, 1e-6);
  // Cost per million output tokens: total / tokens over 3 years.
  const double tokens = 50.0 * 512 * 86400 * 365 * 3;
  EXPECT_NEAR(onprem.usd_per_million_output_tokens, onprem.total_usd / (tokens / 1e6), 1e-9);
  // Doubling the load at least doubles nothing down: more replicas, not fewer.
  in.workload.qps = 100;
  EXPECT_GE(make_plan(in)->replicas, p->replicas);
}

TEST(Plan, BatchWorkInValleyHoursSaves) {
  PlanInputs in = inputs("r1-distill-qwen-7b", Precision::kBf16, "h100-sxm");
  in.workload.calls_per_day = 20000;
  auto a = make_plan(in);
  ASSERT_TRUE(a.is_ok());
  EXPECT_DOUBLE_EQ(a->valley_saving_usd_per_year, 0);
  EXPECT_EQ(a->licence_tier, "basic");  // <= 5 nodes and < 50k calls/day
  in.workload.batch_fraction = 0.5;
  auto b = make_plan(in);
  ASSERT_TRUE(b.is_ok());
  EXPECT_GT(b->valley_saving_usd_per_year, 0);
  EXPECT_LT(b->tco[0].energy_usd_per_year, a->tco[0].energy_usd_per_year);
}

TEST(Plan, CalibrationScalesThroughput) {
  PlanInputs in = inputs("r1-distill-qwen-7b", Precision::kBf16, "h100-sxm");
  auto base = make_plan(in);
  ASSERT_TRUE(base.is_ok());
  Calibration c;
  c.concurrency = 64;
  c.input_len = 128;
  c.output_len = 256;
  c.output_tokens_per_s = 100;  // far below the roofline: the model must slow down
  auto cal = make_plan(in, c);
  ASSERT_TRUE(cal.is_ok());
  ASSERT_TRUE(cal->calibration_factor.has_value());
  EXPECT_LT(*cal->calibration_factor, 0.2);
  EXPECT_LT(cal->requests_per_s, base->requests_per_s);
  EXPECT_GE(cal->replicas, base->replicas);
  auto parsed = parse_calibration(
      R"({"concurrency": 4, "output_tokens_per_s": 900.5, "tpot": {"p50": 0.004}, "input_len": 32, "output_len": 16})");
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().message();
  EXPECT_EQ(parsed->concurrency, 4);
  EXPECT_DOUBLE_EQ(parsed->output_tokens_per_s, 900.5);
  EXPECT_FALSE(parse_calibration(R"({"runs": []})").is_ok());
  EXPECT_FALSE(parse_calibration("not json").is_ok());
}

TEST(Plan, JsonHasTheDocumentedFields) {
  PlanInputs in = inputs("deepseek-v3", Precision::kFp8, "h100-sxm");
  auto p = make_plan(in);
  ASSERT_TRUE(p.is_ok());
  const auto j = plan_to_json(in, *p);
  for (const char* k : {"weights_bytes", "kv_bytes_per_token", "gpus", "nodes", "tensor_parallel", "tco"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["tco"]["forms"].size(), 3u);
  EXPECT_NE(format_plan(in, *p).find("TCO over 3 years"), std::string::npos);
  EXPECT_NE(plan_html(in, *p).find("<svg"), std::string::npos);
}

TEST(Plan, InputsAreChecked) {
  EXPECT_FALSE(parse_precision("fp4").is_ok());
  EXPECT_TRUE(find_gpu("H100").has_value());
  EXPECT_EQ(find_gpu("4090")->id, "rtx-4090");
  EXPECT_FALSE(find_gpu("tpu-v5").has_value());
  auto bad = plan_model("no-such-model");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("deepseek-v3"), std::string::npos);
  PlanInputs in = inputs("r1-distill-qwen-1.5b", Precision::kBf16, "rtx-4090");
  in.workload.qps = 0;
  in.workload.calls_per_day = 0;
  EXPECT_FALSE(make_plan(in).is_ok());
  for (const auto& g : gpu_catalog()) {
    EXPECT_GT(g.memory_gb, 0) << g.id;
    EXPECT_GT(g.bandwidth_tbs, 0) << g.id;
    EXPECT_GT(g.bf16_tflops, 0) << g.id;
    EXPECT_FALSE(g.source.empty()) << g.id;
  }
  EXPECT_EQ(gpu_catalog().size(), 12u);
}

}  // namespace
}  // namespace hearth::ops
