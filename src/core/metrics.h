#pragma once
// Prometheus metrics for /metrics: a registry of counter, gauge, histogram and callback families,
// rendered in the text exposition format 0.0.4.
//
// Registration happens at start-up with constant names and returns Result (invalid or clashing names
// are programmer errors reported as kInvalidArgument). Looking up a child by label values takes a
// lock; callers keep the returned reference (stable for the registry's lifetime), and inc / set /
// observe on it are lock-free atomics that never throw and never allocate.
//
// Exposition rules (checked against promtool 2.42 `check metrics`):
//  - a counter registered as "x" or "x_total" exposes HELP, TYPE and samples as "x_total" (in 0.0.4
//    the TYPE line must name the sample itself; HELP/TYPE on the bare "x" makes promtool see an
//    untyped "x_total" with no help text);
//  - histograms expose cumulative name_bucket{...,le="..."} lines ending in le="+Inf", then name_sum
//    and name_count (which always equals the +Inf bucket);
//  - families render in registration order, children in creation order.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace hearth {

// A double updated with compare-exchange, so concurrent adds are never lost.
class AtomicDouble {
 public:
  explicit AtomicDouble(double v = 0.0) : v_(v) {}
  void add(double d) noexcept {
    double cur = v_.load(std::memory_order_relaxed);
    while (!v_.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed)) {
    }
  }
  void store(double v) noexcept { v_.store(v, std::memory_order_relaxed); }
  double load() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  static_assert(std::atomic<double>::is_always_lock_free);
  std::atomic<double> v_;
};

// Monotonic. inc() of a negative or NaN amount is ignored (a counter must never go down).
class Counter {
 public:
  void inc(double amount = 1.0) noexcept {
    if (amount > 0.0) value_.add(amount);  // false for NaN and negatives
  }
  double value() const noexcept { return value_.load(); }

 private:
  AtomicDouble value_;
};

class Gauge {
 public:
  void set(double v) noexcept { value_.store(v); }
  void inc(double amount = 1.0) noexcept { value_.add(amount); }
  void dec(double amount = 1.0) noexcept { value_.add(-amount); }
  double value() const noexcept { return value_.load(); }

 private:
  AtomicDouble value_;
};

// Fixed upper bounds (ascending, +Inf implicit). observe(v) counts v in the first bucket whose bound
// is >= v. NaN observations are ignored (they would turn _sum into NaN for good).
class Histogram {
 public:
  explicit Histogram(std::span<const double> bounds);
  void observe(double v) noexcept;

  // Upper bounds without the implicit +Inf.
  std::span<const double> bounds() const { return bounds_; }
  // Cumulative counts, one per bound plus the last for +Inf (== count()).
  std::vector<uint64_t> cumulative_counts() const;
  uint64_t count() const;
  double sum() const { return sum_.load(); }

 private:
  std::span<const double> bounds_;                   // owned by the family, which outlives us
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative; bounds+1 of them
  AtomicDouble sum_;
};

namespace metrics_detail {

// Orders label-value tuples; transparent so lookups with string_views don't allocate.
struct LabelValuesLess {
  using is_transparent = void;
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                        [](std::string_view x, std::string_view y) { return x < y; });
  }
};

// What every family shares: identity, labels, and how to append itself to the exposition.
class FamilyBase {
 public:
  FamilyBase(std::string exposed_name, std::string help, std::string type,
             std::vector<std::string> label_names)
      : name_(std::move(exposed_name)),
        help_(std::move(help)),
        type_(std::move(type)),
        label_names_(std::move(label_names)) {}
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  // The name on the HELP and TYPE lines ("x_total" for a counter registered as "x").
  const std::string& name() const { return name_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  void render(std::string& out) const;

 protected:
  virtual void render_samples(std::string& out) const = 0;

 private:
  std::string name_;
  std::string help_;
  std::string type_;
  std::vector<std::string> label_names_;
};

// Children of one type keyed by label values. Lookups share a lock, creation takes it exclusively.
template <typename Child>
class ChildMap {
 public:
  // Returns the existing child or adopts make()'s.
  template <typename Make>
  Child& get_or_create(std::span<const std::string_view> values, Make&& make);
  // Calls f(values, child) for every child, in creation order, under the shared lock.
  template <typename F>
  void for_each(F&& f) const;

 private:
  struct Entry {
    std::vector<std::string> values;
    std::unique_ptr<Child> child;
  };
  mutable std::shared_mutex mu_;
  std::vector<Entry> entries_;                                             // creation order
  std::map<std::vector<std::string>, Child*, LabelValuesLess> by_values_;  // lookup
};

}  // namespace metrics_detail

// A family of one metric type. labels() with the wrong number of values is a programmer error: it
// asserts in debug builds and in release returns a per-family detached child that is never rendered.
template <typename Child>
class MetricFamily final : public metrics_detail::FamilyBase {
 public:
  Child& labels(std::initializer_list<std::string_view> values) {
    return labels(std::span<const std::string_view>(values.begin(), values.size()));
  }
  Child& labels(const std::vector<std::string>& values);
  Child& labels(std::span<const std::string_view> values);

 private:
  friend class Registry;
  MetricFamily(std::string exposed_name, std::string help, std::string type,
               std::vector<std::string> label_names, std::vector<double> bounds = {});
  void render_samples(std::string& out) const override;
  std::unique_ptr<Child> make_child() const;

  std::vector<double> bounds_;  // histograms only
  metrics_detail::ChildMap<Child> children_;
  std::unique_ptr<Child> detached_;
};

extern template class MetricFamily<Counter>;
extern template class MetricFamily<Gauge>;
extern template class MetricFamily<Histogram>;
using CounterFamily = MetricFamily<Counter>;
using GaugeFamily = MetricFamily<Gauge>;
using HistogramFamily = MetricFamily<Histogram>;

// A gauge or counter family whose values are read at scrape time (engine stats: running requests,
// KV usage). Each child has fixed label values and a callback; callbacks run on the scraping thread,
// must be thread-safe and must not call back into the registry. One that throws renders NaN.
class CallbackFamily final : public metrics_detail::FamilyBase {
 public:
  // Errors (kInvalidArgument): wrong number of values, values already added, empty callback.
  Status add(std::vector<std::string> label_values, std::function<double()> fn);

 private:
  friend class Registry;
  using FamilyBase::FamilyBase;
  void render_samples(std::string& out) const override;

  struct Child {
    std::vector<std::string> values;
    std::function<double()> fn;
  };
  mutable std::mutex mu_;
  std::vector<Child> children_;
};

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Names must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* (not "__*", not
  // "le" for histograms, no repeats). A counter name may end in "_total" or not. A name whose
  // exposed series would clash with an existing family's is refused. A family without labels has its
  // single child from the start (labels({})), so it renders 0 before the first update.
  Result<CounterFamily*> counter(std::string_view name, std::string help,
                                 std::vector<std::string> label_names = {});
  Result<GaugeFamily*> gauge(std::string_view name, std::string help,
                             std::vector<std::string> label_names = {});
  // bounds: strictly ascending and finite; a trailing +Inf is accepted and dropped.
  Result<HistogramFamily*> histogram(std::string_view name, std::string help, std::span<const double> bounds,
                                     std::vector<std::string> label_names = {});
  Result<CallbackFamily*> callback_gauge(std::string_view name, std::string help,
                                         std::vector<std::string> label_names = {});
  Result<CallbackFamily*> callback_counter(std::string_view name, std::string help,
                                           std::vector<std::string> label_names = {});

  // The whole exposition, text format 0.0.4 (Content-Type: text/plain; version=0.0.4).
  std::string render() const;

 private:
  // Checks names and reserves the family's exposed series; returns kInvalidArgument on any clash.
  Status reserve(const std::string& help_name, const std::vector<std::string>& series,
                 const std::vector<std::string>& label_names, bool is_histogram);

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<metrics_detail::FamilyBase>> families_;  // registration order
  std::vector<std::string> exposed_;                                   // every series name taken
};

// vLLM's default bucket bounds (vllm/v1/metrics/loggers.py), in seconds.
namespace buckets {
std::span<const double> time_to_first_token();
std::span<const double> inter_token_latency();  // also vLLM's per-request time per output token
std::span<const double> request_latency();      // e2e, queue, inference, prefill, decode
}  // namespace buckets

// Exposition helpers, exposed for tests.
std::string format_value(double v);                  // "3", "0.25", "1e+300", "+Inf", "-Inf", "NaN"
std::string escape_label_value(std::string_view v);  // \ " newline; invalid UTF-8 -> U+FFFD
std::string escape_help(std::string_view v);         // \ newline
bool is_valid_metric_name(std::string_view name);
bool is_valid_label_name(std::string_view name);

inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace hearth
