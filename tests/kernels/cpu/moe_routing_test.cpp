// DeepSeek MoE routing on hand-built router outputs whose choices and weights are worked out below.
#include "kernels/cpu/moe_routing.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace hearth {
namespace {

struct Routed {
  std::vector<int32_t> experts;
  std::vector<float> weights;
};

Routed route(const std::vector<float>& logits, const MoeSpec& moe, const std::vector<float>& bias,
             bool scale_after_norm) {
  EXPECT_EQ(static_cast<int64_t>(logits.size()), moe.n_routed_experts);
  Routed r{std::vector<int32_t>(moe.num_experts_per_tok, -1),
           std::vector<float>(moe.num_experts_per_tok, NAN)};
  std::vector<float> scratch(2 * moe.n_routed_experts, NAN);
  moe_route(logits.data(), moe, bias.empty() ? nullptr : bias.data(), scale_after_norm, r.experts.data(),
            r.weights.data(), scratch.data());
  return r;
}

// Router logits whose sigmoid is `scores`.
std::vector<float> logits_for_sigmoid(const std::vector<double>& scores) {
  std::vector<float> l;
  for (double s : scores) l.push_back(static_cast<float>(std::log(s / (1.0 - s))));
  return l;
}

MoeSpec v2_spec(int64_t experts, int64_t k) {
  MoeSpec m;
  m.n_routed_experts = experts;
  m.num_experts_per_tok = k;
  m.scoring_func = ScoringFunc::kSoftmax;
  m.topk_method = TopkMethod::kGreedy;
  return m;
}

MoeSpec v3_spec() {
  MoeSpec m;
  m.n_routed_experts = 8;
  m.n_group = 4;  // groups {0,1} {2,3} {4,5} {6,7}
  m.topk_group = 2;
  m.topk_method = TopkMethod::kNoauxTc;
  m.scoring_func = ScoringFunc::kSigmoid;
  m.norm_topk_prob = true;
  m.routed_scaling_factor = 2.5;
  return m;
}

TEST(MoeRouting, V2SoftmaxGreedyTopTwoScaledAndSortedById) {
  // softmax(1, 0.5, 2.5, -1, 3, 0) = (0.0715282, 0.0433841, 0.3205674, 0.0096803, 0.5285262, 0.0263138).
  // The two best are experts 4 and 2; weights are their probabilities times 16, listed by expert id.
  MoeSpec moe = v2_spec(6, 2);
  moe.routed_scaling_factor = 16.0;
  const Routed r = route({1.0f, 0.5f, 2.5f, -1.0f, 3.0f, 0.0f}, moe, {}, false);
  EXPECT_EQ(r.experts, (std::vector<int32_t>{2, 4}));
  EXPECT_NEAR(r.weights[0], 16.0 * 0.3205673687, 1e-5);
  EXPECT_NEAR(r.weights[1], 16.0 * 0.5285262395, 1e-5);
}

TEST(MoeRouting, V2NormalisedWeightsAreNotScaled) {
  // norm_topk_prob: p2 / (p2 + p4) and p4 / (p2 + p4); V2 does not apply the scaling factor then.
  MoeSpec moe = v2_spec(6, 2);
  moe.norm_topk_prob = true;
  moe.routed_scaling_factor = 16.0;
  const Routed r = route({1.0f, 0.5f, 2.5f, -1.0f, 3.0f, 0.0f}, moe, {}, false);
  EXPECT_EQ(r.experts, (std::vector<int32_t>{2, 4}));
  const double p2 = 0.3205673687, p4 = 0.5285262395;
  EXPECT_NEAR(r.weights[0], p2 / (p2 + p4), 1e-6);
  EXPECT_NEAR(r.weights[1], p4 / (p2 + p4), 1e-6);
}

TEST(MoeRouting, V2GroupLimitedGreedyKeepsGroupsWithTheBestExpert) {
  // Groups {0,1} {2,3} {4,5} {6,7} with best logits 2.0, 0.1, 1.5, 1.8: groups 0 and 3 are kept, so the
  // top 3 are experts 0 (2.0), 6 (1.8) and 1 (-1.0), although 4 (1.5) and 5 (1.4) score higher than 1.
  MoeSpec moe = v2_spec(8, 3);
  moe.topk_method = TopkMethod::kGroupLimitedGreedy;
  moe.n_group = 4;
  moe.topk_group = 2;
  moe.routed_scaling_factor = 16.0;
  const std::vector<float> logits{2.0f, -1.0f, 0.0f, 0.1f, 1.5f, 1.4f, 1.8f, -2.0f};
  const Routed r = route(logits, moe, {}, false);
  EXPECT_EQ(r.experts, (std::vector<int32_t>{0, 1, 6}));
  double z = 0.0;
  for (float l : logits) z += std::exp(static_cast<double>(l));
  EXPECT_NEAR(r.weights[0], 16.0 * std::exp(2.0) / z, 1e-5);
  EXPECT_NEAR(r.weights[1], 16.0 * std::exp(-1.0) / z, 1e-5);
  EXPECT_NEAR(r.weights[2], 16.0 * std::exp(1.8) / z, 1e-5);
}

TEST(MoeRouting, V3ChoosesOnBiasedScoresAndGroupsBySumOfTopTwo) {
  // Sigmoid scores s and correction biases b give the choice scores c = s + b:
  //   s = 0.70 0.20 | 0.30 0.50 | 0.60 0.40 | 0.80 0.90
  //   c = 0.95 0.05 | 0.62 0.58 | 0.90 0.00 | 0.10 0.10
  // Group scores (sum of the two best c): 1.00, 1.20, 0.90, 0.20 -> groups 1 and 0 are kept (ranking
  // groups by their best c instead would keep 0 and 2 and choose expert 4). Top 2 of the kept: experts
  // 0 (0.95) and 2 (0.62); unbiased, experts 7 and 6 would win. Weights: the unbiased scores
  // normalised, then scaled: 0.7 / 1.0 * 2.5 = 1.75 and 0.3 / 1.0 * 2.5 = 0.75.
  const std::vector<double> s{0.70, 0.20, 0.30, 0.50, 0.60, 0.40, 0.80, 0.90};
  const std::vector<float> bias{0.25f, -0.15f, 0.32f, 0.08f, 0.30f, -0.40f, -0.70f, -0.80f};
  MoeSpec moe = v3_spec();
  moe.num_experts_per_tok = 2;
  const Routed r = route(logits_for_sigmoid(s), moe, bias, true);
  EXPECT_EQ(r.experts, (std::vector<int32_t>{0, 2}));
  EXPECT_NEAR(r.weights[0], 1.75, 1e-6);
  EXPECT_NEAR(r.weights[1], 0.75, 1e-6);
}

TEST(MoeRouting, V3MaskedExpertsScoreZeroAndBeatNegativeBiasedScores) {
  // Every biased score is negative (c = s - 1.5):
  //   s = 0.9 0.8 | 0.2 0.1 | 0.7 0.6 | 0.3 0.4
  //   c = -0.6 -0.7 | -1.3 -1.4 | -0.8 -0.9 | -1.2 -1.1   group sums -1.3 -2.7 -1.7 -2.3
  // Groups 0 and 2 are kept; DeepSeek and transformers set the dropped groups' choice scores to 0.0
  // (masked_fill), which beats every kept negative score, so the 4 chosen experts are exactly those of
  // the dropped groups: 2, 3, 6, 7. Weights: s / (0.2 + 0.1 + 0.3 + 0.4) * 2.5.
  const std::vector<double> s{0.9, 0.8, 0.2, 0.1, 0.7, 0.6, 0.3, 0.4};
  const std::vector<float> bias(8, -1.5f);
  MoeSpec moe = v3_spec();
  moe.num_experts_per_tok = 4;
  const Routed r = route(logits_for_sigmoid(s), moe, bias, true);
  EXPECT_EQ(r.experts, (std::vector<int32_t>{2, 3, 6, 7}));
  EXPECT_NEAR(r.weights[0], 0.5, 1e-6);
  EXPECT_NEAR(r.weights[1], 0.25, 1e-6);
  EXPECT_NEAR(r.weights[2], 0.75, 1e-6);
  EXPECT_NEAR(r.weights[3], 1.0, 1e-6);
}

}  // namespace
}  // namespace hearth
