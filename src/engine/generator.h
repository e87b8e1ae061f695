#pragma once
// generate(): runs several requests to completion on a ModelRunner — the batch loop `hearth generate`,
// the parity tests and the CPU benchmark use. Every step batches all unfinished sequences: those still
// in their prompt contribute a prefill chunk (up to prefill_chunk tokens), the others one decode
// token, so prefill and decode mix as they will under the continuous-batching scheduler.
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
  std::vector<int32_t> ids;         // generated tokens
  std::vector<SampledToken> steps;  // one per generated token
  std::string finish_reason;        // "length" or "stop"
};

struct GenerateOptions {
  int64_t prefill_chunk = 512;  // most prompt tokens one sequence contributes to a step
  // Called for every sampled token as soon as it exists (streaming output); `request` indexes requests.
  std::function<void(size_t request, const SampledToken& token)> on_token;
};

struct GenerateStats {
  int64_t prefill_tokens = 0;
  int64_t decode_tokens = 0;
  double prefill_seconds = 0;  // steps that contained prompt tokens
  double decode_seconds = 0;   // steps of decode tokens only
  int64_t steps = 0;
};

Result<std::vector<GenerateResult>> generate(ModelRunner& runner, std::span<const GenerateRequest> requests,
                                             const GenerateOptions& options = {},
                                             GenerateStats* stats = nullptr);

}  // namespace hearth
