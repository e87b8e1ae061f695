#include "core/json_guard.h"

namespace hearth {

Status check_json_limits(std::string_view text, const JsonLimits& limits, std::string_view what) {
  if (text.size() > limits.max_bytes) {
    return make_error(ErrorCode::kOutOfRange, "{}: {} bytes exceeds the {} byte limit", what, text.size(),
                      limits.max_bytes);
  }
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // skip the escaped character
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limits.max_depth) {
        return make_error(ErrorCode::kOutOfRange, "{}: JSON nesting deeper than {} levels at byte {}", what,
                          limits.max_depth, i);
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return Status::ok();
}

}  // namespace hearth
