#pragma once
// Jinja parser: tokens -> Program. Follows Jinja's grammar (precedence: if-else < or < and < not <
// comparisons/in < + - < ~ < * / // % < ** < unary - + < postfix . [] () < filters | and tests is).
// Recursion and tree depth are bounded, so hostile templates fail cleanly instead of exhausting the
// stack.
#include <memory>
#include <string_view>

#include "core/status.h"
#include "model/chat_template/ast.h"

namespace hearth::jinja {

struct ParseOptions {
  int max_nesting_depth = 128;  // nested blocks, brackets and expression tree depth
  LexerOptions lexer;
};

// Errors read "line:column: what failed".
Result<std::shared_ptr<const Program>> parse_template(std::string_view source,
                                                      const ParseOptions& options = {});

}  // namespace hearth::jinja
