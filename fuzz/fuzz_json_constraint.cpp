// Fuzzes the json_object recognizer against nlohmann::json: whatever JsonPrefix calls a complete
// object (of valid UTF-8) must parse as one; an object nlohmann accepts (within the recognizer's depth and
// whitespace bounds) must be accepted byte by byte; and feeding never reads past the input.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/utf8.h"
#include "server/json_constraint.h"

namespace {

// The recognizer's own bounds, measured on text nlohmann accepted.
bool within_bounds(std::string_view s) {
  int depth = 0, max_depth = 0, ws_run = 0;
  bool in_string = false, escape = false;
  for (char c : s) {
    if (in_string) {
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      if (++ws_run > hearth::server::JsonPrefix::kMaxWhitespaceRun) return false;
      continue;
    }
    ws_run = 0;
    if (c == '"') in_string = true;
    if (c == '{' || c == '[') max_depth = std::max(max_depth, ++depth);
    if (c == '}' || c == ']') --depth;
  }
  return max_depth <= hearth::server::JsonPrefix::kMaxDepth;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view s(reinterpret_cast<const char*>(data), size);
  hearth::server::JsonPrefix p;
  const bool ok = p.feed(s);
  // nlohmann stops at a number a double cannot hold (1.5e2111...: out_of_range 406), which RFC 8259's
  // grammar allows; what follows it is then unjudged, so such inputs are not compared.
  bool valid = true;
  try {
    (void)nlohmann::json::parse(s);
  } catch (const nlohmann::json::parse_error&) {
    valid = false;
  } catch (const nlohmann::json::out_of_range&) {
    return 0;
  }
  // The recognizer passes bytes >= 0x80 through (a token may end inside a character; the detokenizer
  // repairs what reaches the client), so the comparison holds for valid UTF-8 only.
  if (ok && p.complete() && hearth::utf8::is_valid(s) && !valid) __builtin_trap();
  // nlohmann's lexer reads a NUL byte as the end of input; the recognizer (rightly) refuses it.
  if (valid && !s.empty() && s.front() == '{' && within_bounds(s) && s.find('\0') == std::string_view::npos) {
    // nlohmann allows trailing whitespace; the recognizer stops at the closing brace.
    size_t end = s.size();
    while (end > 0 && (s[end - 1] == ' ' || s[end - 1] == '\n' || s[end - 1] == '\r' || s[end - 1] == '\t'))
      --end;
    hearth::server::JsonPrefix q;
    if (!q.feed(s.substr(0, end)) || !q.complete()) __builtin_trap();
  }
  return 0;
}
