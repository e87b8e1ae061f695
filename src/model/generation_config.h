#pragma once
// generation_config.json: the sampling defaults a model's authors recommend (temperature, top_p,
// top_k, greedy when do_sample is false) and its end-of-sequence ids. `hearth generate` and
// `hearth serve` apply them when a request or flag does not say otherwise, as transformers and vLLM do.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace hearth {

struct GenerationDefaults {
  std::optional<float> temperature, top_p;
  std::optional<int32_t> top_k;
  std::vector<int32_t> eos;  // eos_token_id (an int or a list)
  bool greedy = false;       // do_sample: false
};

// Parses the file's text; fields of the wrong type are ignored (the file is advisory), but text that
// is not a JSON object, or too large or deep, is an error naming `origin`.
Result<GenerationDefaults> parse_generation_config(std::string_view json_text, std::string_view origin);

// DIR/generation_config.json; absent (or `path` a file, as a GGUF) gives empty defaults.
Result<GenerationDefaults> load_generation_config(const std::string& path);

}  // namespace hearth
