#pragma once
// Sequence: one request's state inside the engine — its tokens (prompt, then output), how many of
// them have K/V in the cache, its block table, and the scheduling facts (tenant, priority, arrival).
// Typed data only: the server turns JSON into a SequenceRequest; the engine never sees JSON.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/block_manager.h"
#include "engine/sampler.h"
#include "engine/token_constraint.h"

namespace hearth {

enum class FinishReason : uint8_t { kNone, kLength, kStop, kCancelled };
std::string_view finish_reason_name(FinishReason r);  // "", "length", "stop", "cancelled"

struct SequenceRequest {
  std::vector<int32_t> prompt;  // >= 1 token
  int64_t max_tokens = 16;      // >= 1
  SamplingParams sampling;
  std::vector<int32_t> stop_ids;  // generation ends after one of these (included in the output)
  std::string tenant;             // fairness key and prefix-cache salt ("" = the default tenant)
  int32_t priority = 0;           // lower is served first (vLLM's convention)
  // Guided decoding (e.g. a JSON grammar): consulted before each sample, on the engine thread.
  std::shared_ptr<TokenConstraint> constraint;
};

struct Sequence {
  uint64_t id = 0;
  SequenceRequest request;
  std::vector<int32_t> tokens;  // prompt, then generated tokens
  int64_t prompt_len = 0;
  int64_t computed = 0;              // tokens whose K/V are in the cache
  int64_t cached_prompt_tokens = 0;  // of the prompt, found in the prefix cache at (last) admission
  std::vector<int32_t> blocks;       // block table
  PrefixChain prefix;                // prefix-cache registration progress
  uint64_t arrival = 0;              // admission order (FCFS)
  int64_t preemptions = 0;
  bool cancelled = false;
  FinishReason finish = FinishReason::kNone;

  Sequence(uint64_t id_, SequenceRequest r)
      : id(id_),
        request(std::move(r)),
        tokens(request.prompt),
        prompt_len(static_cast<int64_t>(tokens.size())) {}
  int64_t output_len() const { return static_cast<int64_t>(tokens.size()) - prompt_len; }
  int64_t uncomputed() const { return static_cast<int64_t>(tokens.size()) - computed; }
  // The most tokens this sequence can ever hold.
  int64_t max_len() const { return prompt_len + request.max_tokens; }
};

}  // namespace hearth
