#include "engine/sampler.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>
#include <limits>
#include <numeric>

#include "kernels/cpu/sampling.h"

namespace hearth {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Every comparison with NaN is false, so a NaN field fails the check too.
Status check_range(const char* field, float v, float lo, bool lo_open, float hi) {
  const bool ok = (lo_open ? v > lo : v >= lo) && v <= hi;
  if (ok) return Status::ok();
  return make_error(ErrorCode::kInvalidArgument, "{} must be in {}{}, {}], got {}", field,
                    lo_open ? "(" : "[", lo, hi, v);
}

uint64_t seed_from(const std::optional<uint64_t>& seed) {
  if (seed) return *seed;
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace

Status SamplingParams::validate() const {
  HEARTH_RETURN_IF_ERROR(check_range("temperature", temperature, 0.0f, false, 100.0f));
  // The upper bound of top_k (the vocab size) is not known here; Sampler treats top_k >= vocab as off.
  if (top_k < 0) return make_error(ErrorCode::kInvalidArgument, "top_k must be >= 0, got {}", top_k);
  HEARTH_RETURN_IF_ERROR(check_range("top_p", top_p, 0.0f, true, 1.0f));
  HEARTH_RETURN_IF_ERROR(check_range("min_p", min_p, 0.0f, false, 1.0f));
  HEARTH_RETURN_IF_ERROR(check_range("repetition_penalty", repetition_penalty, 0.0f, true, 10.0f));
  HEARTH_RETURN_IF_ERROR(check_range("frequency_penalty", frequency_penalty, -2.0f, false, 2.0f));
  HEARTH_RETURN_IF_ERROR(check_range("presence_penalty", presence_penalty, -2.0f, false, 2.0f));
  if (logit_bias.size() > kMaxLogitBias)
    return make_error(ErrorCode::kInvalidArgument, "logit_bias: more than {} entries", kMaxLogitBias);
  for (const auto& [id, bias] : logit_bias) {
    if (id < 0) return make_error(ErrorCode::kInvalidArgument, "logit_bias: token id {} is negative", id);
    HEARTH_RETURN_IF_ERROR(check_range("logit_bias", bias, -100.0f, false, 100.0f));
  }
  if (top_logprobs < 0 || top_logprobs > 20) {
    return make_error(ErrorCode::kInvalidArgument, "top_logprobs must be in [0, 20], got {}", top_logprobs);
  }
  return Status::ok();
}

Sampler::Sampler(const SamplingParams& params, int64_t vocab_size)
    : params_(params),
      vocab_size_(vocab_size),
      rng_(seed_from(params.seed)),
      output_counts_(static_cast<size_t>(vocab_size), 0),
      in_prompt_(static_cast<size_t>(vocab_size), 0),
      work_(static_cast<size_t>(vocab_size)),
      logprobs_(static_cast<size_t>(vocab_size)) {
  assert(vocab_size > 0);
  assert(params.validate().is_ok());
}

void Sampler::add_prompt(std::span<const int32_t> prompt_ids) {
  for (int32_t id : prompt_ids) {
    if (id >= 0 && id < vocab_size_) in_prompt_[static_cast<size_t>(id)] = 1;
  }
}

int32_t Sampler::draw(std::span<const float> work, float max) {
  // Temperature is applied inside the exponent, relative to the max: exp((x - max) / T) is
  // softmax(x / T) up to normalisation and cannot overflow for small T. Weights are relative to the
  // most likely token (weight 1), which is exactly what min_p compares against.
  const float inv_t = 1.0f / params_.temperature;
  const bool max_is_inf = std::isinf(max);
  const auto weight = [&](float x) -> float {
    if (max_is_inf) return x == max ? 1.0f : 0.0f;  // +inf logits share all the mass
    return std::exp((x - max) * inv_t);
  };
  // min_p and top_k commute (both keep a highest-first prefix), so top_k selects first to avoid
  // weighing the whole vocab; its output is already ordered highest first.
  const size_t n = work.size();
  const bool use_top_k = params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n;
  cand_.clear();
  const auto consider = [&](int32_t id) {
    const float x = work[static_cast<size_t>(id)];
    const float w = weight(x);
    if (w > 0.0f && w >= params_.min_p) cand_.push_back({x, w, id});  // zero weight is never drawn
  };
  if (use_top_k) {
    top_k_indices(work, params_.top_k, order_);
    for (int32_t id : order_) consider(id);
  } else {
    for (size_t i = 0; i < n; ++i) consider(static_cast<int32_t>(i));
  }
  // Never empty: the max has weight 1 and min_p <= 1.
  double total = 0.0;
  for (const Candidate& c : cand_) total += c.weight;

  if (params_.top_p < 1.0f) {
    const double cutoff = static_cast<double>(params_.top_p) * total;
    total = use_top_k ? keep_sorted_prefix(cutoff) : keep_nucleus(cutoff);
  }

  // 53 random bits -> uniform double in [0, 1); unlike std::uniform_real_distribution this is the
  // same on every standard library, so seeded runs reproduce across builds.
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  const double target = u * total;
  double cum = 0.0;
  for (const Candidate& c : cand_) {
    cum += c.weight;
    if (target < cum) return c.id;
  }
  return cand_.back().id;  // rounding: cum can end a hair below total
}

// cand_ is ordered highest first: keep its shortest prefix holding `cutoff` of the mass.
double Sampler::keep_sorted_prefix(double cutoff) {
  double cum = 0.0;
  size_t keep = 0;
  while (keep < cand_.size()) {
    cum += cand_[keep++].weight;
    if (cum >= cutoff) break;
  }
  cand_.resize(keep);
  return cum;
}

// The nucleus of an unordered cand_ in O(n): a radix select on the weights' bit patterns (positive floats
// order like their bits). Each pass histograms the mass of the undecided candidates by the next bits
// (11, 11, then 10), keeps the buckets above the one where the cumulative mass (from the top) reaches the
// cutoff, drops those below, and goes on inside that bucket; its last few candidates are sorted. Sorting
// the whole nucleus instead costs ~10 ms per token on a flat 150k-token distribution (high temperature,
// or an undertrained model). The kept set is what a highest-first sort would keep; its order (the draw's)
// is deterministic for given logits.
double Sampler::keep_nucleus(double cutoff) {
  const auto higher = [](const Candidate& a, const Candidate& b) {
    return a.weight > b.weight || (a.weight == b.weight && a.id < b.id);
  };
  const auto bits = [](float w) { return std::bit_cast<uint32_t>(w); };
  size_t kept = 0;                   // cand_[0, kept): in the nucleus
  size_t lo = 0, hi = cand_.size();  // cand_[lo, hi): undecided
  double cum = 0.0;
  struct Pass {
    int shift;
    uint32_t mask;
  };
  static constexpr Pass kPasses[] = {{21, 0x7FF}, {10, 0x7FF}, {0, 0x3FF}};
  for (const Pass& pass : kPasses) {
    if (hi - lo <= 64) break;
    bucket_mass_.assign(pass.mask + 1, 0.0);
    for (size_t i = lo; i < hi; ++i)
      bucket_mass_[(bits(cand_[i].weight) >> pass.shift) & pass.mask] += cand_[i].weight;
    int64_t boundary = -1;
    double above = cum;
    for (int64_t b = pass.mask; b >= 0; --b) {
      if (above + bucket_mass_[static_cast<size_t>(b)] >= cutoff) {
        boundary = b;
        break;
      }
      above += bucket_mass_[static_cast<size_t>(b)];
    }
    if (boundary < 0)
      return cum + std::accumulate(cand_.begin() + static_cast<ptrdiff_t>(lo),
                                   cand_.begin() + static_cast<ptrdiff_t>(hi), 0.0,
                                   [](double t, const Candidate& c) { return t + c.weight; });
    const auto key = [&](const Candidate& c) {
      return static_cast<int64_t>((bits(c.weight) >> pass.shift) & pass.mask);
    };
    // [lo, hi) -> above the boundary | in it | below (dropped).
    const auto first = cand_.begin() + static_cast<ptrdiff_t>(lo);
    const auto mid = std::partition(first, cand_.begin() + static_cast<ptrdiff_t>(hi),
                                    [&](const Candidate& c) { return key(c) > boundary; });
    const auto end = std::partition(mid, cand_.begin() + static_cast<ptrdiff_t>(hi),
                                    [&](const Candidate& c) { return key(c) == boundary; });
    cum = above;
    kept = static_cast<size_t>(mid - cand_.begin());
    lo = kept;
    hi = static_cast<size_t>(end - cand_.begin());
  }
  // The boundary's few candidates, highest first, until the cutoff.
  std::sort(cand_.begin() + static_cast<ptrdiff_t>(lo), cand_.begin() + static_cast<ptrdiff_t>(hi), higher);
  size_t keep = lo;
  while (keep < hi) {
    cum += cand_[keep++].weight;
    if (cum >= cutoff) break;
  }
  cand_.resize(keep);
  return cum;
}

SampledToken Sampler::sample(std::span<const float> logits, std::span<const uint8_t> allowed) {
  assert(static_cast<int64_t>(logits.size()) == vocab_size_);
  // Defensive in release builds: never index past either buffer.
  const size_t n = std::min(logits.size(), static_cast<size_t>(vocab_size_));
  SampledToken result;
  if (n == 0) {
    result.logprob = kNegInf;
    return result;
  }
  const std::span<float> work(work_.data(), n);
  const std::span<float> logprobs(logprobs_.data(), n);

  log_softmax(logits.first(n), logprobs);
  for (size_t i = 0; i < n; ++i) work[i] = std::isnan(logits[i]) ? kNegInf : logits[i];
  if (params_.repetition_penalty != 1.0f || params_.frequency_penalty != 0.0f ||
      params_.presence_penalty != 0.0f) {
    apply_penalties(work, std::span<const int32_t>(output_counts_.data(), n),
                    std::span<const uint8_t>(in_prompt_.data(), n), params_.repetition_penalty,
                    params_.frequency_penalty, params_.presence_penalty);
  }
  for (const auto& [id, bias] : params_.logit_bias)
    if (id >= 0 && static_cast<size_t>(id) < n) work[static_cast<size_t>(id)] += bias;

  if (!allowed.empty()) {
    const size_t m = std::min(n, allowed.size());
    for (size_t i = 0; i < m; ++i)
      if (allowed[i] == 0) work[i] = kNegInf;
  }

  // argmax also covers the degenerate rows: all -inf gives id 0.
  int32_t chosen = argmax(work);
  const float max = work[static_cast<size_t>(chosen)];
  if (!params_.greedy() && max != kNegInf) chosen = draw(work, max);

  result.id = chosen;
  result.logprob = logprobs[static_cast<size_t>(chosen)];
  if (params_.top_logprobs > 0) {
    top_k_indices(logprobs, params_.top_logprobs, order_);
    result.top.reserve(order_.size());
    for (int32_t id : order_) result.top.push_back({id, logprobs[static_cast<size_t>(id)]});
  }
  ++output_counts_[static_cast<size_t>(chosen)];
  return result;
}

DeviceSampling Sampler::device_sampling() {
  DeviceSampling d;
  d.temperature = params_.temperature;
  d.top_k = params_.top_k;
  d.top_p = params_.top_p;
  d.min_p = params_.min_p;
  d.top_logprobs = params_.top_logprobs;
  if (!params_.greedy()) d.seed = rng_();
  return d;
}

SampledToken Sampler::accept(const DeviceToken& token) {
  if (token.id >= 0 && token.id < vocab_size_) ++output_counts_[static_cast<size_t>(token.id)];
  SampledToken t;
  t.id = token.id;
  t.logprob = token.logprob;
  const int n = std::clamp(token.num_top, 0, DeviceToken::kMaxTop);
  t.top.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i)
    t.top.push_back({token.top[static_cast<size_t>(i)].id, token.top[static_cast<size_t>(i)].logprob});
  return t;
}

}  // namespace hearth
