#include "model/chat_template/parser.h"

#include <algorithm>
#include <initializer_list>

#include "model/chat_template/builtins.h"
#include "model/chat_template/parser_impl.h"

namespace hearth::jinja {
namespace detail {

// Parses template content until a block whose first name is in end_names (left as cur()).
Result<Body> Parser::subparse(std::initializer_list<std::string_view> end_names) {
  Body body;
  while (true) {
    const Token& t = cur();
    switch (t.type) {
      case TokenType::kEnd:
        if (end_names.size() > 0) {
          return fail(t, fmt::format("unexpected end of template: expected '{}'", *end_names.begin()));
        }
        return body;
      case TokenType::kData: {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kText;
        s->pos = t.pos;
        s->text = t.value;
        advance();
        body.push_back(std::move(s));
        break;
      }
      case TokenType::kVariableBegin: {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kOutput;
        s->pos = t.pos;
        advance();
        HEARTH_ASSIGN_OR_RETURN(s->expr, parse_tuple(true, {}, false));
        HEARTH_RETURN_IF_ERROR(expect(TokenType::kVariableEnd));
        body.push_back(std::move(s));
        break;
      }
      case TokenType::kBlockBegin: {
        advance();
        if (cur().type == TokenType::kName &&
            std::find(end_names.begin(), end_names.end(), cur().value) != end_names.end()) {
          return body;
        }
        HEARTH_ASSIGN_OR_RETURN(StmtPtr s, parse_statement());
        body.push_back(std::move(s));
        break;
      }
      default: return fail(t, fmt::format("unexpected {}", describe(t)));
    }
  }
}

// After a statement head: '%}', then the body up to one of end_names; consumes that name.
Result<Body> Parser::parse_block(std::initializer_list<std::string_view> end_names, std::string* found) {
  HEARTH_RETURN_IF_ERROR(expect(TokenType::kBlockEnd));
  HEARTH_ASSIGN_OR_RETURN(Body body, subparse(end_names));
  if (found != nullptr) *found = cur().value;
  advance();
  return body;
}

Result<StmtPtr> Parser::parse_statement() {
  DepthGuard guard(depth_);
  HEARTH_RETURN_IF_ERROR(check_depth());
  const Token& t = cur();
  if (t.type != TokenType::kName) return unexpected("a statement name");
  auto s = std::make_unique<Stmt>();
  s->pos = t.pos;
  const std::string tag = t.value;
  advance();
  Status st;
  if (tag == "for")
    st = parse_for(*s);
  else if (tag == "if")
    st = parse_if(*s);
  else if (tag == "set")
    st = parse_set(*s);
  else if (tag == "macro")
    st = parse_macro(*s);
  else if (tag == "call")
    st = parse_call_block(*s);
  else if (tag == "filter")
    st = parse_filter_block(*s);
  else if (tag == "break" || tag == "continue")
    st = parse_loop_control(*s, tag == "break");
  else if (tag == "generation")
    st = parse_generation(*s);
  else if (tag.starts_with("end") || tag == "else" || tag == "elif")
    return fail(t, fmt::format("unexpected '{}': no open block expects it", tag));
  else
    return fail(t, fmt::format("unknown tag '{}' (supported: for, if, set, macro, call, filter, break, "
                               "continue, generation, raw)",
                               tag));
  if (!st.is_ok()) return st;
  return s;
}

Status Parser::parse_for(Stmt& s) {
  s.kind = StmtKind::kFor;
  HEARTH_RETURN_IF_ERROR(parse_targets(s, /*stop_at_in=*/true));
  if (!name("in")) return unexpected("'in'");
  advance();
  HEARTH_ASSIGN_OR_RETURN(s.expr, parse_tuple(false, {"recursive"}, false));
  if (name("if")) {
    advance();
    HEARTH_ASSIGN_OR_RETURN(s.filter, parse_expression(true));
  }
  if (name("recursive")) return fail(cur(), "recursive for loops are not supported");
  ++loop_depth_;
  std::string found;
  auto body = parse_block({"endfor", "else"}, &found);
  --loop_depth_;
  if (!body.is_ok()) return body.status();
  s.body = std::move(body).value();
  if (found == "else") {
    HEARTH_ASSIGN_OR_RETURN(s.else_body, parse_block({"endfor"}, nullptr));
  }
  return expect(TokenType::kBlockEnd);
}

Status Parser::parse_if(Stmt& s) {
  s.kind = StmtKind::kIf;
  while (true) {
    HEARTH_ASSIGN_OR_RETURN(ExprPtr cond, parse_tuple(false, {}, false));
    std::string found;
    HEARTH_ASSIGN_OR_RETURN(Body body, parse_block({"elif", "else", "endif"}, &found));
    s.branches.emplace_back(std::move(cond), std::move(body));
    if (found == "elif") continue;
    if (found == "else") {
      HEARTH_ASSIGN_OR_RETURN(s.else_body, parse_block({"endif"}, nullptr));
    }
    return expect(TokenType::kBlockEnd);
  }
}

// Assignment targets: a name, or names separated by commas (optionally in parentheses).
Status Parser::parse_targets(Stmt& s, bool stop_at_in) {
  bool parens = false;
  if (op("(")) {
    parens = true;
    s.unpack = true;
    advance();
  }
  while (true) {
    HEARTH_ASSIGN_OR_RETURN(std::string n, expect_name());
    if (n == "true" || n == "false" || n == "none" || n == "True" || n == "False" || n == "None") {
      return fail(cur(), fmt::format("cannot assign to '{}'", n));
    }
    s.targets.push_back(std::move(n));
    if (!op(",")) break;
    s.unpack = true;
    advance();
    if ((parens && op(")")) || (stop_at_in && name("in")) || op("=") || cur().type == TokenType::kBlockEnd)
      break;
  }
  if (parens) HEARTH_RETURN_IF_ERROR(expect_op(")"));
  return Status::ok();
}

Status Parser::parse_set(Stmt& s) {
  if (cur().type == TokenType::kName && is_op(look(1), ".") && look(2).type == TokenType::kName) {
    s.ns_name = cur().value;
    s.attr = look(2).value;
    advance();
    advance();
    advance();
  } else {
    HEARTH_RETURN_IF_ERROR(parse_targets(s, false));
  }
  if (op("=")) {
    advance();
    s.kind = StmtKind::kSet;
    HEARTH_ASSIGN_OR_RETURN(s.expr, parse_tuple(true, {}, false));
    return expect(TokenType::kBlockEnd);
  }
  s.kind = StmtKind::kSetBlock;
  if (s.unpack) return fail(cur(), "a block set assigns to a single name");
  if (op("|")) {
    HEARTH_ASSIGN_OR_RETURN(s.filter, parse_filter(nullptr, false));
  }
  HEARTH_ASSIGN_OR_RETURN(s.body, parse_block({"endset"}, nullptr));
  return expect(TokenType::kBlockEnd);
}

Status Parser::parse_signature(std::vector<Param>& params) {
  HEARTH_RETURN_IF_ERROR(expect_op("("));
  while (!op(")")) {
    if (!params.empty()) HEARTH_RETURN_IF_ERROR(expect_op(","));
    if (op(")")) break;
    Param p;
    HEARTH_ASSIGN_OR_RETURN(p.name, expect_name());
    if (op("=")) {
      advance();
      HEARTH_ASSIGN_OR_RETURN(p.default_value, parse_expression(true));
    } else if (!params.empty() && params.back().default_value) {
      return fail(cur(), "non-default argument follows default argument");
    }
    params.push_back(std::move(p));
  }
  return expect_op(")");
}

Status Parser::parse_macro(Stmt& s) {
  s.kind = StmtKind::kMacro;
  HEARTH_ASSIGN_OR_RETURN(s.name, expect_name());
  HEARTH_RETURN_IF_ERROR(parse_signature(s.params));
  const int saved = loop_depth_;
  loop_depth_ = 0;  // a macro body is not inside the caller's loop
  auto body = parse_block({"endmacro"}, nullptr);
  loop_depth_ = saved;
  if (!body.is_ok()) return body.status();
  s.body = std::move(body).value();
  return expect(TokenType::kBlockEnd);
}

Status Parser::parse_call_block(Stmt& s) {
  s.kind = StmtKind::kCallBlock;
  if (op("(")) HEARTH_RETURN_IF_ERROR(parse_signature(s.params));
  const Token& at = cur();
  HEARTH_ASSIGN_OR_RETURN(s.expr, parse_expression(true));
  if (s.expr->kind != ExprKind::kCall) return fail(at, "{% call %} expects a macro call");
  const int saved = loop_depth_;
  loop_depth_ = 0;
  auto body = parse_block({"endcall"}, nullptr);
  loop_depth_ = saved;
  if (!body.is_ok()) return body.status();
  s.body = std::move(body).value();
  return expect(TokenType::kBlockEnd);
}

Status Parser::parse_filter_block(Stmt& s) {
  s.kind = StmtKind::kFilterBlock;
  HEARTH_ASSIGN_OR_RETURN(s.filter, parse_filter(nullptr, true));
  HEARTH_ASSIGN_OR_RETURN(s.body, parse_block({"endfilter"}, nullptr));
  return expect(TokenType::kBlockEnd);
}

Status Parser::parse_loop_control(Stmt& s, bool is_break) {
  s.kind = is_break ? StmtKind::kBreak : StmtKind::kContinue;
  if (loop_depth_ == 0) {
    return fail(toks_[i_ - 1], fmt::format("'{}' outside of a for loop", is_break ? "break" : "continue"));
  }
  return expect(TokenType::kBlockEnd);
}

Status Parser::parse_generation(Stmt& s) {
  s.kind = StmtKind::kScope;
  HEARTH_ASSIGN_OR_RETURN(s.body, parse_block({"endgeneration"}, nullptr));
  return expect(TokenType::kBlockEnd);
}

}  // namespace detail

Result<std::shared_ptr<const Program>> parse_template(std::string_view source, const ParseOptions& options) {
  HEARTH_ASSIGN_OR_RETURN(std::vector<Token> tokens, tokenize(source, options.lexer));
  detail::Parser parser(std::move(tokens), options);
  return parser.run();
}

}  // namespace hearth::jinja
