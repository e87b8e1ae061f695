#pragma once
// Internal to the builtin filters (filters.cpp: text and number filters and the registry;
// filters_sequence.cpp: filters over sequences). Not part of the chat_template API.
#include <string_view>
#include <vector>

#include "model/chat_template/builtins.h"
#include "model/chat_template/interpreter.h"
#include "model/chat_template/py_string.h"

namespace hearth::jinja::filters {

using FilterFn = Result<Value> (*)(Interpreter&, const Value&, CallArgs&);

inline Status undefined_error(const Value& v) {
  return Status(ErrorCode::kInvalidArgument, std::string(v.undefined_hint()));
}

inline bool flag(const Value* v, bool dflt) {
  return v == nullptr ? dflt : truthy(*v);
}

inline Result<int64_t> int_param(const Value* v, int64_t dflt, std::string_view what) {
  if (v == nullptr) return dflt;
  if (v->is_int() || v->is_bool()) return v->as_int();
  return make_error(ErrorCode::kInvalidArgument, "{} must be an integer, not {}", what, type_name(*v));
}

inline Value lower_if_string(const Value& v) {
  return v.is_string() ? Value::string(pystr::lower(v.as_string())) : v;
}

// Jinja's make_attrgetter: "a.b.0" looks up item/attribute a, then b, then index 0.
Result<Value> get_path(Interpreter& in, const Value& item, const Value& attribute);

Result<Value> f_dictsort(Interpreter& in, const Value& v, CallArgs& args);
Result<Value> f_first(Interpreter& in, const Value& v, CallArgs& args);
Result<Value> f_last(Interpreter& in, const Value& v, CallArgs& args);
Result<Value> f_items(Interpreter& in, const Value& v, CallArgs& args);
Result<Value> f_join(Interpreter& in, const Value& v, CallArgs& args);
Result<Value> f_list(Interpreter& in, const Value& v, CallArgs& args);
Result<Value> f_map(Interpreter& in, const Value& v, CallArgs& args);
Result<Value> f_max(Interpreter& in, const Value& v, CallArgs& args);
Result<Value> f_min(Interpreter& in, const Value& v, CallArgs& args);
Result<Value> f_select(Interpreter& in, const Value& v, CallArgs& args);
Result<Value> f_reject(Interpreter& in, const Value& v, CallArgs& args);
Result<Value> f_selectattr(Interpreter& in, const Value& v, CallArgs& args);
Result<Value> f_rejectattr(Interpreter& in, const Value& v, CallArgs& args);
Result<Value> f_reverse(Interpreter& in, const Value& v, CallArgs& args);
Result<Value> f_sort(Interpreter& in, const Value& v, CallArgs& args);
Result<Value> f_sum(Interpreter& in, const Value& v, CallArgs& args);
Result<Value> f_unique(Interpreter& in, const Value& v, CallArgs& args);

}  // namespace hearth::jinja::filters
