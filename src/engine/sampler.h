#pragma once
// Sampler: turns one row of logits into the next token of one sequence, under that sequence's
// SamplingParams, and reports logprobs. Pure CPU policy over the logits row; the numeric pieces it
// uses (log-softmax, top-k selection, penalties) live in kernels/cpu/sampling.h.
//
// Order (vLLM's): repetition/frequency/presence penalties -> temperature -> min-p -> top-k -> top-p ->
// draw. temperature == 0 is greedy (argmax after penalties; ties go to the lowest id).
// Logprobs are those of the model's raw distribution (log-softmax of the unmodified logits), like
// vLLM's default "raw_logprobs" and the HF reference fixtures.
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "core/status.h"
#include "engine/device_model.h"
#include "engine/forward_batch.h"

namespace hearth {

struct SamplingParams {
  float temperature = 1.0f;         // 0 = greedy; [0, 100]
  int32_t top_k = 0;                // 0 = off; [0, vocab]
  float top_p = 1.0f;               // (0, 1]
  float min_p = 0.0f;               // [0, 1]
  float repetition_penalty = 1.0f;  // (0, 10]; prompt + output tokens (HF/vLLM semantics)
  float frequency_penalty = 0.0f;   // [-2, 2]; output tokens only (OpenAI semantics)
  float presence_penalty = 0.0f;    // [-2, 2]; output tokens only
  std::optional<uint64_t> seed;     // unset: seeded from std::random_device
  int32_t top_logprobs = 0;         // [0, 20]: how many alternatives to report per step
  // OpenAI's logit_bias: (token id, bias in [-100, 100]) added to the logits before sampling; ids past the
  // vocabulary are the caller's to refuse (ignored here). Logprobs stay those of the raw distribution.
  std::vector<std::pair<int32_t, float>> logit_bias;
  static constexpr size_t kMaxLogitBias = 1024;

  // Checks every field against the bounds above; the message names the field.
  Status validate() const;
  bool greedy() const { return temperature == 0.0f; }
};

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0.0f;
};

struct SampledToken {
  int32_t id = 0;
  float logprob = 0.0f;           // raw log-softmax of the chosen id
  std::vector<TokenLogprob> top;  // top_logprobs entries, highest first (ties: lower id first)
};

// One per sequence: owns the RNG (so results do not depend on what else is in the batch) and the
// output-token counts the penalties need.
class Sampler {
 public:
  // `params` must be valid (validate()); `vocab_size` > 0.
  Sampler(const SamplingParams& params, int64_t vocab_size);

  // Records tokens of the prompt (for the repetition penalty). Call once before the first sample().
  void add_prompt(std::span<const int32_t> prompt_ids);

  // Samples from `logits` (vocab_size floats, not modified) and records the chosen token as output.
  // With `allowed` (vocab_size entries, guided decoding), only ids whose entry is non-zero can be chosen;
  // logprobs stay those of the model's raw distribution.
  SampledToken sample(std::span<const float> logits, std::span<const uint8_t> allowed = {});

  const SamplingParams& params() const { return params_; }

  // True when a device backend can sample this sequence itself (DeviceSampling): no penalties, which need
  // the output counts kept here, and no logit bias. (Guided decoding, the other host-only case, is the
  // caller's to check.)
  bool device_samplable() const {
    return params_.repetition_penalty == 1.0f && params_.frequency_penalty == 0.0f &&
           params_.presence_penalty == 0.0f && params_.logit_bias.empty();
  }
  // This step's parameters for the device, with a random key drawn from this sequence's generator (so
  // seeded requests reproduce whatever else is in the batch).
  DeviceSampling device_sampling();
  // Records a token chosen on the device as sample() would have.
  SampledToken accept(const DeviceToken& token);

 private:
  // Temperature, min_p, top_k, top_p and the random draw over penalised logits `work` whose
  // largest value is `max` (not -inf).
  int32_t draw(std::span<const float> work, float max);
  // top_p: shrink cand_ to the nucleus, return its mass.
  double keep_sorted_prefix(double cutoff);
  double keep_nucleus(double cutoff);

  SamplingParams params_;
  int64_t vocab_size_;
  std::mt19937_64 rng_;
  std::vector<int32_t> output_counts_;  // per id: times generated
  std::vector<uint8_t> in_prompt_;      // per id: appears in the prompt
  std::vector<float> work_;             // scratch: penalised logits (NaN -> -inf)
  std::vector<int32_t> order_;          // scratch: candidate ids
  std::vector<float> logprobs_;         // scratch: raw log-softmax of the row
  struct Candidate {
    float logit;   // penalised, before temperature
    float weight;  // exp((logit - max) / T): probability relative to the most likely token
    int32_t id;
  };
  std::vector<Candidate> cand_;      // scratch: tokens still in the running
  std::vector<double> bucket_mass_;  // scratch: keep_nucleus's histogram
};

}  // namespace hearth
