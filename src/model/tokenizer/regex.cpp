#define PCRE2_CODE_UNIT_WIDTH 8
#include "model/tokenizer/regex.h"

#include <pcre2.h>

namespace hearth::tok {
namespace {

// Unicode White_Space, as Oniguruma's \s (and Rust's char::is_whitespace) define it.
constexpr std::string_view kWhiteSpaceClassBody =
    "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
    "\\x{205F}\\x{3000}";

constexpr uint32_t kMatchLimit = 10'000'000;  // backtracking steps per match attempt

std::string pcre2_error(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

Result<std::string> rewrite_hf_pattern(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  size_t class_start = 0;  // index in p just after '[' or '[^'
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\') {
      if (i + 1 >= p.size()) return make_error(ErrorCode::kInvalidArgument, "regex ends with a backslash");
      char n = p[++i];
      if (n == 's') {
        if (in_class) {
          out += kWhiteSpaceClassBody;
        } else {
          out += '[';
          out += kWhiteSpaceClassBody;
          out += ']';
        }
      } else if (n == 'S') {
        if (in_class) {
          return make_error(ErrorCode::kUnsupported, "regex uses \\S inside a character class at offset {}",
                            i);
        }
        out += "[^";
        out += kWhiteSpaceClassBody;
        out += ']';
      } else {
        out += '\\';
        out += n;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < p.size() && p[i + 1] == '^') {
        out += '^';
        ++i;
      }
      class_start = i + 1;
      continue;
    }
    if (in_class && c == ']' && i != class_start) {
      in_class = false;
    }
    out += c;
  }
  if (in_class) return make_error(ErrorCode::kInvalidArgument, "regex has an unterminated character class");
  return out;
}

Result<std::shared_ptr<const Regex>> Regex::compile(std::string_view pattern, bool literal) {
  std::string rewritten;
  uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK;
  if (literal) {
    rewritten = std::string(pattern);
    options |= PCRE2_LITERAL;
  } else {
    HEARTH_ASSIGN_OR_RETURN(rewritten, rewrite_hf_pattern(pattern));
  }
  int err = 0;
  PCRE2_SIZE err_off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(), options,
                                   &err, &err_off, nullptr);
  if (code == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "cannot compile regex '{}' at offset {}: {}", pattern,
                      err_off, pcre2_error(err));
  }
  // JIT is an optimisation: when unavailable, the interpreter gives identical results.
  const bool jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  auto r = std::shared_ptr<Regex>(new Regex());
  r->jit_ = jit;
  r->pattern_ = std::string(pattern);
  r->code_ = code;
  auto* mc = pcre2_match_context_create(nullptr);
  pcre2_set_match_limit(mc, kMatchLimit);
  r->mcontext_ = mc;
  return std::shared_ptr<const Regex>(std::move(r));
}

Regex::~Regex() {
  if (mcontext_ != nullptr) pcre2_match_context_free(static_cast<pcre2_match_context*>(mcontext_));
  if (code_ != nullptr) pcre2_code_free(static_cast<pcre2_code*>(code_));
}

namespace {
// One match-data block per thread, grown to the largest pattern seen (ovector size 1 suffices: we
// only need the whole-match bounds).
struct MatchData {
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  ~MatchData() { pcre2_match_data_free(md); }
};
}  // namespace

Status Regex::find_all(std::string_view subject, uint32_t begin, uint32_t end, std::vector<Span>* out) const {
  thread_local MatchData tls;  // scratch buffer only: carries no state between calls
  auto* code = static_cast<pcre2_code*>(code_);
  auto* mc = static_cast<pcre2_match_context*>(mcontext_);
  // Each piece is matched as a subject of its own (as HF does), so anchors and lookarounds stop at
  // the piece's edges.
  const auto* subj = reinterpret_cast<PCRE2_SPTR>(subject.data() + begin);
  const PCRE2_SIZE len = end - begin;
  PCRE2_SIZE pos = 0;
  while (pos < len) {
    int rc = jit_ ? pcre2_jit_match(code, subj, len, pos, 0, tls.md, mc)
                  : pcre2_match(code, subj, len, pos, PCRE2_NO_UTF_CHECK, tls.md, mc);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      return make_error(ErrorCode::kResourceExhausted, "regex '{}' failed at byte {}: {}", pattern_,
                        begin + pos, pcre2_error(rc));
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(tls.md);
    PCRE2_SIZE s = ov[0], e = ov[1];
    if (e == s) {
      // Empty match: skip one code point (HF ignores empty matches).
      pos = s + 1;
      while (pos < len && (static_cast<uint8_t>(subject[begin + pos]) & 0xC0) == 0x80) ++pos;
      continue;
    }
    out->push_back({static_cast<uint32_t>(begin + s), static_cast<uint32_t>(begin + e)});
    pos = e;
  }
  return Status::ok();
}

}  // namespace hearth::tok
