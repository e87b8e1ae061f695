#pragma once
// Tree-walking evaluator for a parsed template. One Interpreter renders once; it holds the
// per-render state (scopes, output buffer, budgets), so concurrent renders of the same Program
// use separate Interpreters.
//
// Semantics follow Jinja 3 in transformers' ImmutableSandboxedEnvironment: Python operators and
// truthiness, Undefined that prints as "" but fails when used as a value, for-loop bodies and
// macros with their own scopes, namespace objects as the only mutable state.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "model/chat_template/ast.h"
#include "model/chat_template/value.h"

namespace hearth::jinja {

// Bounds on one render. Every one is checked before the work it guards is done.
struct RenderLimits {
  uint64_t max_output_bytes = 16ull << 20;    // rendered text, and any single string value
  uint64_t max_loop_iterations = 1'000'000;   // for-loop iterations, all loops together
  uint64_t max_steps = 20'000'000;            // expression/statement evaluations + builtin item visits
  uint64_t max_bytes_built = 1ull << 30;      // bytes of all strings built while rendering
  uint64_t max_collection_items = 1'000'000;  // items in one list or dict built while rendering
  int max_render_depth = 512;                 // recursion: nested statements, expressions and calls
  int64_t max_range = 100'000;                // items from one range() (Jinja's sandbox MAX_RANGE)
};

struct Scope {
  Scope* parent = nullptr;
  std::vector<std::pair<std::string, Value>> vars;
  const Value* find(std::string_view name) const;
  void set(std::string_view name, Value value);
};

class Interpreter {
 public:
  Interpreter(const Program& program, const RenderLimits& limits);

  // Renders the program with `context` (a dict of variables: messages, tools, ...). Errors read
  // "line:column: what failed".
  Result<std::string> render(const Value& context);

  // ---- services for builtins ----
  const RenderLimits& limits() const { return limits_; }
  // Counts work; fails once a budget is spent.
  Status charge_steps(uint64_t n);
  Status charge_bytes(uint64_t n);
  // A string value of at most max_output_bytes, charged to the byte budget.
  Result<Value> make_string(std::string s);
  Status check_items(uint64_t n) const;  // a collection of n items may be built
  Result<Value> call(const Value& callee, CallArgs& args);
  // str(v), at most about max_output_bytes long, charged to the byte budget.
  Result<std::string> str(const Value& v);
  // Python == and ordering, charged to the step budget (large nested values cost more).
  Result<bool> values_equal(const Value& a, const Value& b);
  Result<int> values_compare(const Value& a, const Value& b);
  Result<Value> get_attr(const Value& obj, std::string_view name);
  Result<Value> get_item(const Value& obj, const Value& key);
  // Python iteration: list items, dict keys, string characters; Undefined iterates as empty.
  Result<std::vector<Value>> iterate(const Value& v);

 private:
  enum class Flow : uint8_t { kNormal, kBreak, kContinue };

  // statements (interpreter.cpp)
  Status exec_body(const Body& body);
  Status exec(const Stmt& s);
  Status exec_for(const Stmt& s);
  Status exec_call_block(const Stmt& s);
  Status assign(const Stmt& s, Value v);
  Status bind_targets(Scope& scope, const std::vector<std::string>& targets, bool unpack, const Value& v);
  Status append(std::string_view text);
  Result<std::string> capture(const Body& body);
  Result<Value> call_macro(const Callable& c, CallArgs& args);
  Result<Value> lookup(const std::string& name) const;

  // expressions (interpreter_expr.cpp)
  Result<Value> eval(const Expr& e);
  Result<Value> eval_inner(const Expr& e);
  Status eval_args(const CallArgsNode& node, CallArgs& out);
  Result<Value> eval_filter(const Expr& e, const Value* block_input);
  Result<Value> eval_test(const Expr& e);
  Result<Value> eval_slice(const Value& obj, const Expr& slice);
  Result<Value> binary_op(Op op, const Value& a, const Value& b);
  Result<Value> unary_op(Op op, const Value& v);
  Result<bool> compare_op(Op op, const Value& a, const Value& b);

  // Prefixes the position of the innermost failing node, once.
  Status located(const SourcePos& pos, const Status& s);

  struct DepthGuard {
    explicit DepthGuard(int& d) : d_(d) { ++d_; }
    ~DepthGuard() { --d_; }
    int& d_;
  };
  Status check_depth() const;

  const Program& program_;
  RenderLimits limits_;
  std::shared_ptr<Scope> root_;
  std::shared_ptr<Scope> scope_;
  std::string* out_ = nullptr;
  Flow flow_ = Flow::kNormal;
  bool located_ = false;
  int depth_ = 0;
  uint64_t steps_ = 0;
  uint64_t bytes_ = 0;
  uint64_t iterations_ = 0;
};

}  // namespace hearth::jinja
