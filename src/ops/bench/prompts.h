#pragma once
// Prompts for hearth bench: synthetic ones of a chosen length (random common words, so requests share
// no prefix beyond chance; with a tokenizer, exactly `input_len` tokens), or a JSONL dataset
// ({"prompt": ...} or {"messages": [...]} or ShareGPT's {"conversations": [...]}, one per line, with an
// optional "output_len").
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/tokenizer/tokenizer.h"
#include "ops/bench/load_generator.h"

namespace hearth::ops {

struct SyntheticSpec {
  int64_t input_len = 128;
  int64_t output_len = 128;
  double input_range = 0;  // lengths uniform in [len x (1 - r), len x (1 + r)], as vLLM's random-range-ratio
  double output_range = 0;
  int64_t count = 1;  // distinct prompts
  uint64_t seed = 0;
  const tok::Tokenizer* tokenizer = nullptr;  // exact token counts when given
  bool token_ids = false;                     // completions: send the ids themselves (needs the tokenizer)
};

Result<std::vector<BenchPrompt>> synthetic_prompts(const SyntheticSpec& spec);

// Reads up to `max_prompts` lines. `default_output_len` applies where a line gives none.
Result<std::vector<BenchPrompt>> load_dataset(const std::string& path, int64_t default_output_len,
                                              size_t max_prompts, bool chat);

}  // namespace hearth::ops
