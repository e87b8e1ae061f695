// Expression grammar of the parser (statements: parser.cpp).
#include "model/chat_template/builtins.h"
#include "model/chat_template/parser_impl.h"

namespace hearth::jinja::detail {

bool Parser::is_tuple_end(std::initializer_list<std::string_view> extra_end) const {
  const Token& t = cur();
  if (t.type == TokenType::kVariableEnd || t.type == TokenType::kBlockEnd || is_op(t, ")")) return true;
  for (std::string_view e : extra_end) {
    if (is_name(t, e)) return true;
  }
  return false;
}

Result<ExprPtr> Parser::parse_expression(bool with_condexpr) {
  DepthGuard guard(depth_);
  HEARTH_RETURN_IF_ERROR(check_depth());
  if (!with_condexpr) return parse_or();
  HEARTH_ASSIGN_OR_RETURN(ExprPtr expr, parse_or());
  while (name("if")) {
    const SourcePos pos = cur().pos;
    advance();
    HEARTH_ASSIGN_OR_RETURN(ExprPtr test, parse_or());
    ExprPtr otherwise;
    if (name("else")) {
      advance();
      HEARTH_ASSIGN_OR_RETURN(otherwise, parse_expression(true));
    }
    ExprPtr c = node(ExprKind::kCondExpr, pos);
    c->items.push_back(std::move(test));
    c->items.push_back(std::move(expr));
    c->items.push_back(std::move(otherwise));
    HEARTH_ASSIGN_OR_RETURN(expr, finish(std::move(c)));
  }
  return expr;
}

Result<ExprPtr> Parser::binary(Op o, ExprPtr left, ExprPtr right, const SourcePos& pos) {
  ExprPtr b = node(ExprKind::kBinary, pos);
  b->op = o;
  b->items.push_back(std::move(left));
  b->items.push_back(std::move(right));
  return finish(std::move(b));
}

Result<ExprPtr> Parser::parse_or() {
  HEARTH_ASSIGN_OR_RETURN(ExprPtr left, parse_and());
  while (name("or")) {
    const SourcePos pos = cur().pos;
    advance();
    HEARTH_ASSIGN_OR_RETURN(ExprPtr right, parse_and());
    HEARTH_ASSIGN_OR_RETURN(left, binary(Op::kOr, std::move(left), std::move(right), pos));
  }
  return left;
}

Result<ExprPtr> Parser::parse_and() {
  HEARTH_ASSIGN_OR_RETURN(ExprPtr left, parse_not());
  while (name("and")) {
    const SourcePos pos = cur().pos;
    advance();
    HEARTH_ASSIGN_OR_RETURN(ExprPtr right, parse_not());
    HEARTH_ASSIGN_OR_RETURN(left, binary(Op::kAnd, std::move(left), std::move(right), pos));
  }
  return left;
}

Result<ExprPtr> Parser::parse_not() {
  if (name("not")) {
    DepthGuard guard(depth_);
    HEARTH_RETURN_IF_ERROR(check_depth());
    const SourcePos pos = cur().pos;
    advance();
    ExprPtr n = node(ExprKind::kUnary, pos);
    n->op = Op::kNot;
    HEARTH_ASSIGN_OR_RETURN(n->operand, parse_not());
    return finish(std::move(n));
  }
  return parse_compare();
}

Result<ExprPtr> Parser::parse_compare() {
  const SourcePos pos = cur().pos;
  HEARTH_ASSIGN_OR_RETURN(ExprPtr first, parse_math1());
  ExprPtr cmp;
  while (true) {
    Op o = Op::kNone;
    if (op("=="))
      o = Op::kEq;
    else if (op("!="))
      o = Op::kNe;
    else if (op("<"))
      o = Op::kLt;
    else if (op("<="))
      o = Op::kLe;
    else if (op(">"))
      o = Op::kGt;
    else if (op(">="))
      o = Op::kGe;
    else if (name("in"))
      o = Op::kIn;
    else if (name("not") && is_name(look(1), "in"))
      o = Op::kNotIn;
    if (o == Op::kNone) break;
    advance();
    if (o == Op::kNotIn) advance();
    if (!cmp) {
      cmp = node(ExprKind::kCompare, pos);
      cmp->items.push_back(std::move(first));
    }
    HEARTH_ASSIGN_OR_RETURN(ExprPtr right, parse_math1());
    cmp->ops.push_back(o);
    cmp->items.push_back(std::move(right));
  }
  if (!cmp) return first;
  return finish(std::move(cmp));
}

Result<ExprPtr> Parser::parse_math1() {
  HEARTH_ASSIGN_OR_RETURN(ExprPtr left, parse_concat());
  while (op("+") || op("-")) {
    const SourcePos pos = cur().pos;
    const Op o = op("+") ? Op::kAdd : Op::kSub;
    advance();
    HEARTH_ASSIGN_OR_RETURN(ExprPtr right, parse_concat());
    HEARTH_ASSIGN_OR_RETURN(left, binary(o, std::move(left), std::move(right), pos));
  }
  return left;
}

Result<ExprPtr> Parser::parse_concat() {
  const SourcePos pos = cur().pos;
  HEARTH_ASSIGN_OR_RETURN(ExprPtr first, parse_math2());
  if (!op("~")) return first;
  ExprPtr c = node(ExprKind::kConcat, pos);
  c->items.push_back(std::move(first));
  while (op("~")) {
    advance();
    HEARTH_ASSIGN_OR_RETURN(ExprPtr next, parse_math2());
    c->items.push_back(std::move(next));
  }
  return finish(std::move(c));
}

Result<ExprPtr> Parser::parse_math2() {
  HEARTH_ASSIGN_OR_RETURN(ExprPtr left, parse_pow());
  while (op("*") || op("/") || op("//") || op("%")) {
    const SourcePos pos = cur().pos;
    const Op o = op("*") ? Op::kMul : (op("/") ? Op::kDiv : (op("//") ? Op::kFloorDiv : Op::kMod));
    advance();
    HEARTH_ASSIGN_OR_RETURN(ExprPtr right, parse_pow());
    HEARTH_ASSIGN_OR_RETURN(left, binary(o, std::move(left), std::move(right), pos));
  }
  return left;
}

Result<ExprPtr> Parser::parse_pow() {
  HEARTH_ASSIGN_OR_RETURN(ExprPtr left, parse_unary(true));
  while (op("**")) {
    const SourcePos pos = cur().pos;
    advance();
    HEARTH_ASSIGN_OR_RETURN(ExprPtr right, parse_unary(true));
    HEARTH_ASSIGN_OR_RETURN(left, binary(Op::kPow, std::move(left), std::move(right), pos));
  }
  return left;
}

Result<ExprPtr> Parser::parse_unary(bool with_filter) {
  DepthGuard guard(depth_);
  HEARTH_RETURN_IF_ERROR(check_depth());
  ExprPtr e;
  if (op("-") || op("+")) {
    e = node(ExprKind::kUnary, cur().pos);
    e->op = op("-") ? Op::kNeg : Op::kPos;
    advance();
    HEARTH_ASSIGN_OR_RETURN(e->operand, parse_unary(false));
    HEARTH_ASSIGN_OR_RETURN(e, finish(std::move(e)));
  } else {
    HEARTH_ASSIGN_OR_RETURN(e, parse_primary());
  }
  HEARTH_ASSIGN_OR_RETURN(e, parse_postfix(std::move(e)));
  if (with_filter) {
    HEARTH_ASSIGN_OR_RETURN(e, parse_filter_expr(std::move(e)));
  }
  return e;
}

Result<ExprPtr> Parser::parse_primary() {
  const Token& t = cur();
  switch (t.type) {
    case TokenType::kName: {
      ExprPtr e = node(ExprKind::kLiteral, t.pos);
      if (t.value == "true" || t.value == "True")
        e->literal = Value::boolean(true);
      else if (t.value == "false" || t.value == "False")
        e->literal = Value::boolean(false);
      else if (t.value == "none" || t.value == "None")
        e->literal = Value::none();
      else {
        e->kind = ExprKind::kName;
        e->name = t.value;
      }
      advance();
      return e;
    }
    case TokenType::kString: {
      ExprPtr e = node(ExprKind::kLiteral, t.pos);
      std::string s;
      while (cur().type == TokenType::kString) {  // adjacent literals concatenate
        s += cur().value;
        advance();
      }
      e->literal = Value::string(std::move(s));
      return e;
    }
    case TokenType::kInteger: {
      ExprPtr e = node(ExprKind::kLiteral, t.pos);
      e->literal = Value::integer(t.int_value);
      advance();
      return e;
    }
    case TokenType::kFloat: {
      ExprPtr e = node(ExprKind::kLiteral, t.pos);
      e->literal = Value::number(t.float_value);
      advance();
      return e;
    }
    default: break;
  }
  if (op("(")) {
    advance();
    HEARTH_ASSIGN_OR_RETURN(ExprPtr e, parse_tuple(true, {}, true));
    HEARTH_RETURN_IF_ERROR(expect_op(")"));
    return e;
  }
  if (op("[")) return parse_list();
  if (op("{")) return parse_dict();
  return fail(t, fmt::format("unexpected {}", describe(t)));
}

Result<ExprPtr> Parser::parse_list() {
  ExprPtr e = node(ExprKind::kList, cur().pos);
  advance();
  while (!op("]")) {
    if (!e->items.empty()) HEARTH_RETURN_IF_ERROR(expect_op(","));
    if (op("]")) break;
    HEARTH_ASSIGN_OR_RETURN(ExprPtr item, parse_expression(true));
    e->items.push_back(std::move(item));
  }
  advance();
  return finish(std::move(e));
}

Result<ExprPtr> Parser::parse_dict() {
  ExprPtr e = node(ExprKind::kDict, cur().pos);
  advance();
  while (!op("}")) {
    if (!e->items.empty()) HEARTH_RETURN_IF_ERROR(expect_op(","));
    if (op("}")) break;
    HEARTH_ASSIGN_OR_RETURN(ExprPtr key, parse_expression(true));
    HEARTH_RETURN_IF_ERROR(expect_op(":"));
    HEARTH_ASSIGN_OR_RETURN(ExprPtr value, parse_expression(true));
    e->items.push_back(std::move(key));
    e->items.push_back(std::move(value));
  }
  advance();
  return finish(std::move(e));
}

Result<ExprPtr> Parser::parse_postfix(ExprPtr e) {
  while (true) {
    if (op(".") || op("[")) {
      HEARTH_ASSIGN_OR_RETURN(e, parse_subscript(std::move(e)));
    } else if (op("(")) {
      HEARTH_ASSIGN_OR_RETURN(e, parse_call(std::move(e)));
    } else {
      return e;
    }
  }
}

Result<ExprPtr> Parser::parse_filter_expr(ExprPtr e) {
  while (true) {
    if (op("|")) {
      HEARTH_ASSIGN_OR_RETURN(e, parse_filter(std::move(e), false));
    } else if (name("is")) {
      HEARTH_ASSIGN_OR_RETURN(e, parse_test(std::move(e)));
    } else if (op("(")) {
      HEARTH_ASSIGN_OR_RETURN(e, parse_call(std::move(e)));
    } else {
      return e;
    }
  }
}

Result<ExprPtr> Parser::parse_subscript(ExprPtr obj) {
  const Token& t = cur();
  if (op(".")) {
    advance();
    if (cur().type == TokenType::kName) {
      ExprPtr e = node(ExprKind::kGetAttr, t.pos);
      e->operand = std::move(obj);
      e->name = cur().value;
      advance();
      return finish(std::move(e));
    }
    if (cur().type == TokenType::kInteger) {
      ExprPtr e = node(ExprKind::kGetItem, t.pos);
      e->operand = std::move(obj);
      ExprPtr index = node(ExprKind::kLiteral, cur().pos);
      index->literal = Value::integer(cur().int_value);
      e->items.push_back(std::move(index));
      advance();
      return finish(std::move(e));
    }
    return unexpected("a name or number after '.'");
  }
  advance();  // '['
  DepthGuard guard(depth_);
  HEARTH_RETURN_IF_ERROR(check_depth());
  std::vector<ExprPtr> args;
  while (!op("]")) {
    if (!args.empty()) HEARTH_RETURN_IF_ERROR(expect_op(","));
    HEARTH_ASSIGN_OR_RETURN(ExprPtr a, parse_subscribed());
    args.push_back(std::move(a));
  }
  HEARTH_RETURN_IF_ERROR(expect_op("]"));
  if (args.empty()) return fail(t, "empty subscript");
  ExprPtr e = node(ExprKind::kGetItem, t.pos);
  e->operand = std::move(obj);
  if (args.size() == 1) {
    e->items.push_back(std::move(args.front()));
  } else {
    ExprPtr tup = node(ExprKind::kTuple, t.pos);
    tup->items = std::move(args);
    HEARTH_ASSIGN_OR_RETURN(tup, finish(std::move(tup)));
    e->items.push_back(std::move(tup));
  }
  return finish(std::move(e));
}

Result<ExprPtr> Parser::parse_subscribed() {
  const SourcePos pos = cur().pos;
  std::vector<ExprPtr> parts;
  if (op(":")) {
    advance();
    parts.emplace_back();
  } else {
    HEARTH_ASSIGN_OR_RETURN(ExprPtr e, parse_expression(true));
    if (!op(":")) return e;
    advance();
    parts.push_back(std::move(e));
  }
  if (op(":") || op("]") || op(",")) {
    parts.emplace_back();
  } else {
    HEARTH_ASSIGN_OR_RETURN(ExprPtr stop, parse_expression(true));
    parts.push_back(std::move(stop));
  }
  if (op(":")) {
    advance();
    if (op("]") || op(",")) {
      parts.emplace_back();
    } else {
      HEARTH_ASSIGN_OR_RETURN(ExprPtr step, parse_expression(true));
      parts.push_back(std::move(step));
    }
  } else {
    parts.emplace_back();
  }
  ExprPtr s = node(ExprKind::kSlice, pos);
  s->items = std::move(parts);
  return finish(std::move(s));
}

Status Parser::parse_call_args(CallArgsNode& args) {
  HEARTH_RETURN_IF_ERROR(expect_op("("));
  DepthGuard guard(depth_);
  HEARTH_RETURN_IF_ERROR(check_depth());
  bool require_comma = false;
  while (!op(")")) {
    if (require_comma) {
      HEARTH_RETURN_IF_ERROR(expect_op(","));
      if (op(")")) break;
    }
    const Token& at = cur();
    if (op("*")) {
      if (args.star_args || args.star_kwargs) return fail(at, "invalid syntax for function call expression");
      advance();
      HEARTH_ASSIGN_OR_RETURN(args.star_args, parse_expression(true));
    } else if (op("**")) {
      if (args.star_kwargs) return fail(at, "invalid syntax for function call expression");
      advance();
      HEARTH_ASSIGN_OR_RETURN(args.star_kwargs, parse_expression(true));
    } else if (cur().type == TokenType::kName && is_op(look(1), "=")) {
      if (args.star_kwargs) return fail(at, "invalid syntax for function call expression");
      std::string key = cur().value;
      advance();
      advance();
      HEARTH_ASSIGN_OR_RETURN(ExprPtr v, parse_expression(true));
      args.keyword.emplace_back(std::move(key), std::move(v));
    } else {
      if (args.star_args || args.star_kwargs || !args.keyword.empty()) {
        return fail(at, "positional argument follows keyword argument");
      }
      HEARTH_ASSIGN_OR_RETURN(ExprPtr v, parse_expression(true));
      args.positional.push_back(std::move(v));
    }
    require_comma = true;
  }
  return expect_op(")");
}

Result<ExprPtr> Parser::parse_call(ExprPtr callee) {
  ExprPtr e = node(ExprKind::kCall, callee->pos);  // errors point at what was called
  e->operand = std::move(callee);
  HEARTH_RETURN_IF_ERROR(parse_call_args(e->args));
  return finish(std::move(e));
}

Result<std::string> Parser::parse_dotted_name() {
  HEARTH_ASSIGN_OR_RETURN(std::string n, expect_name());
  while (op(".")) {
    advance();
    HEARTH_ASSIGN_OR_RETURN(std::string part, expect_name());
    n += "." + part;
  }
  return n;
}

Result<ExprPtr> Parser::parse_filter(ExprPtr base, bool start_inline) {
  while (op("|") || start_inline) {
    if (!start_inline) advance();
    start_inline = false;
    const Token& at = cur();
    HEARTH_ASSIGN_OR_RETURN(std::string fname, parse_dotted_name());
    if (!is_known_filter(fname)) return fail(at, fmt::format("no filter named '{}'", fname));
    ExprPtr f = node(ExprKind::kFilter, at.pos);
    f->operand = std::move(base);
    f->name = std::move(fname);
    if (op("(")) HEARTH_RETURN_IF_ERROR(parse_call_args(f->args));
    HEARTH_ASSIGN_OR_RETURN(base, finish(std::move(f)));
  }
  return base;
}

Result<ExprPtr> Parser::parse_test(ExprPtr base) {
  advance();  // 'is'
  bool negated = false;
  if (name("not")) {
    negated = true;
    advance();
  }
  const Token& at = cur();
  HEARTH_ASSIGN_OR_RETURN(std::string tname, parse_dotted_name());
  if (!is_known_test(tname)) return fail(at, fmt::format("no test named '{}'", tname));
  ExprPtr t = node(ExprKind::kTest, at.pos);
  t->operand = std::move(base);
  t->name = std::move(tname);
  t->negated = negated;
  if (op("(")) {
    HEARTH_RETURN_IF_ERROR(parse_call_args(t->args));
  } else {
    const Token& c = cur();
    const bool arg_start = c.type == TokenType::kName || c.type == TokenType::kString ||
                           c.type == TokenType::kInteger || c.type == TokenType::kFloat || is_op(c, "(") ||
                           is_op(c, "[") || is_op(c, "{");
    if (arg_start && !name("else") && !name("or") && !name("and")) {
      if (name("is")) return fail(c, "tests cannot be chained with 'is'");
      DepthGuard guard(depth_);
      HEARTH_RETURN_IF_ERROR(check_depth());
      HEARTH_ASSIGN_OR_RETURN(ExprPtr arg, parse_primary());
      HEARTH_ASSIGN_OR_RETURN(arg, parse_postfix(std::move(arg)));
      t->args.positional.push_back(std::move(arg));
    }
  }
  return finish(std::move(t));
}

}  // namespace hearth::jinja::detail
