#pragma once
// The value model of the chat template interpreter: Python's data model as Jinja templates see it
// (undefined, None, bool, int, float, str, list/tuple, dict with insertion order, namespace,
// callables, the loop object). Lists, dicts and strings are immutable and shared; a namespace is
// the only mutable value, as in Jinja's ImmutableSandboxedEnvironment.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace hearth::jinja {

class Value;
class Interpreter;
struct Stmt;
struct Scope;

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

using BuiltinFn = Result<Value> (*)(Interpreter&, CallArgs&);

class Value {
 public:
  enum class Kind : uint8_t {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,  // list or tuple
    kDict,
    kNamespace,
    kCallable,
    kLoop,
  };

  Value() = default;  // undefined
  static Value undefined(std::string hint);
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value number(double d);
  static Value string(std::string s);
  static Value list(std::vector<Value> items, bool is_tuple = false);
  static Value dict(struct Dict d);
  static Value new_namespace();
  static Value callable(struct Callable c);
  static Value loop(struct LoopState s);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  // Python's numbers.Number: bool, int and float.
  bool is_number() const { return kind_ == Kind::kBool || kind_ == Kind::kInt || kind_ == Kind::kFloat; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const;
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_callable() const { return kind_ == Kind::kCallable; }
  bool is_loop() const { return kind_ == Kind::kLoop; }

  bool as_bool() const { return u_.b; }
  int64_t as_int() const { return kind_ == Kind::kBool ? (u_.b ? 1 : 0) : u_.i; }  // bool or int
  double as_double() const;                                                        // any number
  const std::string& as_string() const { return *static_cast<const std::string*>(p_.get()); }
  const struct List& as_list() const { return *static_cast<const List*>(p_.get()); }
  const struct Dict& as_dict() const { return *static_cast<const Dict*>(p_.get()); }
  struct Namespace& as_namespace() const;
  const struct Callable& as_callable() const { return *static_cast<const Callable*>(p_.get()); }
  const struct LoopState& as_loop() const { return *static_cast<const LoopState*>(p_.get()); }
  // Why this value is undefined ("'foo' is undefined"); empty when unknown.
  std::string_view undefined_hint() const;
  // Identity of a shared payload (namespace/callable identity for `is sameas` and `==`).
  const void* payload() const { return p_.get(); }

 private:
  Kind kind_ = Kind::kUndefined;
  union {
    bool b;
    int64_t i;
    double f;
  } u_{};
  std::shared_ptr<const void> p_;
};

// Nesting depth of a value (scalars 0). Values nest at most kMaxValueDepth deep: every recursive
// walk (repr, tojson, ==, destruction) is then bounded; checked_list/checked_dict enforce it.
constexpr int kMaxValueDepth = 256;
int value_depth(const Value& v);

// True when v holds a namespace, loop or bound method (directly or inside lists/dicts). Such values
// cannot be stored in a namespace: that is the only way a reference cycle could form.
bool holds_reference(const Value& v);

struct List {
  std::vector<Value> items;
  bool is_tuple = false;
  int depth = 1;           // computed by Value::list
  bool holds_ref = false;  // computed by Value::list
};

// A dict keeps insertion order (Python 3.7+). Lookups are linear: chat dicts are small.
struct Dict {
  std::vector<std::pair<Value, Value>> entries;
  int depth = 1;           // computed by Value::dict
  bool holds_ref = false;  // computed by Value::dict
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(Value key, Value value);  // replaces an equal key in place, else appends
};

struct Namespace {
  std::vector<std::pair<std::string, Value>> attrs;
  const Value* find(std::string_view name) const;
  void set(std::string_view name, Value value);
};

struct Callable {
  enum class Type : uint8_t { kBuiltin, kMethod, kMacro, kCaller };
  Type type = Type::kBuiltin;
  std::string name;
  BuiltinFn builtin = nullptr;   // kBuiltin
  Value self;                    // kMethod: the bound object; `name` is the method
  const Stmt* node = nullptr;    // kMacro: the macro; kCaller: the call block
  std::weak_ptr<Scope> closure;  // kMacro / kCaller: the scope the body reads names from
};

struct LoopState {
  std::shared_ptr<const std::vector<Value>> items;
  int64_t index0 = 0;
  int value_depth = 1;  // 1 + the deepest item
};

// Builders for values made while rendering: fail when the result would nest deeper than
// kMaxValueDepth.
Result<Value> checked_list(std::vector<Value> items, bool is_tuple = false);
Result<Value> checked_dict(Dict d);

// Python's type name, for error messages ("str", "NoneType", "dict" ...).
const char* type_name(const Value& v);

// A work allowance for comparing (possibly large, nested) values: one unit per element visited
// and per 64 bytes of string compared. Comparisons stop early once it is spent.
struct CompareBudget {
  uint64_t remaining = UINT64_MAX;
  bool exhausted = false;
  bool spend(uint64_t n) {
    if (n > remaining) {
      remaining = 0;
      exhausted = true;
      return false;
    }
    remaining -= n;
    return true;
  }
};

// Python truthiness (Undefined is false).
bool truthy(const Value& v);

// Python `==` (Jinja's Undefined equals Undefined; 1 == 1.0 == True; tuple != list).
// With a budget, the result is meaningless once budget->exhausted is set.
bool equals(const Value& a, const Value& b, CompareBudget* budget = nullptr);

// Python ordering: -1, 0 or 1 (2 when unordered, i.e. NaN); an error for types Python cannot order.
Result<int> compare(const Value& a, const Value& b, CompareBudget* budget = nullptr);

// Converts JSON (RFC 8259 data from a request or tokenizer_config.json) into values. Objects keep
// their key order when the input is an ordered_json. Nesting deeper than max_depth fails.
Result<Value> from_json(const nlohmann::ordered_json& j, int max_depth = 128);
Result<Value> from_json(const nlohmann::json& j, int max_depth = 128);

}  // namespace hearth::jinja
