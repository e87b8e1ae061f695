#pragma once
// Jinja's builtin filters, tests, global functions and the Python methods templates call on
// strings, lists, dicts and the loop object. All of them are pure functions of their arguments
// (strftime_now aside); the interpreter supplies limits and the means to call other callables.
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "model/chat_template/value.h"

namespace hearth::jinja {

// Names known at parse time: an unknown filter or test is a template syntax error, as in Jinja.
bool is_known_filter(std::string_view name);
bool is_known_test(std::string_view name);

Result<Value> apply_filter(Interpreter& in, std::string_view name, const Value& value, CallArgs& args);
Result<bool> apply_test(Interpreter& in, std::string_view name, const Value& value, CallArgs& args);

// Global functions (range, namespace, dict, raise_exception, strftime_now); nullptr if unknown.
const Value* find_global(std::string_view name);

// obj.name for a Python method of a str, list, dict or loop; nullopt when there is none.
// Mutating methods of lists and dicts are refused (returns an undefined value with a reason),
// as Jinja's immutable sandbox does.
std::optional<Value> find_method(const Value& obj, std::string_view name);
Result<Value> call_method(Interpreter& in, const Value& self, std::string_view name, CallArgs& args);

// Helpers for builtins: binds positional and keyword arguments to a Python-style signature.
class ArgBinder {
 public:
  // `params` lists the parameter names in order; `what` names the function in errors.
  ArgBinder(std::string_view what, CallArgs& args, std::initializer_list<std::string_view> params);
  Status status() const { return status_; }
  // The argument for parameter i, or nullptr when not given.
  const Value* get(size_t i) const;

 private:
  Status status_;
  std::vector<const Value*> bound_;
};

}  // namespace hearth::jinja
