// Jinja's filters over sequences: first, last, list, join, map, select/reject(attr), sort, unique,
// dictsort, min, max, sum, reverse, items. They return lists where Jinja returns generators.
#include <algorithm>

#include "model/chat_template/filters_internal.h"
#include "model/chat_template/py_format.h"

namespace hearth::jinja::filters {

// Jinja's make_attrgetter: "a.b.0" looks up item/attribute a, then b, then index 0.
Result<Value> get_path(Interpreter& in, const Value& item, const Value& attribute) {
  if (attribute.is_int()) return in.get_item(item, attribute);
  if (!attribute.is_string()) {
    return make_error(ErrorCode::kInvalidArgument, "attribute must be a string or integer, not {}",
                      type_name(attribute));
  }
  Value cur = item;
  const std::string& path = attribute.as_string();
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const bool digits = !part.empty() && part.size() < 18 &&
                        std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    HEARTH_ASSIGN_OR_RETURN(
        cur, in.get_item(cur, digits ? Value::integer(std::stoll(part)) : Value::string(part)));
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

namespace {

// Stable merge sort that propagates comparison errors (Python's sort is stable too).
Status sort_indices(Interpreter& in, std::vector<size_t>& order, const std::vector<Value>& keys,
                    bool reverse) {
  std::vector<size_t> tmp(order.size());
  Status err;
  auto less = [&](size_t a, size_t b) -> bool {
    if (!err.is_ok()) return false;
    auto c = reverse ? in.values_compare(keys[b], keys[a]) : in.values_compare(keys[a], keys[b]);
    if (!c.is_ok()) {
      err = c.status();
      return false;
    }
    return c.value() == -1;
  };
  for (size_t width = 1; width < order.size(); width *= 2) {
    for (size_t lo = 0; lo < order.size(); lo += 2 * width) {
      const size_t mid = std::min(lo + width, order.size());
      const size_t hi = std::min(lo + 2 * width, order.size());
      size_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi) tmp[k++] = less(order[j], order[i]) ? order[j++] : order[i++];
      while (i < mid) tmp[k++] = order[i++];
      while (j < hi) tmp[k++] = order[j++];
    }
    order.swap(tmp);
    if (!err.is_ok()) return err;
  }
  return err;
}

}  // namespace

namespace {

Result<Value> seq_of(Interpreter& in, const Value& v, std::vector<Value>& items) {
  HEARTH_ASSIGN_OR_RETURN(items, in.iterate(v));
  return Value();
}

}  // namespace

Result<Value> f_dictsort(Interpreter& in, const Value& v, CallArgs& args) {
  ArgBinder b("dictsort", args, {"case_sensitive", "by", "reverse"});
  HEARTH_RETURN_IF_ERROR(b.status());
  if (!v.is_dict())
    return make_error(ErrorCode::kInvalidArgument, "dictsort needs a dict, not {}", type_name(v));
  bool by_value = false;
  if (const Value* by = b.get(1)) {
    if (!by->is_string() || (by->as_string() != "key" && by->as_string() != "value")) {
      return make_error(ErrorCode::kInvalidArgument, "dictsort: by must be 'key' or 'value'");
    }
    by_value = by->as_string() == "value";
  }
  const bool case_sensitive = flag(b.get(0), false);
  const auto& entries = v.as_dict().entries;
  HEARTH_RETURN_IF_ERROR(in.charge_steps(entries.size() * 8));
  std::vector<Value> keys;
  std::vector<size_t> order;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Value& k = by_value ? entries[i].second : entries[i].first;
    keys.push_back(case_sensitive ? k : lower_if_string(k));
    order.push_back(i);
  }
  HEARTH_RETURN_IF_ERROR(sort_indices(in, order, keys, flag(b.get(2), false)));
  std::vector<Value> out;
  for (size_t i : order) {
    HEARTH_ASSIGN_OR_RETURN(Value pair, checked_list({entries[i].first, entries[i].second}, true));
    out.push_back(std::move(pair));
  }
  return checked_list(std::move(out));
}

Result<Value> f_first(Interpreter& in, const Value& v, CallArgs&) {
  if (v.is_undefined()) return v;
  std::vector<Value> items;
  HEARTH_RETURN_IF_ERROR(seq_of(in, v, items).status());
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Result<Value> f_last(Interpreter& in, const Value& v, CallArgs&) {
  if (v.is_undefined()) return v;
  std::vector<Value> items;
  HEARTH_RETURN_IF_ERROR(seq_of(in, v, items).status());
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

Result<Value> f_items(Interpreter& in, const Value& v, CallArgs& args) {
  if (!args.positional.empty() || !args.keyword.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "items takes no arguments");
  }
  if (v.is_undefined()) return Value::list({});
  if (!v.is_dict()) return make_error(ErrorCode::kInvalidArgument, "Can only get item pairs from a mapping.");
  CallArgs none;
  return call_method(in, v, "items", none);
}

Result<Value> f_join(Interpreter& in, const Value& v, CallArgs& args) {
  ArgBinder b("join", args, {"d", "attribute"});
  HEARTH_RETURN_IF_ERROR(b.status());
  std::vector<Value> items;
  HEARTH_RETURN_IF_ERROR(seq_of(in, v, items).status());
  std::string sep;
  if (b.get(0) != nullptr) {
    HEARTH_ASSIGN_OR_RETURN(sep, in.str(*b.get(0)));
  }
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    Value item = items[i];
    if (b.get(1) != nullptr) {
      HEARTH_ASSIGN_OR_RETURN(item, get_path(in, item, *b.get(1)));
    }
    if (i > 0) out += sep;
    append_str(out, item, in.limits().max_output_bytes);
    if (out.size() > in.limits().max_output_bytes) break;
  }
  return in.make_string(std::move(out));
}

Result<Value> f_list(Interpreter& in, const Value& v, CallArgs&) {
  std::vector<Value> items;
  HEARTH_RETURN_IF_ERROR(seq_of(in, v, items).status());
  return checked_list(std::move(items));
}

Result<Value> f_map(Interpreter& in, const Value& v, CallArgs& args) {
  std::vector<Value> items;
  HEARTH_RETURN_IF_ERROR(seq_of(in, v, items).status());
  const Value* attribute = nullptr;
  const Value* dflt = nullptr;
  for (const auto& [k, x] : args.keyword) {
    if (k == "attribute")
      attribute = &x;
    else if (k == "default")
      dflt = &x;
  }
  std::vector<Value> out;
  out.reserve(items.size());
  if (attribute != nullptr) {
    if (!args.positional.empty()) {
      return make_error(ErrorCode::kInvalidArgument, "map(attribute=...) takes no positional arguments");
    }
    for (const Value& item : items) {
      HEARTH_ASSIGN_OR_RETURN(Value x, get_path(in, item, *attribute));
      out.push_back(x.is_undefined() && dflt != nullptr ? *dflt : std::move(x));
    }
    return checked_list(std::move(out));
  }
  if (args.positional.empty() || !args.positional.front().is_string()) {
    return make_error(ErrorCode::kInvalidArgument, "map needs a filter name or attribute=");
  }
  const std::string filter = args.positional.front().as_string();
  if (!is_known_filter(filter))
    return make_error(ErrorCode::kInvalidArgument, "no filter named '{}'", filter);
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.keyword = args.keyword;
  for (const Value& item : items) {
    CallArgs a = rest;
    HEARTH_ASSIGN_OR_RETURN(Value x, apply_filter(in, filter, item, a));
    out.push_back(std::move(x));
  }
  return checked_list(std::move(out));
}

namespace {

Result<Value> min_max(Interpreter& in, const Value& v, CallArgs& args, bool want_max) {
  ArgBinder b(want_max ? "max" : "min", args, {"case_sensitive", "attribute"});
  HEARTH_RETURN_IF_ERROR(b.status());
  std::vector<Value> items;
  HEARTH_RETURN_IF_ERROR(seq_of(in, v, items).status());
  if (items.empty()) return Value::undefined(fmt::format("No aggregated item, sequence was empty."));
  const bool case_sensitive = flag(b.get(0), false);
  size_t best = 0;
  Value best_key;
  for (size_t i = 0; i < items.size(); ++i) {
    Value key = items[i];
    if (b.get(1) != nullptr) {
      HEARTH_ASSIGN_OR_RETURN(key, get_path(in, key, *b.get(1)));
    }
    if (!case_sensitive) key = lower_if_string(key);
    if (i == 0) {
      best_key = std::move(key);
      continue;
    }
    HEARTH_ASSIGN_OR_RETURN(int c, in.values_compare(key, best_key));
    if ((want_max && c == 1) || (!want_max && c == -1)) {
      best = i;
      best_key = std::move(key);
    }
  }
  return items[best];
}

}  // namespace

Result<Value> f_max(Interpreter& in, const Value& v, CallArgs& args) {
  return min_max(in, v, args, true);
}

Result<Value> f_min(Interpreter& in, const Value& v, CallArgs& args) {
  return min_max(in, v, args, false);
}

namespace {

// select / reject / selectattr / rejectattr
Result<Value> select_impl(Interpreter& in, const Value& v, CallArgs& args, bool with_attr, bool keep_when) {
  std::vector<Value> items;
  HEARTH_RETURN_IF_ERROR(seq_of(in, v, items).status());
  size_t next = 0;
  const Value* attribute = nullptr;
  if (with_attr) {
    if (args.positional.empty()) return make_error(ErrorCode::kInvalidArgument, "missing attribute name");
    attribute = &args.positional[next++];
  }
  std::string test;
  if (next < args.positional.size()) {
    if (!args.positional[next].is_string())
      return make_error(ErrorCode::kInvalidArgument, "test name must be a string");
    test = args.positional[next++].as_string();
    if (!is_known_test(test)) return make_error(ErrorCode::kInvalidArgument, "no test named '{}'", test);
  }
  CallArgs test_args;
  test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(next),
                              args.positional.end());
  test_args.keyword = args.keyword;
  std::vector<Value> out;
  for (const Value& item : items) {
    Value subject = item;
    if (attribute != nullptr) {
      HEARTH_ASSIGN_OR_RETURN(subject, get_path(in, item, *attribute));
    }
    bool ok;
    if (test.empty()) {
      ok = truthy(subject);
    } else {
      CallArgs a = test_args;
      HEARTH_ASSIGN_OR_RETURN(ok, apply_test(in, test, subject, a));
    }
    if (ok == keep_when) out.push_back(item);
  }
  return checked_list(std::move(out));
}

}  // namespace

Result<Value> f_select(Interpreter& in, const Value& v, CallArgs& args) {
  return select_impl(in, v, args, false, true);
}

Result<Value> f_reject(Interpreter& in, const Value& v, CallArgs& args) {
  return select_impl(in, v, args, false, false);
}

Result<Value> f_selectattr(Interpreter& in, const Value& v, CallArgs& args) {
  return select_impl(in, v, args, true, true);
}

Result<Value> f_rejectattr(Interpreter& in, const Value& v, CallArgs& args) {
  return select_impl(in, v, args, true, false);
}

Result<Value> f_reverse(Interpreter& in, const Value& v, CallArgs&) {
  if (v.is_string()) {
    std::u32string u = pystr::decode(v.as_string());
    std::reverse(u.begin(), u.end());
    return in.make_string(pystr::encode(u));
  }
  std::vector<Value> items;
  HEARTH_RETURN_IF_ERROR(seq_of(in, v, items).status());
  std::reverse(items.begin(), items.end());
  return checked_list(std::move(items));
}

Result<Value> f_sort(Interpreter& in, const Value& v, CallArgs& args) {
  ArgBinder b("sort", args, {"reverse", "case_sensitive", "attribute"});
  HEARTH_RETURN_IF_ERROR(b.status());
  std::vector<Value> items;
  HEARTH_RETURN_IF_ERROR(seq_of(in, v, items).status());
  HEARTH_RETURN_IF_ERROR(in.charge_steps(items.size() * 8));
  const bool case_sensitive = flag(b.get(1), false);
  std::vector<Value> keys;
  std::vector<size_t> order;
  for (size_t i = 0; i < items.size(); ++i) {
    Value key = items[i];
    if (b.get(2) != nullptr) {
      HEARTH_ASSIGN_OR_RETURN(key, get_path(in, key, *b.get(2)));
    }
    keys.push_back(case_sensitive ? std::move(key) : lower_if_string(key));
    order.push_back(i);
  }
  HEARTH_RETURN_IF_ERROR(sort_indices(in, order, keys, flag(b.get(0), false)));
  std::vector<Value> out;
  out.reserve(items.size());
  for (size_t i : order) out.push_back(items[i]);
  return checked_list(std::move(out));
}

Result<Value> f_sum(Interpreter& in, const Value& v, CallArgs& args) {
  ArgBinder b("sum", args, {"attribute", "start"});
  HEARTH_RETURN_IF_ERROR(b.status());
  std::vector<Value> items;
  HEARTH_RETURN_IF_ERROR(seq_of(in, v, items).status());
  Value total = b.get(1) != nullptr ? *b.get(1) : Value::integer(0);
  for (const Value& item : items) {
    Value x = item;
    if (b.get(0) != nullptr) {
      HEARTH_ASSIGN_OR_RETURN(x, get_path(in, item, *b.get(0)));
    }
    if (!x.is_number() || !total.is_number()) {
      return make_error(ErrorCode::kInvalidArgument, "sum supports numbers only, got {}", type_name(x));
    }
    if (x.is_float() || total.is_float()) {
      total = Value::number(total.as_double() + x.as_double());
    } else {
      int64_t r;
      if (__builtin_add_overflow(total.as_int(), x.as_int(), &r)) {
        return make_error(ErrorCode::kOutOfRange, "integer overflow");
      }
      total = Value::integer(r);
    }
  }
  return total;
}

Result<Value> f_unique(Interpreter& in, const Value& v, CallArgs& args) {
  ArgBinder b("unique", args, {"case_sensitive", "attribute"});
  HEARTH_RETURN_IF_ERROR(b.status());
  std::vector<Value> items;
  HEARTH_RETURN_IF_ERROR(seq_of(in, v, items).status());
  HEARTH_RETURN_IF_ERROR(in.charge_steps(items.size() * items.size() / 2));
  const bool case_sensitive = flag(b.get(0), false);
  std::vector<Value> seen, out;
  for (const Value& item : items) {
    Value key = item;
    if (b.get(1) != nullptr) {
      HEARTH_ASSIGN_OR_RETURN(key, get_path(in, item, *b.get(1)));
    }
    if (!case_sensitive) key = lower_if_string(key);
    if (key.is_list() || key.is_dict()) {
      return make_error(ErrorCode::kInvalidArgument, "unhashable type: '{}'", type_name(key));
    }
    bool dup = false;
    for (const Value& s : seen) {
      HEARTH_ASSIGN_OR_RETURN(dup, in.values_equal(s, key));
      if (dup) break;
    }
    if (dup) continue;
    seen.push_back(std::move(key));
    out.push_back(item);
  }
  return checked_list(std::move(out));
}

}  // namespace hearth::jinja::filters
