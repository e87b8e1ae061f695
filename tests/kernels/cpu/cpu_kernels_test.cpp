// CPU kernels against plain references on fresh random inputs (fixed seeds): every weight format on
// every instruction-set level the CPU has, the batch-invariance property of matmul, paged attention
// against a naive dense implementation, RoPE tables against independent double-precision formulas,
// and DeepSeek routing on hand-built cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "core/half.h"
#include "core/thread_pool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/moe_routing.h"
#include "kernels/cpu/rope.h"
#include "model/fp8_block.h"
#include "model/quant.h"

namespace hearth {
namespace {

std::vector<CpuIsa> isas() {
  std::vector<CpuIsa> v{CpuIsa::kReference};
  if (cpu_features().avx2) v.push_back(CpuIsa::kAvx2);
  if (cpu_features().avx512) v.push_back(CpuIsa::kAvx512);
  return v;
}

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

// A weight of `dtype` built from random floats; owns its bytes and scales.
struct TestWeight {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  WeightMatrix w;
};

TestWeight make_weight(DType dtype, int64_t rows, int64_t cols, uint32_t seed) {
  TestWeight t;
  const std::vector<float> f = randn(static_cast<size_t>(rows * cols), seed, 0.5f);
  t.w.dtype = dtype;
  t.w.rows = rows;
  t.w.cols = cols;
  if (dtype == DType::kF8_E4M3) {
    const Fp8BlockSize b{128, 128};
    t.bytes.resize(static_cast<size_t>(rows * cols));
    const auto sshape = fp8_scale_inv_shape(rows, cols, b);
    t.scales.resize(sshape[0] * sshape[1]);
    EXPECT_TRUE(quantize_fp8_block(f.data(), rows, cols, b, t.bytes.data(), t.scales.data()).is_ok());
    t.w.row_bytes = static_cast<uint64_t>(cols);
    t.w.block_scale = t.scales.data();
    t.w.scale_cols = static_cast<int64_t>(sshape[1]);
  } else {
    auto q = quantize(dtype, f);
    EXPECT_TRUE(q.is_ok()) << q.status().to_string();
    t.bytes = std::move(*q);
    t.w.row_bytes = weight_row_bytes(dtype, cols);
  }
  t.w.data = t.bytes.data();
  return t;
}

struct Shape {
  DType dtype;
  int64_t rows, cols;
};

class CpuMatmul : public ::testing::TestWithParam<Shape> {};

TEST_P(CpuMatmul, EveryIsaMatchesTheReferenceAndDecodesExactly) {
  const Shape s = GetParam();
  TestWeight tw = make_weight(s.dtype, s.rows, s.cols, 11);
  const WeightMatrix& w = tw.w;
  std::vector<float> ref_row(s.cols), row(s.cols);
  for (int64_t r = 0; r < s.rows; r += 7) {
    decode_row(w, r, ref_row.data());
    if (cpu_features().avx2) {
      cpu_detail::decode_row_avx2(w, r, row.data());
      ASSERT_EQ(0, std::memcmp(row.data(), ref_row.data(), row.size() * 4)) << "avx2 decode, row " << r;
    }
    if (cpu_features().avx512) {
      cpu_detail::decode_row_avx512(w, r, row.data());
      ASSERT_EQ(0, std::memcmp(row.data(), ref_row.data(), row.size() * 4)) << "avx512 decode, row " << r;
    }
  }
  for (int64_t n : {1, 2, 3, 5, 17, 70}) {
    const int64_t xs = s.cols + 3, ys = s.rows + 5;  // strides wider than the rows
    const std::vector<float> x = randn(static_cast<size_t>(n * xs), 100 + static_cast<uint32_t>(n));
    std::vector<float> want(static_cast<size_t>(n * ys), 0.0f);
    matmul_reference(w, x.data(), xs, n, want.data(), ys);
    for (CpuIsa isa : isas()) {
      std::vector<float> got(static_cast<size_t>(n * ys), 0.0f);
      matmul_isa(isa, w, x.data(), xs, n, got.data(), ys, nullptr);
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t r = 0; r < s.rows; ++r) {
          // f32 accumulation against double: |error| <= cols * eps * sum |w x| (a standard bound).
          decode_row(w, r, ref_row.data());
          double mag = 0;
          for (int64_t c = 0; c < s.cols; ++c)
            mag += std::abs(static_cast<double>(ref_row[c]) * x[t * xs + c]);
          const double bound = static_cast<double>(s.cols) * 1.2e-7 * mag + 1e-30;
          ASSERT_LE(std::abs(got[t * ys + r] - want[t * ys + r]), bound)
              << cpu_isa_name(isa) << " n=" << n << " t=" << t << " r=" << r;
        }
      }
    }
  }
}

TEST_P(CpuMatmul, ResultsDoNotDependOnBatchTileOrThreads) {
  const Shape s = GetParam();
  TestWeight tw = make_weight(s.dtype, s.rows, s.cols, 12);
  const int64_t n = 9;
  const std::vector<float> x = randn(static_cast<size_t>(n * s.cols), 7);
  ThreadPool pool2(2), pool3(3);
  for (CpuIsa isa : isas()) {
    std::vector<float> all(static_cast<size_t>(n * s.rows)), one(static_cast<size_t>(s.rows)),
        threaded(static_cast<size_t>(n * s.rows));
    matmul_isa(isa, tw.w, x.data(), s.cols, n, all.data(), s.rows, nullptr);
    for (ThreadPool* p : {&pool2, &pool3}) {
      matmul_isa(isa, tw.w, x.data(), s.cols, n, threaded.data(), s.rows, p);
      ASSERT_EQ(0, std::memcmp(all.data(), threaded.data(), all.size() * 4))
          << cpu_isa_name(isa) << " threads";
    }
    for (int64_t t = 0; t < n; ++t) {
      matmul_isa(isa, tw.w, x.data() + t * s.cols, s.cols, 1, one.data(), s.rows, nullptr);
      ASSERT_EQ(0, std::memcmp(one.data(), all.data() + t * s.rows, one.size() * 4))
          << cpu_isa_name(isa) << ": token " << t << " alone differs from the batch";
    }
    // A row range equals the same columns of the full product.
    const int64_t r0 = s.rows / 3, r1 = s.rows - 1;
    std::vector<float> part(static_cast<size_t>(n * (r1 - r0)));
    matmul_row_range(tw.w, r0, r1, x.data(), s.cols, n, part.data(), r1 - r0, nullptr);
    if (isa == cpu_isa()) {
      for (int64_t t = 0; t < n; ++t)
        for (int64_t r = r0; r < r1; ++r) ASSERT_EQ(part[t * (r1 - r0) + r - r0], all[t * s.rows + r]);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, CpuMatmul,
                         ::testing::Values(Shape{DType::kF32, 37, 67}, Shape{DType::kF16, 33, 50},
                                           Shape{DType::kBF16, 41, 96}, Shape{DType::kBF16, 20, 61},
                                           Shape{DType::kF8_E4M3, 200, 300}, Shape{DType::kQ8_0, 45, 96},
                                           Shape{DType::kQ8_0, 19, 64}, Shape{DType::kQ4_0, 30, 128},
                                           Shape{DType::kQ4_K, 21, 512}, Shape{DType::kQ6_K, 9, 256}),
                         [](const auto& info) {
                           return std::string(dtype_name(info.param.dtype)) + "_" +
                                  std::to_string(info.param.rows) + "x" + std::to_string(info.param.cols);
                         });

// ---- attention over a paged cache against a dense naive version ---------------------------------

TEST(CpuAttention, PagedGqaAndMlaMatchANaiveDenseComputation) {
  for (int64_t block : {4, 16}) {
    for (int64_t n_ctx : {1, 7, 33}) {
      const int64_t n_heads = 8, n_kv = 2, hd = 24, lora = 20, rope = 6;
      const int64_t blocks = (n_ctx + block - 1) / block + 3;
      std::vector<int32_t> table(static_cast<size_t>(blocks));
      std::iota(table.begin(), table.end(), 0);
      std::shuffle(table.begin(), table.end(), std::mt19937(static_cast<uint32_t>(n_ctx)));
      // GQA
      const int64_t gstride = 2 * n_kv * hd;
      std::vector<float> gstore = randn(static_cast<size_t>(blocks * block * gstride), 5);
      PagedKvLayer g{gstore.data(), gstride, block};
      const std::vector<float> q = randn(static_cast<size_t>(n_heads * hd), 6);
      std::vector<float> out(hd), scores(n_ctx);
      for (int64_t h = 0; h < n_heads; ++h) {
        attention_gqa_head(g, table, n_ctx, q.data() + h * hd, h, n_heads, n_kv, hd, 0.3f, out.data(),
                           scores.data());
        const int64_t kvh = h / (n_heads / n_kv);
        std::vector<double> s(n_ctx);
        double mx = -1e300, sum = 0;
        for (int64_t t = 0; t < n_ctx; ++t) {
          const float* slot = kv_slot(g, table, t);
          double d = 0;
          for (int64_t i = 0; i < hd; ++i) d += static_cast<double>(q[h * hd + i]) * slot[kvh * hd + i];
          s[t] = d * 0.3;
          mx = std::max(mx, s[t]);
        }
        for (double& v : s) sum += (v = std::exp(v - mx));
        for (int64_t i = 0; i < hd; ++i) {
          double o = 0;
          for (int64_t t = 0; t < n_ctx; ++t)
            o += s[t] / sum * kv_slot(g, table, t)[n_kv * hd + kvh * hd + i];
          ASSERT_NEAR(out[i], o, 1e-5) << "gqa block " << block << " ctx " << n_ctx << " head " << h;
        }
      }
      // MLA (absorbed): slot = [latent][rope key]
      const int64_t mstride = lora + rope;
      std::vector<float> mstore = randn(static_cast<size_t>(blocks * block * mstride), 8);
      PagedKvLayer m{mstore.data(), mstride, block};
      const std::vector<float> ql = randn(lora, 9), qr = randn(rope, 10);
      std::vector<float> olat(lora);
      attention_mla_head(m, table, n_ctx, ql.data(), qr.data(), lora, rope, 0.2f, olat.data(), scores.data());
      std::vector<double> s(n_ctx);
      double mx = -1e300, sum = 0;
      for (int64_t t = 0; t < n_ctx; ++t) {
        const float* slot = kv_slot(m, table, t);
        double d = 0;
        for (int64_t i = 0; i < lora; ++i) d += static_cast<double>(ql[i]) * slot[i];
        for (int64_t i = 0; i < rope; ++i) d += static_cast<double>(qr[i]) * slot[lora + i];
        s[t] = d * 0.2;
        mx = std::max(mx, s[t]);
      }
      for (double& v : s) sum += (v = std::exp(v - mx));
      for (int64_t i = 0; i < lora; ++i) {
        double o = 0;
        for (int64_t t = 0; t < n_ctx; ++t) o += s[t] / sum * kv_slot(m, table, t)[i];
        ASSERT_NEAR(olat[i], o, 1e-5) << "mla block " << block << " ctx " << n_ctx;
      }
    }
  }
}

// ---- RoPE ------------------------------------------------------------------------------------------

ModelSpec deepseek_v3_rope() {
  ModelSpec s;
  s.architecture = Architecture::kDeepseekV3;
  s.mla = MlaSpec{};  // qk_rope_head_dim 64
  s.head_dim = 192;
  s.rope_theta = 10000;
  s.max_position_embeddings = 163840;
  s.rope_interleave = true;
  s.rope_scaling.type = RopeType::kYarn;
  s.rope_scaling.factor = 40;
  s.rope_scaling.original_max_position_embeddings = 4096;
  s.rope_scaling.mscale = 1.0;
  s.rope_scaling.mscale_all_dim = 1.0;
  return s;
}

TEST(CpuRope, YarnMatchesTheTransformersFormulaInDouble) {
  const ModelSpec s = deepseek_v3_rope();
  const RopeTable t = make_rope_table(s);
  ASSERT_EQ(t.rot_dim, 64);
  ASSERT_TRUE(t.interleave);
  const double dim = 64, base = 10000, factor = 40, orig = 4096;
  auto cdim = [&](double rot) { return dim * std::log(orig / (rot * 2 * M_PI)) / (2 * std::log(base)); };
  const double low = std::max(0.0, std::floor(cdim(32))), high = std::min(dim - 1, std::ceil(cdim(1)));
  for (int i = 0; i < 32; ++i) {
    const double pos_freq = std::pow(base, 2.0 * i / dim);
    const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    const double extrap_factor = 1 - ramp;
    const double want = 1 / (factor * pos_freq) * (1 - extrap_factor) + 1 / pos_freq * extrap_factor;
    EXPECT_NEAR(t.inv_freq[i], want, 2e-6 * want) << i;
  }
  EXPECT_FLOAT_EQ(t.attention_factor, 1.0f);  // mscale == mscale_all_dim
  const double m = 0.1 * std::log(40.0) + 1.0;
  EXPECT_NEAR(attention_softmax_scale(s), m * m / std::sqrt(192.0), 1e-7);
}

TEST(CpuRope, Llama3ScalingAndLayouts) {
  ModelSpec s;
  s.architecture = Architecture::kLlama;
  s.head_dim = 64;
  s.rope_theta = 500000;
  s.rope_scaling.type = RopeType::kLlama3;
  s.rope_scaling.factor = 8;
  s.rope_scaling.original_max_position_embeddings = 8192;
  const RopeTable t = make_rope_table(s);
  for (int i = 0; i < 32; ++i) {
    const double f = 1 / std::pow(500000.0, 2.0 * i / 64), wl = 2 * M_PI / f;
    double want = f;
    if (wl > 8192) {
      want = f / 8;
    } else if (wl >= 8192 / 4.0) {
      const double sm = (8192 / wl - 1) / (4 - 1);
      want = (1 - sm) * f / 8 + sm * f;
    }
    EXPECT_NEAR(t.inv_freq[i], want, 2e-6 * want) << i;
  }
  // Rotation by the same table in both layouts preserves each pair's norm and matches the formula.
  std::vector<float> cs(64);
  rope_cos_sin(t, 37, cs.data());
  std::vector<float> x = randn(64, 3), half = x, inter = x;
  RopeTable th = t, ti = t;
  th.interleave = false;
  ti.interleave = true;
  apply_rope(th, cs.data(), half.data(), 1, 64);
  apply_rope(ti, cs.data(), inter.data(), 1, 64);
  for (int i = 0; i < 32; ++i) {
    const double c = std::cos(static_cast<double>(static_cast<float>(t.inv_freq[i] * 37.0f)));
    const double sn = std::sin(static_cast<double>(static_cast<float>(t.inv_freq[i] * 37.0f)));
    EXPECT_NEAR(half[i], x[i] * c - x[i + 32] * sn, 1e-5);
    EXPECT_NEAR(half[i + 32], x[i + 32] * c + x[i] * sn, 1e-5);
    EXPECT_NEAR(inter[2 * i], x[2 * i] * c - x[2 * i + 1] * sn, 1e-5);
    EXPECT_NEAR(inter[2 * i + 1], x[2 * i + 1] * c + x[2 * i] * sn, 1e-5);
  }
}

// ---- MoE routing -------------------------------------------------------------------------------------

TEST(CpuMoeRouting, DeepseekV2SoftmaxGreedyScaled) {
  MoeSpec m;
  m.n_routed_experts = 4;
  m.num_experts_per_tok = 2;
  m.routed_scaling_factor = 2.0;
  const float logits[4] = {1.0f, 3.0f, 0.0f, 2.0f};
  int32_t ex[2];
  float w[2], scratch[8];
  moe_route(logits, m, nullptr, false, ex, w, scratch);
  const double z = std::exp(1.0) + std::exp(3.0) + 1 + std::exp(2.0);
  EXPECT_EQ(ex[0], 1);  // sorted by id: experts 1 and 3
  EXPECT_EQ(ex[1], 3);
  EXPECT_NEAR(w[0], 2.0 * std::exp(3.0) / z, 1e-6);
  EXPECT_NEAR(w[1], 2.0 * std::exp(2.0) / z, 1e-6);
}

TEST(CpuMoeRouting, DeepseekV3GroupsBiasAndTheMaskedZeroRule) {
  MoeSpec m;
  m.n_routed_experts = 8;
  m.num_experts_per_tok = 2;
  m.n_group = 4;
  m.topk_group = 2;
  m.topk_method = TopkMethod::kNoauxTc;
  m.scoring_func = ScoringFunc::kSigmoid;
  m.norm_topk_prob = true;
  m.routed_scaling_factor = 2.5;
  // Groups {0,1} {2,3} {4,5} {6,7}. Biases make groups 1 and 3 win (sum of top-2 biased scores), but
  // every biased score there is negative: DeepSeek masks the dropped groups with 0.0, so the masked
  // experts (score 0) beat the kept ones and the top-2 comes from expert ids 0 and 1 (ties -> lower id).
  const float logits[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // sigmoid 0.5 each
  const float bias[8] = {-5, -5, -0.6f, -0.7f, -5, -5, -0.8f, -0.9f};
  int32_t ex[2];
  float w[2], scratch[16];
  moe_route(logits, m, bias, true, ex, w, scratch);
  EXPECT_EQ(ex[0], 0);
  EXPECT_EQ(ex[1], 1);
  // Weights: unbiased scores (0.5, 0.5) normalised then scaled.
  EXPECT_NEAR(w[0], 1.25, 1e-6);
  EXPECT_NEAR(w[1], 1.25, 1e-6);

  // Positive biases: the best group pair is kept and the best experts in it are chosen.
  const float logits2[8] = {0.1f, -1, 2, 1, -2, 0, 0.5f, 0.4f};
  const float bias2[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  moe_route(logits2, m, bias2, true, ex, w, scratch);
  EXPECT_EQ(ex[0], 2);
  EXPECT_EQ(ex[1], 3);
  const double s2 = 1 / (1 + std::exp(-2.0)), s3 = 1 / (1 + std::exp(-1.0));
  EXPECT_NEAR(w[0], 2.5 * s2 / (s2 + s3), 1e-6);
  EXPECT_NEAR(w[1], 2.5 * s3 / (s2 + s3), 1e-6);
}

// ---- thread pool -------------------------------------------------------------------------------------

TEST(CpuThreadPool, CoversEveryIndexOnceAndSurvivesManyJobs) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.parallel_for(n, [&](int64_t a, int64_t b) {
        for (int64_t i = a; i < b; ++i) hits[static_cast<size_t>(i)]++;
      });
      for (auto& h : hits) ASSERT_EQ(h.load(), 1);
    }
    std::atomic<int64_t> total{0};
    for (int i = 0; i < 5000; ++i) pool.parallel_for(4, [&](int64_t a, int64_t b) { total += b - a; });
    EXPECT_EQ(total.load(), 20000);
  }
}

}  // namespace
}  // namespace hearth
