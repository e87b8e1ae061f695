#pragma once
// Cheap structural pre-checks run on untrusted JSON text before it reaches a JSON parser:
// size and nesting depth (deep nesting makes recursive consumers overflow the stack).
#include <cstdint>
#include <string_view>

#include "core/status.h"

namespace hearth {

struct JsonLimits {
  uint64_t max_bytes = 64ull << 20;
  int max_depth = 64;
};

// Ok when `text` is within the limits. Scans once; strings (with escapes) are skipped correctly.
// `what` names the document in the error ("tokenizer.json", "request body").
Status check_json_limits(std::string_view text, const JsonLimits& limits, std::string_view what);

}  // namespace hearth
