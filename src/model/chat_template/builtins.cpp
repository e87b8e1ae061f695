// Builtin tests and global functions; argument binding shared by all builtins.
#include "model/chat_template/builtins.h"

#include <cmath>
#include <ctime>

#include "model/chat_template/interpreter.h"
#include "model/chat_template/py_format.h"
#include "model/chat_template/py_string.h"

namespace hearth::jinja {

ArgBinder::ArgBinder(std::string_view what, CallArgs& args, std::initializer_list<std::string_view> params)
    : bound_(params.size(), nullptr) {
  if (args.positional.size() > params.size()) {
    status_ = make_error(ErrorCode::kInvalidArgument, "{}() takes at most {} argument(s), {} given", what,
                         params.size(), args.positional.size());
    return;
  }
  for (size_t i = 0; i < args.positional.size(); ++i) bound_[i] = &args.positional[i];
  for (const auto& [k, v] : args.keyword) {
    size_t i = 0;
    for (std::string_view p : params) {
      if (p == k) break;
      ++i;
    }
    if (i == params.size()) {
      status_ =
          make_error(ErrorCode::kInvalidArgument, "{}() got an unexpected keyword argument '{}'", what, k);
      return;
    }
    if (bound_[i] != nullptr) {
      status_ =
          make_error(ErrorCode::kInvalidArgument, "{}() got multiple values for argument '{}'", what, k);
      return;
    }
    bound_[i] = &v;
  }
}

const Value* ArgBinder::get(size_t i) const {
  return i < bound_.size() ? bound_[i] : nullptr;
}

// ---- tests ---------------------------------------------------------------------------------

namespace {

using TestFn = Result<bool> (*)(Interpreter&, const Value&, const Value* arg);

Status need_arg(std::string_view test, const Value* arg) {
  if (arg == nullptr) return make_error(ErrorCode::kInvalidArgument, "test '{}' needs an argument", test);
  return Status::ok();
}

Result<double> number_for_test(std::string_view test, const Value& v) {
  if (v.is_number()) return v.as_double();
  if (v.is_undefined()) return Status(ErrorCode::kInvalidArgument, std::string(v.undefined_hint()));
  return make_error(ErrorCode::kInvalidArgument, "test '{}' needs a number, not {}", test, type_name(v));
}

bool same_object(const Value& a, const Value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return true;
    case Value::Kind::kBool: return a.as_bool() == b.as_bool();
    case Value::Kind::kInt: return a.as_int() == b.as_int() && a.as_int() >= -5 && a.as_int() <= 256;
    case Value::Kind::kFloat: return false;
    default: return a.payload() == b.payload();
  }
}

Result<bool> ordered(Interpreter& in, const Value& v, const Value* arg, int want_a, int want_b) {
  HEARTH_RETURN_IF_ERROR(need_arg("comparison", arg));
  HEARTH_ASSIGN_OR_RETURN(int c, in.values_compare(v, *arg));
  return c == want_a || c == want_b;
}

struct TestEntry {
  std::string_view name;
  TestFn fn;
};

const TestEntry kTests[] = {
    {"defined", [](Interpreter&, const Value& v, const Value*) -> Result<bool> { return !v.is_undefined(); }},
    {"undefined",
     [](Interpreter&, const Value& v, const Value*) -> Result<bool> { return v.is_undefined(); }},
    {"none", [](Interpreter&, const Value& v, const Value*) -> Result<bool> { return v.is_none(); }},
    {"boolean", [](Interpreter&, const Value& v, const Value*) -> Result<bool> { return v.is_bool(); }},
    {"true",
     [](Interpreter&, const Value& v, const Value*) -> Result<bool> { return v.is_bool() && v.as_bool(); }},
    {"false",
     [](Interpreter&, const Value& v, const Value*) -> Result<bool> { return v.is_bool() && !v.as_bool(); }},
    {"integer", [](Interpreter&, const Value& v, const Value*) -> Result<bool> { return v.is_int(); }},
    {"float", [](Interpreter&, const Value& v, const Value*) -> Result<bool> { return v.is_float(); }},
    {"number", [](Interpreter&, const Value& v, const Value*) -> Result<bool> { return v.is_number(); }},
    {"string", [](Interpreter&, const Value& v, const Value*) -> Result<bool> { return v.is_string(); }},
    {"mapping", [](Interpreter&, const Value& v, const Value*) -> Result<bool> { return v.is_dict(); }},
    {"iterable",
     [](Interpreter&, const Value& v, const Value*) -> Result<bool> {
       return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined() || v.is_loop();
     }},
    {"sequence",
     [](Interpreter&, const Value& v, const Value*) -> Result<bool> {
       return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
     }},
    {"callable",
     [](Interpreter&, const Value& v, const Value*) -> Result<bool> {
       return v.is_callable() || v.is_undefined() || v.is_loop();
     }},
    {"escaped", [](Interpreter&, const Value&, const Value*) -> Result<bool> { return false; }},
    {"odd",
     [](Interpreter&, const Value& v, const Value*) -> Result<bool> {
       HEARTH_ASSIGN_OR_RETURN(double d, number_for_test("odd", v));
       return std::fmod(std::fabs(d), 2.0) == 1.0;
     }},
    {"even",
     [](Interpreter&, const Value& v, const Value*) -> Result<bool> {
       HEARTH_ASSIGN_OR_RETURN(double d, number_for_test("even", v));
       return std::fmod(std::fabs(d), 2.0) == 0.0;
     }},
    {"divisibleby",
     [](Interpreter&, const Value& v, const Value* arg) -> Result<bool> {
       HEARTH_RETURN_IF_ERROR(need_arg("divisibleby", arg));
       HEARTH_ASSIGN_OR_RETURN(double d, number_for_test("divisibleby", v));
       HEARTH_ASSIGN_OR_RETURN(double n, number_for_test("divisibleby", *arg));
       if (n == 0) return make_error(ErrorCode::kInvalidArgument, "divisibleby(0): division by zero");
       return std::fmod(d, n) == 0.0;
     }},
    {"lower",
     [](Interpreter& in, const Value& v, const Value*) -> Result<bool> {
       HEARTH_ASSIGN_OR_RETURN(const std::string s, in.str(v));
       bool cased = false;
       for (char32_t c : pystr::decode(s)) {
         if (pystr::is_upper(c)) return false;
         cased = cased || pystr::is_lower(c);
       }
       return cased;
     }},
    {"upper",
     [](Interpreter& in, const Value& v, const Value*) -> Result<bool> {
       HEARTH_ASSIGN_OR_RETURN(const std::string s, in.str(v));
       bool cased = false;
       for (char32_t c : pystr::decode(s)) {
         if (pystr::is_lower(c)) return false;
         cased = cased || pystr::is_upper(c);
       }
       return cased;
     }},
    {"sameas",
     [](Interpreter&, const Value& v, const Value* arg) -> Result<bool> {
       HEARTH_RETURN_IF_ERROR(need_arg("sameas", arg));
       return same_object(v, *arg);
     }},
    {"in",
     [](Interpreter& in, const Value& v, const Value* arg) -> Result<bool> {
       HEARTH_RETURN_IF_ERROR(need_arg("in", arg));
       if (arg->is_string()) {
         if (!v.is_string()) {
           return make_error(ErrorCode::kInvalidArgument, "'in <string>' requires string as left operand");
         }
         return arg->as_string().find(v.as_string()) != std::string::npos;
       }
       if (arg->is_list()) {
         for (const Value& item : arg->as_list().items) {
           HEARTH_ASSIGN_OR_RETURN(bool eq, in.values_equal(item, v));
           if (eq) return true;
         }
         return false;
       }
       if (arg->is_dict()) return arg->as_dict().find(v) != nullptr;
       if (arg->is_undefined()) return false;
       return make_error(ErrorCode::kInvalidArgument, "argument of type '{}' is not iterable",
                         type_name(*arg));
     }},
    {"eq",
     [](Interpreter& in, const Value& v, const Value* arg) -> Result<bool> {
       HEARTH_RETURN_IF_ERROR(need_arg("eq", arg));
       return in.values_equal(v, *arg);
     }},
    {"ne",
     [](Interpreter& in, const Value& v, const Value* arg) -> Result<bool> {
       HEARTH_RETURN_IF_ERROR(need_arg("ne", arg));
       HEARTH_ASSIGN_OR_RETURN(bool eq, in.values_equal(v, *arg));
       return !eq;
     }},
    {"lt", [](Interpreter& in, const Value& v, const Value* arg) { return ordered(in, v, arg, -1, -1); }},
    {"le", [](Interpreter& in, const Value& v, const Value* arg) { return ordered(in, v, arg, -1, 0); }},
    {"gt", [](Interpreter& in, const Value& v, const Value* arg) { return ordered(in, v, arg, 1, 1); }},
    {"ge", [](Interpreter& in, const Value& v, const Value* arg) { return ordered(in, v, arg, 1, 0); }},
    {"filter",
     [](Interpreter&, const Value& v, const Value*) -> Result<bool> {
       return v.is_string() && is_known_filter(v.as_string());
     }},
    {"test",
     [](Interpreter&, const Value& v, const Value*) -> Result<bool> {
       return v.is_string() && is_known_test(v.as_string());
     }},
};

std::string_view canonical_test(std::string_view name) {
  if (name == "equalto" || name == "==") return "eq";
  if (name == "!=") return "ne";
  if (name == "lessthan" || name == "<") return "lt";
  if (name == "<=") return "le";
  if (name == "greaterthan" || name == ">") return "gt";
  if (name == ">=") return "ge";
  return name;
}

const TestEntry* find_test(std::string_view name) {
  name = canonical_test(name);
  for (const TestEntry& t : kTests) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace

bool is_known_test(std::string_view name) {
  return find_test(name) != nullptr;
}

Result<bool> apply_test(Interpreter& in, std::string_view name, const Value& value, CallArgs& args) {
  const TestEntry* t = find_test(name);
  if (t == nullptr) return make_error(ErrorCode::kInvalidArgument, "no test named '{}'", name);
  if (!args.keyword.empty() || args.positional.size() > 1) {
    return make_error(ErrorCode::kInvalidArgument, "test '{}' takes at most one positional argument", name);
  }
  return t->fn(in, value, args.positional.empty() ? nullptr : &args.positional.front());
}

// ---- globals -------------------------------------------------------------------------------

namespace {

Result<Value> global_range(Interpreter& in, CallArgs& args) {
  if (!args.keyword.empty())
    return make_error(ErrorCode::kInvalidArgument, "range() takes no keyword arguments");
  const size_t n = args.positional.size();
  if (n < 1 || n > 3)
    return make_error(ErrorCode::kInvalidArgument, "range() takes 1 to 3 arguments, {} given", n);
  int64_t v[3];
  for (size_t i = 0; i < n; ++i) {
    const Value& a = args.positional[i];
    if (!a.is_int() && !a.is_bool()) {
      return make_error(ErrorCode::kInvalidArgument, "range() arguments must be integers, not {}",
                        type_name(a));
    }
    v[i] = a.as_int();
  }
  const int64_t start = n == 1 ? 0 : v[0];
  const int64_t stop = n == 1 ? v[0] : v[1];
  const int64_t step = n == 3 ? v[2] : 1;
  if (step == 0) return make_error(ErrorCode::kInvalidArgument, "range() arg 3 must not be zero");
  // Length in unsigned arithmetic: start, stop and step may be anywhere in int64.
  uint64_t len = 0;
  if (step > 0 && start < stop) {
    len = (static_cast<uint64_t>(stop) - static_cast<uint64_t>(start) - 1) / static_cast<uint64_t>(step) + 1;
  }
  if (step < 0 && start > stop) {
    len =
        (static_cast<uint64_t>(start) - static_cast<uint64_t>(stop) - 1) / (0 - static_cast<uint64_t>(step)) +
        1;
  }
  if (len > static_cast<uint64_t>(in.limits().max_range)) {
    return make_error(ErrorCode::kOutOfRange, "range() of {} items exceeds max_range ({})",
                      static_cast<int64_t>(len), in.limits().max_range);
  }
  HEARTH_RETURN_IF_ERROR(in.charge_steps(len));
  std::vector<Value> out;
  out.reserve(static_cast<size_t>(len));
  for (uint64_t i = 0; i < len; ++i) out.push_back(Value::integer(start + static_cast<int64_t>(i) * step));
  return checked_list(std::move(out));
}

Status merge_mapping(const Value& m, std::vector<std::pair<std::string, Value>>& out, std::string_view what) {
  if (!m.is_dict())
    return make_error(ErrorCode::kInvalidArgument, "{}() positional argument must be a dict", what);
  for (const auto& [k, v] : m.as_dict().entries) {
    if (!k.is_string()) return make_error(ErrorCode::kInvalidArgument, "{}() keys must be strings", what);
    out.emplace_back(k.as_string(), v);
  }
  return Status::ok();
}

Result<Value> global_namespace(Interpreter&, CallArgs& args) {
  if (args.positional.size() > 1)
    return make_error(ErrorCode::kInvalidArgument, "namespace() takes at most one dict");
  std::vector<std::pair<std::string, Value>> attrs;
  if (!args.positional.empty())
    HEARTH_RETURN_IF_ERROR(merge_mapping(args.positional.front(), attrs, "namespace"));
  for (auto& kv : args.keyword) attrs.push_back(kv);
  Value ns = Value::new_namespace();
  for (auto& [k, v] : attrs) {
    if (holds_reference(v)) {
      return make_error(ErrorCode::kUnsupported,
                        "cannot store a namespace, loop object or bound method inside a namespace");
    }
    ns.as_namespace().set(k, std::move(v));
  }
  return ns;
}

Result<Value> global_dict(Interpreter&, CallArgs& args) {
  if (args.positional.size() > 1)
    return make_error(ErrorCode::kInvalidArgument, "dict() takes at most one dict");
  std::vector<std::pair<std::string, Value>> items;
  if (!args.positional.empty()) HEARTH_RETURN_IF_ERROR(merge_mapping(args.positional.front(), items, "dict"));
  for (auto& kv : args.keyword) items.push_back(kv);
  Dict d;
  for (auto& [k, v] : items) d.set(Value::string(k), std::move(v));
  return checked_dict(std::move(d));
}

Result<Value> global_raise_exception(Interpreter&, CallArgs& args) {
  const std::string message = args.positional.empty() ? std::string() : to_str(args.positional.front(), 4096);
  return make_error(ErrorCode::kInvalidArgument, "template raised an exception: {}", message);
}

Result<Value> global_strftime_now(Interpreter& in, CallArgs& args) {
  ArgBinder b("strftime_now", args, {"format"});
  HEARTH_RETURN_IF_ERROR(b.status());
  const Value* f = b.get(0);
  if (f == nullptr || !f->is_string()) {
    return make_error(ErrorCode::kInvalidArgument, "strftime_now() needs a format string");
  }
  if (f->as_string().size() > 256)
    return make_error(ErrorCode::kOutOfRange, "strftime_now() format is too long");
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[4096];
  const size_t n = std::strftime(buf, sizeof(buf), f->as_string().c_str(), &tm);
  return in.make_string(std::string(buf, n));
}

struct GlobalEntry {
  std::string_view name;
  Value value;
};

Value builtin(const char* name, BuiltinFn fn) {
  Callable c;
  c.type = Callable::Type::kBuiltin;
  c.name = name;
  c.builtin = fn;
  return Value::callable(std::move(c));
}

const std::vector<GlobalEntry>& globals() {
  static const std::vector<GlobalEntry> kGlobals = {
      {"range", builtin("range", global_range)},
      {"namespace", builtin("namespace", global_namespace)},
      {"dict", builtin("dict", global_dict)},
      {"raise_exception", builtin("raise_exception", global_raise_exception)},
      {"strftime_now", builtin("strftime_now", global_strftime_now)},
  };
  return kGlobals;
}

}  // namespace

const Value* find_global(std::string_view name) {
  for (const GlobalEntry& g : globals()) {
    if (g.name == name) return &g.value;
  }
  return nullptr;
}

}  // namespace hearth::jinja
