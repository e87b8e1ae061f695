#include "kernels/cpu/sampling.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numeric>

namespace hearth {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// NaN compares false with everything, which would break max-finding and sort orders.
inline float key(float x) {
  return std::isnan(x) ? kNegInf : x;
}

}  // namespace

void log_softmax(std::span<const float> logits, std::span<float> out) {
  assert(out.size() == logits.size());
  const size_t n = logits.size();
  float max = kNegInf;
  for (size_t i = 0; i < n; ++i) max = std::max(max, key(logits[i]));

  if (max == kNegInf) {
    std::fill(out.begin(), out.end(), kNegInf);
    return;
  }
  if (std::isinf(max)) {  // +inf: x - max would be NaN; the +inf entries take all the mass
    size_t count = 0;
    for (size_t i = 0; i < n; ++i) count += logits[i] == max;
    const float lp = static_cast<float>(-std::log(static_cast<double>(count)));
    for (size_t i = 0; i < n; ++i) out[i] = logits[i] == max ? lp : kNegInf;
    return;
  }

  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<double>(std::exp(key(logits[i]) - max));
  const double log_sum = std::log(sum);  // sum >= 1: the max term is exp(0)
  for (size_t i = 0; i < n; ++i) {
    out[i] = static_cast<float>(static_cast<double>(key(logits[i])) - max - log_sum);
  }
}

void top_k_indices(std::span<const float> values, int32_t k, std::vector<int32_t>& out) {
  const size_t n = values.size();
  const size_t take = k <= 0 ? 0 : std::min(n, static_cast<size_t>(k));
  out.resize(n);
  std::iota(out.begin(), out.end(), 0);
  const auto higher = [&](int32_t a, int32_t b) {
    const float va = key(values[a]), vb = key(values[b]);
    return va > vb || (va == vb && a < b);
  };
  std::partial_sort(out.begin(), out.begin() + static_cast<ptrdiff_t>(take), out.end(), higher);
  out.resize(take);
}

int32_t argmax(std::span<const float> values) {
  if (values.empty()) return -1;
  int32_t best = 0;
  float best_v = key(values[0]);
  for (size_t i = 1; i < values.size(); ++i) {
    const float v = key(values[i]);
    if (v > best_v) {
      best_v = v;
      best = static_cast<int32_t>(i);
    }
  }
  return best;
}

void apply_penalties(std::span<float> logits, std::span<const int32_t> output_counts,
                     std::span<const uint8_t> in_prompt, float repetition, float frequency, float presence) {
  assert(output_counts.size() == logits.size() && in_prompt.size() == logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    const int32_t count = output_counts[i];
    float x = logits[i];
    if (repetition != 1.0f && (count > 0 || in_prompt[i] != 0)) {
      x = x > 0.0f ? x / repetition : x * repetition;
    }
    if (count > 0) x -= frequency * static_cast<float>(count) + presence;
    logits[i] = x;
  }
}

}  // namespace hearth
