#include "kernels/cpu/sampling.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace hearth {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<float> log_softmax_of(const std::vector<float>& logits) {
  std::vector<float> out(logits.size());
  log_softmax(logits, out);
  return out;
}

std::vector<int32_t> top_k_of(const std::vector<float>& values, int32_t k) {
  std::vector<int32_t> out{99, 98};  // stale contents must be replaced
  top_k_indices(values, k, out);
  return out;
}

TEST(SamplingKernels, LogSoftmaxMatchesHandComputedValues) {
  // log(1 + e^-1 + e^-2) = 0.40760596; log_softmax(x) = x - 3 - 0.40760596.
  const std::vector<float> lp = log_softmax_of({1.0f, 2.0f, 3.0f});
  ASSERT_EQ(lp.size(), 3u);
  EXPECT_NEAR(lp[0], -2.40760596f, 1e-6);
  EXPECT_NEAR(lp[1], -1.40760596f, 1e-6);
  EXPECT_NEAR(lp[2], -0.40760596f, 1e-6);
}

TEST(SamplingKernels, LogSoftmaxIsShiftInvariantAndNormalised) {
  // Large logits would overflow exp() without the max subtraction.
  const std::vector<float> logits{1000.0f, 1001.5f, 998.0f, 1000.25f, 990.0f, 1001.0f};
  std::vector<float> shifted;
  for (float x : logits) shifted.push_back(x - 1000.0f);
  const std::vector<float> a = log_softmax_of(logits), b = log_softmax_of(shifted);
  double sum = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(std::isfinite(a[i]));
    EXPECT_NEAR(a[i], b[i], 1e-5);
    sum += std::exp(static_cast<double>(a[i]));
  }
  EXPECT_NEAR(sum, 1.0, 1e-6);
}

TEST(SamplingKernels, LogSoftmaxOfUniformRowIsMinusLogN) {
  const std::vector<float> lp = log_softmax_of(std::vector<float>(1000, 0.5f));
  for (float v : lp) EXPECT_NEAR(v, -std::log(1000.0f), 1e-6);
}

TEST(SamplingKernels, LogSoftmaxTreatsNanAsMinusInf) {
  const std::vector<float> lp = log_softmax_of({kNaN, 0.0f, -kInf, 0.0f});
  EXPECT_EQ(lp[0], -kInf);
  EXPECT_EQ(lp[2], -kInf);
  EXPECT_NEAR(lp[1], -std::log(2.0f), 1e-7);
  EXPECT_NEAR(lp[3], -std::log(2.0f), 1e-7);
}

TEST(SamplingKernels, LogSoftmaxDegenerateRows) {
  for (float v : log_softmax_of({-kInf, kNaN, -kInf})) EXPECT_EQ(v, -kInf);
  // +inf entries share all the mass.
  const std::vector<float> lp = log_softmax_of({1.0f, kInf, 5.0f, kInf});
  EXPECT_EQ(lp[0], -kInf);
  EXPECT_EQ(lp[2], -kInf);
  EXPECT_NEAR(lp[1], -std::log(2.0f), 1e-7);
  EXPECT_NEAR(lp[3], -std::log(2.0f), 1e-7);
}

TEST(SamplingKernels, LogSoftmaxMayWorkInPlace) {
  std::vector<float> v{1.0f, 2.0f, 3.0f};
  log_softmax(v, v);
  EXPECT_NEAR(v[0], -2.40760596f, 1e-6);
  EXPECT_NEAR(v[2], -0.40760596f, 1e-6);
}

TEST(SamplingKernels, TopKOrdersHighestFirstWithTiesToLowerId) {
  const std::vector<float> v{0.1f, 0.5f, 0.3f, 0.5f, 0.2f, 0.5f};
  EXPECT_EQ(top_k_of(v, 1), (std::vector<int32_t>{1}));
  EXPECT_EQ(top_k_of(v, 2), (std::vector<int32_t>{1, 3}));
  EXPECT_EQ(top_k_of(v, 4), (std::vector<int32_t>{1, 3, 5, 2}));
  EXPECT_EQ(top_k_of(v, 6), (std::vector<int32_t>{1, 3, 5, 2, 4, 0}));
}

TEST(SamplingKernels, TopKClampsK) {
  const std::vector<float> v{3.0f, 1.0f, 2.0f};
  EXPECT_TRUE(top_k_of(v, 0).empty());
  EXPECT_TRUE(top_k_of(v, -2).empty());
  EXPECT_EQ(top_k_of(v, 10), (std::vector<int32_t>{0, 2, 1}));
  EXPECT_TRUE(top_k_of({}, 3).empty());
}

TEST(SamplingKernels, TopKPutsNanLastAmongMinusInf) {
  const std::vector<float> v{kNaN, -kInf, 1.0f, kNaN, kInf};
  EXPECT_EQ(top_k_of(v, 5), (std::vector<int32_t>{4, 2, 0, 1, 3}));
}

TEST(SamplingKernels, TopKOnLargeRowMatchesFullSort) {
  std::vector<float> v(5000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((i * 7919) % 1000);  // many ties
  const std::vector<int32_t> top = top_k_of(v, 50);
  ASSERT_EQ(top.size(), 50u);
  EXPECT_EQ(v[top[0]], 999.0f);
  for (size_t i = 1; i < top.size(); ++i) {
    const bool ordered = v[top[i - 1]] > v[top[i]] || (v[top[i - 1]] == v[top[i]] && top[i - 1] < top[i]);
    EXPECT_TRUE(ordered) << "at " << i;
  }
  // Nothing outside the result beats its last element.
  const float last = v[top.back()];
  int32_t above = 0;
  for (float x : v) above += x > last;
  EXPECT_LT(above, 50);
}

TEST(SamplingKernels, ArgmaxTiesGoToLowestId) {
  EXPECT_EQ(argmax(std::vector<float>{1.0f, 3.0f, 2.0f, 3.0f}), 1);
  EXPECT_EQ(argmax(std::vector<float>{-5.0f}), 0);
  EXPECT_EQ(argmax(std::vector<float>{-2.0f, -1.0f, -1.0f}), 1);
}

TEST(SamplingKernels, ArgmaxIgnoresNanAndHandlesDegenerateRows) {
  EXPECT_EQ(argmax(std::vector<float>{kNaN, -1.0f, kNaN}), 1);
  EXPECT_EQ(argmax(std::vector<float>{kNaN, kNaN}), 0);
  EXPECT_EQ(argmax(std::vector<float>{-kInf, kNaN, -kInf}), 0);
  EXPECT_EQ(argmax(std::vector<float>{1.0f, kInf, kInf}), 1);
  EXPECT_EQ(argmax(std::vector<float>{}), -1);
}

TEST(SamplingKernels, PenaltiesExactValues) {
  std::vector<float> logits{2.0f, -2.0f, 1.0f, 0.5f, 3.0f, 0.0f, -1.0f};
  const std::vector<int32_t> counts{0, 0, 2, 1, 0, 0, 3};
  const std::vector<uint8_t> in_prompt{1, 1, 0, 0, 0, 1, 1};
  apply_penalties(logits, counts, in_prompt, /*repetition=*/2.0f, /*frequency=*/0.5f, /*presence=*/0.25f);
  EXPECT_EQ(logits[0], 1.0f);    // prompt, positive: 2 / 2
  EXPECT_EQ(logits[1], -4.0f);   // prompt, negative: -2 * 2
  EXPECT_EQ(logits[2], -0.75f);  // output x2: 1 / 2 - (0.5 * 2 + 0.25)
  EXPECT_EQ(logits[3], -0.5f);   // output x1: 0.5 / 2 - (0.5 * 1 + 0.25)
  EXPECT_EQ(logits[4], 3.0f);    // untouched
  EXPECT_EQ(logits[5], 0.0f);    // zero stays zero under repetition
  EXPECT_EQ(logits[6], -3.75f);  // both: -1 * 2 - (0.5 * 3 + 0.25)
}

TEST(SamplingKernels, PenaltiesNeutralValuesChangeNothing) {
  std::vector<float> logits{2.0f, -2.0f, 1.0f};
  apply_penalties(logits, std::vector<int32_t>{1, 2, 0}, std::vector<uint8_t>{1, 1, 1}, 1.0f, 0.0f, 0.0f);
  EXPECT_EQ(logits, (std::vector<float>{2.0f, -2.0f, 1.0f}));
}

TEST(SamplingKernels, FrequencyAndPresenceOnlyTouchOutputIds) {
  std::vector<float> logits{1.0f, 1.0f, 1.0f};
  // id 0 only in the prompt: frequency/presence are output-only.
  apply_penalties(logits, std::vector<int32_t>{0, 1, 4}, std::vector<uint8_t>{1, 0, 0}, 1.0f, -0.5f, 1.0f);
  EXPECT_EQ(logits[0], 1.0f);
  EXPECT_EQ(logits[1], 0.5f);  // 1 - (-0.5 * 1 + 1)
  EXPECT_EQ(logits[2], 2.0f);  // 1 - (-0.5 * 4 + 1)
}

}  // namespace
}  // namespace hearth
