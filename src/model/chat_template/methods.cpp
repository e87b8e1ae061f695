// Python methods of str, list and dict that templates call (message.content.strip(), d.items() ...)
// and the attributes of the for-loop object.
#include <algorithm>

#include "model/chat_template/builtins.h"
#include "model/chat_template/interpreter.h"
#include "model/chat_template/py_format.h"
#include "model/chat_template/py_string.h"

namespace hearth::jinja {
namespace {

constexpr std::string_view kStrMethods[] = {
    "strip",   "lstrip",  "rstrip",  "split",     "rsplit",     "splitlines",   "startswith",   "endswith",
    "replace", "upper",   "lower",   "title",     "capitalize", "swapcase",     "casefold",     "find",
    "rfind",   "index",   "rindex",  "count",     "join",       "isdigit",      "isalpha",      "isalnum",
    "isspace", "islower", "isupper", "isnumeric", "isdecimal",  "removeprefix", "removesuffix", "center",
    "ljust",   "rjust",   "zfill",   "partition", "rpartition", "format"};
constexpr std::string_view kListMethods[] = {"index", "count", "copy"};
constexpr std::string_view kListMutators[] = {"append", "extend",  "insert", "pop",
                                              "remove", "reverse", "sort",   "clear"};
constexpr std::string_view kDictMethods[] = {"items", "keys", "values", "get", "copy"};
constexpr std::string_view kDictMutators[] = {"pop", "popitem", "update", "clear", "setdefault"};

template <size_t N>
bool contains(const std::string_view (&names)[N], std::string_view name) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

Value bound(const Value& self, std::string_view name) {
  Callable c;
  c.type = Callable::Type::kMethod;
  c.name = std::string(name);
  c.self = self;
  return Value::callable(std::move(c));
}

Value unsafe(const Value& self, std::string_view name) {
  return Value::undefined(
      fmt::format("access to attribute '{}' of '{}' object is unsafe (templates cannot modify values)", name,
                  type_name(self)));
}

std::optional<Value> loop_attribute(const Value& loop, std::string_view name) {
  const LoopState& l = loop.as_loop();
  const int64_t n = static_cast<int64_t>(l.items->size());
  const int64_t i = l.index0;
  if (name == "index") return Value::integer(i + 1);
  if (name == "index0") return Value::integer(i);
  if (name == "revindex") return Value::integer(n - i);
  if (name == "revindex0") return Value::integer(n - i - 1);
  if (name == "first") return Value::boolean(i == 0);
  if (name == "last") return Value::boolean(i == n - 1);
  if (name == "length") return Value::integer(n);
  if (name == "depth") return Value::integer(1);
  if (name == "depth0") return Value::integer(0);
  if (name == "previtem") {
    if (i == 0) return Value::undefined("there is no previous item");
    return (*l.items)[static_cast<size_t>(i - 1)];
  }
  if (name == "nextitem") {
    if (i + 1 >= n) return Value::undefined("there is no next item");
    return (*l.items)[static_cast<size_t>(i + 1)];
  }
  if (name == "cycle") return bound(loop, name);
  return std::nullopt;
}

Result<std::string> string_arg(const ArgBinder& b, size_t i, std::string_view method,
                               std::string_view param) {
  const Value* v = b.get(i);
  if (v == nullptr || !v->is_string()) {
    return make_error(ErrorCode::kInvalidArgument, "str.{}() argument '{}' must be a string", method, param);
  }
  return v->as_string();
}

Result<std::optional<std::string>> optional_string_arg(const ArgBinder& b, size_t i,
                                                       std::string_view method) {
  const Value* v = b.get(i);
  if (v == nullptr || v->is_none()) return std::optional<std::string>();
  if (!v->is_string()) {
    return make_error(ErrorCode::kInvalidArgument, "str.{}() argument must be a string or None, not {}",
                      method, type_name(*v));
  }
  return std::optional<std::string>(v->as_string());
}

Result<int64_t> int_arg(const ArgBinder& b, size_t i, int64_t dflt, std::string_view method) {
  const Value* v = b.get(i);
  if (v == nullptr || v->is_none()) return dflt;
  if (!v->is_int() && !v->is_bool()) {
    return make_error(ErrorCode::kInvalidArgument, "{}() expects an integer, not {}", method, type_name(*v));
  }
  return v->as_int();
}

Result<Value> string_list(Interpreter& in, std::vector<std::string> parts) {
  HEARTH_RETURN_IF_ERROR(in.check_items(parts.size()));
  HEARTH_RETURN_IF_ERROR(in.charge_steps(parts.size()));
  std::vector<Value> out;
  out.reserve(parts.size());
  for (std::string& p : parts) out.push_back(Value::string(std::move(p)));
  return checked_list(std::move(out));
}

template <typename Pred>
Value all_chars(const std::string& s, Pred pred) {
  if (s.empty()) return Value::boolean(false);
  for (char32_t c : pystr::decode(s)) {
    if (!pred(c)) return Value::boolean(false);
  }
  return Value::boolean(true);
}

// Python's str.format with {} / {0} / {name} fields and !s / !r conversions (no format specs).
Result<std::string> str_format(std::string_view f, const CallArgs& args, size_t max_bytes) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    const char c = f[i];
    if (c == '}') {
      if (i + 1 < f.size() && f[i + 1] == '}') ++i;
      out.push_back('}');
      continue;
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < f.size() && f[i + 1] == '{') {
      out.push_back('{');
      ++i;
      continue;
    }
    const size_t close = f.find('}', i);
    if (close == std::string_view::npos)
      return make_error(ErrorCode::kInvalidArgument, "format: unmatched '{{'");
    std::string_view field = f.substr(i + 1, close - i - 1);
    i = close;
    char conversion = 's';
    if (const size_t bang = field.find('!'); bang != std::string_view::npos) {
      if (bang + 2 != field.size() || (field[bang + 1] != 's' && field[bang + 1] != 'r')) {
        return make_error(ErrorCode::kUnsupported, "format: only !s and !r conversions are supported");
      }
      conversion = field[bang + 1];
      field = field.substr(0, bang);
    }
    if (field.find(':') != std::string_view::npos) {
      return make_error(ErrorCode::kUnsupported, "format: format specifications are not supported");
    }
    const Value* v = nullptr;
    if (field.empty() ||
        std::all_of(field.begin(), field.end(), [](char d) { return d >= '0' && d <= '9'; })) {
      size_t index = auto_index++;
      if (!field.empty()) index = static_cast<size_t>(std::stoul(std::string(field.substr(0, 9))));
      if (index >= args.positional.size()) {
        return make_error(ErrorCode::kInvalidArgument, "format: replacement index {} out of range", index);
      }
      v = &args.positional[index];
    } else {
      for (const auto& [k, kv] : args.keyword) {
        if (k == field) v = &kv;
      }
      if (v == nullptr)
        return make_error(ErrorCode::kInvalidArgument, "format: missing argument '{}'", field);
    }
    out += conversion == 'r' ? to_repr(*v, max_bytes) : to_str(*v, max_bytes);
    if (out.size() > max_bytes)
      return make_error(ErrorCode::kOutOfRange, "format: result exceeds {} bytes", max_bytes);
  }
  return out;
}

Result<Value> pad_method(Interpreter& in, const std::string& s, std::string_view name, CallArgs& args) {
  ArgBinder b(name, args, {"width", "fillchar"});
  HEARTH_RETURN_IF_ERROR(b.status());
  HEARTH_ASSIGN_OR_RETURN(int64_t width, int_arg(b, 0, 0, name));
  std::u32string fill = U" ";
  if (name != "zfill" && b.get(1) != nullptr) {
    if (!b.get(1)->is_string() || pystr::length(b.get(1)->as_string()) != 1) {
      return make_error(ErrorCode::kInvalidArgument, "{}() fill character must be exactly one character",
                        name);
    }
    fill = pystr::decode(b.get(1)->as_string());
  }
  const int64_t len = static_cast<int64_t>(pystr::length(s));
  if (width <= len) return Value::string(s);
  if (static_cast<uint64_t>(width) > in.limits().max_output_bytes) {
    return make_error(ErrorCode::kOutOfRange, "{}() width exceeds max_output_bytes", name);
  }
  const size_t total = static_cast<size_t>(width - len);
  size_t left = 0;
  if (name == "rjust") left = total;
  if (name == "center") left = total / 2 + (total & static_cast<size_t>(width) & 1);
  if (name == "zfill") {
    const bool sign = !s.empty() && (s[0] == '-' || s[0] == '+');
    return in.make_string(s.substr(0, sign ? 1 : 0) + std::string(total, '0') + s.substr(sign ? 1 : 0));
  }
  const std::string f = pystr::encode(fill);
  std::string out;
  for (size_t i = 0; i < left; ++i) out += f;
  out += s;
  for (size_t i = left; i < total; ++i) out += f;
  return in.make_string(std::move(out));
}

Result<Value> call_str_method(Interpreter& in, const std::string& s, std::string_view name, CallArgs& args) {
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    ArgBinder b(name, args, {"chars"});
    HEARTH_RETURN_IF_ERROR(b.status());
    HEARTH_ASSIGN_OR_RETURN(auto chars, optional_string_arg(b, 0, name));
    return in.make_string(pystr::strip(s, chars, name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    ArgBinder b(name, args, {"sep", "maxsplit"});
    HEARTH_RETURN_IF_ERROR(b.status());
    HEARTH_ASSIGN_OR_RETURN(auto sep, optional_string_arg(b, 0, name));
    HEARTH_ASSIGN_OR_RETURN(int64_t maxsplit, int_arg(b, 1, -1, name));
    if (sep && sep->empty())
      return make_error(ErrorCode::kInvalidArgument, "str.{}(): empty separator", name);
    HEARTH_RETURN_IF_ERROR(in.charge_bytes(s.size()));
    return string_list(in,
                       name == "split" ? pystr::split(s, sep, maxsplit) : pystr::rsplit(s, sep, maxsplit));
  }
  if (name == "splitlines") {
    ArgBinder b(name, args, {"keepends"});
    HEARTH_RETURN_IF_ERROR(b.status());
    HEARTH_RETURN_IF_ERROR(in.charge_bytes(s.size()));
    return string_list(in, pystr::splitlines(s, b.get(0) != nullptr && truthy(*b.get(0))));
  }
  if (name == "startswith" || name == "endswith") {
    ArgBinder b(name, args, {"prefix", "start", "end"});
    HEARTH_RETURN_IF_ERROR(b.status());
    const Value* p = b.get(0);
    if (p == nullptr)
      return make_error(ErrorCode::kInvalidArgument, "str.{}() takes at least 1 argument", name);
    std::string_view text = s;
    std::string sliced;
    if (b.get(1) != nullptr || b.get(2) != nullptr) {
      const std::u32string u = pystr::decode(s);
      const int64_t n = static_cast<int64_t>(u.size());
      HEARTH_ASSIGN_OR_RETURN(int64_t start, int_arg(b, 1, 0, name));
      HEARTH_ASSIGN_OR_RETURN(int64_t end, int_arg(b, 2, n, name));
      if (start < 0) start = std::max<int64_t>(0, start + n);
      if (end < 0) end = std::max<int64_t>(0, end + n);
      start = std::min(start, n);
      end = std::min(end, n);
      if (start > end) return Value::boolean(false);
      sliced = pystr::encode(
          std::u32string_view(u).substr(static_cast<size_t>(start), static_cast<size_t>(end - start)));
      text = sliced;
    }
    auto test = [&](const std::string& affix) {
      return name == "startswith" ? text.starts_with(affix) : text.ends_with(affix);
    };
    if (p->is_string()) return Value::boolean(test(p->as_string()));
    if (p->is_tuple()) {
      for (const Value& a : p->as_list().items) {
        if (!a.is_string())
          return make_error(ErrorCode::kInvalidArgument, "str.{}() tuple items must be strings", name);
        if (test(a.as_string())) return Value::boolean(true);
      }
      return Value::boolean(false);
    }
    return make_error(ErrorCode::kInvalidArgument, "str.{}() argument must be str or a tuple of str, not {}",
                      name, type_name(*p));
  }
  if (name == "replace") {
    ArgBinder b(name, args, {"old", "new", "count"});
    HEARTH_RETURN_IF_ERROR(b.status());
    HEARTH_ASSIGN_OR_RETURN(std::string old, string_arg(b, 0, name, "old"));
    HEARTH_ASSIGN_OR_RETURN(std::string repl, string_arg(b, 1, name, "new"));
    HEARTH_ASSIGN_OR_RETURN(int64_t count, int_arg(b, 2, -1, name));
    uint64_t hits = old.empty() ? pystr::length(s) + 1 : static_cast<uint64_t>(pystr::count(s, old));
    if (count >= 0) hits = std::min(hits, static_cast<uint64_t>(count));
    if (s.size() - hits * old.size() + hits * repl.size() > in.limits().max_output_bytes) {
      return make_error(ErrorCode::kOutOfRange, "str.replace() result exceeds max_output_bytes");
    }
    return in.make_string(pystr::replace(s, old, repl, count));
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize" || name == "swapcase" ||
      name == "casefold") {
    if (!args.positional.empty() || !args.keyword.empty()) {
      return make_error(ErrorCode::kInvalidArgument, "str.{}() takes no arguments", name);
    }
    if (name == "upper") return in.make_string(pystr::upper(s));
    if (name == "lower" || name == "casefold") return in.make_string(pystr::lower(s));
    if (name == "title") return in.make_string(pystr::title(s));
    if (name == "capitalize") return in.make_string(pystr::capitalize(s));
    return in.make_string(pystr::swapcase(s));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    ArgBinder b(name, args, {"sub"});
    HEARTH_RETURN_IF_ERROR(b.status());
    HEARTH_ASSIGN_OR_RETURN(std::string sub, string_arg(b, 0, name, "sub"));
    if (name == "count") return Value::integer(pystr::count(s, sub));
    const int64_t at = (name == "find" || name == "index") ? pystr::find(s, sub) : pystr::rfind(s, sub);
    if (at < 0 && (name == "index" || name == "rindex")) {
      return make_error(ErrorCode::kInvalidArgument, "str.{}(): substring not found", name);
    }
    return Value::integer(at);
  }
  if (name == "join") {
    ArgBinder b(name, args, {"iterable"});
    HEARTH_RETURN_IF_ERROR(b.status());
    if (b.get(0) == nullptr)
      return make_error(ErrorCode::kInvalidArgument, "str.join() takes exactly one argument");
    HEARTH_ASSIGN_OR_RETURN(std::vector<Value> items, in.iterate(*b.get(0)));
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_string()) {
        return make_error(ErrorCode::kInvalidArgument, "sequence item {}: expected str instance, {} found", i,
                          type_name(items[i]));
      }
      if (i > 0) out += s;
      out += items[i].as_string();
      if (out.size() > in.limits().max_output_bytes) break;
    }
    return in.make_string(std::move(out));
  }
  if (name == "removeprefix" || name == "removesuffix") {
    ArgBinder b(name, args, {"affix"});
    HEARTH_RETURN_IF_ERROR(b.status());
    HEARTH_ASSIGN_OR_RETURN(std::string a, string_arg(b, 0, name, "affix"));
    if (name == "removeprefix" && s.starts_with(a)) return in.make_string(s.substr(a.size()));
    if (name == "removesuffix" && !a.empty() && s.ends_with(a))
      return in.make_string(s.substr(0, s.size() - a.size()));
    return Value::string(s);
  }
  if (name == "partition" || name == "rpartition") {
    ArgBinder b(name, args, {"sep"});
    HEARTH_RETURN_IF_ERROR(b.status());
    HEARTH_ASSIGN_OR_RETURN(std::string sep, string_arg(b, 0, name, "sep"));
    if (sep.empty()) return make_error(ErrorCode::kInvalidArgument, "str.{}(): empty separator", name);
    const size_t at = name == "partition" ? s.find(sep) : s.rfind(sep);
    std::vector<Value> parts;
    if (at == std::string::npos) {
      parts = name == "partition"
                  ? std::vector<Value>{Value::string(s), Value::string(""), Value::string("")}
                  : std::vector<Value>{Value::string(""), Value::string(""), Value::string(s)};
    } else {
      parts = {Value::string(s.substr(0, at)), Value::string(sep), Value::string(s.substr(at + sep.size()))};
    }
    return checked_list(std::move(parts), true);
  }
  if (name == "center" || name == "ljust" || name == "rjust" || name == "zfill")
    return pad_method(in, s, name, args);
  if (name == "format") {
    HEARTH_ASSIGN_OR_RETURN(std::string out, str_format(s, args, in.limits().max_output_bytes));
    return in.make_string(std::move(out));
  }
  if (!args.positional.empty() || !args.keyword.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "str.{}() takes no arguments", name);
  }
  if (name == "isdigit") return all_chars(s, pystr::is_digit);
  if (name == "isalpha") return all_chars(s, pystr::is_alpha);
  if (name == "isalnum") return all_chars(s, pystr::is_alnum);
  if (name == "isspace") return all_chars(s, pystr::is_space);
  if (name == "isnumeric") return all_chars(s, pystr::is_numeric);
  if (name == "isdecimal") return all_chars(s, pystr::is_decimal);
  if (name == "islower" || name == "isupper") {
    bool cased = false;
    for (char32_t c : pystr::decode(s)) {
      if (name == "islower" ? pystr::is_upper(c) : pystr::is_lower(c)) return Value::boolean(false);
      cased = cased || (name == "islower" ? pystr::is_lower(c) : pystr::is_upper(c));
    }
    return Value::boolean(cased);
  }
  return make_error(ErrorCode::kInvalidArgument, "'str' object has no method '{}'", name);
}

}  // namespace

std::optional<Value> find_method(const Value& obj, std::string_view name) {
  switch (obj.kind()) {
    case Value::Kind::kString:
      if (contains(kStrMethods, name)) return bound(obj, name);
      return std::nullopt;
    case Value::Kind::kList:
      if (contains(kListMethods, name)) return bound(obj, name);
      if (contains(kListMutators, name)) return unsafe(obj, name);
      return std::nullopt;
    case Value::Kind::kDict:
      if (contains(kDictMethods, name)) return bound(obj, name);
      if (contains(kDictMutators, name)) return unsafe(obj, name);
      return std::nullopt;
    case Value::Kind::kLoop: return loop_attribute(obj, name);
    default: return std::nullopt;
  }
}

Result<Value> call_method(Interpreter& in, const Value& self, std::string_view name, CallArgs& args) {
  HEARTH_RETURN_IF_ERROR(in.charge_steps(1));
  if (self.is_string()) return call_str_method(in, self.as_string(), name, args);
  if (self.is_list()) {
    const auto& items = self.as_list().items;
    if (name == "copy") return self;
    ArgBinder b(name, args, {"value"});
    HEARTH_RETURN_IF_ERROR(b.status());
    if (b.get(0) == nullptr)
      return make_error(ErrorCode::kInvalidArgument, "list.{}() takes exactly one argument", name);
    HEARTH_RETURN_IF_ERROR(in.charge_steps(items.size()));
    int64_t count = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      HEARTH_ASSIGN_OR_RETURN(bool eq, in.values_equal(items[i], *b.get(0)));
      if (!eq) continue;
      if (name == "index") return Value::integer(static_cast<int64_t>(i));
      ++count;
    }
    if (name == "index") return make_error(ErrorCode::kInvalidArgument, "list.index(x): x not in list");
    return Value::integer(count);
  }
  if (self.is_dict()) {
    const Dict& d = self.as_dict();
    if (name == "get") {
      ArgBinder b(name, args, {"key", "default"});
      HEARTH_RETURN_IF_ERROR(b.status());
      if (b.get(0) == nullptr)
        return make_error(ErrorCode::kInvalidArgument, "dict.get() takes at least 1 argument");
      if (const Value* v = d.find(*b.get(0))) return *v;
      return b.get(1) != nullptr ? *b.get(1) : Value::none();
    }
    if (!args.positional.empty() || !args.keyword.empty()) {
      return make_error(ErrorCode::kInvalidArgument, "dict.{}() takes no arguments", name);
    }
    if (name == "copy") return self;
    HEARTH_RETURN_IF_ERROR(in.charge_steps(d.entries.size()));
    std::vector<Value> out;
    out.reserve(d.entries.size());
    for (const auto& [k, v] : d.entries) {
      if (name == "keys") {
        out.push_back(k);
      } else if (name == "values") {
        out.push_back(v);
      } else {
        HEARTH_ASSIGN_OR_RETURN(Value pair, checked_list({k, v}, true));
        out.push_back(std::move(pair));
      }
    }
    return checked_list(std::move(out));
  }
  if (self.is_loop() && name == "cycle") {
    if (args.positional.empty())
      return make_error(ErrorCode::kInvalidArgument, "loop.cycle() needs at least one value");
    const LoopState& l = self.as_loop();
    return args.positional[static_cast<size_t>(l.index0) % args.positional.size()];
  }
  return make_error(ErrorCode::kInvalidArgument, "'{}' object has no method '{}'", type_name(self), name);
}

}  // namespace hearth::jinja
