// Expression evaluation: Python operators, attribute and item access, slicing, calls, filters, tests.
#include <cmath>
#include <limits>

#include "model/chat_template/builtins.h"
#include "model/chat_template/interpreter.h"
#include "model/chat_template/py_format.h"
#include "model/chat_template/py_string.h"

namespace hearth::jinja {
namespace {

Status undefined_error(const Value& v) {
  const std::string_view hint = v.undefined_hint();
  return Status(ErrorCode::kInvalidArgument, hint.empty() ? "undefined value used" : std::string(hint));
}

Status overflow() {
  return make_error(ErrorCode::kOutOfRange, "integer overflow (template integers are 64-bit)");
}

Status unsupported(std::string_view op, const Value& a, const Value& b) {
  return make_error(ErrorCode::kInvalidArgument, "unsupported operand type(s) for {}: '{}' and '{}'", op,
                    type_name(a), type_name(b));
}

const char* op_text(Op op) {
  switch (op) {
    case Op::kAdd: return "+";
    case Op::kSub: return "-";
    case Op::kMul: return "*";
    case Op::kDiv: return "/";
    case Op::kFloorDiv: return "//";
    case Op::kMod: return "%";
    case Op::kPow: return "**";
    default: return "?";
  }
}

// Python's float divmod.
std::pair<double, double> float_divmod(double a, double b) {
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0.0) {
    if ((b < 0) != (mod < 0)) {
      mod += b;
      div -= 1.0;
    }
  } else {
    mod = std::copysign(0.0, b);
  }
  double floordiv;
  if (div != 0.0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, a / b);
  }
  return {floordiv, mod};
}

// Python slice index normalisation (PySlice_AdjustIndices).
struct SliceRange {
  int64_t start, stop, step, length;
};

Result<SliceRange> adjust_slice(int64_t len, const Value& start, const Value& stop, const Value& step) {
  auto get = [](const Value& v, const char* what) -> Result<std::optional<int64_t>> {
    if (v.is_none() || v.is_undefined()) return std::optional<int64_t>();
    if (v.is_int() || v.is_bool()) return std::optional<int64_t>(v.as_int());
    return make_error(ErrorCode::kInvalidArgument, "slice {} must be an integer or None, not {}", what,
                      type_name(v));
  };
  HEARTH_ASSIGN_OR_RETURN(auto st, get(step, "step"));
  const int64_t s = st.value_or(1);
  if (s == 0) return make_error(ErrorCode::kInvalidArgument, "slice step cannot be zero");
  HEARTH_ASSIGN_OR_RETURN(auto b, get(start, "start"));
  HEARTH_ASSIGN_OR_RETURN(auto e, get(stop, "stop"));
  auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v;
    if (x < 0) {
      x += len;
      if (x < 0) x = s < 0 ? -1 : 0;
    } else if (x >= len) {
      x = s < 0 ? len - 1 : len;
    }
    return x;
  };
  const int64_t lo = clamp(b, s < 0 ? len - 1 : 0);
  const int64_t hi = clamp(e, s < 0 ? -1 : len);
  int64_t n = 0;
  if (s > 0 && lo < hi) n = (hi - lo - 1) / s + 1;
  if (s < 0 && hi < lo) n = (lo - hi - 1) / (-s) + 1;
  return SliceRange{lo, hi, s, n};
}

}  // namespace

Result<Value> Interpreter::eval(const Expr& e) {
  DepthGuard guard(depth_);
  Status st = check_depth();
  if (st.is_ok()) st = charge_steps(1);
  if (!st.is_ok()) return located(e.pos, st);
  auto r = eval_inner(e);
  if (!r.is_ok()) return located(e.pos, r.status());
  return r;
}

Status Interpreter::eval_args(const CallArgsNode& node, CallArgs& out) {
  out.positional.reserve(node.positional.size());
  for (const ExprPtr& a : node.positional) {
    HEARTH_ASSIGN_OR_RETURN(Value v, eval(*a));
    out.positional.push_back(std::move(v));
  }
  if (node.star_args) {
    HEARTH_ASSIGN_OR_RETURN(Value v, eval(*node.star_args));
    HEARTH_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
    for (Value& item : items) out.positional.push_back(std::move(item));
  }
  for (const auto& [k, a] : node.keyword) {
    HEARTH_ASSIGN_OR_RETURN(Value v, eval(*a));
    out.keyword.emplace_back(k, std::move(v));
  }
  if (node.star_kwargs) {
    HEARTH_ASSIGN_OR_RETURN(Value v, eval(*node.star_kwargs));
    if (!v.is_dict()) return make_error(ErrorCode::kInvalidArgument, "argument after ** must be a dict");
    for (const auto& [k, item] : v.as_dict().entries) {
      if (!k.is_string()) return make_error(ErrorCode::kInvalidArgument, "keywords must be strings");
      out.keyword.emplace_back(k.as_string(), item);
    }
  }
  return Status::ok();
}

Result<Value> Interpreter::eval_filter(const Expr& e, const Value* block_input) {
  Value base;
  if (e.operand) {
    if (e.operand->kind == ExprKind::kFilter && block_input != nullptr) {
      HEARTH_ASSIGN_OR_RETURN(base, eval_filter(*e.operand, block_input));
    } else {
      HEARTH_ASSIGN_OR_RETURN(base, eval(*e.operand));
    }
  } else if (block_input != nullptr) {
    base = *block_input;
  }
  CallArgs args;
  HEARTH_RETURN_IF_ERROR(eval_args(e.args, args));
  auto r = apply_filter(*this, e.name, base, args);
  if (!r.is_ok()) return located(e.pos, r.status());
  return r;
}

Result<Value> Interpreter::eval_test(const Expr& e) {
  HEARTH_ASSIGN_OR_RETURN(Value base, eval(*e.operand));
  CallArgs args;
  HEARTH_RETURN_IF_ERROR(eval_args(e.args, args));
  HEARTH_ASSIGN_OR_RETURN(bool r, apply_test(*this, e.name, base, args));
  return Value::boolean(r != e.negated);
}

Result<Value> Interpreter::eval_inner(const Expr& e) {
  switch (e.kind) {
    case ExprKind::kLiteral: return e.literal;
    case ExprKind::kName: return lookup(e.name);
    case ExprKind::kList:
    case ExprKind::kTuple: {
      HEARTH_RETURN_IF_ERROR(check_items(e.items.size()));
      std::vector<Value> items;
      items.reserve(e.items.size());
      for (const ExprPtr& item : e.items) {
        HEARTH_ASSIGN_OR_RETURN(Value v, eval(*item));
        items.push_back(std::move(v));
      }
      return checked_list(std::move(items), e.kind == ExprKind::kTuple);
    }
    case ExprKind::kDict: {
      Dict d;
      for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
        HEARTH_ASSIGN_OR_RETURN(Value k, eval(*e.items[i]));
        if (k.is_list() || k.is_dict() || k.is_namespace() || k.is_undefined()) {
          return make_error(ErrorCode::kInvalidArgument, "unhashable type: '{}'", type_name(k));
        }
        HEARTH_ASSIGN_OR_RETURN(Value v, eval(*e.items[i + 1]));
        d.set(std::move(k), std::move(v));
      }
      return checked_dict(std::move(d));
    }
    case ExprKind::kGetAttr: {
      HEARTH_ASSIGN_OR_RETURN(Value obj, eval(*e.operand));
      return get_attr(obj, e.name);
    }
    case ExprKind::kGetItem: {
      HEARTH_ASSIGN_OR_RETURN(Value obj, eval(*e.operand));
      const Expr& index = *e.items.front();
      if (index.kind == ExprKind::kSlice) return eval_slice(obj, index);
      HEARTH_ASSIGN_OR_RETURN(Value key, eval(index));
      return get_item(obj, key);
    }
    case ExprKind::kSlice: return make_error(ErrorCode::kInvalidArgument, "slice outside of a subscript");
    case ExprKind::kCall: {
      HEARTH_ASSIGN_OR_RETURN(Value callee, eval(*e.operand));
      CallArgs args;
      HEARTH_RETURN_IF_ERROR(eval_args(e.args, args));
      return call(callee, args);
    }
    case ExprKind::kFilter: return eval_filter(e, nullptr);
    case ExprKind::kTest: return eval_test(e);
    case ExprKind::kUnary: {
      HEARTH_ASSIGN_OR_RETURN(Value v, eval(*e.operand));
      return unary_op(e.op, v);
    }
    case ExprKind::kBinary: {
      HEARTH_ASSIGN_OR_RETURN(Value a, eval(*e.items[0]));
      if (e.op == Op::kAnd) return truthy(a) ? eval(*e.items[1]) : a;
      if (e.op == Op::kOr) return truthy(a) ? a : eval(*e.items[1]);
      HEARTH_ASSIGN_OR_RETURN(Value b, eval(*e.items[1]));
      return binary_op(e.op, a, b);
    }
    case ExprKind::kCompare: {
      HEARTH_ASSIGN_OR_RETURN(Value left, eval(*e.items[0]));
      for (size_t i = 0; i < e.ops.size(); ++i) {
        HEARTH_ASSIGN_OR_RETURN(Value right, eval(*e.items[i + 1]));
        HEARTH_ASSIGN_OR_RETURN(bool ok, compare_op(e.ops[i], left, right));
        if (!ok) return Value::boolean(false);
        left = std::move(right);
      }
      return Value::boolean(true);
    }
    case ExprKind::kConcat: {
      std::string s;
      for (const ExprPtr& item : e.items) {
        HEARTH_ASSIGN_OR_RETURN(Value v, eval(*item));
        append_str(s, v, limits_.max_output_bytes);
        if (s.size() > limits_.max_output_bytes) return make_string(std::move(s));  // reports the limit
      }
      return make_string(std::move(s));
    }
    case ExprKind::kCondExpr: {
      HEARTH_ASSIGN_OR_RETURN(Value test, eval(*e.items[0]));
      if (truthy(test)) return eval(*e.items[1]);
      if (e.items[2]) return eval(*e.items[2]);
      return Value::undefined("the inline if-expression was false and has no else branch");
    }
  }
  return make_error(ErrorCode::kInternal, "unknown expression kind");
}

Result<Value> Interpreter::eval_slice(const Value& obj, const Expr& slice) {
  Value parts[3];
  for (int i = 0; i < 3; ++i) {
    if (slice.items[static_cast<size_t>(i)]) {
      HEARTH_ASSIGN_OR_RETURN(parts[i], eval(*slice.items[static_cast<size_t>(i)]));
    }
  }
  if (obj.is_undefined()) return undefined_error(obj);
  if (obj.is_list()) {
    const auto& items = obj.as_list().items;
    HEARTH_ASSIGN_OR_RETURN(SliceRange r,
                            adjust_slice(static_cast<int64_t>(items.size()), parts[0], parts[1], parts[2]));
    HEARTH_RETURN_IF_ERROR(charge_steps(static_cast<uint64_t>(r.length)));
    std::vector<Value> out;
    out.reserve(static_cast<size_t>(r.length));
    for (int64_t i = 0, k = r.start; i < r.length; ++i, k += r.step)
      out.push_back(items[static_cast<size_t>(k)]);
    return checked_list(std::move(out), obj.is_tuple());
  }
  if (obj.is_string()) {
    const std::string& s = obj.as_string();
    if (pystr::is_ascii(s)) {
      HEARTH_ASSIGN_OR_RETURN(SliceRange r,
                              adjust_slice(static_cast<int64_t>(s.size()), parts[0], parts[1], parts[2]));
      std::string out;
      out.reserve(static_cast<size_t>(r.length));
      for (int64_t i = 0, k = r.start; i < r.length; ++i, k += r.step)
        out.push_back(s[static_cast<size_t>(k)]);
      return make_string(std::move(out));
    }
    const std::u32string u = pystr::decode(s);
    HEARTH_ASSIGN_OR_RETURN(SliceRange r,
                            adjust_slice(static_cast<int64_t>(u.size()), parts[0], parts[1], parts[2]));
    std::u32string out;
    out.reserve(static_cast<size_t>(r.length));
    for (int64_t i = 0, k = r.start; i < r.length; ++i, k += r.step) out.push_back(u[static_cast<size_t>(k)]);
    return make_string(pystr::encode(out));
  }
  return Value::undefined(fmt::format("'{}' object cannot be sliced", type_name(obj)));
}

Result<Value> Interpreter::get_attr(const Value& obj, std::string_view name) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined: return undefined_error(obj);
    case Value::Kind::kDict: {
      if (auto m = find_method(obj, name)) return *m;
      if (const Value* v = obj.as_dict().find(name)) return *v;
      return Value::undefined(fmt::format("'dict object' has no attribute '{}'", name));
    }
    case Value::Kind::kNamespace: {
      if (const Value* v = obj.as_namespace().find(name)) return *v;
      return Value::undefined(fmt::format("'Namespace object' has no attribute '{}'", name));
    }
    default: {
      if (auto m = find_method(obj, name)) return *m;
      return Value::undefined(fmt::format("'{} object' has no attribute '{}'", type_name(obj), name));
    }
  }
}

Result<Value> Interpreter::get_item(const Value& obj, const Value& key) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined: return undefined_error(obj);
    case Value::Kind::kDict:
      if (const Value* v = obj.as_dict().find(key)) return *v;
      break;
    case Value::Kind::kList:
      if (key.is_int() || key.is_bool()) {
        const auto& items = obj.as_list().items;
        int64_t i = key.as_int();
        if (i < 0) i += static_cast<int64_t>(items.size());
        if (i >= 0 && i < static_cast<int64_t>(items.size())) return items[static_cast<size_t>(i)];
        return Value::undefined(fmt::format("{} index {} out of range", type_name(obj), key.as_int()));
      }
      break;
    case Value::Kind::kString:
      if (key.is_int() || key.is_bool()) {
        const std::string& s = obj.as_string();
        const bool ascii = pystr::is_ascii(s);
        const int64_t n = static_cast<int64_t>(ascii ? s.size() : pystr::length(s));
        int64_t i = key.as_int();
        if (i < 0) i += n;
        if (i < 0 || i >= n)
          return Value::undefined(fmt::format("string index {} out of range", key.as_int()));
        if (ascii) return Value::string(std::string(1, s[static_cast<size_t>(i)]));
        const std::u32string u = pystr::decode(s);
        return Value::string(pystr::encode(std::u32string_view(u).substr(static_cast<size_t>(i), 1)));
      }
      break;
    default: break;
  }
  if (key.is_string()) return get_attr(obj, key.as_string());
  return Value::undefined(fmt::format("'{} object' has no item {}", type_name(obj), to_repr(key, 80)));
}

Result<Value> Interpreter::unary_op(Op op, const Value& v) {
  if (op == Op::kNot) return Value::boolean(!truthy(v));
  if (v.is_undefined()) return undefined_error(v);
  if (!v.is_number()) {
    return make_error(ErrorCode::kInvalidArgument, "bad operand type for unary {}: '{}'",
                      op == Op::kNeg ? "-" : "+", type_name(v));
  }
  if (op == Op::kPos) return v.is_bool() ? Value::integer(v.as_int()) : v;
  if (v.is_float()) return Value::number(-v.as_double());
  if (v.as_int() == std::numeric_limits<int64_t>::min()) return overflow();
  return Value::integer(-v.as_int());
}

Result<Value> Interpreter::binary_op(Op op, const Value& a, const Value& b) {
  if (a.is_undefined()) return undefined_error(a);
  if (b.is_undefined()) return undefined_error(b);
  if (a.is_number() && b.is_number()) {
    const bool floats = a.is_float() || b.is_float();
    if (op == Op::kDiv) {
      if (b.as_double() == 0.0) return make_error(ErrorCode::kInvalidArgument, "division by zero");
      return Value::number(a.as_double() / b.as_double());
    }
    if (floats) {
      const double x = a.as_double(), y = b.as_double();
      switch (op) {
        case Op::kAdd: return Value::number(x + y);
        case Op::kSub: return Value::number(x - y);
        case Op::kMul: return Value::number(x * y);
        case Op::kFloorDiv:
        case Op::kMod: {
          if (y == 0.0)
            return make_error(ErrorCode::kInvalidArgument, "float modulo or floor division by zero");
          const auto [q, r] = float_divmod(x, y);
          return Value::number(op == Op::kFloorDiv ? q : r);
        }
        case Op::kPow: {
          if (x == 0.0 && y < 0)
            return make_error(ErrorCode::kInvalidArgument, "0.0 cannot be raised to a negative power");
          if (x < 0 && y != std::floor(y)) {
            return make_error(ErrorCode::kUnsupported,
                              "a negative number raised to a fractional power is complex");
          }
          const double r = std::pow(x, y);
          if (std::isinf(r) && std::isfinite(x) && std::isfinite(y)) {
            return make_error(ErrorCode::kOutOfRange, "float power overflow");
          }
          return Value::number(r);
        }
        default: break;
      }
    } else {
      const int64_t x = a.as_int(), y = b.as_int();
      int64_t r = 0;
      switch (op) {
        case Op::kAdd:
          if (__builtin_add_overflow(x, y, &r)) return overflow();
          return Value::integer(r);
        case Op::kSub:
          if (__builtin_sub_overflow(x, y, &r)) return overflow();
          return Value::integer(r);
        case Op::kMul:
          if (__builtin_mul_overflow(x, y, &r)) return overflow();
          return Value::integer(r);
        case Op::kFloorDiv:
        case Op::kMod: {
          if (y == 0) return make_error(ErrorCode::kInvalidArgument, "integer division or modulo by zero");
          if (x == std::numeric_limits<int64_t>::min() && y == -1) {
            if (op == Op::kMod) return Value::integer(0);
            return overflow();
          }
          int64_t q = x / y, m = x % y;
          if (m != 0 && ((m < 0) != (y < 0))) {
            q -= 1;
            m += y;
          }
          return Value::integer(op == Op::kFloorDiv ? q : m);
        }
        case Op::kPow: {
          if (y < 0) {
            if (x == 0)
              return make_error(ErrorCode::kInvalidArgument, "0 cannot be raised to a negative power");
            return Value::number(std::pow(static_cast<double>(x), static_cast<double>(y)));
          }
          int64_t result = 1, base = x, e = y;
          while (e > 0) {
            if (e & 1) {
              if (__builtin_mul_overflow(result, base, &result)) return overflow();
            }
            e >>= 1;
            if (e > 0 && __builtin_mul_overflow(base, base, &base)) return overflow();
          }
          return Value::integer(result);
        }
        default: break;
      }
    }
  }
  switch (op) {
    case Op::kAdd:
      if (a.is_string() && b.is_string()) {
        if (a.as_string().size() + b.as_string().size() > limits_.max_output_bytes) {
          return make_string(std::string(limits_.max_output_bytes + 1, ' '));  // reports the limit
        }
        return make_string(a.as_string() + b.as_string());
      }
      if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
        const auto& x = a.as_list().items;
        const auto& y = b.as_list().items;
        HEARTH_RETURN_IF_ERROR(check_items(x.size() + y.size()));
        HEARTH_RETURN_IF_ERROR(charge_steps(x.size() + y.size()));
        std::vector<Value> out(x);
        out.insert(out.end(), y.begin(), y.end());
        return checked_list(std::move(out), a.is_tuple());
      }
      if (a.is_string()) {
        return make_error(ErrorCode::kInvalidArgument, "can only concatenate str (not \"{}\") to str",
                          type_name(b));
      }
      break;
    case Op::kMul: {
      const Value* seq =
          (a.is_string() || a.is_list()) ? &a : ((b.is_string() || b.is_list()) ? &b : nullptr);
      const Value* count = seq == &a ? &b : &a;
      if (seq == nullptr || !(count->is_int() || count->is_bool())) break;
      const int64_t n = std::max<int64_t>(0, count->as_int());
      if (seq->is_string()) {
        const uint64_t size = seq->as_string().size();
        if (size > 0 && static_cast<uint64_t>(n) > limits_.max_output_bytes / size) {
          return make_error(ErrorCode::kOutOfRange, "string repetition exceeds max_output_bytes ({})",
                            limits_.max_output_bytes);
        }
        std::string out;
        out.reserve(size * static_cast<uint64_t>(n));
        for (int64_t i = 0; i < n; ++i) out += seq->as_string();
        return make_string(std::move(out));
      }
      const auto& items = seq->as_list().items;
      if (!items.empty() && static_cast<uint64_t>(n) > limits_.max_collection_items / items.size()) {
        return check_items(limits_.max_collection_items + 1);
      }
      HEARTH_RETURN_IF_ERROR(charge_steps(items.size() * static_cast<uint64_t>(n)));
      std::vector<Value> out;
      out.reserve(items.size() * static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) out.insert(out.end(), items.begin(), items.end());
      return checked_list(std::move(out), seq->is_tuple());
    }
    case Op::kMod:
      if (a.is_string()) {
        HEARTH_ASSIGN_OR_RETURN(std::string s, percent_format(a.as_string(), b, limits_.max_output_bytes));
        return make_string(std::move(s));
      }
      break;
    default: break;
  }
  return unsupported(op_text(op), a, b);
}

Result<bool> Interpreter::compare_op(Op op, const Value& a, const Value& b) {
  switch (op) {
    case Op::kEq: return values_equal(a, b);
    case Op::kNe: {
      HEARTH_ASSIGN_OR_RETURN(bool eq, values_equal(a, b));
      return !eq;
    }
    case Op::kIn:
    case Op::kNotIn: {
      bool found = false;
      switch (b.kind()) {
        case Value::Kind::kUndefined: found = false; break;
        case Value::Kind::kString:
          if (!a.is_string()) {
            if (a.is_undefined()) return undefined_error(a);
            return make_error(ErrorCode::kInvalidArgument,
                              "'in <string>' requires string as left operand, not {}", type_name(a));
          }
          found = b.as_string().find(a.as_string()) != std::string::npos;
          break;
        case Value::Kind::kList: {
          const auto& items = b.as_list().items;
          HEARTH_RETURN_IF_ERROR(charge_steps(items.size()));
          for (const Value& item : items) {
            HEARTH_ASSIGN_OR_RETURN(found, values_equal(item, a));
            if (found) break;
          }
          break;
        }
        case Value::Kind::kDict: found = b.as_dict().find(a) != nullptr; break;
        default:
          return make_error(ErrorCode::kInvalidArgument, "argument of type '{}' is not iterable",
                            type_name(b));
      }
      return op == Op::kIn ? found : !found;
    }
    default: break;
  }
  HEARTH_ASSIGN_OR_RETURN(int c, values_compare(a, b));
  switch (op) {
    case Op::kLt: return c == -1;
    case Op::kLe: return c == -1 || c == 0;
    case Op::kGt: return c == 1;
    case Op::kGe: return c == 1 || c == 0;
    default: return false;
  }
}

}  // namespace hearth::jinja
