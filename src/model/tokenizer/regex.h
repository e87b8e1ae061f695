#pragma once
// Pre-tokenizer regexes as Hugging Face tokenizers (Oniguruma) interpret them, run by PCRE2's JIT.
// `\s` / `\S` are rewritten to Unicode White_Space (Oniguruma's meaning, not PCRE2's), and a match
// limit bounds backtracking so no input can make matching super-linear without end.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace hearth::tok {

struct Span {
  uint32_t begin;
  uint32_t end;
};

class Regex {
 public:
  // `pattern` in HF/Oniguruma syntax; `literal` treats it as a plain string (HF's {"String": ...}).
  static Result<std::shared_ptr<const Regex>> compile(std::string_view pattern, bool literal = false);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the non-overlapping matches inside subject[begin, end) to out (absolute offsets).
  // `subject` must be valid UTF-8 (checked by the caller once per input).
  Status find_all(std::string_view subject, uint32_t begin, uint32_t end, std::vector<Span>* out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  Regex() = default;
  std::string pattern_;
  void* code_ = nullptr;      // pcre2_code_8*
  void* mcontext_ = nullptr;  // pcre2_match_context_8*
  bool jit_ = false;          // JIT-compiled: matched with pcre2_jit_match (no redundant checks)
};

// Rewrites an HF regex for PCRE2 (exposed for tests).
Result<std::string> rewrite_hf_pattern(std::string_view pattern);

}  // namespace hearth::tok
