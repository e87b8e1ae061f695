#include "kernels/cpu/moe_routing.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace hearth {

namespace {
// Indices of the k largest values (ties: lower index first).
void top_indices(const float* v, int64_t n, int64_t k, int32_t* out) {
  std::vector<int32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
  std::copy(idx.begin(), idx.begin() + k, out);
}
}  // namespace

void moe_route(const float* router_logits, const MoeSpec& moe, const float* correction_bias,
               bool scale_after_norm, int32_t* experts, float* weights, float* scratch) {
  const int64_t n = moe.n_routed_experts;
  const int64_t k = moe.num_experts_per_tok;
  float* scores = scratch;
  float* choice = scratch + n;
  if (moe.scoring_func == ScoringFunc::kSigmoid) {
    for (int64_t e = 0; e < n; ++e) scores[e] = 1.0f / (1.0f + std::exp(-router_logits[e]));
  } else {
    float mx = router_logits[0];
    for (int64_t e = 1; e < n; ++e) mx = std::max(mx, router_logits[e]);
    float sum = 0.0f;
    for (int64_t e = 0; e < n; ++e) sum += (scores[e] = std::exp(router_logits[e] - mx));
    for (int64_t e = 0; e < n; ++e) scores[e] /= sum;
  }
  for (int64_t e = 0; e < n; ++e) choice[e] = scores[e] + (correction_bias ? correction_bias[e] : 0.0f);

  if (moe.topk_method != TopkMethod::kGreedy && moe.n_group > 1) {
    const int64_t per = n / moe.n_group;
    std::vector<float> group_score(moe.n_group);
    for (int64_t g = 0; g < moe.n_group; ++g) {
      const float* v = choice + g * per;
      if (moe.topk_method == TopkMethod::kNoauxTc) {
        float a = -INFINITY, b = -INFINITY;  // the two largest
        for (int64_t i = 0; i < per; ++i) {
          if (v[i] > a) {
            b = a;
            a = v[i];
          } else if (v[i] > b) {
            b = v[i];
          }
        }
        group_score[g] = per >= 2 ? a + b : a;
      } else {
        group_score[g] = *std::max_element(v, v + per);
      }
    }
    std::vector<int32_t> keep(moe.topk_group);
    top_indices(group_score.data(), moe.n_group, moe.topk_group, keep.data());
    std::vector<uint8_t> kept(moe.n_group, 0);
    for (int32_t g : keep) kept[g] = 1;
    for (int64_t e = 0; e < n; ++e)
      if (!kept[e / per]) choice[e] = 0.0f;
  }
  top_indices(choice, n, k, experts);
  std::sort(experts, experts + k);
  float sum = 0.0f;
  for (int64_t i = 0; i < k; ++i) sum += (weights[i] = scores[experts[i]]);
  const bool norm = moe.norm_topk_prob && k > 1;
  if (norm) {
    const float denom = sum + 1e-20f;
    for (int64_t i = 0; i < k; ++i) weights[i] /= denom;
  }
  if (!norm || scale_after_norm) {
    const float s = static_cast<float>(moe.routed_scaling_factor);
    for (int64_t i = 0; i < k; ++i) weights[i] *= s;
  }
}

}  // namespace hearth
