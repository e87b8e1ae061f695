#pragma once
// generate(): runs several requests to completion on a ModelRunner through the continuous-batching
// Scheduler — the loop `hearth generate`, the tests and the CPU benchmark use. Each step the scheduler
// picks decode tokens and prefill chunks within a token budget (so prefill and decode mix), admits
// waiting requests as KV blocks allow (sharing cached prompt prefixes) and preempts when KV runs out;
// the runner computes; each sequence's own Sampler picks its next token.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/model_runner.h"
#include "engine/sampler.h"

namespace hearth {

struct GenerateRequest {
  std::vector<int32_t> prompt;  // >= 1 token
  int64_t max_tokens = 16;      // >= 0
  SamplingParams sampling;
  std::vector<int32_t> stop_ids;  // generation ends after one of these (it is included in ids)
};

struct GenerateResult {
  std::vector<int32_t> ids;          // generated tokens
  std::vector<SampledToken> steps;   // one per generated token
  std::string finish_reason;         // "length" or "stop"
  int64_t cached_prompt_tokens = 0;  // prompt tokens found in the prefix cache
  int64_t preemptions = 0;           // times the sequence was preempted and recomputed
};

struct GenerateOptions {
  int64_t max_batched_tokens = 512;  // tokens computed per step (the chunked-prefill budget)
  int64_t max_num_seqs = 256;        // sequences in one step
  // On a GPU runner, sample rows without penalties there; false copies every logits row to the host
  // Sampler (benchmarks compare the two).
  bool device_sampling = true;
  // Called for every sampled token as soon as it exists (streaming output); `request` indexes requests.
  std::function<void(size_t request, const SampledToken& token)> on_token;
};

struct GenerateStats {
  int64_t prefill_tokens = 0;
  int64_t decode_tokens = 0;
  double prefill_seconds = 0;  // steps that contained prompt tokens
  double decode_seconds = 0;   // steps of decode tokens only
  int64_t steps = 0;
  int64_t preemptions = 0;
};

Result<std::vector<GenerateResult>> generate(ModelRunner& runner, std::span<const GenerateRequest> requests,
                                             const GenerateOptions& options = {},
                                             GenerateStats* stats = nullptr);

}  // namespace hearth
