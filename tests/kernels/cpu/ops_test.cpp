// Element-wise and row-wise kernels against their double-precision formulas.
#include "kernels/cpu/ops.h"

#include "kernels/cpu/cpu_features.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace hearth {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> random_vector(int64_t n, float amplitude, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-amplitude, amplitude);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

TEST(Ops, RmsNormMatchesTheFormula) {
  // out = x / sqrt(mean(x^2) + eps) * w, computed in double.
  for (int64_t n : {1, 7, 1000, 4096}) {
    const std::vector<float> x = random_vector(n, 3.0f, 1), w = random_vector(n, 2.0f, 2);
    for (float eps : {1e-6f, 1e-5f, 0.5f}) {
      std::vector<float> out(n, NAN);
      rms_norm(x.data(), w.data(), n, eps, out.data());
      double ss = 0.0;
      for (float v : x) ss += static_cast<double>(v) * v;
      const double inv = 1.0 / std::sqrt(ss / n + eps);
      for (int64_t i = 0; i < n; ++i) {
        const double ref = x[i] * inv * w[i];
        EXPECT_NEAR(out[i], ref, 2e-6 * std::fabs(ref) + 1e-30) << "n " << n << " eps " << eps << " i " << i;
      }
    }
  }
}

TEST(Ops, RmsNormOfZerosIsZeroAndInPlaceGivesTheSameBits) {
  const std::vector<float> zeros(16, 0.0f), w(16, 1.0f);
  std::vector<float> out(16, NAN);
  rms_norm(zeros.data(), w.data(), 16, 1e-6f, out.data());
  for (float v : out) EXPECT_EQ(v, 0.0f);

  const std::vector<float> x = random_vector(300, 1.0f, 3), g = random_vector(300, 1.0f, 4);
  std::vector<float> separate(300), in_place = x;
  rms_norm(x.data(), g.data(), 300, 1e-6f, separate.data());
  rms_norm(in_place.data(), g.data(), 300, 1e-6f, in_place.data());
  EXPECT_EQ(in_place, separate);
}

TEST(Ops, SiluMulMatchesTheFormula) {
  // gate = gate * sigmoid(gate) * up, including saturated gates (silu(-1000) = -0, silu(1000) = 1000).
  std::vector<float> gate = random_vector(257, 12.0f, 5);
  gate.insert(gate.end(), {0.0f, -1000.0f, 1000.0f, -80.0f, 80.0f});
  const std::vector<float> up = random_vector(static_cast<int64_t>(gate.size()), 2.0f, 6);
  std::vector<float> out = gate;
  silu_mul(out.data(), up.data(), static_cast<int64_t>(out.size()));
  for (size_t i = 0; i < gate.size(); ++i) {
    const double g = gate[i];
    const double ref = g / (1.0 + std::exp(-g)) * up[i];
    EXPECT_TRUE(std::isfinite(out[i])) << "gate " << g;
    EXPECT_NEAR(out[i], ref, 1e-6 * std::fabs(ref) + 1e-37) << "gate " << g;
  }
}

TEST(Ops, SoftmaxMatchesTheFormulaAndIsShiftInvariant) {
  for (float offset : {0.0f, 1000.0f, -1000.0f}) {
    std::vector<float> x = random_vector(100, 8.0f, 7);
    for (float& v : x) v += offset;
    std::vector<double> e(x.size());
    double mx = -INFINITY, sum = 0.0;
    for (float v : x) mx = std::max(mx, static_cast<double>(v));
    for (size_t i = 0; i < x.size(); ++i) sum += (e[i] = std::exp(x[i] - mx));
    softmax_inplace(x.data(), static_cast<int64_t>(x.size()));
    double total = 0.0;
    for (size_t i = 0; i < x.size(); ++i) {
      EXPECT_NEAR(x[i], e[i] / sum, 1e-6 * e[i] / sum + 1e-9) << "offset " << offset << " i " << i;
      total += x[i];
    }
    EXPECT_NEAR(total, 1.0, 1e-5);
  }
}

TEST(Ops, SoftmaxGivesMinusInfinityZeroWeight) {
  std::vector<float> x{-kInf, 0.0f, -kInf, std::log(3.0f)};
  softmax_inplace(x.data(), 4);
  EXPECT_EQ(x[0], 0.0f);
  EXPECT_EQ(x[2], 0.0f);
  EXPECT_NEAR(x[1], 0.25f, 1e-7);
  EXPECT_NEAR(x[3], 0.75f, 1e-7);
}

TEST(Ops, SoftmaxOfAllMinusInfinityIsAllZero) {
  // A fully masked row has no distribution; the kernel returns zeros rather than NaN.
  std::vector<float> x(5, -kInf);
  softmax_inplace(x.data(), 5);
  for (float v : x) EXPECT_EQ(v, 0.0f);
  std::vector<float> single{2.5f};
  softmax_inplace(single.data(), 1);
  EXPECT_EQ(single[0], 1.0f);
}

TEST(Ops, AxpyAddAndDot) {
  std::vector<float> y{1.0f, 2.0f, 3.0f};
  const std::vector<float> x{0.5f, -1.0f, 4.0f};
  axpy(2.0f, x.data(), y.data(), 3);
  EXPECT_EQ(y, (std::vector<float>{2.0f, 0.0f, 11.0f}));
  add_inplace(y.data(), x.data(), 3);
  EXPECT_EQ(y, (std::vector<float>{2.5f, -1.0f, 15.0f}));
  add_bias(y.data(), x.data(), 3);
  EXPECT_EQ(y, (std::vector<float>{3.0f, -2.0f, 19.0f}));
  EXPECT_EQ(dot(x.data(), y.data(), 3), 1.5f + 2.0f + 76.0f);
  EXPECT_EQ(dot(x.data(), y.data(), 0), 0.0f);
}

}  // namespace
// The vectorised dot / axpy of every level the CPU has agree with the scalar references within the
// f32 reordering bound, for every length around the vector widths (tails included).
TEST(Ops, VectorDotAndAxpyMatchTheReferenceOnEveryIsa) {
  std::mt19937 g(3);
  std::normal_distribution<float> d;
  for (int64_t n = 0; n <= 70; ++n) {
    std::vector<float> a(n), b(n), y0(n), y1(n), y2(n);
    for (int64_t i = 0; i < n; ++i) {
      a[i] = d(g);
      b[i] = d(g);
      y0[i] = y1[i] = y2[i] = d(g);
    }
    double mag = 0;
    for (int64_t i = 0; i < n; ++i) mag += std::abs(static_cast<double>(a[i]) * b[i]);
    const float want = dot_reference(a.data(), b.data(), n);
    axpy_reference(0.7f, a.data(), y0.data(), n);
    if (hearth::cpu_features().avx2) {
      EXPECT_NEAR(cpu_detail::dot_avx2(a.data(), b.data(), n), want, 2.4e-7 * (n + 1) * mag + 1e-30) << n;
      cpu_detail::axpy_avx2(0.7f, a.data(), y1.data(), n);
      for (int64_t i = 0; i < n; ++i)
        EXPECT_NEAR(y1[i], y0[i], 1e-6f * (std::abs(y0[i]) + 1)) << n;  // fma vs mul+add
    }
    if (hearth::cpu_features().avx512) {
      EXPECT_NEAR(cpu_detail::dot_avx512(a.data(), b.data(), n), want, 2.4e-7 * (n + 1) * mag + 1e-30) << n;
      cpu_detail::axpy_avx512(0.7f, a.data(), y2.data(), n);
      for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y2[i], y0[i], 1e-6f * (std::abs(y0[i]) + 1)) << n;
    }
  }
}

}  // namespace hearth
