#pragma once
// DeepSeek MoE routing for one token: router logits -> (expert ids, weights).
//  V2: softmax scores; greedy top-k (or group-limited: groups ranked by their best score); weights
//      are the scores, normalised when norm_topk_prob, else scaled by routed_scaling_factor.
//  V3: sigmoid scores; choice on scores + e_score_correction_bias, groups ranked by the sum of their
//      two best biased scores (noaux_tc), experts of dropped groups masked to 0 (as DeepSeek and
//      transformers do); weights are the unbiased scores, normalised (sum + 1e-20), then scaled.
#include <cstdint>

#include "model/model_spec.h"

namespace hearth {

// experts/weights: moe.num_experts_per_tok entries, sorted by expert id. scratch: 2 * n_routed_experts.
// `correction_bias` may be null. `scale_after_norm`: V3 scales normalised weights, V2 does not.
void moe_route(const float* router_logits, const MoeSpec& moe, const float* correction_bias,
               bool scale_after_norm, int32_t* experts, float* weights, float* scratch);

}  // namespace hearth
