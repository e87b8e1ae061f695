// Statements, scopes, calls and budgets of the interpreter. Expressions: interpreter_expr.cpp.
#include "model/chat_template/interpreter.h"

#include "model/chat_template/builtins.h"
#include "model/chat_template/py_format.h"
#include "model/chat_template/py_string.h"

namespace hearth::jinja {

const Value* Scope::find(std::string_view name) const {
  for (const auto& [k, v] : vars) {
    if (k == name) return &v;
  }
  return nullptr;
}

void Scope::set(std::string_view name, Value value) {
  for (auto& [k, v] : vars) {
    if (k == name) {
      v = std::move(value);
      return;
    }
  }
  vars.emplace_back(std::string(name), std::move(value));
}

Interpreter::Interpreter(const Program& program, const RenderLimits& limits)
    : program_(program), limits_(limits) {}

Result<std::string> Interpreter::render(const Value& context) {
  root_ = std::make_shared<Scope>();
  if (context.is_dict()) {
    for (const auto& [k, v] : context.as_dict().entries) {
      if (k.is_string()) root_->set(k.as_string(), v);
    }
  }
  scope_ = root_;
  std::string out;
  out_ = &out;
  Status s = exec_body(program_.body);
  scope_.reset();
  root_.reset();
  out_ = nullptr;
  if (!s.is_ok()) return s;
  return out;
}

Status Interpreter::charge_steps(uint64_t n) {
  steps_ += n;
  if (steps_ > limits_.max_steps) {
    return make_error(ErrorCode::kResourceExhausted,
                      "rendering took more than max_steps ({}) evaluation steps", limits_.max_steps);
  }
  return Status::ok();
}

Status Interpreter::charge_bytes(uint64_t n) {
  bytes_ += n;
  if (bytes_ > limits_.max_bytes_built) {
    return make_error(ErrorCode::kResourceExhausted,
                      "rendering built more than max_bytes_built ({}) bytes of text",
                      limits_.max_bytes_built);
  }
  return Status::ok();
}

Result<Value> Interpreter::make_string(std::string s) {
  if (s.size() > limits_.max_output_bytes) {
    return make_error(ErrorCode::kOutOfRange, "a string of {} bytes exceeds max_output_bytes ({})", s.size(),
                      limits_.max_output_bytes);
  }
  HEARTH_RETURN_IF_ERROR(charge_bytes(s.size()));
  return Value::string(std::move(s));
}

Result<std::string> Interpreter::str(const Value& v) {
  std::string s = to_str(v, limits_.max_output_bytes);
  if (s.size() > limits_.max_output_bytes) {
    return make_error(ErrorCode::kOutOfRange, "a string of more than {} bytes exceeds max_output_bytes",
                      limits_.max_output_bytes);
  }
  HEARTH_RETURN_IF_ERROR(charge_bytes(s.size()));
  return s;
}

namespace {

CompareBudget budget_from(uint64_t used, uint64_t limit) {
  CompareBudget b;
  b.remaining = used < limit ? limit - used : 0;
  return b;
}

}  // namespace

Result<bool> Interpreter::values_equal(const Value& a, const Value& b) {
  CompareBudget budget = budget_from(steps_, limits_.max_steps);
  const uint64_t before = budget.remaining;
  const bool r = equals(a, b, &budget);
  HEARTH_RETURN_IF_ERROR(charge_steps(before - budget.remaining + (budget.exhausted ? 1 : 0)));
  return r;
}

Result<int> Interpreter::values_compare(const Value& a, const Value& b) {
  CompareBudget budget = budget_from(steps_, limits_.max_steps);
  const uint64_t before = budget.remaining;
  auto r = compare(a, b, &budget);
  HEARTH_RETURN_IF_ERROR(charge_steps(before - budget.remaining + (budget.exhausted ? 1 : 0)));
  return r;
}

Status Interpreter::check_items(uint64_t n) const {
  if (n > limits_.max_collection_items) {
    return make_error(ErrorCode::kOutOfRange, "a collection of {} items exceeds max_collection_items ({})", n,
                      limits_.max_collection_items);
  }
  return Status::ok();
}

Status Interpreter::check_depth() const {
  if (depth_ > limits_.max_render_depth) {
    return make_error(ErrorCode::kOutOfRange, "rendering recursed deeper than max_render_depth ({})",
                      limits_.max_render_depth);
  }
  return Status::ok();
}

Status Interpreter::located(const SourcePos& pos, const Status& s) {
  if (located_) return s;
  located_ = true;
  return Status(s.code(), fmt::format("{}:{}: {}", pos.line, pos.column, s.message()));
}

Status Interpreter::append(std::string_view text) {
  if (out_->size() + text.size() > limits_.max_output_bytes) {
    return make_error(ErrorCode::kOutOfRange, "rendered output exceeds max_output_bytes ({})",
                      limits_.max_output_bytes);
  }
  HEARTH_RETURN_IF_ERROR(charge_bytes(text.size()));
  out_->append(text);
  return Status::ok();
}

Result<std::string> Interpreter::capture(const Body& body) {
  std::string buf;
  std::string* saved = out_;
  out_ = &buf;
  Status s = exec_body(body);
  out_ = saved;
  if (!s.is_ok()) return s;
  return buf;
}

Result<Value> Interpreter::lookup(const std::string& name) const {
  for (const Scope* s = scope_.get(); s != nullptr; s = s->parent) {
    if (const Value* v = s->find(name)) return *v;
  }
  if (const Value* g = find_global(name)) return *g;
  return Value::undefined(fmt::format("'{}' is undefined", name));
}

Status Interpreter::exec_body(const Body& body) {
  for (const StmtPtr& s : body) {
    HEARTH_RETURN_IF_ERROR(exec(*s));
    if (flow_ != Flow::kNormal) break;
  }
  return Status::ok();
}

Status Interpreter::exec(const Stmt& s) {
  DepthGuard guard(depth_);
  Status st = check_depth();
  if (st.is_ok()) st = charge_steps(1);
  if (!st.is_ok()) return located(s.pos, st);
  switch (s.kind) {
    case StmtKind::kText: st = append(s.text); break;
    case StmtKind::kOutput: {
      HEARTH_ASSIGN_OR_RETURN(Value v, eval(*s.expr));
      if (v.is_string()) {
        st = append(v.as_string());
      } else {
        st = append(to_str(v, limits_.max_output_bytes));
      }
      break;
    }
    case StmtKind::kIf: {
      for (const auto& [cond, body] : s.branches) {
        HEARTH_ASSIGN_OR_RETURN(Value c, eval(*cond));
        if (truthy(c)) return exec_body(body);
      }
      return exec_body(s.else_body);
    }
    case StmtKind::kFor: return exec_for(s);
    case StmtKind::kSet: {
      HEARTH_ASSIGN_OR_RETURN(Value v, eval(*s.expr));
      st = assign(s, std::move(v));
      break;
    }
    case StmtKind::kSetBlock: {
      HEARTH_ASSIGN_OR_RETURN(std::string text, capture(s.body));
      HEARTH_ASSIGN_OR_RETURN(Value v, make_string(std::move(text)));
      if (s.filter) {
        HEARTH_ASSIGN_OR_RETURN(v, eval_filter(*s.filter, &v));
      }
      st = assign(s, std::move(v));
      break;
    }
    case StmtKind::kMacro: {
      Callable c;
      c.type = Callable::Type::kMacro;
      c.name = s.name;
      c.node = &s;
      c.closure = scope_;
      scope_->set(s.name, Value::callable(std::move(c)));
      return Status::ok();
    }
    case StmtKind::kCallBlock: return exec_call_block(s);
    case StmtKind::kFilterBlock: {
      HEARTH_ASSIGN_OR_RETURN(std::string text, capture(s.body));
      HEARTH_ASSIGN_OR_RETURN(Value v, make_string(std::move(text)));
      HEARTH_ASSIGN_OR_RETURN(v, eval_filter(*s.filter, &v));
      st = append(to_str(v, limits_.max_output_bytes));
      break;
    }
    case StmtKind::kBreak: flow_ = Flow::kBreak; return Status::ok();
    case StmtKind::kContinue: flow_ = Flow::kContinue; return Status::ok();
    case StmtKind::kScope: return exec_body(s.body);
  }
  if (!st.is_ok()) return located(s.pos, st);
  return Status::ok();
}

Status Interpreter::bind_targets(Scope& scope, const std::vector<std::string>& targets, bool unpack,
                                 const Value& v) {
  if (!unpack) {
    scope.set(targets.front(), v);
    return Status::ok();
  }
  HEARTH_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  if (items.size() != targets.size()) {
    return make_error(ErrorCode::kInvalidArgument, "cannot unpack {} values into {} names", items.size(),
                      targets.size());
  }
  for (size_t i = 0; i < targets.size(); ++i) scope.set(targets[i], std::move(items[i]));
  return Status::ok();
}

Status Interpreter::assign(const Stmt& s, Value v) {
  if (s.ns_name.empty()) return bind_targets(*scope_, s.targets, s.unpack, v);
  HEARTH_ASSIGN_OR_RETURN(Value ns, lookup(s.ns_name));
  if (!ns.is_namespace()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "cannot assign attribute '{}' on '{}': it is a {}, not a namespace", s.attr, s.ns_name,
                      type_name(ns));
  }
  if (holds_reference(v)) {
    return make_error(ErrorCode::kUnsupported,
                      "cannot store a namespace, loop object or bound method inside a namespace");
  }
  if (value_depth(v) >= kMaxValueDepth) {
    return make_error(ErrorCode::kOutOfRange, "value nests deeper than {} levels", kMaxValueDepth);
  }
  ns.as_namespace().set(s.attr, std::move(v));
  return Status::ok();
}

Status Interpreter::exec_for(const Stmt& s) {
  HEARTH_ASSIGN_OR_RETURN(Value iterable, eval(*s.expr));
  auto it = iterate(iterable);
  if (!it.is_ok()) return located(s.expr->pos, it.status());
  std::vector<Value> items = std::move(it).value();

  auto loop_scope = std::make_shared<Scope>();
  loop_scope->parent = scope_.get();
  const std::shared_ptr<Scope> saved = scope_;
  scope_ = loop_scope;
  auto run = [&]() -> Status {
    if (s.filter) {  // `for x in xs if cond`: filter first, so loop.length counts what remains
      std::vector<Value> kept;
      for (Value& item : items) {
        HEARTH_RETURN_IF_ERROR(charge_steps(1));
        loop_scope->vars.clear();
        HEARTH_RETURN_IF_ERROR(bind_targets(*loop_scope, s.targets, s.unpack, item));
        HEARTH_ASSIGN_OR_RETURN(Value keep, eval(*s.filter));
        if (truthy(keep)) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      loop_scope->vars.clear();
      return exec_body(s.else_body);
    }
    int item_depth = 0;
    for (const Value& item : items) item_depth = std::max(item_depth, value_depth(item));
    auto shared_items = std::make_shared<const std::vector<Value>>(std::move(items));
    for (size_t i = 0; i < shared_items->size(); ++i) {
      if (++iterations_ > limits_.max_loop_iterations) {
        return located(s.pos, make_error(ErrorCode::kResourceExhausted,
                                         "for loops ran more than max_loop_iterations ({}) iterations",
                                         limits_.max_loop_iterations));
      }
      loop_scope->vars.clear();
      HEARTH_RETURN_IF_ERROR(bind_targets(*loop_scope, s.targets, s.unpack, (*shared_items)[i]));
      loop_scope->set("loop", Value::loop(LoopState{shared_items, static_cast<int64_t>(i), item_depth + 1}));
      HEARTH_RETURN_IF_ERROR(exec_body(s.body));
      if (flow_ == Flow::kBreak) {
        flow_ = Flow::kNormal;
        break;
      }
      flow_ = Flow::kNormal;
    }
    return Status::ok();
  };
  Status st = run();
  scope_ = saved;
  if (!st.is_ok()) return located(s.pos, st);
  return st;
}

Status Interpreter::exec_call_block(const Stmt& s) {
  const Expr& call = *s.expr;
  HEARTH_ASSIGN_OR_RETURN(Value callee, eval(*call.operand));
  CallArgs args;
  HEARTH_RETURN_IF_ERROR(eval_args(call.args, args));
  Callable caller;
  caller.type = Callable::Type::kCaller;
  caller.name = "caller";
  caller.node = &s;
  caller.closure = scope_;
  args.keyword.emplace_back("caller", Value::callable(std::move(caller)));
  auto r = this->call(callee, args);
  if (!r.is_ok()) return located(call.pos, r.status());
  return append(to_str(r.value(), limits_.max_output_bytes));
}

Result<Value> Interpreter::call(const Value& callee, CallArgs& args) {
  if (callee.is_undefined()) {
    const std::string_view hint = callee.undefined_hint();
    return Status(ErrorCode::kInvalidArgument,
                  hint.empty() ? "called an undefined value" : std::string(hint));
  }
  if (!callee.is_callable()) {
    return make_error(ErrorCode::kInvalidArgument, "'{}' object is not callable", type_name(callee));
  }
  const Callable& c = callee.as_callable();
  switch (c.type) {
    case Callable::Type::kBuiltin: return c.builtin(*this, args);
    case Callable::Type::kMethod: return call_method(*this, c.self, c.name, args);
    case Callable::Type::kMacro:
    case Callable::Type::kCaller: return call_macro(c, args);
  }
  return make_error(ErrorCode::kInternal, "unknown callable");
}

Result<Value> Interpreter::call_macro(const Callable& c, CallArgs& args) {
  DepthGuard guard(depth_);
  HEARTH_RETURN_IF_ERROR(check_depth());
  const Stmt& node = *c.node;
  const std::shared_ptr<Scope> closure = c.closure.lock();
  auto frame = std::make_shared<Scope>();
  frame->parent = closure ? closure.get() : root_.get();

  const std::vector<Param>& params = node.params;
  // Extra positional and keyword arguments are available as `varargs` and `kwargs`.
  std::vector<bool> bound(params.size(), false);
  std::vector<Value> varargs;
  for (size_t i = 0; i < args.positional.size(); ++i) {
    if (i < params.size()) {
      frame->set(params[i].name, args.positional[i]);
      bound[i] = true;
    } else {
      varargs.push_back(args.positional[i]);
    }
  }
  Dict kwargs;
  Value caller;
  for (auto& [k, v] : args.keyword) {
    bool matched = false;
    for (size_t i = 0; i < params.size(); ++i) {
      if (params[i].name == k) {
        if (bound[i]) {
          return make_error(ErrorCode::kInvalidArgument, "macro '{}' got multiple values for argument '{}'",
                            c.name, k);
        }
        frame->set(k, v);
        bound[i] = true;
        matched = true;
        break;
      }
    }
    if (matched) continue;
    if (k == "caller" && c.type == Callable::Type::kMacro) {
      caller = v;
    } else {
      kwargs.set(Value::string(k), v);
    }
  }
  const std::shared_ptr<Scope> saved = scope_;
  scope_ = frame;
  auto run = [&]() -> Result<Value> {
    for (size_t i = 0; i < params.size(); ++i) {
      if (bound[i]) continue;
      if (params[i].default_value) {
        HEARTH_ASSIGN_OR_RETURN(Value d, eval(*params[i].default_value));
        frame->set(params[i].name, std::move(d));
      } else {
        frame->set(params[i].name, Value::undefined(fmt::format("parameter '{}' of '{}' was not provided",
                                                                params[i].name, c.name)));
      }
    }
    HEARTH_ASSIGN_OR_RETURN(Value va, checked_list(std::move(varargs), true));
    frame->set("varargs", std::move(va));
    HEARTH_ASSIGN_OR_RETURN(Value kw, checked_dict(std::move(kwargs)));
    frame->set("kwargs", std::move(kw));
    if (!caller.is_undefined()) frame->set("caller", caller);
    HEARTH_ASSIGN_OR_RETURN(std::string text, capture(node.body));
    flow_ = Flow::kNormal;
    return make_string(std::move(text));
  };
  auto r = run();
  scope_ = saved;
  return r;
}

Result<std::vector<Value>> Interpreter::iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return std::vector<Value>{};
    case Value::Kind::kList: {
      HEARTH_RETURN_IF_ERROR(charge_steps(v.as_list().items.size()));
      return v.as_list().items;
    }
    case Value::Kind::kDict: {
      const auto& entries = v.as_dict().entries;
      HEARTH_RETURN_IF_ERROR(charge_steps(entries.size()));
      std::vector<Value> keys;
      keys.reserve(entries.size());
      for (const auto& [k, item] : entries) keys.push_back(k);
      return keys;
    }
    case Value::Kind::kString: {
      const std::string& s = v.as_string();
      HEARTH_RETURN_IF_ERROR(check_items(s.size() > limits_.max_collection_items ? pystr::length(s) : 0));
      HEARTH_RETURN_IF_ERROR(charge_steps(s.size()));
      HEARTH_RETURN_IF_ERROR(charge_bytes(s.size()));
      std::vector<Value> chars;
      size_t i = 0;
      while (i < s.size()) {
        size_t start = i;
        ++i;
        while (i < s.size() && (static_cast<uint8_t>(s[i]) & 0xC0) == 0x80) ++i;
        chars.push_back(Value::string(s.substr(start, i - start)));
      }
      return chars;
    }
    default: return make_error(ErrorCode::kInvalidArgument, "'{}' object is not iterable", type_name(v));
  }
}

}  // namespace hearth::jinja
