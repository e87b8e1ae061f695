#include "model/chat_template/value.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace hearth::jinja {

Value Value::undefined(std::string hint) {
  Value v;
  if (!hint.empty()) v.p_ = std::make_shared<const std::string>(std::move(hint));
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.u_.b = b;
  return v;
}

Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.u_.i = i;
  return v;
}

Value Value::number(double d) {
  Value v;
  v.kind_ = Kind::kFloat;
  v.u_.f = d;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::kString;
  v.p_ = std::make_shared<const std::string>(std::move(s));
  return v;
}

Value Value::list(std::vector<Value> items, bool is_tuple) {
  List l{std::move(items), is_tuple};
  for (const Value& item : l.items) {
    l.depth = std::max(l.depth, value_depth(item) + 1);
    l.holds_ref = l.holds_ref || holds_reference(item);
  }
  Value v;
  v.kind_ = Kind::kList;
  v.p_ = std::make_shared<const List>(std::move(l));
  return v;
}

Value Value::dict(Dict d) {
  d.depth = 1;
  d.holds_ref = false;
  for (const auto& [k, item] : d.entries) {
    d.depth = std::max({d.depth, value_depth(k) + 1, value_depth(item) + 1});
    d.holds_ref = d.holds_ref || holds_reference(k) || holds_reference(item);
  }
  Value v;
  v.kind_ = Kind::kDict;
  v.p_ = std::make_shared<const Dict>(std::move(d));
  return v;
}

int value_depth(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kList: return v.as_list().depth;
    case Value::Kind::kDict: return v.as_dict().depth;
    case Value::Kind::kLoop: return v.as_loop().value_depth;
    case Value::Kind::kCallable: {
      const Callable& c = v.as_callable();
      return c.type == Callable::Type::kMethod ? value_depth(c.self) + 1 : 0;
    }
    case Value::Kind::kNamespace: {
      int d = 1;
      for (const auto& [k, item] : v.as_namespace().attrs) d = std::max(d, value_depth(item) + 1);
      return d;
    }
    default: return 0;
  }
}

bool holds_reference(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kNamespace:
    case Value::Kind::kLoop: return true;
    case Value::Kind::kList: return v.as_list().holds_ref;
    case Value::Kind::kDict: return v.as_dict().holds_ref;
    case Value::Kind::kCallable: return v.as_callable().type == Callable::Type::kMethod;
    default: return false;
  }
}

Result<Value> checked_list(std::vector<Value> items, bool is_tuple) {
  Value v = Value::list(std::move(items), is_tuple);
  if (v.as_list().depth > kMaxValueDepth) {
    return make_error(ErrorCode::kOutOfRange, "value nests deeper than {} levels", kMaxValueDepth);
  }
  return v;
}

Result<Value> checked_dict(Dict d) {
  Value v = Value::dict(std::move(d));
  if (v.as_dict().depth > kMaxValueDepth) {
    return make_error(ErrorCode::kOutOfRange, "value nests deeper than {} levels", kMaxValueDepth);
  }
  return v;
}

Value Value::new_namespace() {
  Value v;
  v.kind_ = Kind::kNamespace;
  v.p_ = std::make_shared<Namespace>();
  return v;
}

Value Value::callable(Callable c) {
  Value v;
  v.kind_ = Kind::kCallable;
  v.p_ = std::make_shared<const Callable>(std::move(c));
  return v;
}

Value Value::loop(LoopState s) {
  Value v;
  v.kind_ = Kind::kLoop;
  v.p_ = std::make_shared<const LoopState>(std::move(s));
  return v;
}

bool Value::is_tuple() const {
  return kind_ == Kind::kList && as_list().is_tuple;
}

double Value::as_double() const {
  switch (kind_) {
    case Kind::kBool: return u_.b ? 1.0 : 0.0;
    case Kind::kInt: return static_cast<double>(u_.i);
    case Kind::kFloat: return u_.f;
    default: return 0.0;
  }
}

Namespace& Value::as_namespace() const {
  // The payload of a namespace was created mutable (new_namespace); only the shared_ptr is const.
  return *const_cast<Namespace*>(static_cast<const Namespace*>(p_.get()));
}

std::string_view Value::undefined_hint() const {
  if (kind_ != Kind::kUndefined || !p_) return {};
  return *static_cast<const std::string*>(p_.get());
}

const Value* Dict::find(const Value& key) const {
  if (key.is_string()) return find(std::string_view(key.as_string()));
  for (const auto& [k, v] : entries) {
    if (equals(k, key)) return &v;
  }
  return nullptr;
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k.is_string() && k.as_string() == key) return &v;
  }
  return nullptr;
}

void Dict::set(Value key, Value value) {
  for (auto& [k, v] : entries) {
    if (equals(k, key)) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(std::move(key), std::move(value));
}

const Value* Namespace::find(std::string_view name) const {
  for (const auto& [k, v] : attrs) {
    if (k == name) return &v;
  }
  return nullptr;
}

void Namespace::set(std::string_view name, Value value) {
  for (auto& [k, v] : attrs) {
    if (k == name) {
      v = std::move(value);
      return;
    }
  }
  attrs.emplace_back(std::string(name), std::move(value));
}

const char* type_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return "Undefined";
    case Value::Kind::kNone: return "NoneType";
    case Value::Kind::kBool: return "bool";
    case Value::Kind::kInt: return "int";
    case Value::Kind::kFloat: return "float";
    case Value::Kind::kString: return "str";
    case Value::Kind::kList: return v.is_tuple() ? "tuple" : "list";
    case Value::Kind::kDict: return "dict";
    case Value::Kind::kNamespace: return "Namespace";
    case Value::Kind::kCallable: return "function";
    case Value::Kind::kLoop: return "LoopContext";
  }
  return "object";
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return false;
    case Value::Kind::kBool: return v.as_bool();
    case Value::Kind::kInt: return v.as_int() != 0;
    case Value::Kind::kFloat: return v.as_double() != 0.0;
    case Value::Kind::kString: return !v.as_string().empty();
    case Value::Kind::kList: return !v.as_list().items.empty();
    case Value::Kind::kDict: return !v.as_dict().entries.empty();
    default: return true;
  }
}

namespace {

// Exact comparison of an integer with a double (Python compares int and float exactly).
int compare_int_double(int64_t i, double d) {
  if (std::isnan(d)) return 2;  // unordered
  constexpr double kTwo63 = 9223372036854775808.0;
  if (d >= kTwo63) return -1;
  if (d < -kTwo63) return 1;
  const double t = std::trunc(d);
  const auto ti = static_cast<int64_t>(t);
  if (i < ti) return -1;
  if (i > ti) return 1;
  if (d > t) return -1;
  if (d < t) return 1;
  return 0;
}

// -1/0/1, or 2 when unordered (NaN).
int compare_numbers(const Value& a, const Value& b) {
  if (!a.is_float() && !b.is_float()) {
    const int64_t x = a.as_int(), y = b.as_int();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_float() && b.is_float()) {
    const double x = a.as_double(), y = b.as_double();
    if (std::isnan(x) || std::isnan(y)) return 2;
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_float()) {
    const int r = compare_int_double(b.as_int(), a.as_double());
    return r == 2 ? 2 : -r;
  }
  return compare_int_double(a.as_int(), b.as_double());
}

}  // namespace

bool equals(const Value& a, const Value& b, CompareBudget* budget) {
  if (budget != nullptr && !budget->spend(1)) return false;
  if (a.is_number() && b.is_number()) return compare_numbers(a, b) == 0;
  if (a.kind() != b.kind()) return false;
  // Identical objects are equal (Python's containers compare identity first, too).
  if (a.payload() != nullptr && a.payload() == b.payload()) return true;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return true;
    case Value::Kind::kString:
      if (a.as_string().size() != b.as_string().size()) return false;
      if (budget != nullptr && !budget->spend(a.as_string().size() / 64)) return false;
      return a.as_string() == b.as_string();
    case Value::Kind::kList: {
      const List& x = a.as_list();
      const List& y = b.as_list();
      if (x.is_tuple != y.is_tuple || x.items.size() != y.items.size()) return false;
      for (size_t i = 0; i < x.items.size(); ++i) {
        if (!equals(x.items[i], y.items[i], budget)) return false;
      }
      return true;
    }
    case Value::Kind::kDict: {
      const Dict& x = a.as_dict();
      const Dict& y = b.as_dict();
      if (x.entries.size() != y.entries.size()) return false;
      for (const auto& [k, v] : x.entries) {
        const Value* other = y.find(k);
        if (other == nullptr || !equals(v, *other, budget)) return false;
      }
      return true;
    }
    default: return a.payload() == b.payload();
  }
}

Result<int> compare(const Value& a, const Value& b, CompareBudget* budget) {
  if (budget != nullptr && !budget->spend(1)) return 0;
  if (a.is_number() && b.is_number()) {
    return compare_numbers(a, b);  // 2 when unordered (NaN): every ordering test is false
  }
  if (a.is_string() && b.is_string()) {
    if (budget != nullptr && !budget->spend(std::min(a.as_string().size(), b.as_string().size()) / 64))
      return 0;
    const int r = a.as_string().compare(b.as_string());  // UTF-8 byte order == code point order
    return r < 0 ? -1 : (r > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const auto& x = a.as_list().items;
    const auto& y = b.as_list().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (equals(x[i], y[i], budget)) continue;
      if (budget != nullptr && budget->exhausted) return 0;
      return compare(x[i], y[i], budget);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  if (a.is_undefined()) return Status(ErrorCode::kInvalidArgument, std::string(a.undefined_hint()));
  if (b.is_undefined()) return Status(ErrorCode::kInvalidArgument, std::string(b.undefined_hint()));
  return make_error(ErrorCode::kInvalidArgument,
                    "ordering is not supported between instances of '{}' and '{}'", type_name(a),
                    type_name(b));
}

namespace {

template <typename Json>
Result<Value> convert(const Json& j, int depth, int max_depth) {
  if (depth > max_depth) {
    return make_error(ErrorCode::kOutOfRange, "JSON value nests deeper than {} levels", max_depth);
  }
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value::none();
    case nlohmann::json::value_t::boolean: return Value::boolean(j.template get<bool>());
    case nlohmann::json::value_t::number_integer: return Value::integer(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const auto u = j.template get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Value::integer(static_cast<int64_t>(u));
      }
      return Value::number(static_cast<double>(u));
    }
    case nlohmann::json::value_t::number_float: return Value::number(j.template get<double>());
    case nlohmann::json::value_t::string: return Value::string(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) {
        HEARTH_ASSIGN_OR_RETURN(Value v, convert(e, depth + 1, max_depth));
        items.push_back(std::move(v));
      }
      return Value::list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      Dict d;
      d.entries.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) {
        HEARTH_ASSIGN_OR_RETURN(Value v, convert(it.value(), depth + 1, max_depth));
        d.entries.emplace_back(Value::string(it.key()), std::move(v));
      }
      return Value::dict(std::move(d));
    }
    default: return make_error(ErrorCode::kInvalidArgument, "unsupported JSON value (binary data)");
  }
}

}  // namespace

Result<Value> from_json(const nlohmann::ordered_json& j, int max_depth) {
  return convert(j, 0, max_depth);
}

Result<Value> from_json(const nlohmann::json& j, int max_depth) {
  return convert(j, 0, max_depth);
}

}  // namespace hearth::jinja
