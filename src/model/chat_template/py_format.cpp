#include "model/chat_template/py_format.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include <utf8proc.h>

#include "core/utf8.h"
#include "model/chat_template/py_string.h"

namespace hearth::jinja {

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));  // [-]D[.DDD]e[+-]XX
  std::string out;
  if (sci.front() == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  const size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e)) {
    if (c != '.') digits.push_back(c);
  }
  int exp10 = 0;
  std::from_chars(sci.data() + e + (sci[e + 1] == '+' ? 2 : 1), sci.data() + sci.size(), exp10);
  const int decpt = exp10 + 1;  // value = 0.DIGITS * 10^decpt
  const int n = static_cast<int>(digits.size());
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0.";
      out.append(static_cast<size_t>(-decpt), '0');
      out += digits;
    } else if (decpt >= n) {
      out += digits;
      out.append(static_cast<size_t>(decpt - n), '0');
      out += ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(decpt));
      out += '.';
      out += digits.substr(static_cast<size_t>(decpt));
    }
    return out;
  }
  out += digits[0];
  if (n > 1) {
    out += '.';
    out += digits.substr(1);
  }
  const int x = decpt - 1;
  out += x < 0 ? "e-" : "e+";
  const int ax = x < 0 ? -x : x;
  if (ax < 10) out += '0';
  out += std::to_string(ax);
  return out;
}

namespace {

bool printable(char32_t c) {
  if (c < 0x20 || c == 0x7F) return false;
  if (c < 0x7F) return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS: return false;
    default: return true;
  }
}

void append_string_repr(std::string& out, std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  out.push_back(quote);
  size_t i = 0;
  while (i < s.size()) {
    const size_t start = i;
    const char32_t c = utf8::decode(s, i);
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (printable(c)) {
      out.append(s.substr(start, i - start));
    } else if (c < 0x100) {
      out += fmt::format("\\x{:02x}", static_cast<uint32_t>(c));
    } else if (c < 0x10000) {
      out += fmt::format("\\u{:04x}", static_cast<uint32_t>(c));
    } else {
      out += fmt::format("\\U{:08x}", static_cast<uint32_t>(c));
    }
  }
  out.push_back(quote);
}

void append_repr(std::string& out, const Value& v, size_t max_bytes);

void append_container_repr(std::string& out, const Value& v, size_t max_bytes) {
  if (v.is_list()) {
    const List& l = v.as_list();
    out.push_back(l.is_tuple ? '(' : '[');
    for (size_t i = 0; i < l.items.size(); ++i) {
      if (out.size() > max_bytes) return;
      if (i > 0) out += ", ";
      append_repr(out, l.items[i], max_bytes);
    }
    if (l.is_tuple && l.items.size() == 1) out.push_back(',');
    out.push_back(l.is_tuple ? ')' : ']');
    return;
  }
  out.push_back('{');
  bool first = true;
  for (const auto& [k, item] : v.as_dict().entries) {
    if (out.size() > max_bytes) return;
    if (!first) out += ", ";
    first = false;
    append_repr(out, k, max_bytes);
    out += ": ";
    append_repr(out, item, max_bytes);
  }
  out.push_back('}');
}

void append_repr(std::string& out, const Value& v, size_t max_bytes) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: out += "Undefined"; return;
    case Value::Kind::kString: append_string_repr(out, v.as_string()); return;
    case Value::Kind::kList:
    case Value::Kind::kDict: append_container_repr(out, v, max_bytes); return;
    default: append_str(out, v, max_bytes); return;
  }
}

}  // namespace

void append_str(std::string& out, const Value& v, size_t max_bytes) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return;
    case Value::Kind::kNone: out += "None"; return;
    case Value::Kind::kBool: out += v.as_bool() ? "True" : "False"; return;
    case Value::Kind::kInt: out += std::to_string(v.as_int()); return;
    case Value::Kind::kFloat: out += float_repr(v.as_double()); return;
    case Value::Kind::kString: out += v.as_string(); return;
    case Value::Kind::kList:
    case Value::Kind::kDict: append_container_repr(out, v, max_bytes); return;
    case Value::Kind::kNamespace: {
      out += "<Namespace {";
      bool first = true;
      for (const auto& [k, item] : v.as_namespace().attrs) {
        if (!first) out += ", ";
        first = false;
        append_string_repr(out, k);
        out += ": ";
        append_repr(out, item, max_bytes);
        if (out.size() > max_bytes) return;
      }
      out += "}>";
      return;
    }
    case Value::Kind::kCallable: {
      const Callable& c = v.as_callable();
      switch (c.type) {
        case Callable::Type::kMacro: out += fmt::format("<Macro '{}'>", c.name); return;
        case Callable::Type::kMethod:
          out += fmt::format("<built-in method {} of {} object>", c.name, type_name(c.self));
          return;
        default: out += fmt::format("<function {}>", c.name); return;
      }
    }
    case Value::Kind::kLoop: {
      const LoopState& l = v.as_loop();
      out += fmt::format("<LoopContext {}/{}>", l.index0 + 1, l.items->size());
      return;
    }
  }
}

std::string to_str(const Value& v, size_t max_bytes) {
  if (v.is_string()) return v.as_string();
  std::string out;
  append_str(out, v, max_bytes);
  return out;
}

std::string to_repr(const Value& v, size_t max_bytes) {
  std::string out;
  append_repr(out, v, max_bytes);
  return out;
}

namespace {

void append_json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out.push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const size_t start = i;
    const char32_t c = utf8::decode(s, i);
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    if (c < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<uint32_t>(c));
    } else if (ensure_ascii && c >= 0x80) {
      if (c >= 0x10000) {
        const uint32_t v = static_cast<uint32_t>(c) - 0x10000;
        out += fmt::format("\\u{:04x}\\u{:04x}", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
      } else {
        out += fmt::format("\\u{:04x}", static_cast<uint32_t>(c));
      }
    } else {
      out.append(s.substr(start, i - start));
    }
  }
  out.push_back('"');
}

std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return float_repr(d);
}

class JsonWriter {
 public:
  JsonWriter(std::string& out, const JsonOptions& o)
      : out_(out), o_(o), item_sep_(o.item_separator ? *o.item_separator : (o.indent ? "," : ", ")) {}

  Status write(const Value& v, int level) {
    if (out_.size() > o_.max_bytes) {
      return make_error(ErrorCode::kOutOfRange, "tojson output exceeds {} bytes", o_.max_bytes);
    }
    switch (v.kind()) {
      case Value::Kind::kNone: out_ += "null"; return Status::ok();
      case Value::Kind::kBool: out_ += v.as_bool() ? "true" : "false"; return Status::ok();
      case Value::Kind::kInt: out_ += std::to_string(v.as_int()); return Status::ok();
      case Value::Kind::kFloat: out_ += json_float(v.as_double()); return Status::ok();
      case Value::Kind::kString:
        append_json_string(out_, v.as_string(), o_.ensure_ascii);
        return Status::ok();
      case Value::Kind::kList: return write_list(v.as_list(), level);
      case Value::Kind::kDict: return write_dict(v.as_dict(), level);
      default:
        return make_error(ErrorCode::kInvalidArgument, "Object of type {} is not JSON serializable",
                          type_name(v));
    }
  }

 private:
  void newline(int level) {
    if (!o_.indent) return;
    out_.push_back('\n');
    for (int i = 0; i < level; ++i) out_ += *o_.indent;
  }

  Status write_list(const List& l, int level) {
    if (l.items.empty()) {
      out_ += "[]";
      return Status::ok();
    }
    out_.push_back('[');
    for (size_t i = 0; i < l.items.size(); ++i) {
      if (i > 0) out_ += item_sep_;
      newline(level + 1);
      HEARTH_RETURN_IF_ERROR(write(l.items[i], level + 1));
    }
    newline(level);
    out_.push_back(']');
    return Status::ok();
  }

  static Result<std::string> key_text(const Value& k) {
    switch (k.kind()) {
      case Value::Kind::kString: return k.as_string();
      case Value::Kind::kNone: return std::string("null");
      case Value::Kind::kBool: return std::string(k.as_bool() ? "true" : "false");
      case Value::Kind::kInt: return std::to_string(k.as_int());
      case Value::Kind::kFloat: return json_float(k.as_double());
      default:
        return make_error(ErrorCode::kInvalidArgument, "keys must be str, int, float, bool or None, not {}",
                          type_name(k));
    }
  }

  Status write_dict(const Dict& d, int level) {
    if (d.entries.empty()) {
      out_ += "{}";
      return Status::ok();
    }
    std::vector<std::pair<std::string, const Value*>> items;
    items.reserve(d.entries.size());
    for (const auto& [k, v] : d.entries) {
      if (o_.sort_keys && !k.is_string()) {
        return make_error(ErrorCode::kInvalidArgument, "tojson(sort_keys=true) needs string keys, not {}",
                          type_name(k));
      }
      HEARTH_ASSIGN_OR_RETURN(std::string key, key_text(k));
      items.emplace_back(std::move(key), &v);
    }
    if (o_.sort_keys) {
      std::stable_sort(items.begin(), items.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
    }
    out_.push_back('{');
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) out_ += item_sep_;
      newline(level + 1);
      append_json_string(out_, items[i].first, o_.ensure_ascii);
      out_ += o_.key_separator;
      HEARTH_RETURN_IF_ERROR(write(*items[i].second, level + 1));
    }
    newline(level);
    out_.push_back('}');
    return Status::ok();
  }

  std::string& out_;
  const JsonOptions& o_;
  std::string item_sep_;
};

}  // namespace

Result<std::string> json_dumps(const Value& v, const JsonOptions& options) {
  std::string out;
  JsonWriter w(out, options);
  HEARTH_RETURN_IF_ERROR(w.write(v, 0));
  if (out.size() > options.max_bytes) {
    return make_error(ErrorCode::kOutOfRange, "tojson output exceeds {} bytes", options.max_bytes);
  }
  return out;
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

namespace {

struct Spec {
  bool left = false, zero = false, plus = false, space = false, alt = false;
  int width = -1, precision = -1;
  char type = 0;
};

std::string pad(std::string body, const Spec& spec, bool numeric) {
  const int len = static_cast<int>(pystr::length(body));
  if (spec.width <= len) return body;
  const size_t fill = static_cast<size_t>(spec.width - len);
  if (spec.left) return body + std::string(fill, ' ');
  if (spec.zero && numeric) {
    const size_t sign = !body.empty() && (body[0] == '-' || body[0] == '+' || body[0] == ' ') ? 1 : 0;
    return body.substr(0, sign) + std::string(fill, '0') + body.substr(sign);
  }
  return std::string(fill, ' ') + body;
}

Result<std::string> format_one(const Spec& spec, const Value& v, size_t max_bytes) {
  switch (spec.type) {
    case 's': {
      std::string s = to_str(v, max_bytes);
      if (spec.precision >= 0)
        s = pystr::encode(pystr::decode(s).substr(0, static_cast<size_t>(spec.precision)));
      return pad(std::move(s), spec, false);
    }
    case 'r': return pad(to_repr(v, max_bytes), spec, false);
    default: break;
  }
  if (!v.is_number()) {
    return make_error(ErrorCode::kInvalidArgument, "%{} format: a number is required, not {}", spec.type,
                      type_name(v));
  }
  std::string flags;
  if (spec.plus) flags += '+';
  if (spec.space) flags += ' ';
  if (spec.alt) flags += '#';
  char buf[512];
  switch (spec.type) {
    case 'd':
    case 'i':
    case 'x':
    case 'X':
    case 'o': {
      const int64_t i = v.is_float() ? static_cast<int64_t>(std::trunc(v.as_double())) : v.as_int();
      if (v.is_float() && (spec.type != 'd' && spec.type != 'i')) {
        return make_error(ErrorCode::kInvalidArgument, "%{} format: an integer is required, not float",
                          spec.type);
      }
      const char conv = spec.type == 'i' ? 'd' : spec.type;
      const std::string f = "%" + flags + "ll" + conv;
      std::snprintf(buf, sizeof(buf), f.c_str(), static_cast<long long>(i));
      return pad(buf, spec, true);
    }
    default: {
      const double d = v.as_double();
      const int prec = spec.precision < 0 ? 6 : std::min(spec.precision, 100);
      const std::string f = "%" + flags + "." + std::to_string(prec) + spec.type;
      std::snprintf(buf, sizeof(buf), f.c_str(), d);
      return pad(buf, spec, true);
    }
  }
}

}  // namespace

Result<std::string> percent_format(std::string_view format, const Value& args, size_t max_bytes) {
  std::string out;
  size_t next_arg = 0;
  const bool tuple = args.is_tuple();
  bool used_single = false;
  size_t i = 0;
  while (i < format.size()) {
    const char c = format[i++];
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    if (i >= format.size()) return make_error(ErrorCode::kInvalidArgument, "incomplete format");
    if (format[i] == '%') {
      out.push_back('%');
      ++i;
      continue;
    }
    const Value* arg = nullptr;
    if (format[i] == '(') {
      const size_t close = format.find(')', i);
      if (close == std::string_view::npos)
        return make_error(ErrorCode::kInvalidArgument, "incomplete format key");
      if (!args.is_dict()) return make_error(ErrorCode::kInvalidArgument, "format requires a mapping");
      arg = args.as_dict().find(format.substr(i + 1, close - i - 1));
      if (arg == nullptr) {
        return make_error(ErrorCode::kInvalidArgument, "format key '{}' not found",
                          format.substr(i + 1, close - i - 1));
      }
      i = close + 1;
    }
    Spec spec;
    for (; i < format.size(); ++i) {
      const char f = format[i];
      if (f == '-')
        spec.left = true;
      else if (f == '0')
        spec.zero = true;
      else if (f == '+')
        spec.plus = true;
      else if (f == ' ')
        spec.space = true;
      else if (f == '#')
        spec.alt = true;
      else
        break;
    }
    auto read_int = [&](int& dst) {
      int n = 0;
      bool any = false;
      while (i < format.size() && format[i] >= '0' && format[i] <= '9') {
        n = std::min(n * 10 + (format[i] - '0'), 1000);
        ++i;
        any = true;
      }
      if (any) dst = n;
    };
    read_int(spec.width);
    if (i < format.size() && format[i] == '.') {
      ++i;
      spec.precision = 0;
      read_int(spec.precision);
    }
    if (i >= format.size()) return make_error(ErrorCode::kInvalidArgument, "incomplete format");
    spec.type = format[i++];
    if (std::string_view("srdixXoeEfFgG").find(spec.type) == std::string_view::npos) {
      return make_error(ErrorCode::kInvalidArgument, "unsupported format character '{}'", spec.type);
    }
    if (arg == nullptr) {
      if (tuple) {
        if (next_arg >= args.as_list().items.size()) {
          return make_error(ErrorCode::kInvalidArgument, "not enough arguments for format string");
        }
        arg = &args.as_list().items[next_arg++];
      } else {
        if (used_single)
          return make_error(ErrorCode::kInvalidArgument, "not enough arguments for format string");
        used_single = true;
        arg = &args;
      }
    }
    HEARTH_ASSIGN_OR_RETURN(std::string piece, format_one(spec, *arg, max_bytes));
    out += piece;
    if (out.size() > max_bytes) {
      return make_error(ErrorCode::kOutOfRange, "formatted string exceeds {} bytes", max_bytes);
    }
  }
  if (tuple && next_arg < args.as_list().items.size()) {
    return make_error(ErrorCode::kInvalidArgument, "not all arguments converted during string formatting");
  }
  return out;
}

}  // namespace hearth::jinja
