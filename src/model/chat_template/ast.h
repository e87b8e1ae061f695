#pragma once
// Syntax tree of a parsed template. Built by the parser, read (never changed) by the interpreter,
// so one compiled template can render on many threads at once.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/chat_template/lexer.h"
#include "model/chat_template/value.h"

namespace hearth::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class ExprKind : uint8_t {
  kLiteral,   // literal
  kName,      // name
  kList,      // items
  kTuple,     // items
  kDict,      // items: key0, value0, key1, value1 ...
  kGetAttr,   // operand.name
  kGetItem,   // operand[index]
  kSlice,     // items: start, stop, step (each may be null); only as a kGetItem index
  kCall,      // operand(args)
  kFilter,    // operand|name(args); operand is null inside {% filter %} and block set
  kTest,      // operand is [not] name(args)
  kUnary,     // op operand
  kBinary,    // items[0] op items[1]
  kCompare,   // items[0] ops[0] items[1] ops[1] items[2] ...
  kConcat,    // items joined with ~
  kCondExpr,  // items: test, value if true, value if false (may be null)
};

enum class Op : uint8_t {
  kNone,
  kNot,
  kNeg,
  kPos,
  kAdd,
  kSub,
  kMul,
  kDiv,
  kFloorDiv,
  kMod,
  kPow,
  kAnd,
  kOr,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kIn,
  kNotIn,
};

struct CallArgsNode {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
  ExprPtr star_args;    // *args
  ExprPtr star_kwargs;  // **kwargs
};

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  SourcePos pos;
  int depth = 1;  // nesting depth of this subtree
  Op op = Op::kNone;
  bool negated = false;  // kTest: `is not`
  Value literal;
  std::string name;
  ExprPtr operand;
  std::vector<ExprPtr> items;
  std::vector<Op> ops;  // kCompare
  CallArgsNode args;    // kCall, kFilter, kTest
};

enum class StmtKind : uint8_t {
  kText,         // text
  kOutput,       // {{ expr }}
  kIf,           // branches, else_body
  kFor,          // targets, expr (iterable), filter, body, else_body
  kSet,          // targets (or ns_name + attr), expr
  kSetBlock,     // targets (or ns_name + attr), filter (a kFilter chain over null), body
  kMacro,        // name, params, body
  kCallBlock,    // expr (a kCall), params (caller's), body
  kFilterBlock,  // filter (a kFilter chain over null), body
  kBreak,
  kContinue,
  kScope,  // body: {% generation %} (transformers' assistant-mask marker) renders its body
};

struct Param {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct Stmt {
  StmtKind kind = StmtKind::kText;
  SourcePos pos;
  std::string text;                                // kText
  ExprPtr expr;                                    // kOutput, kFor iterable, kSet value, kCallBlock call
  ExprPtr filter;                                  // kFor loop filter; kSetBlock/kFilterBlock filter chain
  std::vector<std::pair<ExprPtr, Body>> branches;  // kIf: condition and body per if/elif
  Body body;
  Body else_body;
  std::vector<std::string> targets;  // kFor / kSet: names (several: tuple unpacking)
  bool unpack = false;               // targets came from a tuple (even of one name)
  std::string ns_name;               // kSet / kSetBlock `{% set ns.attr = ... %}`
  std::string attr;
  std::string name;           // kMacro
  std::vector<Param> params;  // kMacro, kCallBlock
};

// A parsed template.
struct Program {
  Body body;
};

}  // namespace hearth::jinja
