#include "engine/sampler.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

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
  const auto higher = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
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
    // The nucleus is usually a small fraction of the vocab: order a growing highest-first prefix
    // (nth_element + sort of each chunk) until it holds top_p of the mass, instead of sorting all.
    const double cutoff = static_cast<double>(params_.top_p) * total;
    const auto begin = cand_.begin();
    size_t m = cand_.size();
    size_t sorted = use_top_k ? m : 0;
    if (sorted < m) {
      // One cheap pass first: the tokens within a factor 1024 of the best usually already hold
      // top_p of the mass, and then nothing below them needs ordering at all.
      const auto head_end =
          std::partition(begin, cand_.end(), [](const Candidate& c) { return c.weight >= 0x1p-10f; });
      double head = 0.0;
      for (auto it = begin; it != head_end; ++it) head += it->weight;
      if (head >= cutoff) m = static_cast<size_t>(head_end - begin);
    }
    double cum = 0.0;
    size_t keep = 0, chunk = 64;
    while (keep < m) {
      if (keep == sorted) {
        const size_t end = std::min(m, sorted + chunk);
        if (end < m) std::nth_element(begin + sorted, begin + end, begin + m, higher);
        std::sort(begin + sorted, begin + end, higher);
        sorted = end;
        chunk *= 4;
      }
      cum += cand_[keep++].weight;
      if (cum >= cutoff) break;
    }
    cand_.resize(keep);
    total = cum;
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

SampledToken Sampler::accept(int32_t id, float logprob) {
  if (id >= 0 && id < vocab_size_) ++output_counts_[static_cast<size_t>(id)];
  SampledToken t;
  t.id = id;
  t.logprob = logprob;
  return t;
}

}  // namespace hearth
