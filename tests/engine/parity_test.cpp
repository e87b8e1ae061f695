// Reference parity (issue #3's acceptance test): the CPU engine against HF transformers 5.17 on the
// random-weight fixtures of tests/fixtures/engine/ (tools/reference/make_engine_fixtures.py).
// Teacher-forced: the prompt is prefilled, then the reference's greedy tokens are fed one by one, and
// at every step the engine's argmax must be the reference's token and its top-5 log-probabilities
// must match within the stated tolerance.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

#include "engine/model_runner.h"
#include "fixture_convert.h"
#include "kernels/cpu/cpu_features.h"
#include "model/gguf_convert.h"
#include "parity_util.h"

namespace hearth {
namespace {

using testing::fixture_dir;
using testing::log_softmax;
using testing::teacher_forced_logits;

struct ParityCase {
  const char* name;
  const char* fixture;
  double tolerance;                // max |logprob - reference| over the top-5 of every step
  DType convert_to = DType::kF32;  // kBF16/kF16: run a copy stored in that type (FP8 dequantized)
  LoadQuantization quantize = LoadQuantization::kNone;
  bool convert = false;
  bool int8_activations = false;
};

class Parity : public ::testing::TestWithParam<ParityCase> {};

TEST_P(Parity, TeacherForcedLogprobsMatchTransformers) {
  const ParityCase pc = GetParam();
  RunnerOptions opt;
  opt.threads = 2;
  opt.kv.max_tokens = 256;
  opt.weights.quantize = pc.quantize;
  opt.weights.int8_activations = pc.int8_activations;
  if (pc.int8_activations && !cpu_features().avx512_vnni) GTEST_SKIP() << "W8A8 needs AVX-512 VNNI";
  std::string dir = fixture_dir(pc.fixture);
  if (pc.convert) {
    const std::string out = ::testing::TempDir() + "/hearth_parity_" + pc.name;
    const Status st = testing::convert_fixture(dir, out, pc.convert_to);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    dir = out;
  }
  auto runner = ModelRunner::load(dir, opt);
  ASSERT_TRUE(runner.is_ok()) << runner.status().to_string();
  ModelRunner& r = **runner;
  const double worst = testing::check_teacher_forced_parity(r, dir, pc.tolerance, pc.name);
  RecordProperty("max_abs_logprob_error", std::to_string(worst));
  std::printf("[ parity ] %s: max |logprob error| over top-5 = %.3g\n", pc.name, worst);
}

INSTANTIATE_TEST_SUITE_P(F32, Parity,
                         ::testing::Values(ParityCase{"qwen2", "qwen2", 1e-4},
                                           ParityCase{"llama", "llama", 1e-4},
                                           ParityCase{"deepseek_v2", "deepseek_v2", 1e-4},
                                           ParityCase{"deepseek_v3", "deepseek_v3", 1e-4}),
                         [](const auto& info) { return std::string(info.param.name); });

// FP8 e4m3 with 128x128 block scales, read as is. The reference is the same model with its FP8 weights
// dequantized to float32, so the only difference is f32 rounding order: same tolerance as F32.
INSTANTIATE_TEST_SUITE_P(Fp8, Parity,
                         ::testing::Values(ParityCase{"deepseek_v3_fp8", "deepseek_v3_fp8", 1e-4},
                                           ParityCase{"deepseek_v3_fp8_as_f32", "deepseek_v3_fp8", 1e-4,
                                                      DType::kF32, LoadQuantization::kNone, true}),
                         [](const auto& info) { return std::string(info.param.name); });

// End to end against the unrounded F32 reference, for the dense families: how much rounding the
// weights to BF16 / F16 / Q8_0 moves the top-5 logprobs of these random-weight models (measured max
// 0.16, bound 0.25; W8A8 — Q8_0 weights times int8 activations — measured max 0.29, bound 0.4). MoE models
// are left out: rounding flips near-tied expert choices, a discontinuity no tolerance describes; their
// formats are proven by FormatExact below instead.
INSTANTIATE_TEST_SUITE_P(
    Rounded, Parity,
    ::testing::Values(
        ParityCase{"qwen2_bf16", "qwen2", 0.25, DType::kBF16, LoadQuantization::kNone, true},
        ParityCase{"llama_bf16", "llama", 0.25, DType::kBF16, LoadQuantization::kNone, true},
        ParityCase{"qwen2_f16", "qwen2", 0.25, DType::kF16, LoadQuantization::kNone, true},
        ParityCase{"qwen2_q8", "qwen2", 0.25, DType::kF32, LoadQuantization::kQ8_0},
        ParityCase{"llama_q8", "llama", 0.25, DType::kF32, LoadQuantization::kQ8_0},
        ParityCase{"qwen2_q8_w8a8", "qwen2", 0.4, DType::kF32, LoadQuantization::kQ8_0, false, true},
        ParityCase{"llama_q8_w8a8", "llama", 0.4, DType::kF32, LoadQuantization::kQ8_0, false, true}),
    [](const auto& info) { return std::string(info.param.name); });

// Format exactness: an engine reading BF16 / F16 / FP8 / Q8_0 weights must compute exactly what it
// computes from float32 weights holding the same (rounded) values — the decoders are exact and the
// arithmetic is f32 in the same order. Together with the F32 parity above this proves every format
// path against transformers without a format-specific tolerance.
struct ExactCase {
  const char* name;
  const char* fixture;
  DType store;  // the format under test (kF32 + quantize: Q8_0 at load)
  LoadQuantization quantize = LoadQuantization::kNone;
  DType round_through = DType::kF32;  // what the F32 twin's values are rounded through
  bool linear_only = false;
  bool gguf = false;        // the format under test is a GGUF file of type `store` (hearth model convert)
  double tolerance = 1e-5;  // max |logit difference|; 0 means bit-identical is expected
  bool widen = false;       // use a widened random copy of the fixture (widths multiples of 256: K-quants)
};

class FormatExact : public ::testing::TestWithParam<ExactCase> {};

TEST_P(FormatExact, EqualsF32OnTheSameRoundedWeights) {
  const ExactCase ec = GetParam();
  std::string src = fixture_dir(ec.fixture);
  const std::string base = ::testing::TempDir() + "/hearth_exact_" + ec.name;
  const std::string reference_src = src;
  if (ec.widen) {
    const std::string wide = base + "_wide";
    ASSERT_TRUE(testing::widen_fixture(src, wide, 256, 512, 256).is_ok());
    src = wide;
  }
  std::string format_dir = src;
  if (ec.gguf) {
    format_dir = base + ".gguf";
    auto ck = Checkpoint::open(src);
    ASSERT_TRUE(ck.is_ok()) << ck.status().to_string();
    GgufConvertOptions g;
    g.type = ec.store;
    const Status cs = convert_to_gguf(**ck, format_dir, g);
    ASSERT_TRUE(cs.is_ok()) << cs.to_string();
  } else if (ec.store != DType::kF32) {
    format_dir = base + "_format";
    ASSERT_TRUE(testing::convert_fixture(src, format_dir, ec.store).is_ok());
  }
  const std::string twin_dir = base + "_f32";
  // Q8_0 at load quantizes what is stored (BF16 here when store is BF16): the twin starts from that.
  const std::string twin_src = ec.quantize != LoadQuantization::kNone ? format_dir : src;
  const testing::RoundScope scope = ec.gguf          ? testing::RoundScope::kGgufPolicy
                                    : ec.linear_only ? testing::RoundScope::kLinearOnly
                                                     : testing::RoundScope::kAll;
  const Status st =
      testing::convert_fixture(ec.gguf ? src : twin_src, twin_dir, DType::kF32, ec.round_through, scope);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  RunnerOptions opt;
  opt.threads = 2;
  opt.kv.max_tokens = 256;
  RunnerOptions fopt = opt;
  fopt.weights.quantize = ec.quantize;
  auto fmt_runner = ModelRunner::load(format_dir, fopt);
  auto twin = ModelRunner::load(twin_dir, opt);
  ASSERT_TRUE(fmt_runner.is_ok()) << fmt_runner.status().to_string();
  ASSERT_TRUE(twin.is_ok()) << twin.status().to_string();
  std::ifstream in(reference_src + "/reference.json");  // its prompts and tokens drive both models
  const auto ref = nlohmann::json::parse(in);
  double worst = 0;
  for (const auto& p : ref["prompts"]) {
    const auto a = teacher_forced_logits(**fmt_runner, p);
    const auto b = teacher_forced_logits(**twin, p);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i)
      for (size_t j = 0; j < a[i].size(); ++j)
        worst = std::max(worst, static_cast<double>(std::abs(a[i][j] - b[i][j])));
  }
  std::printf("[ exact ] %s: max |logit difference| = %.3g\n", ec.name, worst);
  EXPECT_LE(worst, ec.tolerance) << ec.name;
}

INSTANTIATE_TEST_SUITE_P(
    Formats, FormatExact,
    ::testing::Values(
        ExactCase{"qwen2_bf16", "qwen2", DType::kBF16, LoadQuantization::kNone, DType::kBF16},
        ExactCase{"llama_f16", "llama", DType::kF16, LoadQuantization::kNone, DType::kF16},
        ExactCase{"deepseek_v2_bf16", "deepseek_v2", DType::kBF16, LoadQuantization::kNone, DType::kBF16},
        ExactCase{"deepseek_v3_bf16", "deepseek_v3", DType::kBF16, LoadQuantization::kNone, DType::kBF16},
        ExactCase{"deepseek_v3_fp8", "deepseek_v3_fp8", DType::kF32},
        ExactCase{"qwen2_q8", "qwen2", DType::kF32, LoadQuantization::kQ8_0, DType::kQ8_0, true},
        ExactCase{"llama_bf16_q8", "llama", DType::kBF16, LoadQuantization::kQ8_0, DType::kQ8_0, true},
        ExactCase{"deepseek_v2_q8", "deepseek_v2", DType::kF32, LoadQuantization::kQ8_0, DType::kQ8_0, true},
        ExactCase{"deepseek_v3_q8", "deepseek_v3", DType::kF32, LoadQuantization::kQ8_0, DType::kQ8_0, true}),
    [](const auto& info) { return std::string(info.param.name); });

// GGUF files written by `hearth model convert`: the llama.cpp names, stacked experts, q/k permutation
// (Llama) and rope_freqs must give the same model. F32 GGUF against transformers directly; quantized
// GGUF against the F32 twin rounded through the same types (exact for all but Llama, whose permuted
// q/k rows and baked RoPE factors reorder float sums: 1e-4).
ExactCase gguf_case(const char* name, const char* fixture, DType type, double tol = 1e-5,
                    bool widen = false) {
  ExactCase c{name, fixture, type, LoadQuantization::kNone, type};
  c.gguf = true;
  c.tolerance = tol;
  c.widen = widen;
  return c;
}

INSTANTIATE_TEST_SUITE_P(
    Gguf, FormatExact,
    ::testing::Values(gguf_case("qwen2_gguf_q8_0", "qwen2", DType::kQ8_0),
                      gguf_case("llama_gguf_q8_0", "llama", DType::kQ8_0, 1e-4),
                      gguf_case("deepseek_v2_gguf_q8_0", "deepseek_v2", DType::kQ8_0),
                      gguf_case("deepseek_v3_gguf_q4_0", "deepseek_v3", DType::kQ4_0),
                      gguf_case("qwen2_gguf_q4_0", "qwen2", DType::kQ4_0),
                      gguf_case("qwen2_wide_gguf_q4_k", "qwen2", DType::kQ4_K, 1e-5, true),
                      gguf_case("deepseek_v3_wide_gguf_q4_k", "deepseek_v3", DType::kQ4_K, 1e-5, true),
                      gguf_case("llama_wide_gguf_q6_k", "llama", DType::kQ6_K, 1e-4, true)),
    [](const auto& info) { return std::string(info.param.name); });

class GgufParity : public ::testing::TestWithParam<const char*> {};

TEST_P(GgufParity, F32GgufMatchesTransformers) {
  const std::string src = fixture_dir(GetParam());
  const std::string out = ::testing::TempDir() + "/hearth_gguf_" + GetParam() + ".gguf";
  auto ck = Checkpoint::open(src);
  ASSERT_TRUE(ck.is_ok());
  GgufConvertOptions g;
  g.type = DType::kF32;
  ASSERT_TRUE(convert_to_gguf(**ck, out, g).is_ok());
  RunnerOptions opt;
  opt.threads = 2;
  opt.kv.max_tokens = 256;
  auto runner = ModelRunner::load(out, opt);
  ASSERT_TRUE(runner.is_ok()) << runner.status().to_string();
  std::ifstream in(src + "/reference.json");
  const auto ref = nlohmann::json::parse(in);
  double worst = 0;
  for (const auto& p : ref["prompts"]) {
    const auto logits = teacher_forced_logits(**runner, p);
    for (size_t step = 0; step < logits.size(); ++step) {
      const auto lp = log_softmax(logits[step].data(), static_cast<int64_t>(logits[step].size()));
      for (const auto& t : p["steps"][step]["top"])
        worst = std::max(worst, std::abs(lp[t[0].get<int32_t>()] - t[1].get<double>()));
    }
  }
  std::printf("[ gguf ] %s: max |logprob error| over top-5 = %.3g\n", GetParam(), worst);
  EXPECT_LE(worst, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GgufParity,
                         ::testing::Values("qwen2", "llama", "deepseek_v2", "deepseek_v3",
                                           "deepseek_v3_fp8"));

}  // namespace
}  // namespace hearth
