#include "model/chat_template/lexer.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "core/utf8.h"
#include "model/chat_template/py_string.h"

namespace hearth::jinja {
namespace {

std::string normalize_newlines(std::string_view src, bool keep_trailing_newline) {
  std::string out;
  out.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
    } else {
      out.push_back(src[i]);
    }
  }
  if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Python's str.rstrip(): all Unicode whitespace.
std::string_view rstrip_whitespace(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
    size_t tmp = start;
    if (!pystr::is_space(utf8::decode(s, tmp))) break;
    end = start;
  }
  return s.substr(0, end);
}

// \s* as Python's re sees it.
size_t skip_whitespace(std::string_view s, size_t pos) {
  while (pos < s.size()) {
    size_t next = pos;
    if (!pystr::is_space(utf8::decode(s, next))) break;
    pos = next;
  }
  return pos;
}

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9');
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

class Lexer {
 public:
  Lexer(std::string source, const LexerOptions& options) : src_(std::move(source)), opt_(options) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  Result<std::vector<Token>> run() {
    size_t pos = 0;
    bool line_starting = true;
    while (pos < src_.size()) {
      const size_t tag = find_tag(pos);
      if (tag == std::string::npos) {
        emit_data(std::string_view(src_).substr(pos), pos);
        break;
      }
      const char kind = src_[tag + 1];  // '{', '%' or '#'
      size_t p = tag + 2;
      char sign = 0;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];

      std::string_view text = std::string_view(src_).substr(pos, tag - pos);
      if (sign == '-') {
        text = rstrip_whitespace(text);
      } else if (sign != '+' && opt_.lstrip_blocks && kind != '{') {
        text = lstrip_line(text, line_starting);
      }
      emit_data(text, pos);

      if (kind == '#') {
        HEARTH_ASSIGN_OR_RETURN(pos, end_comment(tag, p));
      } else if (kind == '%' && is_raw_begin(p)) {
        HEARTH_ASSIGN_OR_RETURN(pos, lex_raw(tag, p));
      } else {
        HEARTH_ASSIGN_OR_RETURN(pos, lex_tag(kind, tag, p));
      }
      line_starting = pos > 0 && src_[pos - 1] == '\n';
    }
    Token end;
    end.type = TokenType::kEnd;
    end.pos = pos_of(src_.size());
    tokens_.push_back(std::move(end));
    return std::move(tokens_);
  }

 private:
  SourcePos pos_of(size_t offset) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    const size_t line = static_cast<size_t>(it - line_starts_.begin());
    return SourcePos{static_cast<int>(line), static_cast<int>(offset - line_starts_[line - 1] + 1)};
  }

  Status error_at(size_t offset, std::string_view what) const {
    const SourcePos p = pos_of(offset);
    return make_error(ErrorCode::kInvalidArgument, "{}:{}: {}", p.line, p.column, what);
  }

  size_t find_tag(size_t pos) const {
    while (true) {
      pos = src_.find('{', pos);
      if (pos == std::string::npos || pos + 1 >= src_.size()) return std::string::npos;
      const char c = src_[pos + 1];
      if (c == '{' || c == '%' || c == '#') return pos;
      ++pos;
    }
  }

  // lstrip_blocks: drop spaces and tabs between the start of the line and a block or comment tag.
  static std::string_view lstrip_line(std::string_view text, bool line_starting) {
    const size_t nl = text.rfind('\n');
    const size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
    if (l_pos == 0 && !line_starting) return text;
    for (size_t i = l_pos; i < text.size(); ++i) {
      if (text[i] != ' ' && text[i] != '\t') return text;
    }
    return text.substr(0, l_pos);
  }

  void emit_data(std::string_view text, size_t offset) {
    if (text.empty()) return;
    Token t;
    t.type = TokenType::kData;
    t.value = std::string(text);
    t.pos = pos_of(offset);
    tokens_.push_back(std::move(t));
  }

  void push(TokenType type, std::string value, size_t offset) {
    Token t;
    t.type = type;
    t.value = std::move(value);
    t.pos = pos_of(offset);
    tokens_.push_back(std::move(t));
  }

  // After an end delimiter: '-' strips all following whitespace, '+' keeps it, otherwise
  // trim_blocks removes one newline (blocks and comments only).
  size_t after_end(size_t pos, char sign, bool trim) const {
    if (sign == '-') return skip_whitespace(src_, pos);
    if (sign != '+' && trim && opt_.trim_blocks && pos < src_.size() && src_[pos] == '\n') return pos + 1;
    return pos;
  }

  Result<size_t> end_comment(size_t tag, size_t p) {
    const size_t close = src_.find("#}", p);
    if (close == std::string::npos) return error_at(tag, "unterminated comment: missing '#}'");
    char sign = 0;
    if (close > p && (src_[close - 1] == '-' || src_[close - 1] == '+')) sign = src_[close - 1];
    return after_end(close + 2, sign, true);
  }

  bool is_raw_begin(size_t p) const {
    p = skip_whitespace(src_, p);
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    if (p < src_.size() && is_name_char(src_[p])) return false;
    p = skip_whitespace(src_, p);
    if (p < src_.size() && src_[p] == '-') ++p;
    return src_.compare(p, 2, "%}") == 0;
  }

  Result<size_t> lex_raw(size_t tag, size_t p) {
    // {% raw %} ... {% endraw %}: the body is data, tags inside it are not interpreted.
    p = skip_whitespace(src_, p) + 3;
    p = skip_whitespace(src_, p);
    bool strip_after = false;
    if (src_[p] == '-') {
      strip_after = true;
      ++p;
    }
    p += 2;
    if (strip_after) p = skip_whitespace(src_, p);
    const size_t body = p;
    size_t search = body;
    while (true) {
      const size_t open = src_.find("{%", search);
      if (open == std::string::npos) return error_at(tag, "unterminated raw block: missing '{% endraw %}'");
      size_t q = open + 2;
      char sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) sign = src_[q++];
      q = skip_whitespace(src_, q);
      if (src_.compare(q, 6, "endraw") != 0 || (q + 6 < src_.size() && is_name_char(src_[q + 6]))) {
        search = open + 2;
        continue;
      }
      q = skip_whitespace(src_, q + 6);
      char end_sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) end_sign = src_[q++];
      if (src_.compare(q, 2, "%}") != 0) {
        search = open + 2;
        continue;
      }
      std::string_view text = std::string_view(src_).substr(body, open - body);
      if (sign == '-') {
        text = rstrip_whitespace(text);
      } else if (sign != '+' && opt_.lstrip_blocks) {
        text = lstrip_line(text, body > 0 && src_[body - 1] == '\n');
      }
      emit_data(text, body);
      return after_end(q + 2, end_sign, true);
    }
  }

  Result<size_t> lex_tag(char kind, size_t tag, size_t p) {
    const bool block = kind == '%';
    push(block ? TokenType::kBlockBegin : TokenType::kVariableBegin, block ? "{%" : "{{", tag);
    std::vector<char> balance;
    bool after_dot = false;
    while (true) {
      p = skip_whitespace(src_, p);
      if (p >= src_.size()) {
        return error_at(tag, block ? "unexpected end of template: missing '%}'"
                                   : "unexpected end of template: missing '}}'");
      }
      if (balance.empty()) {
        const std::string_view rest = std::string_view(src_).substr(p);
        if (block) {
          if (rest.starts_with("-%}") || rest.starts_with("+%}")) {
            push(TokenType::kBlockEnd, "%}", p);
            return after_end(p + 3, rest[0], true);
          }
          if (rest.starts_with("%}")) {
            push(TokenType::kBlockEnd, "%}", p);
            return after_end(p + 2, 0, true);
          }
        } else {
          if (rest.starts_with("-}}")) {
            push(TokenType::kVariableEnd, "}}", p);
            return after_end(p + 3, '-', false);
          }
          if (rest.starts_with("}}")) {
            push(TokenType::kVariableEnd, "}}", p);
            return p + 2;
          }
        }
      }
      const char c = src_[p];
      if (is_digit(c)) {
        HEARTH_ASSIGN_OR_RETURN(p, lex_number(p, after_dot));
        after_dot = false;
        continue;
      }
      if (is_name_start(c)) {
        size_t e = p;
        while (e < src_.size() && is_name_char(src_[e])) ++e;
        push(TokenType::kName, src_.substr(p, e - p), p);
        p = e;
        after_dot = false;
        continue;
      }
      if (c == '\'' || c == '"') {
        HEARTH_ASSIGN_OR_RETURN(p, lex_string(p));
        after_dot = false;
        continue;
      }
      HEARTH_ASSIGN_OR_RETURN(p, lex_operator(p, balance));
      after_dot = tokens_.back().value == ".";
    }
  }

  Result<size_t> lex_number(size_t p, bool after_dot) {
    const size_t start = p;
    auto digits = [&](size_t q, auto accept) {
      // (d+_)*d+ : digits with single underscores between them
      size_t e = q;
      while (e < src_.size() &&
             (accept(src_[e]) || (src_[e] == '_' && e > q && e + 1 < src_.size() && accept(src_[e + 1])))) {
        ++e;
      }
      return e;
    };
    auto dec = [](char ch) { return is_digit(ch); };
    if (src_[p] == '0' && p + 1 < src_.size() &&
        std::string_view("xXoObB").find(src_[p + 1]) != std::string_view::npos) {
      const char base_char = static_cast<char>(src_[p + 1] | 0x20);
      const int base = base_char == 'x' ? 16 : (base_char == 'o' ? 8 : 2);
      auto ok = [base](char ch) {
        const char l = static_cast<char>(ch | 0x20);
        if (base == 16) return is_digit(ch) || (l >= 'a' && l <= 'f');
        return ch >= '0' && ch < static_cast<char>('0' + base);
      };
      size_t e = p + 2;
      if (e < src_.size() && src_[e] == '_') ++e;
      const size_t body = e;
      e = digits(e, ok);
      if (e == body) return error_at(start, "invalid integer literal");
      return push_integer(start, e, src_.substr(p + 2, e - p - 2), base);
    }
    size_t e = digits(p, dec);
    bool is_float = false;
    if (!after_dot) {
      size_t f = e;
      if (f + 1 < src_.size() && src_[f] == '.' && is_digit(src_[f + 1])) {
        f = digits(f + 1, dec);
        is_float = true;
      }
      if (f < src_.size() && (src_[f] == 'e' || src_[f] == 'E')) {
        size_t x = f + 1;
        if (x < src_.size() && (src_[x] == '+' || src_[x] == '-')) ++x;
        if (x < src_.size() && is_digit(src_[x])) {
          f = digits(x, dec);
          is_float = true;
        }
      }
      if (is_float) e = f;
    }
    std::string text;
    for (size_t i = start; i < e; ++i) {
      if (src_[i] != '_') text.push_back(src_[i]);
    }
    if (is_float) {
      Token t;
      t.type = TokenType::kFloat;
      t.float_value = std::strtod(text.c_str(), nullptr);
      t.value = text;
      t.pos = pos_of(start);
      tokens_.push_back(std::move(t));
      return e;
    }
    return push_integer(start, e, text, 10);
  }

  Result<size_t> push_integer(size_t start, size_t end, std::string_view digits_text, int base) {
    uint64_t v = 0;
    for (char ch : digits_text) {
      if (ch == '_') continue;
      const char l = static_cast<char>(ch | 0x20);
      const uint64_t d = is_digit(ch) ? static_cast<uint64_t>(ch - '0') : static_cast<uint64_t>(l - 'a' + 10);
      if (v >
          (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - d) / static_cast<uint64_t>(base)) {
        return error_at(start, "integer literal does not fit in 64 bits");
      }
      v = v * static_cast<uint64_t>(base) + d;
    }
    Token t;
    t.type = TokenType::kInteger;
    t.int_value = static_cast<int64_t>(v);
    t.value = src_.substr(start, end - start);
    t.pos = pos_of(start);
    tokens_.push_back(std::move(t));
    return end;
  }

  Result<size_t> lex_string(size_t p) {
    const char quote = src_[p];
    std::string out;
    size_t i = p + 1;
    while (true) {
      if (i >= src_.size()) return error_at(p, "unterminated string literal");
      const char c = src_[i];
      if (c == quote) break;
      if (c != '\\') {
        out.push_back(c);
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) return error_at(p, "unterminated string literal");
      const char e = src_[i + 1];
      i += 2;
      switch (e) {
        case '\n': break;  // line continuation
        case '\\': out.push_back('\\'); break;
        case '\'': out.push_back('\''); break;
        case '"': out.push_back('"'); break;
        case 'a': out.push_back('\a'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'v': out.push_back('\v'); break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t n = e == 'x' ? 2 : (e == 'u' ? 4 : 8);
          uint32_t cp = 0;
          for (size_t k = 0; k < n; ++k) {
            const char h = i + k < src_.size() ? src_[i + k] : '\0';
            const char l = static_cast<char>(h | 0x20);
            if (!is_digit(h) && !(l >= 'a' && l <= 'f'))
              return error_at(i - 2, "truncated \\x, \\u or \\U escape");
            cp = cp * 16 + static_cast<uint32_t>(is_digit(h) ? h - '0' : l - 'a' + 10);
            if (cp > 0x10FFFF) return error_at(i - 2, "escape is not a Unicode code point");
          }
          if (cp >= 0xD800 && cp <= 0xDFFF) return error_at(i - 2, "escape is a lone surrogate");
          utf8::append(out, static_cast<char32_t>(cp));
          i += n;
          break;
        }
        case 'N': return error_at(i - 2, "\\N{...} escapes are not supported");
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7'; ++k) {
              cp = cp * 8 + static_cast<uint32_t>(src_[i++] - '0');
            }
            utf8::append(out, static_cast<char32_t>(cp));
          } else {
            out.push_back('\\');  // unknown escapes stay as written, as in Python
            out.push_back(e);
          }
      }
    }
    Token t;
    t.type = TokenType::kString;
    t.value = std::move(out);
    t.pos = pos_of(p);
    tokens_.push_back(std::move(t));
    return i + 1;
  }

  Result<size_t> lex_operator(size_t p, std::vector<char>& balance) {
    static constexpr std::string_view kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    const std::string_view rest = std::string_view(src_).substr(p);
    for (std::string_view op : kTwo) {
      if (rest.starts_with(op)) {
        push(TokenType::kOperator, std::string(op), p);
        return p + 2;
      }
    }
    const char c = src_[p];
    if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) == std::string_view::npos) {
      const size_t len = std::max<size_t>(1, utf8::valid_sequence_length(src_, p));
      return error_at(p, fmt::format("unexpected character '{}'", src_.substr(p, len)));
    }
    if (c == '(' || c == '[' || c == '{') {
      if (balance.size() >= 256) return error_at(p, "brackets nest too deeply");
      balance.push_back(c == '(' ? ')' : (c == '[' ? ']' : '}'));
    } else if (c == ')' || c == ']' || c == '}') {
      if (balance.empty()) return error_at(p, fmt::format("unexpected '{}'", c));
      if (balance.back() != c)
        return error_at(p, fmt::format("unexpected '{}', expected '{}'", c, balance.back()));
      balance.pop_back();
    }
    push(TokenType::kOperator, std::string(1, c), p);
    return p + 1;
  }

  std::string src_;
  const LexerOptions& opt_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
};

}  // namespace

Result<std::vector<Token>> tokenize(std::string_view source, const LexerOptions& options) {
  if (!utf8::is_valid(source)) {
    return make_error(ErrorCode::kInvalidArgument, "template is not valid UTF-8 (byte {})",
                      utf8::first_invalid(source));
  }
  Lexer lexer(normalize_newlines(source, options.keep_trailing_newline), options);
  return lexer.run();
}

}  // namespace hearth::jinja
