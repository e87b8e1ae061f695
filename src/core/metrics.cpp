// Prometheus registry and text exposition 0.0.4 (see metrics.h for the rules it follows).
#include "core/metrics.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <iterator>
#include <utility>

#include "core/utf8.h"

namespace hearth {

// ---------------------------------------------------------------------------------------------------
// Formatting and validation.

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == 0.0) return "0";  // also -0
  // Integers print as integers ("1000000", not "1e+06") while they are exact in a double.
  if (std::trunc(v) == v && std::fabs(v) < 9007199254740992.0) return fmt::format("{:.0f}", v);
  return fmt::format("{}", v);  // shortest form that reads back to the same double
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size();) {
    const auto c = static_cast<unsigned char>(v[i]);
    if (c < 0x80) {
      switch (c) {
        case '\\': out += "\\\\"; break;
        case '"': out += "\\\""; break;
        case '\n': out += "\\n"; break;
        default: out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    // Prometheus refuses a scrape with invalid UTF-8 in a label value: replace such bytes.
    const size_t n = utf8::valid_sequence_length(v, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(v.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

bool is_letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

bool is_valid_metric_name(std::string_view name) {
  if (name.empty() || !(is_letter(name[0]) || name[0] == ':')) return false;
  return std::all_of(name.begin() + 1, name.end(),
                     [](char c) { return is_letter(c) || is_digit(c) || c == ':'; });
}

bool is_valid_label_name(std::string_view name) {
  if (name.empty() || !is_letter(name[0])) return false;
  return std::all_of(name.begin() + 1, name.end(), [](char c) { return is_letter(c) || is_digit(c); });
}

namespace {

// `a="x",b="y"` for one child (no braces), escaped.
template <typename Values>
std::string label_pairs(const std::vector<std::string>& names, const Values& values) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    out += escape_label_value(values[i]);
    out += '"';
  }
  return out;
}

// One sample line: name{pairs,extra} value
void append_sample(std::string& out, std::string_view name, std::string_view pairs, std::string_view extra,
                   std::string_view value) {
  out += name;
  if (!pairs.empty() || !extra.empty()) {
    out += '{';
    out += pairs;
    if (!pairs.empty() && !extra.empty()) out += ',';
    out += extra;
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Histogram.

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds), counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds.size() + 1)) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) noexcept {
  if (std::isnan(v)) return;
  // First bound >= v: "le" is inclusive. Past the last bound: the +Inf bucket.
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.add(v);
}

std::vector<uint64_t> Histogram::cumulative_counts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    out[i] = total;
  }
  return out;
}

uint64_t Histogram::count() const {
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) total += counts_[i].load(std::memory_order_relaxed);
  return total;
}

// ---------------------------------------------------------------------------------------------------
// Families.

namespace metrics_detail {

void FamilyBase::render(std::string& out) const {
  out += "# HELP ";
  out += name_;
  out += ' ';
  out += escape_help(help_);
  out += "\n# TYPE ";
  out += name_;
  out += ' ';
  out += type_;
  out += '\n';
  render_samples(out);
}

template <typename Child>
template <typename Make>
Child& ChildMap<Child>::get_or_create(std::span<const std::string_view> values, Make&& make) {
  {
    std::shared_lock lock(mu_);
    if (auto it = by_values_.find(values); it != by_values_.end()) return *it->second;
  }
  std::unique_lock lock(mu_);
  if (auto it = by_values_.find(values); it != by_values_.end()) return *it->second;  // lost a race
  Entry entry{std::vector<std::string>(values.begin(), values.end()), make()};
  Child* child = entry.child.get();
  by_values_.emplace(entry.values, child);
  entries_.push_back(std::move(entry));
  return *child;
}

template <typename Child>
template <typename F>
void ChildMap<Child>::for_each(F&& f) const {
  std::shared_lock lock(mu_);
  for (const Entry& e : entries_) f(e.values, *e.child);
}

}  // namespace metrics_detail

template <typename Child>
MetricFamily<Child>::MetricFamily(std::string exposed_name, std::string help, std::string type,
                                  std::vector<std::string> label_names, std::vector<double> bounds)
    : FamilyBase(std::move(exposed_name), std::move(help), std::move(type), std::move(label_names)),
      bounds_(std::move(bounds)) {
  detached_ = make_child();
}

template <typename Child>
std::unique_ptr<Child> MetricFamily<Child>::make_child() const {
  if constexpr (std::is_same_v<Child, Histogram>) {
    return std::make_unique<Histogram>(bounds_);
  } else {
    return std::make_unique<Child>();
  }
}

template <typename Child>
Child& MetricFamily<Child>::labels(std::span<const std::string_view> values) {
  if (values.size() != label_names().size()) {
    assert(false && "MetricFamily::labels: wrong number of label values");
    return *detached_;
  }
  return children_.get_or_create(values, [this] { return make_child(); });
}

template <typename Child>
Child& MetricFamily<Child>::labels(const std::vector<std::string>& values) {
  const std::vector<std::string_view> views(values.begin(), values.end());
  return labels(std::span<const std::string_view>(views));
}

template <typename Child>
void MetricFamily<Child>::render_samples(std::string& out) const {
  children_.for_each([&](const std::vector<std::string>& values, const Child& child) {
    const std::string pairs = label_pairs(label_names(), values);
    if constexpr (std::is_same_v<Child, Histogram>) {
      const std::vector<uint64_t> cumulative = child.cumulative_counts();
      const std::string bucket_name = name() + "_bucket";
      for (size_t i = 0; i < cumulative.size(); ++i) {
        const double le = i < bounds_.size() ? bounds_[i] : INFINITY;
        append_sample(out, bucket_name, pairs, "le=\"" + format_value(le) + "\"",
                      fmt::format("{}", cumulative[i]));
      }
      append_sample(out, name() + "_sum", pairs, "", format_value(child.sum()));
      // _count is the +Inf bucket, so the two agree even while observations race the scrape.
      append_sample(out, name() + "_count", pairs, "", fmt::format("{}", cumulative.back()));
    } else {
      append_sample(out, name(), pairs, "", format_value(child.value()));
    }
  });
}

template class MetricFamily<Counter>;
template class MetricFamily<Gauge>;
template class MetricFamily<Histogram>;

Status CallbackFamily::add(std::vector<std::string> label_values, std::function<double()> fn) {
  if (label_values.size() != label_names().size()) {
    return make_error(ErrorCode::kInvalidArgument, "metric {}: {} label values for {} label names", name(),
                      label_values.size(), label_names().size());
  }
  if (!fn) return make_error(ErrorCode::kInvalidArgument, "metric {}: empty callback", name());
  std::lock_guard lock(mu_);
  for (const Child& c : children_) {
    if (c.values == label_values) {
      return make_error(ErrorCode::kInvalidArgument, "metric {}: label values {{{}}} already added", name(),
                        label_pairs(label_names(), label_values));
    }
  }
  children_.push_back(Child{std::move(label_values), std::move(fn)});
  return Status::ok();
}

void CallbackFamily::render_samples(std::string& out) const {
  std::lock_guard lock(mu_);
  for (const Child& c : children_) {
    double v = NAN;
    try {
      v = c.fn();
    } catch (...) {  // a broken stat must not take /metrics down with it
    }
    append_sample(out, name(), label_pairs(label_names(), c.values), "", format_value(v));
  }
}

// ---------------------------------------------------------------------------------------------------
// Registry.

Registry::Registry() = default;
Registry::~Registry() = default;

Status Registry::reserve(const std::string& help_name, const std::vector<std::string>& series,
                         const std::vector<std::string>& label_names, bool is_histogram) {
  if (!is_valid_metric_name(help_name)) {
    return make_error(ErrorCode::kInvalidArgument, "metric name '{}' does not match [a-zA-Z_:][a-zA-Z0-9_:]*",
                      help_name);
  }
  for (size_t i = 0; i < label_names.size(); ++i) {
    const std::string& l = label_names[i];
    if (!is_valid_label_name(l)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "metric {}: label name '{}' does not match [a-zA-Z_][a-zA-Z0-9_]*", help_name, l);
    }
    if (l.starts_with("__")) {
      return make_error(ErrorCode::kInvalidArgument, "metric {}: label name '{}' is reserved (__ prefix)",
                        help_name, l);
    }
    if (is_histogram && l == "le") {
      return make_error(ErrorCode::kInvalidArgument, "metric {}: label name 'le' is reserved for buckets",
                        help_name);
    }
    if (std::find(label_names.begin(), label_names.begin() + static_cast<ptrdiff_t>(i), l) !=
        label_names.begin() + static_cast<ptrdiff_t>(i)) {
      return make_error(ErrorCode::kInvalidArgument, "metric {}: label name '{}' repeated", help_name, l);
    }
  }
  for (const std::string& s : series) {
    if (std::find(exposed_.begin(), exposed_.end(), s) != exposed_.end()) {
      return make_error(ErrorCode::kInvalidArgument, "metric {}: series name '{}' is already registered",
                        help_name, s);
    }
  }
  exposed_.insert(exposed_.end(), series.begin(), series.end());
  return Status::ok();
}

namespace {

// "x" and "x_total" both expose "x_total".
Result<std::string> counter_exposed_name(std::string_view name) {
  std::string_view base = name;
  if (base.ends_with("_total")) base.remove_suffix(6);
  if (base.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "counter name '{}' has no name before _total", name);
  }
  return std::string(base) + "_total";
}

}  // namespace

Result<CounterFamily*> Registry::counter(std::string_view name, std::string help,
                                         std::vector<std::string> label_names) {
  HEARTH_ASSIGN_OR_RETURN(std::string exposed, counter_exposed_name(name));
  std::lock_guard lock(mu_);
  HEARTH_RETURN_IF_ERROR(reserve(exposed, {exposed}, label_names, false));
  auto fam = std::unique_ptr<CounterFamily>(
      new CounterFamily(std::move(exposed), std::move(help), "counter", std::move(label_names)));
  CounterFamily* raw = fam.get();
  if (raw->label_names().empty()) raw->labels({});
  families_.push_back(std::move(fam));
  return raw;
}

Result<GaugeFamily*> Registry::gauge(std::string_view name, std::string help,
                                     std::vector<std::string> label_names) {
  std::string exposed(name);
  std::lock_guard lock(mu_);
  HEARTH_RETURN_IF_ERROR(reserve(exposed, {exposed}, label_names, false));
  auto fam = std::unique_ptr<GaugeFamily>(
      new GaugeFamily(std::move(exposed), std::move(help), "gauge", std::move(label_names)));
  GaugeFamily* raw = fam.get();
  if (raw->label_names().empty()) raw->labels({});
  families_.push_back(std::move(fam));
  return raw;
}

Result<HistogramFamily*> Registry::histogram(std::string_view name, std::string help,
                                             std::span<const double> bounds,
                                             std::vector<std::string> label_names) {
  std::string exposed(name);
  std::vector<double> b(bounds.begin(), bounds.end());
  if (!b.empty() && std::isinf(b.back()) && b.back() > 0) b.pop_back();  // +Inf is implicit
  for (size_t i = 0; i < b.size(); ++i) {
    if (!std::isfinite(b[i])) {
      return make_error(ErrorCode::kInvalidArgument, "histogram {}: bucket bound {} is {}", exposed, i,
                        format_value(b[i]));
    }
    if (i > 0 && !(b[i - 1] < b[i])) {
      return make_error(ErrorCode::kInvalidArgument,
                        "histogram {}: bucket bounds not strictly ascending at {}", exposed, i);
    }
  }
  std::lock_guard lock(mu_);
  HEARTH_RETURN_IF_ERROR(reserve(
      exposed, {exposed, exposed + "_bucket", exposed + "_sum", exposed + "_count"}, label_names, true));
  auto fam = std::unique_ptr<HistogramFamily>(new HistogramFamily(
      std::move(exposed), std::move(help), "histogram", std::move(label_names), std::move(b)));
  HistogramFamily* raw = fam.get();
  if (raw->label_names().empty()) raw->labels({});
  families_.push_back(std::move(fam));
  return raw;
}

Result<CallbackFamily*> Registry::callback_gauge(std::string_view name, std::string help,
                                                 std::vector<std::string> label_names) {
  std::string exposed(name);
  std::lock_guard lock(mu_);
  HEARTH_RETURN_IF_ERROR(reserve(exposed, {exposed}, label_names, false));
  auto fam = std::unique_ptr<CallbackFamily>(
      new CallbackFamily(std::move(exposed), std::move(help), "gauge", std::move(label_names)));
  CallbackFamily* raw = fam.get();
  families_.push_back(std::move(fam));
  return raw;
}

Result<CallbackFamily*> Registry::callback_counter(std::string_view name, std::string help,
                                                   std::vector<std::string> label_names) {
  HEARTH_ASSIGN_OR_RETURN(std::string exposed, counter_exposed_name(name));
  std::lock_guard lock(mu_);
  HEARTH_RETURN_IF_ERROR(reserve(exposed, {exposed}, label_names, false));
  auto fam = std::unique_ptr<CallbackFamily>(
      new CallbackFamily(std::move(exposed), std::move(help), "counter", std::move(label_names)));
  CallbackFamily* raw = fam.get();
  families_.push_back(std::move(fam));
  return raw;
}

std::string Registry::render() const {
  std::string out;
  std::lock_guard lock(mu_);
  for (const auto& fam : families_) fam->render(out);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// vLLM's default buckets.

namespace buckets {
namespace {
constexpr std::array<double, 22> kTimeToFirstToken = {0.001, 0.005, 0.01, 0.02,  0.04,  0.06,  0.08, 0.1,
                                                      0.25,  0.5,   0.75, 1.0,   2.5,   5.0,   7.5,  10.0,
                                                      20.0,  40.0,  80.0, 160.0, 640.0, 2560.0};
constexpr std::array<double, 19> kInterTokenLatency = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,
                                                       0.3,  0.4,   0.5,  0.75,  1.0, 2.5,  5.0,
                                                       7.5,  10.0,  20.0, 40.0,  80.0};
constexpr std::array<double, 21> kRequestLatency = {0.3,  0.5,   0.8,   1.0,   1.5,   2.0,    2.5,
                                                    5.0,  10.0,  15.0,  20.0,  30.0,  40.0,   50.0,
                                                    60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
}  // namespace

std::span<const double> time_to_first_token() {
  return kTimeToFirstToken;
}
std::span<const double> inter_token_latency() {
  return kInterTokenLatency;
}
std::span<const double> request_latency() {
  return kRequestLatency;
}
}  // namespace buckets

}  // namespace hearth
