// The CUDA engine (label "gpu"; skipped without a CUDA device): parity with transformers on the HF
// fixtures (f32: the CPU's tolerance; bf16 copies: a stated one), agreement with the CPU engine,
// batch invariance, CUDA graphs equal to eager launches, no KV leak, and out-of-memory as an error.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "engine/generator.h"
#include "engine/model_runner.h"
#include "fixture_convert.h"
#include "kernels/device_info.h"
#include "parity_util.h"

namespace hearth {
namespace {

using testing::fixture_dir;

bool have_gpu() {
  const auto r = kernels::query_accelerators();
  return r.cuda_compiled && !r.devices.empty();
}

#define SKIP_WITHOUT_GPU() \
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device"

RunnerOptions gpu_options(int64_t kv_tokens = 2048, bool graphs = true) {
  RunnerOptions o;
  o.device = RunnerDevice::kCuda;
  o.threads = 2;
  o.kv.num_blocks = (kv_tokens + o.kv.block_size - 1) / o.kv.block_size;
  o.gpu.max_seqs = 64;
  o.gpu.max_batch_tokens = 512;
  o.gpu.cuda_graphs = graphs;
  return o;
}

std::unique_ptr<ModelRunner> load(const std::string& dir, const RunnerOptions& o) {
  auto r = ModelRunner::load(dir, o);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? std::move(*r) : nullptr;
}

// The same dense fixture stored in bf16 (what real checkpoints hold): made once per process.
std::string bf16_copy(const char* fixture) {
  const std::string out = ::testing::TempDir() + "/hearth_cuda_bf16_" + fixture;
  const Status st = testing::convert_fixture(fixture_dir(fixture), out, DType::kBF16);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return out;
}

struct GpuParityCase {
  const char* name;
  const char* fixture;
  bool bf16;
  double tolerance;
};

class CudaParity : public ::testing::TestWithParam<GpuParityCase> {};

TEST_P(CudaParity, TeacherForcedLogprobsMatchTransformers) {
  SKIP_WITHOUT_GPU();
  const GpuParityCase pc = GetParam();
  const std::string dir = pc.bf16 ? bf16_copy(pc.fixture) : fixture_dir(pc.fixture);
  auto r = load(dir, gpu_options(256));
  ASSERT_NE(r, nullptr);
  const double worst = testing::check_teacher_forced_parity(*r, dir, pc.tolerance, pc.name);
  RecordProperty("max_abs_logprob_error", std::to_string(worst));
  std::printf("[ parity ] cuda %s: max |logprob error| over top-5 = %.3g\n", pc.name, worst);
  EXPECT_EQ(r->blocks().num_used(), 0);
}

// f32 fixtures run in f32 on the GPU (cuBLASLt without TF32): the CPU engine's tolerance. bf16 copies
// run with bf16 weights, activations and KV cache against the unrounded f32 reference: the CPU's bf16
// bound (0.25, for bf16 weights alone) widened for bf16 activations and KV.
INSTANTIATE_TEST_SUITE_P(All, CudaParity,
                         ::testing::Values(GpuParityCase{"qwen2_f32", "qwen2", false, 1e-4},
                                           GpuParityCase{"llama_f32", "llama", false, 1e-4},
                                           GpuParityCase{"deepseek_v2_f32", "deepseek_v2", false, 1e-4},
                                           GpuParityCase{"deepseek_v3_f32", "deepseek_v3", false, 1e-4},
                                           GpuParityCase{"qwen2_bf16", "qwen2", true, 0.35},
                                           GpuParityCase{"llama_bf16", "llama", true, 0.35}),
                         [](const auto& info) { return std::string(info.param.name); });

// Greedy runs of the same requests that may round differently (other kernels, other batch shapes): equal
// tokens with logprobs within `tol` until the first step where the two picked different tokens, which is
// only acceptable where run a's top two candidates were within `tol` of each other (a near tie: the
// continuation legitimately differs from there). Returns the largest difference seen.
double compare_greedy_runs(const std::vector<GenerateResult>& a, const std::vector<GenerateResult>& b,
                           double tol, const char* what) {
  EXPECT_EQ(a.size(), b.size()) << what;
  double worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    for (size_t s = 0; s < std::min(a[i].steps.size(), b[i].steps.size()); ++s) {
      const SampledToken& x = a[i].steps[s];
      const SampledToken& y = b[i].steps[s];
      if (x.id != y.id) {
        EXPECT_GE(x.top.size(), 2u) << what << ": request " << i << " step " << s << " diverged";
        if (x.top.size() >= 2) {
          EXPECT_LE(x.top[0].logprob - x.top[1].logprob, tol)
              << what << ": request " << i << " diverged at step " << s << " without a near tie";
        }
        break;
      }
      const double d = std::abs(x.logprob - y.logprob);
      worst = std::max(worst, d);
      EXPECT_LE(d, tol) << what << ": request " << i << " step " << s;
    }
  }
  return worst;
}

std::vector<GenerateRequest> mixed_requests(int64_t vocab) {
  std::vector<GenerateRequest> reqs;
  const int lens[] = {1, 3, 7, 16, 17, 40, 5, 33};
  for (int i = 0; i < 8; ++i) {
    GenerateRequest g;
    for (int j = 0; j < lens[i]; ++j)
      g.prompt.push_back(static_cast<int32_t>((i * 131 + j * 17 + 5) % vocab));
    g.max_tokens = 12 + i;
    g.sampling.temperature = 0.0f;
    g.sampling.top_logprobs = i % 2 == 0 ? 0 : 3;    // odd requests: top logprobs from the device sampler
    if (i == 7) g.sampling.presence_penalty = 0.5f;  // penalties: the host sampler path
    reqs.push_back(std::move(g));
  }
  return reqs;
}

std::vector<GenerateResult> run(ModelRunner& r, std::span<const GenerateRequest> reqs, int64_t budget = 64) {
  GenerateOptions o;
  o.max_batched_tokens = budget;
  auto res = generate(r, reqs, o);
  EXPECT_TRUE(res.is_ok()) << res.status().to_string();
  EXPECT_EQ(r.blocks().num_used(), 0) << "KV blocks leaked";
  return res.is_ok() ? std::move(*res) : std::vector<GenerateResult>{};
}

TEST(CudaEngine, AgreesWithTheCpuEngine) {
  SKIP_WITHOUT_GPU();
  for (const char* fixture : {"qwen2", "llama", "deepseek_v2", "deepseek_v3"}) {
    RunnerOptions cpu_opt;
    cpu_opt.threads = 2;
    cpu_opt.kv.max_tokens = 2048;
    auto cpu = load(fixture_dir(fixture), cpu_opt);
    auto gpu = load(fixture_dir(fixture), gpu_options());
    ASSERT_TRUE(cpu && gpu);
    const auto reqs = mixed_requests(cpu->spec().vocab_size);
    const auto a = run(*cpu, reqs);
    const auto b = run(*gpu, reqs);
    ASSERT_EQ(a.size(), b.size());
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].ids, b[i].ids) << fixture << " request " << i;
      for (size_t s = 0; s < std::min(a[i].steps.size(), b[i].steps.size()); ++s) {
        const SampledToken &x = a[i].steps[s], &y = b[i].steps[s];
        worst = std::max<double>(worst, std::abs(x.logprob - y.logprob));
        ASSERT_EQ(x.top.size(), y.top.size()) << fixture << " request " << i << " step " << s;
        for (size_t k = 0; k < x.top.size(); ++k) {
          EXPECT_EQ(x.top[k].id, y.top[k].id)
              << fixture << " request " << i << " step " << s << " rank " << k;
          worst = std::max<double>(worst, std::abs(x.top[k].logprob - y.top[k].logprob));
        }
      }
    }
    EXPECT_LE(worst, 1e-4) << fixture;
    std::printf("[ cpu vs cuda ] %s f32: max |logprob difference| = %.3g\n", fixture, worst);
  }
}

// Temperature / top-k / top-p / min-p rows are sampled on the device: a seed reproduces its tokens, seeds
// differ, and every reported logprob is the raw one the greedy path reports for the same token.
TEST(CudaEngine, SeededSamplingOnTheDevice) {
  SKIP_WITHOUT_GPU();
  auto gpu = load(fixture_dir("qwen2"), gpu_options());
  ASSERT_NE(gpu, nullptr);
  std::vector<GenerateRequest> reqs;
  for (int i = 0; i < 12; ++i) {
    GenerateRequest g;
    g.prompt = {static_cast<int32_t>(5 + i % 3), 17, 99};
    g.max_tokens = 24;
    g.sampling.temperature = 1.3f;
    g.sampling.top_k = i % 3 == 0 ? 0 : 40;
    g.sampling.top_p = i % 2 == 0 ? 0.95f : 1.0f;
    g.sampling.min_p = i % 4 == 0 ? 0.01f : 0.0f;
    g.sampling.seed = static_cast<uint64_t>(i % 6);  // requests i and i + 6: the same prompt and seed
    g.sampling.top_logprobs = 2;
    reqs.push_back(std::move(g));
  }
  const auto a = run(*gpu, reqs);
  const auto b = run(*gpu, reqs);
  ASSERT_EQ(a.size(), reqs.size());
  std::set<std::vector<int32_t>> distinct;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].ids, b[i].ids) << "request " << i;
    distinct.insert(a[i].ids);
    for (const SampledToken& t : a[i].steps) {
      ASSERT_EQ(t.top.size(), 2u);
      EXPECT_GE(t.top[0].logprob, t.top[1].logprob);
      EXPECT_LE(t.logprob, t.top[0].logprob + 1e-6f);
      if (t.id == t.top[0].id) {
        EXPECT_NEAR(t.logprob, t.top[0].logprob, 1e-6);
      }
    }
  }
  for (size_t i = 0; i + 6 < a.size(); ++i) EXPECT_EQ(a[i].ids, a[i + 6].ids) << "request " << i;
  EXPECT_EQ(distinct.size(), 6u) << "different seeds should give different continuations";
}

TEST(CudaEngine, BatchInvariant) {
  SKIP_WITHOUT_GPU();
  const std::string dir = bf16_copy("qwen2");
  auto gpu = load(dir, gpu_options());
  ASSERT_NE(gpu, nullptr);
  const auto reqs = mixed_requests(gpu->spec().vocab_size);
  auto reqs2 = reqs;
  for (auto& g : reqs2) g.sampling.top_logprobs = 2;
  const auto together = run(*gpu, reqs2);
  std::vector<GenerateResult> alone;
  for (size_t i = 0; i < reqs2.size(); ++i) {
    auto one = run(*gpu, std::span<const GenerateRequest>(&reqs2[i], 1));
    ASSERT_EQ(one.size(), 1u);
    alone.push_back(std::move(one[0]));
  }
  // bf16 GEMMs of a different row count, and prompts chunked differently by the token budget (prefill vs
  // decode attention kernels), round differently: logprobs close, tokens equal up to a near tie.
  const double worst = compare_greedy_runs(alone, together, 3e-2, "alone vs batched");
  std::printf("[ batch invariance ] qwen2 bf16: max |logprob difference| alone vs batched = %.3g\n", worst);
}

TEST(CudaEngine, GraphsEqualEagerLaunches) {
  SKIP_WITHOUT_GPU();
  const std::string dir = bf16_copy("llama");
  auto eager = load(dir, gpu_options(2048, false));
  auto graphs = load(dir, gpu_options(2048, true));
  ASSERT_TRUE(eager && graphs);
  const auto reqs = mixed_requests(eager->spec().vocab_size);
  const auto a = run(*eager, reqs);
  const auto b = run(*graphs, reqs);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].ids, b[i].ids) << "request " << i;
    ASSERT_EQ(a[i].steps.size(), b[i].steps.size());
    for (size_t s = 0; s < a[i].steps.size(); ++s)
      EXPECT_EQ(a[i].steps[s].logprob, b[i].steps[s].logprob) << "request " << i << " step " << s;
  }
}

// The tensor-core prefill kernel (bf16, query tiles of 64, two passes) against the flash-decoding kernel
// computing the same prompts token by token: long prompts (several query and key tiles, a ragged last
// tile) and a chunked prefill that attends to blocks cached by the previous chunk.
TEST(CudaEngine, PrefillKernelMatchesDecodeKernel) {
  SKIP_WITHOUT_GPU();
  const std::string dir = bf16_copy("qwen2");
  auto tiled = load(dir, gpu_options());
  setenv("HEARTH_CUDA_NO_PREFILL_KERNEL", "1", 1);
  auto plain = load(dir, gpu_options());
  unsetenv("HEARTH_CUDA_NO_PREFILL_KERNEL");
  ASSERT_TRUE(tiled && plain);
  std::vector<GenerateRequest> reqs;
  for (int len : {200, 97, 64, 16}) {
    GenerateRequest g;
    for (int j = 0; j < len; ++j)
      g.prompt.push_back(static_cast<int32_t>((len * 31 + j * 7 + 3) % tiled->spec().vocab_size));
    g.max_tokens = 6;
    g.sampling.temperature = 0.0f;
    g.sampling.top_logprobs = 2;
    reqs.push_back(std::move(g));
  }
  // Teacher-forced: the same tokens into both, every step's full distribution compared.
  const auto reference = run(*plain, reqs, 512);
  double worst = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    nlohmann::json p;
    p["ids"] = reqs[i].prompt;
    p["steps"] = nlohmann::json::array();
    for (int32_t id : reference[i].ids) p["steps"].push_back({{"id", id}});
    const auto la = testing::teacher_forced_logits(*tiled, p);
    const auto lb = testing::teacher_forced_logits(*plain, p);
    ASSERT_EQ(la.size(), lb.size());
    for (size_t s = 0; s < la.size(); ++s) {
      const int64_t v = tiled->spec().vocab_size;
      const auto a = testing::log_softmax(la[s].data(), v), b = testing::log_softmax(lb[s].data(), v);
      for (int64_t k = 0; k < v; ++k)
        if (b[k] > -8.0) worst = std::max(worst, std::abs(a[k] - b[k]));  // every plausible token
    }
  }
  // The prefill kernel rounds Q and P to bf16 for the tensor cores (as FlashAttention does); measured 0.052
  // over every token with logprob > -8, below the bf16 model's own error against f32 (0.08-0.16, CudaParity).
  EXPECT_LE(worst, 0.08);
  std::printf("[ prefill kernel ] teacher-forced: max |logprob difference| vs flash-decoding = %.3g\n",
              worst);
  // Chunked prefill (80-token chunks attend to the blocks of earlier chunks), free-running.
  const double chunked =
      compare_greedy_runs(run(*plain, reqs, 80), run(*tiled, reqs, 80), 0.08, "chunked prefill");
  std::printf("[ prefill kernel ] chunked: max |logprob difference| vs flash-decoding = %.3g\n", chunked);
}

// DeepSeek-V3's FP8 checkpoint (128x128 block scales), dequantized at load, computed in f32: against the
// reference computed from the same weights dequantized to f32, at the F32 tolerance.
TEST(CudaEngine, Fp8DeepSeekCheckpoint) {
  SKIP_WITHOUT_GPU();
  const std::string dir = fixture_dir("deepseek_v3_fp8");
  RunnerOptions o = gpu_options(256);
  o.gpu.precision = GpuPrecision::kF32;
  auto r = load(dir, o);
  ASSERT_NE(r, nullptr);
  const double worst = testing::check_teacher_forced_parity(*r, dir, 1e-4, "deepseek_v3_fp8");
  std::printf("[ parity ] cuda deepseek_v3_fp8 (dequantized, f32): max |logprob error| over top-5 = %.3g\n",
              worst);
}

// The FP8 checkpoint computed in bf16 keeps its weights in FP8 (e4m3 with the checkpoint's 128x128 block
// scales, expanded per row): FP8 GEMVs for small batches, cuBLASLt FP8 GEMMs with 1x128-quantized
// activations above, FP8 expert GEMVs. Against the CPU engine in f32 on the same weights, with every token
// routed to all experts (as DeepSeekBf16AgreesWithTheCpu: a rounding-flipped expert choice is a
// discontinuity no tolerance describes), next to the same run with the weights dequantized to bf16.
TEST(CudaEngine, Fp8DeepSeekCheckpointStaysFp8) {
  SKIP_WITHOUT_GPU();
  const std::string dir = ::testing::TempDir() + "/hearth_cuda_fp8_all_experts";
  std::filesystem::remove_all(dir);
  std::filesystem::copy(fixture_dir("deepseek_v3_fp8"), dir, std::filesystem::copy_options::recursive);
  {
    std::ifstream in(dir + "/config.json");
    nlohmann::json cfg = nlohmann::json::parse(in);
    in.close();
    cfg["num_experts_per_tok"] = cfg["n_routed_experts"];
    cfg["topk_group"] = cfg["n_group"];
    std::ofstream(dir + "/config.json") << cfg.dump(2);
  }
  RunnerOptions cpu_opt;
  cpu_opt.threads = 2;
  cpu_opt.kv.max_tokens = 2048;
  auto cpu = load(dir, cpu_opt);
  RunnerOptions o = gpu_options(256);
  o.gpu.precision = GpuPrecision::kBF16;
  auto native = load(dir, o);
  ::setenv("HEARTH_CUDA_DEQUANT_FP8", "1", 1);
  auto dequant = load(dir, o);
  ::unsetenv("HEARTH_CUDA_DEQUANT_FP8");
  ASSERT_TRUE(cpu && native && dequant);
  std::ifstream rin(fixture_dir("deepseek_v3_fp8") + "/reference.json");
  const auto ref = nlohmann::json::parse(rin);
  double worst_native = 0, worst_dequant = 0;
  const int64_t v = cpu->spec().vocab_size;
  for (const auto& p : ref["prompts"]) {
    const auto a = testing::teacher_forced_logits(*cpu, p);
    const auto b = testing::teacher_forced_logits(*native, p);
    const auto c = testing::teacher_forced_logits(*dequant, p);
    ASSERT_EQ(a.size(), b.size());
    ASSERT_EQ(a.size(), c.size());
    for (size_t s = 0; s < a.size(); ++s) {
      const auto la = testing::log_softmax(a[s].data(), v), lb = testing::log_softmax(b[s].data(), v),
                 lc = testing::log_softmax(c[s].data(), v);
      for (int64_t k = 0; k < v; ++k) {
        if (la[k] <= -8.0) continue;
        worst_native = std::max<double>(worst_native, std::abs(la[k] - lb[k]));
        worst_dequant = std::max<double>(worst_dequant, std::abs(la[k] - lc[k]));
      }
    }
  }
  const uint64_t wa = native->device_model()->memory().weight_bytes,
                 wb = dequant->device_model()->memory().weight_bytes;
  std::printf(
      "[ cpu vs cuda ] deepseek_v3_fp8, all experts routed: FP8 weights %.3g (%.2f MB), dequantized to bf16 "
      "%.3g (%.2f MB)\n",
      worst_native, wa / 1e6, worst_dequant, wb / 1e6);
  EXPECT_LE(worst_dequant, 0.35);  // bf16 activations and KV (DeepSeekBf16AgreesWithTheCpu's bound)
  EXPECT_LE(worst_native, 1.0);    // plus e4m3 activations in the GEMMs of the prompt's steps
  EXPECT_LT(wa, wb);  // the embedding and LM head (bf16 in FP8 checkpoints) dominate this tiny model
}

// DeepSeek in bf16 (MLA kernels, bf16 latent cache, grouped expert GEMVs) against the CPU engine on the same
// bf16 weights. The copy routes every token to all experts (top-k = all, all groups kept), so rounding
// cannot flip an expert choice (a discontinuity no tolerance describes) and the comparison stays smooth.
TEST(CudaEngine, DeepSeekBf16AgreesWithTheCpu) {
  SKIP_WITHOUT_GPU();
  for (const char* fixture : {"deepseek_v2", "deepseek_v3"}) {
    const std::string dir = bf16_copy(fixture);
    std::ifstream in(dir + "/config.json");
    nlohmann::json cfg = nlohmann::json::parse(in);
    in.close();
    cfg["num_experts_per_tok"] = cfg["n_routed_experts"];
    if (cfg.contains("n_group")) cfg["topk_group"] = cfg["n_group"];
    std::ofstream(dir + "/config.json") << cfg.dump(2);
    RunnerOptions cpu_opt;
    cpu_opt.threads = 2;
    cpu_opt.kv.max_tokens = 2048;
    auto cpu = load(dir, cpu_opt);
    auto gpu = load(dir, gpu_options());
    ASSERT_TRUE(cpu && gpu);
    std::ifstream rin(fixture_dir(fixture) + "/reference.json");
    const auto ref = nlohmann::json::parse(rin);
    double worst = 0;
    for (const auto& p : ref["prompts"]) {
      const auto a = testing::teacher_forced_logits(*cpu, p);
      const auto b = testing::teacher_forced_logits(*gpu, p);
      ASSERT_EQ(a.size(), b.size());
      const int64_t v = cpu->spec().vocab_size;
      for (size_t s = 0; s < a.size(); ++s) {
        const auto la = testing::log_softmax(a[s].data(), v), lb = testing::log_softmax(b[s].data(), v);
        for (int64_t k = 0; k < v; ++k)
          if (la[k] > -8.0) worst = std::max(worst, std::abs(la[k] - lb[k]));
      }
    }
    // bf16 activations and KV against f32 ones on the same bf16 weights: the dense families' bf16 bound.
    EXPECT_LE(worst, 0.35) << fixture;
    std::printf("[ cpu vs cuda ] %s bf16, all experts routed: max |logprob difference| = %.3g\n", fixture,
                worst);
  }
}

// FP8 weights quantized at load (e4m3, one scale per row) against the f32 reference: the prompt runs the
// dequantize + cuBLASLt path, decode steps the FP8 GEMV. e4m3 keeps 3 mantissa bits: on these tiny
// random models (hidden 64, weights up to ~0.5) the measured error is 0.80 (qwen2) / 1.04 (llama) on the
// H200, hence the stated bound of 1.5 — a check that both FP8 paths compute the model, not a quality claim.
TEST(CudaEngine, Fp8WeightsAtLoad) {
  SKIP_WITHOUT_GPU();
  for (const char* fixture : {"qwen2", "llama"}) {
    const std::string dir = bf16_copy(fixture);
    RunnerOptions o = gpu_options(256);
    o.gpu.fp8_weights = true;
    auto r = load(dir, o);
    ASSERT_NE(r, nullptr);
    const double worst = testing::check_teacher_forced_parity(*r, dir, 1.5, std::string(fixture) + "_fp8");
    std::printf("[ parity ] cuda %s fp8 weights: max |logprob error| over top-5 = %.3g\n", fixture, worst);
  }
}

TEST(CudaEngine, OutOfMemoryIsAClearError) {
  SKIP_WITHOUT_GPU();
  RunnerOptions o = gpu_options();
  o.kv.num_blocks = 0;
  o.gpu.gpu_memory_utilization = 0.0001;  // nothing left for the KV cache
  auto r = ModelRunner::load(fixture_dir("qwen2"), o);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kResourceExhausted) << r.status().to_string();
  EXPECT_NE(r.status().message().find("--gpu-memory-utilization"), std::string::npos)
      << r.status().to_string();
}

}  // namespace
}  // namespace hearth
