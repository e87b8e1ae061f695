#pragma once
// Internal to the parser: the Parser class shared by parser.cpp (statements) and parser_expr.cpp
// (expressions). Not part of the chat_template API.
#include <algorithm>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "model/chat_template/parser.h"

namespace hearth::jinja::detail {

class Parser {
 public:
  Parser(std::vector<Token> tokens, const ParseOptions& options)
      : toks_(std::move(tokens)), max_depth_(options.max_nesting_depth) {}

  Result<std::shared_ptr<const Program>> run() {
    auto program = std::make_shared<Program>();
    HEARTH_ASSIGN_OR_RETURN(program->body, subparse({}));
    return std::shared_ptr<const Program>(std::move(program));
  }

 private:
  // ---- token helpers ---------------------------------------------------------------------
  const Token& cur() const { return toks_[i_]; }
  const Token& look(size_t k = 1) const { return toks_[std::min(i_ + k, toks_.size() - 1)]; }
  void advance() {
    if (i_ + 1 < toks_.size()) ++i_;
  }
  static bool is_op(const Token& t, std::string_view op) {
    return t.type == TokenType::kOperator && t.value == op;
  }
  static bool is_name(const Token& t, std::string_view n) {
    return t.type == TokenType::kName && t.value == n;
  }
  bool op(std::string_view o) const { return is_op(cur(), o); }
  bool name(std::string_view n) const { return is_name(cur(), n); }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case TokenType::kData: return "template text";
      case TokenType::kVariableBegin: return "'{{'";
      case TokenType::kVariableEnd: return "'}}'";
      case TokenType::kBlockBegin: return "'{%'";
      case TokenType::kBlockEnd: return "'%}'";
      case TokenType::kString: return "a string";
      case TokenType::kInteger:
      case TokenType::kFloat: return "a number";
      case TokenType::kEnd: return "end of template";
      default: return "'" + t.value + "'";
    }
  }

  Status fail(const Token& t, std::string_view what) const {
    return make_error(ErrorCode::kInvalidArgument, "{}:{}: {}", t.pos.line, t.pos.column, what);
  }
  Status unexpected(std::string_view expected) const {
    return fail(cur(), fmt::format("expected {}, got {}", expected, describe(cur())));
  }
  Status expect_op(std::string_view o) {
    if (!op(o)) return unexpected(fmt::format("'{}'", o));
    advance();
    return Status::ok();
  }
  Status expect(TokenType type) {
    if (cur().type != type) {
      Token want;
      want.type = type;
      return unexpected(describe(want));
    }
    advance();
    return Status::ok();
  }
  Result<std::string> expect_name() {
    if (cur().type != TokenType::kName) return unexpected("a name");
    std::string n = cur().value;
    advance();
    return n;
  }

  // ---- depth guards --------------------------------------------------------------------
  struct DepthGuard {
    explicit DepthGuard(int& d) : d_(d) { ++d_; }
    ~DepthGuard() { --d_; }
    int& d_;
  };
  Status check_depth() const {
    if (depth_ > max_depth_) {
      return fail(cur(), fmt::format("template nests deeper than max_nesting_depth ({})", max_depth_));
    }
    return Status::ok();
  }

  static ExprPtr node(ExprKind kind, const SourcePos& pos) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    return e;
  }

  // Computes the depth of a finished node and refuses trees deeper than the limit: left-leaning
  // chains (a + b + c ...) grow the tree without growing the parser's recursion.
  Result<ExprPtr> finish(ExprPtr e) {
    int d = 0;
    auto visit = [&d](const ExprPtr& c) {
      if (c) d = std::max(d, c->depth);
    };
    visit(e->operand);
    for (const auto& c : e->items) visit(c);
    for (const auto& c : e->args.positional) visit(c);
    for (const auto& [k, c] : e->args.keyword) visit(c);
    visit(e->args.star_args);
    visit(e->args.star_kwargs);
    e->depth = d + 1;
    if (e->depth > max_depth_) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}:{}: expression nests deeper than max_nesting_depth ({})", e->pos.line,
                        e->pos.column, max_depth_);
    }
    return e;
  }

  // ---- statements ----------------------------------------------------------------------
  // Parses template content until a block whose first name is in end_names (left as cur()).
  Result<Body> subparse(std::initializer_list<std::string_view> end_names);
  // After a statement head: '%}', then the body up to one of end_names; consumes that name.
  Result<Body> parse_block(std::initializer_list<std::string_view> end_names, std::string* found);
  Result<StmtPtr> parse_statement();
  Status parse_for(Stmt& s);
  Status parse_if(Stmt& s);
  // Assignment targets: a name, or names separated by commas (optionally in parentheses).
  Status parse_targets(Stmt& s, bool stop_at_in);
  Status parse_set(Stmt& s);
  Status parse_signature(std::vector<Param>& params);
  Status parse_macro(Stmt& s);
  Status parse_call_block(Stmt& s);
  Status parse_filter_block(Stmt& s);
  Status parse_loop_control(Stmt& s, bool is_break);
  Status parse_generation(Stmt& s);

  // ---- expressions ---------------------------------------------------------------------
  bool is_tuple_end(std::initializer_list<std::string_view> extra_end) const;
  Result<ExprPtr> parse_expression(bool with_condexpr);
  Result<ExprPtr> binary(Op o, ExprPtr left, ExprPtr right, const SourcePos& pos);
  Result<ExprPtr> parse_or();
  Result<ExprPtr> parse_and();
  Result<ExprPtr> parse_not();
  Result<ExprPtr> parse_compare();
  Result<ExprPtr> parse_math1();
  Result<ExprPtr> parse_concat();
  Result<ExprPtr> parse_math2();
  Result<ExprPtr> parse_pow();
  Result<ExprPtr> parse_unary(bool with_filter);
  Result<ExprPtr> parse_primary();
  Result<ExprPtr> parse_list();
  Result<ExprPtr> parse_dict();
  Result<ExprPtr> parse_postfix(ExprPtr e);
  Result<ExprPtr> parse_filter_expr(ExprPtr e);
  Result<ExprPtr> parse_subscript(ExprPtr obj);
  Result<ExprPtr> parse_subscribed();
  Status parse_call_args(CallArgsNode& args);
  Result<ExprPtr> parse_call(ExprPtr callee);
  Result<std::string> parse_dotted_name();
  Result<ExprPtr> parse_filter(ExprPtr base, bool start_inline);
  Result<ExprPtr> parse_test(ExprPtr base);

  // A comma-separated sequence is a tuple; a single expression is itself.
  Result<ExprPtr> parse_tuple(bool with_condexpr, std::initializer_list<std::string_view> extra_end,
                              bool explicit_parentheses) {
    const SourcePos pos = cur().pos;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) HEARTH_RETURN_IF_ERROR(expect_op(","));
      if (is_tuple_end(extra_end)) break;
      HEARTH_ASSIGN_OR_RETURN(ExprPtr e, parse_expression(with_condexpr));
      items.push_back(std::move(e));
      if (op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items.front());
      if (!explicit_parentheses) return unexpected("an expression");
    }
    ExprPtr t = node(ExprKind::kTuple, pos);
    t->items = std::move(items);
    return finish(std::move(t));
  }

  std::vector<Token> toks_;
  size_t i_ = 0;
  int depth_ = 0;
  int max_depth_;
  int loop_depth_ = 0;
};

}  // namespace hearth::jinja::detail
