// RoPE tables against an independent double-precision transcription of transformers 5's
// modeling_rope_utils (_compute_default/linear/llama3/yarn_parameters) and DeepSeek's softmax scale;
// rope_cos_sin and apply_rope against the rotation formula.
#include "kernels/cpu/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace hearth {
namespace {

// hearth computes the tables in float32 as torch does; the double transcription differs only by f32
// rounding of a handful of operations (pow, divisions, the ramp blend): at most 2.7e-7 in these cases.
constexpr double kRelTol = 1e-6;

// ---- transformers 5, transcribed in double ---------------------------------------------------

// _compute_default_rope_parameters: 1 / base ** (arange(0, dim, 2) / dim).
std::vector<double> hf_default(int64_t dim, double base) {
  std::vector<double> inv(dim / 2);
  for (int64_t i = 0; i < dim / 2; ++i) inv[i] = 1.0 / std::pow(base, static_cast<double>(2 * i) / dim);
  return inv;
}

// _compute_llama3_parameters.
std::vector<double> hf_llama3(int64_t dim, double base, double factor, double low_freq_factor,
                              double high_freq_factor, double old_context_len) {
  std::vector<double> inv = hf_default(dim, base);
  const double low_freq_wavelen = old_context_len / low_freq_factor;
  const double high_freq_wavelen = old_context_len / high_freq_factor;
  for (double& f : inv) {
    const double wavelen = 2.0 * std::numbers::pi / f;
    if (wavelen > low_freq_wavelen) {
      f = f / factor;
    } else if (!(wavelen < high_freq_wavelen)) {  // medium band: smooth interpolation
      const double smooth =
          (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      f = (1.0 - smooth) * f / factor + smooth * f;
    }
  }
  return inv;
}

double get_mscale(double scale, double mscale) {
  if (scale <= 1.0) return 1.0;
  return 0.1 * mscale * std::log(scale) + 1.0;
}

struct YarnParams {
  int64_t dim;
  double base;
  double factor;
  double original_max_position_embeddings;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  std::optional<double> mscale, mscale_all_dim, attention_factor;
};

struct YarnRef {
  std::vector<double> inv_freq;
  double attention_factor;
};

// _compute_yarn_parameters (truncate = true).
YarnRef hf_yarn(const YarnParams& p) {
  YarnRef out;
  if (p.attention_factor) {
    out.attention_factor = *p.attention_factor;
  } else if (p.mscale.value_or(0.0) != 0.0 && p.mscale_all_dim.value_or(0.0) != 0.0) {
    out.attention_factor = get_mscale(p.factor, *p.mscale) / get_mscale(p.factor, *p.mscale_all_dim);
  } else {
    out.attention_factor = get_mscale(p.factor, 1.0);
  }
  // find_correction_dim = dim * ln(orig / (rotations * 2 pi)) / (2 ln base)
  auto correction_dim = [&](double rotations) {
    return p.dim * std::log(p.original_max_position_embeddings / (rotations * 2.0 * std::numbers::pi)) /
           (2.0 * std::log(p.base));
  };
  double low = std::max(std::floor(correction_dim(p.beta_fast)), 0.0);
  double high = std::min(std::ceil(correction_dim(p.beta_slow)), static_cast<double>(p.dim - 1));
  if (low == high) high += 0.001;
  out.inv_freq.resize(p.dim / 2);
  for (int64_t i = 0; i < p.dim / 2; ++i) {
    const double pos_freq = std::pow(p.base, static_cast<double>(2 * i) / p.dim);
    const double extrapolation = 1.0 / pos_freq;
    const double interpolation = 1.0 / (p.factor * pos_freq);
    const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    const double extrapolation_factor = 1.0 - ramp;
    out.inv_freq[i] = interpolation * (1.0 - extrapolation_factor) + extrapolation * extrapolation_factor;
  }
  return out;
}

// ---- specs -------------------------------------------------------------------------------------

ModelSpec gqa_spec(int64_t head_dim, double theta, RopeScaling rs = {}) {
  ModelSpec s;
  s.architecture = Architecture::kLlama;
  s.head_dim = head_dim;
  s.rope_theta = theta;
  s.rope_scaling = rs;
  return s;
}

// DeepSeek V2/V3 attention: MLA with a 64-wide rotary part of 192-wide query/key heads.
ModelSpec deepseek_spec(double mscale, double mscale_all_dim) {
  ModelSpec s;
  s.architecture = Architecture::kDeepseekV3;
  s.mla = MlaSpec{};
  s.mla->qk_nope_head_dim = 128;
  s.mla->qk_rope_head_dim = 64;
  s.head_dim = 192;
  s.rope_theta = 10000.0;
  s.max_position_embeddings = 163840;  // = factor * original, as transformers' ratio would recompute it
  s.rope_interleave = true;
  s.rope_scaling.type = RopeType::kYarn;
  s.rope_scaling.factor = 40.0;
  s.rope_scaling.original_max_position_embeddings = 4096;
  s.rope_scaling.beta_fast = 32.0;
  s.rope_scaling.beta_slow = 1.0;
  s.rope_scaling.mscale = mscale;
  s.rope_scaling.mscale_all_dim = mscale_all_dim;
  return s;
}

void expect_inv_freq(const RopeTable& t, const std::vector<double>& ref) {
  ASSERT_EQ(t.inv_freq.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i)
    EXPECT_NEAR(t.inv_freq[i], ref[i], kRelTol * ref[i]) << "inv_freq[" << i << "]";
}

// ---- tables ------------------------------------------------------------------------------------

TEST(Rope, DefaultTableIsInversePowersOfTheBase) {
  for (double theta : {10000.0, 500000.0, 1000000.0}) {
    SCOPED_TRACE("theta " + std::to_string(theta));
    const RopeTable t = make_rope_table(gqa_spec(128, theta));
    EXPECT_EQ(t.rot_dim, 128);
    EXPECT_FALSE(t.interleave);
    EXPECT_EQ(t.attention_factor, 1.0f);
    expect_inv_freq(t, hf_default(128, theta));
  }
}

TEST(Rope, DynamicTableIsTheDefaultOne) {
  RopeScaling rs;
  rs.type = RopeType::kDynamic;
  rs.factor = 4.0;
  expect_inv_freq(make_rope_table(gqa_spec(64, 10000.0, rs)), hf_default(64, 10000.0));
}

TEST(Rope, LinearTableDividesByTheFactor) {
  RopeScaling rs;
  rs.type = RopeType::kLinear;
  rs.factor = 4.0;
  std::vector<double> ref = hf_default(128, 10000.0);
  for (double& f : ref) f /= 4.0;
  expect_inv_freq(make_rope_table(gqa_spec(128, 10000.0, rs)), ref);
}

TEST(Rope, Llama3TableMatchesTransformers) {
  // Llama 3.1 (original 8192) and a short original length (64) that puts many frequencies in the
  // smoothed middle band.
  for (int64_t original : {int64_t{8192}, int64_t{64}}) {
    SCOPED_TRACE("original " + std::to_string(original));
    RopeScaling rs;
    rs.type = RopeType::kLlama3;
    rs.factor = 8.0;
    rs.low_freq_factor = 1.0;
    rs.high_freq_factor = 4.0;
    rs.original_max_position_embeddings = original;
    const std::vector<double> ref = hf_llama3(128, 500000.0, 8.0, 1.0, 4.0, static_cast<double>(original));
    // The case must reach all three bands: kept, divided by the factor, and smoothed.
    const std::vector<double> plain = hf_default(128, 500000.0);
    int kept = 0, divided = 0, smoothed = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      if (ref[i] == plain[i]) {
        ++kept;
      } else if (std::fabs(ref[i] * 8.0 - plain[i]) < 1e-12 * plain[i]) {
        ++divided;
      } else {
        ++smoothed;
      }
    }
    EXPECT_GT(kept, 0);
    EXPECT_GT(divided, 0);
    EXPECT_GT(smoothed, 0);
    expect_inv_freq(make_rope_table(gqa_spec(128, 500000.0, rs)), ref);
  }
}

TEST(Rope, YarnTableOfDeepseekV3MatchesTransformers) {
  // DeepSeek-V3: factor 40, original 4096, beta 32 / 1, mscale = mscale_all_dim = 1, rot dim 64.
  const RopeTable t = make_rope_table(deepseek_spec(1.0, 1.0));
  EXPECT_EQ(t.rot_dim, 64);
  EXPECT_TRUE(t.interleave);
  const YarnRef ref = hf_yarn({.dim = 64,
                               .base = 10000.0,
                               .factor = 40.0,
                               .original_max_position_embeddings = 4096.0,
                               .mscale = 1.0,
                               .mscale_all_dim = 1.0});
  expect_inv_freq(t, ref.inv_freq);
  EXPECT_EQ(ref.attention_factor, 1.0);  // mscale / mscale_all_dim cancel
  EXPECT_NEAR(t.attention_factor, ref.attention_factor, kRelTol);
  // The ramp runs from dim 10 (floor of 10.47) to 23 (ceil of 22.6): below it the default
  // frequency, above it the default / 40.
  const std::vector<double> plain = hf_default(64, 10000.0);
  EXPECT_NEAR(t.inv_freq[10], plain[10], kRelTol * plain[10]);
  EXPECT_NEAR(t.inv_freq[23], plain[23] / 40.0, kRelTol * plain[23] / 40.0);
  EXPECT_GT(t.inv_freq[11], plain[11] / 40.0 * 1.5);
  EXPECT_LT(t.inv_freq[11], plain[11] * 0.99);
}

TEST(Rope, YarnTableOfDeepseekV2LiteMatchesTransformers) {
  const RopeTable t = make_rope_table(deepseek_spec(0.707, 0.707));
  const YarnRef ref = hf_yarn({.dim = 64,
                               .base = 10000.0,
                               .factor = 40.0,
                               .original_max_position_embeddings = 4096.0,
                               .mscale = 0.707,
                               .mscale_all_dim = 0.707});
  expect_inv_freq(t, ref.inv_freq);
  EXPECT_NEAR(t.attention_factor, ref.attention_factor, kRelTol);
}

TEST(Rope, YarnAttentionFactorFollowsMscaleRules) {
  {
    // Unequal mscales: the ratio of the two get_mscale values.
    const RopeTable t = make_rope_table(deepseek_spec(0.707, 1.0));
    const double expected = (0.1 * 0.707 * std::log(40.0) + 1.0) / (0.1 * std::log(40.0) + 1.0);
    EXPECT_NEAR(t.attention_factor, expected, kRelTol);
  }
  // Without mscale (Qwen2-style YaRN, not MLA): 0.1 ln(factor) + 1, over head_dim.
  RopeScaling rs;
  rs.type = RopeType::kYarn;
  rs.factor = 4.0;
  rs.original_max_position_embeddings = 32768;
  ModelSpec qwen = gqa_spec(128, 1000000.0, rs);
  qwen.max_position_embeddings = 131072;
  {
    const RopeTable t = make_rope_table(qwen);
    const YarnRef ref =
        hf_yarn({.dim = 128, .base = 1000000.0, .factor = 4.0, .original_max_position_embeddings = 32768});
    EXPECT_EQ(t.rot_dim, 128);
    expect_inv_freq(t, ref.inv_freq);
    EXPECT_NEAR(ref.attention_factor, 0.1 * std::log(4.0) + 1.0, 1e-15);
    EXPECT_NEAR(t.attention_factor, ref.attention_factor, kRelTol);
  }
  {
    // An explicit attention_factor wins.
    qwen.rope_scaling.attention_factor = 0.8;
    qwen.rope_scaling.mscale = 1.0;
    qwen.rope_scaling.mscale_all_dim = 0.5;
    EXPECT_EQ(make_rope_table(qwen).attention_factor, 0.8f);
  }
}

TEST(Rope, SoftmaxScaleCarriesDeepseekMscaleSquared) {
  // V3: (0.1 * 1 * ln 40 + 1)^2 / sqrt(192).
  const double v3 = std::pow(0.1 * std::log(40.0) + 1.0, 2) / std::sqrt(192.0);
  EXPECT_NEAR(attention_softmax_scale(deepseek_spec(1.0, 1.0)), v3, kRelTol * v3);
  // V2-Lite: mscale_all_dim 0.707.
  const double v2 = std::pow(0.1 * 0.707 * std::log(40.0) + 1.0, 2) / std::sqrt(192.0);
  EXPECT_NEAR(attention_softmax_scale(deepseek_spec(0.707, 0.707)), v2, kRelTol * v2);
  // Non-DeepSeek models: head_dim^-0.5, YaRN or not.
  EXPECT_NEAR(attention_softmax_scale(gqa_spec(128, 10000.0)), 1.0 / std::sqrt(128.0),
              kRelTol / std::sqrt(128.0));
  RopeScaling yarn;
  yarn.type = RopeType::kYarn;
  yarn.factor = 4.0;
  yarn.original_max_position_embeddings = 32768;
  EXPECT_NEAR(attention_softmax_scale(gqa_spec(64, 10000.0, yarn)), 0.125, kRelTol * 0.125);
}

// ---- cos/sin and rotation ----------------------------------------------------------------------

TEST(Rope, CosSinUseTheFloat32AngleTimesTheAttentionFactor) {
  RopeScaling rs;
  rs.type = RopeType::kYarn;
  rs.factor = 4.0;
  rs.original_max_position_embeddings = 2048;
  for (const ModelSpec& spec : {deepseek_spec(1.0, 1.0), gqa_spec(64, 10000.0, rs)}) {
    const RopeTable t = make_rope_table(spec);
    SCOPED_TRACE("attention factor " + std::to_string(t.attention_factor));
    std::vector<float> cs(t.rot_dim);
    for (int64_t pos : {0, 1, 17, 4095, 100000}) {
      rope_cos_sin(t, pos, cs.data());
      for (int64_t i = 0; i < t.rot_dim / 2; ++i) {
        // torch forms the angle as a float32 product (at position 1e5 that differs from the exact
        // product by up to ~4e-3 rad, so the rounding is part of the spec).
        const float angle = t.inv_freq[i] * static_cast<float>(pos);
        EXPECT_NEAR(cs[2 * i], std::cos(static_cast<double>(angle)) * t.attention_factor, 1e-6)
            << "pos " << pos << " i " << i;
        EXPECT_NEAR(cs[2 * i + 1], std::sin(static_cast<double>(angle)) * t.attention_factor, 1e-6)
            << "pos " << pos << " i " << i;
      }
    }
  }
}

RopeTable small_table(bool interleave, float attention_factor) {
  RopeTable t;
  t.rot_dim = 16;
  t.interleave = interleave;
  t.attention_factor = attention_factor;
  for (int64_t i = 0; i < 8; ++i) t.inv_freq.push_back(static_cast<float>(std::pow(10000.0, -i / 8.0)));
  return t;
}

std::vector<float> random_heads(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

TEST(Rope, ApplyRotatesPairsOfEitherLayout) {
  // 3 heads of 24 (16 rotated, 8 passed through), like MLA keys whose rope part is one slice.
  constexpr int64_t kHeads = 3, kStride = 24, kHalf = 8;
  for (bool interleave : {false, true}) {
    SCOPED_TRACE(interleave ? "interleaved" : "halves");
    const RopeTable t = small_table(interleave, 1.0f);
    std::vector<float> cs(16);
    rope_cos_sin(t, 37, cs.data());
    const std::vector<float> x0 = random_heads(kHeads * kStride, 5);
    std::vector<float> x = x0;
    apply_rope(t, cs.data(), x.data(), kHeads, kStride);
    for (int64_t h = 0; h < kHeads; ++h) {
      const float* in = x0.data() + h * kStride;
      const float* out = x.data() + h * kStride;
      for (int64_t i = 0; i < kHalf; ++i) {
        // Pair i: (2i, 2i + 1) interleaved, (i, i + 8) as halves.
        const int64_t ia = interleave ? 2 * i : i, ib = interleave ? 2 * i + 1 : i + kHalf;
        const double a = in[ia], b = in[ib], c = cs[2 * i], s = cs[2 * i + 1];
        EXPECT_NEAR(out[ia], a * c - b * s, 1e-6) << "head " << h << " pair " << i;
        EXPECT_NEAR(out[ib], b * c + a * s, 1e-6) << "head " << h << " pair " << i;
      }
      for (int64_t i = 16; i < kStride; ++i) EXPECT_EQ(out[i], in[i]) << "head " << h << " element " << i;
    }
  }
}

TEST(Rope, InterleavedLayoutIsThePermutedHalvesLayout) {
  const RopeTable halves = small_table(false, 1.0f), inter = small_table(true, 1.0f);
  std::vector<float> cs(16);
  rope_cos_sin(halves, 1234, cs.data());
  std::vector<float> x = random_heads(16, 6), y(16);
  for (int64_t i = 0; i < 8; ++i) {
    y[2 * i] = x[i];
    y[2 * i + 1] = x[i + 8];
  }
  apply_rope(halves, cs.data(), x.data(), 1, 16);
  apply_rope(inter, cs.data(), y.data(), 1, 16);
  for (int64_t i = 0; i < 8; ++i) {
    EXPECT_EQ(y[2 * i], x[i]);
    EXPECT_EQ(y[2 * i + 1], x[i + 8]);
  }
}

TEST(Rope, RotationKeepsEachPairsNormTimesTheAttentionFactor) {
  for (float factor : {1.0f, 1.25f}) {
    for (bool interleave : {false, true}) {
      const RopeTable t = small_table(interleave, factor);
      std::vector<float> cs(16);
      for (int64_t pos : {1, 500, 100000}) {
        rope_cos_sin(t, pos, cs.data());
        const std::vector<float> x0 = random_heads(16, static_cast<uint32_t>(pos));
        std::vector<float> x = x0;
        apply_rope(t, cs.data(), x.data(), 1, 16);
        for (int64_t i = 0; i < 8; ++i) {
          const int64_t ia = interleave ? 2 * i : i, ib = interleave ? 2 * i + 1 : i + 8;
          const double before = std::hypot(static_cast<double>(x0[ia]), x0[ib]);
          const double after = std::hypot(static_cast<double>(x[ia]), x[ib]);
          EXPECT_NEAR(after, factor * before, 1e-6 * (1.0 + before))
              << "factor " << factor << " pos " << pos << " pair " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace hearth
