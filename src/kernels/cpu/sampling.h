#pragma once
// Numeric building blocks for token sampling (pure compute, no policy; the policy is
// engine/sampler.h). All of them treat NaN as -inf, so one bad logit cannot poison a whole row.
#include <cstdint>
#include <span>
#include <vector>

namespace hearth {

// out[i] = logits[i] - max - log(sum_j exp(logits[j] - max)); the sum is accumulated in double.
// `out` has logits.size() elements (may alias `logits`). Degenerate rows: when every entry is
// -inf/NaN all outputs are -inf; when some entries are +inf they share the mass equally
// (-log(count)) and every other entry is -inf.
void log_softmax(std::span<const float> logits, std::span<float> out);

// Ids of the min(k, n) largest values, highest first; ties go to the lower id first. k <= 0 gives
// an empty result. O(n log k).
void top_k_indices(std::span<const float> values, int32_t k, std::vector<int32_t>& out);

// Id of the largest value; ties go to the lowest id. An all -inf/NaN row gives 0, an empty one -1.
int32_t argmax(std::span<const float> values);

// In place, all spans the same length:
//   repetition (ids in the prompt or the output): logit > 0 ? logit / repetition : logit * repetition
//   then, over output ids (count > 0): logit -= frequency * count + presence
// (HF/vLLM repetition semantics, OpenAI frequency/presence semantics.)
void apply_penalties(std::span<float> logits, std::span<const int32_t> output_counts,
                     std::span<const uint8_t> in_prompt, float repetition, float frequency, float presence);

}  // namespace hearth
