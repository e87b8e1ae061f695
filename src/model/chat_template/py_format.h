#pragma once
// How Python turns values into text: str() (what `{{ x }}` prints), repr(), json.dumps() (what the
// `tojson` filter of transformers produces) and %-formatting.
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "model/chat_template/value.h"

namespace hearth::jinja {

// float.__repr__: the shortest text that round-trips ("1.0", "0.1", "1e+16", "1e-05", "inf", "nan").
std::string float_repr(double d);

// str(v) as Jinja prints it: Undefined prints nothing, None "None", True "True", lists and dicts
// as their repr. Container output stops once `out` is longer than max_bytes (callers then report
// the limit), so printing a list that shares one string a million times stays bounded.
std::string to_str(const Value& v, size_t max_bytes = SIZE_MAX);
void append_str(std::string& out, const Value& v, size_t max_bytes = SIZE_MAX);
std::string to_repr(const Value& v, size_t max_bytes = SIZE_MAX);

struct JsonOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;          // nullopt: one line
  std::optional<std::string> item_separator;  // default ", " (one line) or "," (indented)
  std::string key_separator = ": ";
  bool sort_keys = false;
  size_t max_bytes = SIZE_MAX;  // output size limit: larger fails
};

// json.dumps(v, ...) exactly as Python writes it.
Result<std::string> json_dumps(const Value& v, const JsonOptions& options);

// markupsafe.escape: & < > " ' as HTML entities.
std::string html_escape(std::string_view s);

// Python's printf-style `format % args` for the conversions s r d i f F e E g G x X o % with flags,
// width and precision, and %(name)s with a dict argument.
Result<std::string> percent_format(std::string_view format, const Value& args, size_t max_bytes = SIZE_MAX);

}  // namespace hearth::jinja
