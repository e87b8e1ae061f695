// Jinja's builtin filters, with transformers' tojson (json.dumps, ensure_ascii=False, no key
// sorting, no HTML escaping). Filters that return generators in Jinja (map, select, reverse,
// unique, items ...) return lists here; they print differently only when printed unconsumed.
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "model/chat_template/builtins.h"
#include "model/chat_template/filters_internal.h"
#include "model/chat_template/interpreter.h"
#include "model/chat_template/py_format.h"
#include "model/chat_template/py_string.h"

namespace hearth::jinja {
namespace {

using namespace filters;

// ---- filters -------------------------------------------------------------------------------

Result<Value> f_abs(Interpreter&, const Value& v, CallArgs& args) {
  if (!args.positional.empty() || !args.keyword.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "abs takes no arguments");
  }
  if (v.is_float()) return Value::number(std::fabs(v.as_double()));
  if (v.is_int() || v.is_bool()) {
    if (v.as_int() == std::numeric_limits<int64_t>::min())
      return make_error(ErrorCode::kOutOfRange, "integer overflow");
    return Value::integer(std::llabs(v.as_int()));
  }
  if (v.is_undefined()) return undefined_error(v);
  return make_error(ErrorCode::kInvalidArgument, "bad operand type for abs(): '{}'", type_name(v));
}

Result<Value> f_attr(Interpreter& in, const Value& v, CallArgs& args) {
  ArgBinder b("attr", args, {"name"});
  HEARTH_RETURN_IF_ERROR(b.status());
  if (b.get(0) == nullptr || !b.get(0)->is_string()) {
    return make_error(ErrorCode::kInvalidArgument, "attr() needs an attribute name");
  }
  const std::string& name = b.get(0)->as_string();
  if (v.is_dict()) {  // attribute lookup only: dict keys are items, not attributes
    if (auto m = find_method(v, name)) return *m;
    return Value::undefined(fmt::format("'dict object' has no attribute '{}'", name));
  }
  return in.get_attr(v, name);
}

Result<Value> f_string_transform(Interpreter& in, const Value& v, CallArgs& args,
                                 std::string (*fn)(std::string_view), std::string_view name) {
  if (!args.positional.empty() || !args.keyword.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "{} takes no arguments", name);
  }
  HEARTH_ASSIGN_OR_RETURN(std::string s, in.str(v));
  return in.make_string(fn(s));
}

Result<Value> f_capitalize(Interpreter& in, const Value& v, CallArgs& args) {
  return f_string_transform(in, v, args, pystr::capitalize, "capitalize");
}
Result<Value> f_upper(Interpreter& in, const Value& v, CallArgs& args) {
  return f_string_transform(in, v, args, pystr::upper, "upper");
}
Result<Value> f_lower(Interpreter& in, const Value& v, CallArgs& args) {
  return f_string_transform(in, v, args, pystr::lower, "lower");
}
Result<Value> f_title(Interpreter& in, const Value& v, CallArgs& args) {
  return f_string_transform(in, v, args, pystr::jinja_title, "title");
}

Result<Value> f_center(Interpreter& in, const Value& v, CallArgs& args) {
  ArgBinder b("center", args, {"width"});
  HEARTH_RETURN_IF_ERROR(b.status());
  CallArgs m;
  m.positional.push_back(b.get(0) != nullptr ? *b.get(0) : Value::integer(80));
  HEARTH_ASSIGN_OR_RETURN(std::string s, in.str(v));
  return call_method(in, Value::string(std::move(s)), "center", m);
}

Result<Value> f_length(Interpreter&, const Value& v, CallArgs& args) {
  if (!args.positional.empty() || !args.keyword.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "length takes no arguments");
  }
  switch (v.kind()) {
    case Value::Kind::kUndefined: return Value::integer(0);
    case Value::Kind::kString: return Value::integer(static_cast<int64_t>(pystr::length(v.as_string())));
    case Value::Kind::kList: return Value::integer(static_cast<int64_t>(v.as_list().items.size()));
    case Value::Kind::kDict: return Value::integer(static_cast<int64_t>(v.as_dict().entries.size()));
    case Value::Kind::kLoop: return Value::integer(static_cast<int64_t>(v.as_loop().items->size()));
    default: return make_error(ErrorCode::kInvalidArgument, "object of type '{}' has no len()", type_name(v));
  }
}

Result<Value> f_default(Interpreter&, const Value& v, CallArgs& args) {
  ArgBinder b("default", args, {"default_value", "boolean"});
  HEARTH_RETURN_IF_ERROR(b.status());
  const bool use_default = v.is_undefined() || (flag(b.get(1), false) && !truthy(v));
  if (!use_default) return v;
  return b.get(0) != nullptr ? *b.get(0) : Value::string("");
}

Result<Value> f_escape(Interpreter& in, const Value& v, CallArgs& args) {
  if (!args.positional.empty() || !args.keyword.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "escape takes no arguments");
  }
  HEARTH_ASSIGN_OR_RETURN(std::string s, in.str(v));
  return in.make_string(html_escape(s));
}

// Python's float(str): optional whitespace, sign, digits with single underscores, inf/nan.
std::optional<double> parse_python_float(std::string_view s) {
  const std::string t = pystr::strip(s, std::nullopt, true, true);
  if (t.empty()) return std::nullopt;
  std::string clean;
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (c == '_') {
      const bool between = i > 0 && i + 1 < t.size() && std::isdigit(static_cast<unsigned char>(t[i - 1])) &&
                           std::isdigit(static_cast<unsigned char>(t[i + 1]));
      if (!between) return std::nullopt;
      continue;
    }
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '+' || c == '-'))
      return std::nullopt;
    if (c == 'x' || c == 'X' || c == 'p' || c == 'P') return std::nullopt;  // strtod's hex floats
    clean.push_back(c);
  }
  char* end = nullptr;
  const double d = std::strtod(clean.c_str(), &end);
  if (end != clean.c_str() + clean.size()) return std::nullopt;
  return d;
}

std::optional<int64_t> parse_python_int(std::string_view s, int base) {
  std::string t = pystr::strip(s, std::nullopt, true, true);
  bool neg = false;
  size_t i = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) neg = t[i++] == '-';
  if (base == 16 || base == 8 || base == 2) {
    const char p = base == 16 ? 'x' : (base == 8 ? 'o' : 'b');
    if (i + 1 < t.size() && t[i] == '0' && (t[i + 1] | 0x20) == p) i += 2;
  }
  if (i >= t.size()) return std::nullopt;
  uint64_t v = 0;
  constexpr uint64_t kLimit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1;
  bool prev_digit = false;
  for (; i < t.size(); ++i) {
    const char c = t[i];
    if (c == '_') {
      if (!prev_digit) return std::nullopt;
      prev_digit = false;
      continue;
    }
    int d = -1;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
      d = (c | 0x20) - 'a' + 10;
    if (d < 0 || d >= base) return std::nullopt;
    if (v > (kLimit - static_cast<uint64_t>(d)) / static_cast<uint64_t>(base)) return std::nullopt;
    v = v * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
    prev_digit = true;
  }
  if (!prev_digit) return std::nullopt;
  if (neg) return static_cast<int64_t>(0 - v);
  if (v == kLimit) return std::nullopt;
  return static_cast<int64_t>(v);
}

Result<Value> f_float(Interpreter&, const Value& v, CallArgs& args) {
  ArgBinder b("float", args, {"default"});
  HEARTH_RETURN_IF_ERROR(b.status());
  const Value dflt = b.get(0) != nullptr ? *b.get(0) : Value::number(0.0);
  if (v.is_undefined()) return undefined_error(v);
  if (v.is_number()) return Value::number(v.as_double());
  if (v.is_string()) {
    if (auto d = parse_python_float(v.as_string())) return Value::number(*d);
  }
  return dflt;
}

Result<Value> f_int(Interpreter&, const Value& v, CallArgs& args) {
  ArgBinder b("int", args, {"default", "base"});
  HEARTH_RETURN_IF_ERROR(b.status());
  const Value dflt = b.get(0) != nullptr ? *b.get(0) : Value::integer(0);
  HEARTH_ASSIGN_OR_RETURN(int64_t base, int_param(b.get(1), 10, "int base"));
  if (base != 2 && base != 8 && base != 10 && base != 16) {
    return make_error(ErrorCode::kUnsupported, "int base must be 2, 8, 10 or 16");
  }
  if (v.is_undefined()) return undefined_error(v);
  if (v.is_int() || v.is_bool()) return Value::integer(v.as_int());
  if (v.is_float()) {
    const double d = std::trunc(v.as_double());
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return dflt;
    return Value::integer(static_cast<int64_t>(d));
  }
  if (v.is_string()) {
    if (auto i = parse_python_int(v.as_string(), static_cast<int>(base))) return Value::integer(*i);
    if (auto d = parse_python_float(v.as_string())) {
      const double t = std::trunc(*d);
      if (std::isfinite(t) && std::fabs(t) < 9.2e18) return Value::integer(static_cast<int64_t>(t));
    }
  }
  return dflt;
}

Result<Value> f_format(Interpreter& in, const Value& v, CallArgs& args) {
  if (!v.is_string()) return make_error(ErrorCode::kInvalidArgument, "format needs a format string");
  if (!args.positional.empty() && !args.keyword.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "format takes positional or keyword arguments, not both");
  }
  Value fargs;
  if (!args.keyword.empty()) {
    Dict d;
    for (auto& [k, x] : args.keyword) d.set(Value::string(k), x);
    fargs = Value::dict(std::move(d));
  } else {
    fargs = Value::list(args.positional, true);
  }
  HEARTH_ASSIGN_OR_RETURN(std::string out,
                          percent_format(v.as_string(), fargs, in.limits().max_output_bytes));
  return in.make_string(std::move(out));
}

Result<Value> f_indent(Interpreter& in, const Value& v, CallArgs& args) {
  ArgBinder b("indent", args, {"width", "first", "blank"});
  HEARTH_RETURN_IF_ERROR(b.status());
  if (v.is_undefined()) return undefined_error(v);
  if (!v.is_string())
    return make_error(ErrorCode::kInvalidArgument, "indent needs a string, not {}", type_name(v));
  std::string indention;
  if (b.get(0) != nullptr && b.get(0)->is_string()) {
    indention = b.get(0)->as_string();
  } else {
    HEARTH_ASSIGN_OR_RETURN(int64_t width, int_param(b.get(0), 4, "indent width"));
    if (width > 1024) return make_error(ErrorCode::kOutOfRange, "indent width {} is too large", width);
    indention.assign(static_cast<size_t>(std::max<int64_t>(0, width)), ' ');
  }
  const std::string s = v.as_string() + "\n";
  const std::vector<std::string> lines = pystr::splitlines(s, false);
  if (static_cast<uint64_t>(lines.size()) * indention.size() + s.size() > in.limits().max_output_bytes) {
    return make_error(ErrorCode::kOutOfRange, "indent result exceeds max_output_bytes");
  }
  std::string rv;
  if (flag(b.get(2), false)) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i > 0) rv += "\n" + indention;
      rv += lines[i];
    }
  } else if (!lines.empty()) {
    rv = lines.front();
    for (size_t i = 1; i < lines.size(); ++i) {
      rv += '\n';
      if (!lines[i].empty()) rv += indention;
      rv += lines[i];
    }
  }
  if (flag(b.get(1), false)) rv = indention + rv;
  return in.make_string(std::move(rv));
}

Result<Value> f_replace(Interpreter& in, const Value& v, CallArgs& args) {
  ArgBinder b("replace", args, {"old", "new", "count"});
  HEARTH_RETURN_IF_ERROR(b.status());
  if (b.get(0) == nullptr || b.get(1) == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "replace needs old and new strings");
  }
  CallArgs m;
  HEARTH_ASSIGN_OR_RETURN(std::string old, in.str(*b.get(0)));
  HEARTH_ASSIGN_OR_RETURN(std::string repl, in.str(*b.get(1)));
  HEARTH_ASSIGN_OR_RETURN(std::string s, in.str(v));
  m.positional = {Value::string(std::move(old)), Value::string(std::move(repl))};
  if (b.get(2) != nullptr && !b.get(2)->is_none()) m.positional.push_back(*b.get(2));
  return call_method(in, Value::string(std::move(s)), "replace", m);
}

double round_half_even(double x, int64_t precision) {
  if (!std::isfinite(x)) return x;
  if (precision >= 0) {
    if (precision > 300) return x;
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(precision), x);  // exact, ties to even
    return std::strtod(buf, nullptr);
  }
  if (precision < -308) return 0.0 * x;
  const double p = std::pow(10.0, static_cast<double>(-precision));
  return std::nearbyint(x / p) * p;
}

Result<Value> f_round(Interpreter&, const Value& v, CallArgs& args) {
  ArgBinder b("round", args, {"precision", "method"});
  HEARTH_RETURN_IF_ERROR(b.status());
  HEARTH_ASSIGN_OR_RETURN(int64_t precision, int_param(b.get(0), 0, "round precision"));
  std::string method = "common";
  if (b.get(1) != nullptr) method = to_str(*b.get(1), 64);
  if (method != "common" && method != "ceil" && method != "floor") {
    return make_error(ErrorCode::kInvalidArgument, "method must be common, ceil or floor");
  }
  if (v.is_undefined()) return undefined_error(v);
  if (!v.is_number())
    return make_error(ErrorCode::kInvalidArgument, "round needs a number, not {}", type_name(v));
  if (method == "common") {
    if (!v.is_float()) {
      if (precision >= 0) return Value::integer(v.as_int());
      return Value::integer(
          static_cast<int64_t>(round_half_even(static_cast<double>(v.as_int()), precision)));
    }
    return Value::number(round_half_even(v.as_double(), precision));
  }
  if (precision < -308 || precision > 308)
    return make_error(ErrorCode::kOutOfRange, "round precision out of range");
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double x = v.as_double() * scale;
  return Value::number((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
}

Result<Value> f_safe(Interpreter& in, const Value& v, CallArgs&) {
  if (v.is_string()) return v;
  HEARTH_ASSIGN_OR_RETURN(std::string s, in.str(v));
  return Value::string(std::move(s));
}

Result<Value> f_string(Interpreter& in, const Value& v, CallArgs&) {
  if (v.is_string()) return v;
  HEARTH_ASSIGN_OR_RETURN(std::string s, in.str(v));
  return Value::string(std::move(s));
}

Result<Value> f_tojson(Interpreter& in, const Value& v, CallArgs& args) {
  ArgBinder b("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"});
  HEARTH_RETURN_IF_ERROR(b.status());
  JsonOptions o;
  o.ensure_ascii = flag(b.get(0), false);
  o.sort_keys = flag(b.get(3), false);
  if (const Value* indent = b.get(1); indent != nullptr && !indent->is_none()) {
    if (indent->is_string()) {
      o.indent = indent->as_string();
    } else if (indent->is_int() || indent->is_bool()) {
      if (indent->as_int() > 1024) return make_error(ErrorCode::kOutOfRange, "tojson indent is too large");
      o.indent = std::string(static_cast<size_t>(std::max<int64_t>(0, indent->as_int())), ' ');
    } else {
      return make_error(ErrorCode::kInvalidArgument, "tojson indent must be an integer or string");
    }
  }
  if (const Value* seps = b.get(2); seps != nullptr && !seps->is_none()) {
    if (!seps->is_list() || seps->as_list().items.size() != 2 || !seps->as_list().items[0].is_string() ||
        !seps->as_list().items[1].is_string()) {
      return make_error(ErrorCode::kInvalidArgument, "tojson separators must be a pair of strings");
    }
    o.item_separator = seps->as_list().items[0].as_string();
    o.key_separator = seps->as_list().items[1].as_string();
  }
  o.max_bytes = in.limits().max_output_bytes;
  HEARTH_ASSIGN_OR_RETURN(std::string out, json_dumps(v, o));
  return in.make_string(std::move(out));
}

Result<Value> f_trim(Interpreter& in, const Value& v, CallArgs& args) {
  ArgBinder b("trim", args, {"chars"});
  HEARTH_RETURN_IF_ERROR(b.status());
  std::optional<std::string> chars;
  if (b.get(0) != nullptr && !b.get(0)->is_none()) {
    HEARTH_ASSIGN_OR_RETURN(chars, in.str(*b.get(0)));
  }
  HEARTH_ASSIGN_OR_RETURN(std::string s, in.str(v));
  return in.make_string(pystr::strip(s, chars, true, true));
}

Result<Value> f_wordcount(Interpreter& in, const Value& v, CallArgs&) {
  HEARTH_ASSIGN_OR_RETURN(std::string s, in.str(v));
  int64_t n = 0;
  bool in_word = false;
  for (char32_t c : pystr::decode(s)) {
    const bool w = pystr::is_word(c);
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value::integer(n);
}

struct FilterEntry {
  std::string_view name;
  FilterFn fn;
};

constexpr FilterEntry kFilters[] = {
    {"abs", f_abs},
    {"attr", f_attr},
    {"capitalize", f_capitalize},
    {"center", f_center},
    {"count", f_length},
    {"d", f_default},
    {"default", f_default},
    {"dictsort", f_dictsort},
    {"e", f_escape},
    {"escape", f_escape},
    {"first", f_first},
    {"float", f_float},
    {"forceescape", f_escape},
    {"format", f_format},
    {"indent", f_indent},
    {"int", f_int},
    {"items", f_items},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"lower", f_lower},
    {"map", f_map},
    {"max", f_max},
    {"min", f_min},
    {"reject", f_reject},
    {"rejectattr", f_rejectattr},
    {"replace", f_replace},
    {"reverse", f_reverse},
    {"round", f_round},
    {"safe", f_safe},
    {"select", f_select},
    {"selectattr", f_selectattr},
    {"sort", f_sort},
    {"string", f_string},
    {"sum", f_sum},
    {"title", f_title},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"unique", f_unique},
    {"upper", f_upper},
    {"wordcount", f_wordcount},
};

const FilterEntry* find_filter(std::string_view name) {
  for (const FilterEntry& f : kFilters) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

}  // namespace

bool is_known_filter(std::string_view name) {
  return find_filter(name) != nullptr;
}

Result<Value> apply_filter(Interpreter& in, std::string_view name, const Value& value, CallArgs& args) {
  const FilterEntry* f = find_filter(name);
  if (f == nullptr) return make_error(ErrorCode::kInvalidArgument, "no filter named '{}'", name);
  HEARTH_RETURN_IF_ERROR(in.charge_steps(1));
  return f->fn(in, value, args);
}

}  // namespace hearth::jinja
