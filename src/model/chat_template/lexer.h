#pragma once
// Jinja lexer: splits template source into text data and tag tokens, applying whitespace control
// ({%- -%} {{- -}} {#- -#}, '+' to opt out) and the environment settings transformers uses
// (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False). Newlines are normalised to
// "\n" first, as Jinja does.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace hearth::jinja {

enum class TokenType : uint8_t {
  kData,           // literal template text
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kName,
  kString,  // value holds the decoded string
  kInteger,
  kFloat,
  kOperator,  // value holds the operator text: + - * / // % ** ~ == != < <= > >= = . : | , ; ( ) [ ] { }
  kEnd,
};

struct SourcePos {
  int line = 1;
  int column = 1;  // 1-based byte column within the line
};

struct Token {
  TokenType type = TokenType::kEnd;
  std::string value;
  int64_t int_value = 0;
  double float_value = 0.0;
  SourcePos pos;
};

struct LexerOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

// Errors name the line and column ("3:14: unterminated string").
Result<std::vector<Token>> tokenize(std::string_view source, const LexerOptions& options = {});

}  // namespace hearth::jinja
