// Token sampling on the GPU (declared in cuda_ops.h): one 1024-thread block per sampled row picks the token
// and computes its raw log-softmax value and the top logprobs, so that only a few bytes per row come back
// to the host instead of the whole logits row.
//
// The filters keep exactly the sets the host Sampler keeps (engine/sampler.cpp): top_k the k highest
// logits (ties: lower id first), min_p the tokens whose weight exp((x - max) / T) is at least min_p, top_p
// the shortest highest-first prefix of the remaining candidates holding top_p of their mass. Each "k-th
// highest" is a radix select over the 32-bit order-preserving keys (11, 11, then 10 bits per pass,
// histogrammed in shared memory with integer atomics, so results do not depend on atomic order), and ties
// at the boundary are resolved in id order. The draw is a Gumbel-max race over the kept tokens with
// Philox4x32-10 noise keyed by the row's seed: exact sampling from softmax(x / T) restricted to the set,
// deterministic for a given seed and independent of the other rows. Mass for top_p is fixed point
// (2^-40 units, every candidate at least one unit).
#include <cuda_runtime.h>
#include <curand_philox4x32_x.h>

#include <cstdint>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_math.cuh"

namespace hearth::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kBuckets = 2048;
using u64 = unsigned long long;

struct Smem {
  u64 hist[kBuckets];
  u64 warp_tot[kWarps];
  float red_v[32];
  int32_t red_i[32];
  float red_s[32];
  int32_t warp_cnt[kWarps];
  // Results of one select, written by the thread that finds them.
  uint32_t boundary;
  u64 above;
  int32_t id_cut;
  int32_t ntop;
  LogprobEntry top[kMaxTopLogprobs];
};

// Larger float, larger key; NaN is read as -inf everywhere.
__device__ __forceinline__ float clean(float v) {
  return v != v ? -INFINITY : v;
}
__device__ __forceinline__ uint32_t order_key(float v) {
  const uint32_t b = __float_as_uint(v);
  return (b & 0x80000000u) != 0 ? ~b : (b | 0x80000000u);
}

// Exclusive prefix sum over the block (threads in order), plus the block's total.
__device__ u64 block_exclusive_scan(u64 v, u64& total, Smem& s) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  u64 inc = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const u64 n = __shfl_up_sync(0xffffffffu, inc, o);
    if (lane >= o) inc += n;
  }
  __syncthreads();
  if (lane == 31) s.warp_tot[warp] = inc;
  __syncthreads();
  u64 before = 0;
  total = 0;
  for (int w = 0; w < kWarps; ++w) {
    const u64 t = s.warp_tot[w];
    if (w < warp) before += t;
    total += t;
  }
  return before + inc - v;
}

// Radix select: the largest key tau with sum(amount(i) : key(i) >= tau) >= target, where target is
// target_of(total amount). Returns tau; `above` gets the amount strictly above tau, `at` the amount at tau.
// amount(i) == 0 marks an element that does not take part.
template <typename KeyF, typename AmtF, typename TargetF>
__device__ uint32_t radix_select(int64_t n, KeyF key, AmtF amount, TargetF target_of, u64& target, u64& above,
                                 u64& at, Smem& s) {
  uint32_t prefix = 0, decided = 0;
  above = 0;
  constexpr int kShift[3] = {21, 10, 0};
  constexpr uint32_t kMask[3] = {0x7FF, 0x7FF, 0x3FF};
#pragma unroll
  for (int pass = 0; pass < 3; ++pass) {
    const int shift = kShift[pass];
    const uint32_t mask = kMask[pass];
    const int nb = static_cast<int>(mask) + 1;
    for (int b = threadIdx.x; b < nb; b += kThreads) s.hist[b] = 0;
    __syncthreads();
    for (int64_t i = threadIdx.x; i < n; i += kThreads) {
      const uint32_t k = key(i);
      if ((k & decided) != prefix) continue;
      const u64 a = amount(i);
      if (a != 0) atomicAdd(&s.hist[(k >> shift) & mask], a);
    }
    __syncthreads();
    // Buckets from the top down: thread t owns nb / kThreads consecutive ones.
    const int per = nb / kThreads;
    const int first = nb - 1 - static_cast<int>(threadIdx.x) * per;
    u64 mine = 0;
    for (int j = 0; j < per; ++j) mine += s.hist[first - j];
    u64 total = 0;
    const u64 before = block_exclusive_scan(mine, total, s);
    if (pass == 0) {
      target = target_of(total);
      if (threadIdx.x == 0) {  // fallback, overwritten below: everything counts (target beyond the total)
        s.boundary = 0;
        s.above = total - s.hist[0];
      }
    }
    __syncthreads();
    u64 run = above + before;
    for (int j = 0; j < per; ++j) {
      const u64 h = s.hist[first - j];
      if (run < target && run + h >= target) {
        s.boundary = static_cast<uint32_t>(first - j);
        s.above = run;
      }
      run += h;
    }
    __syncthreads();
    prefix |= s.boundary << shift;
    decided |= mask << shift;
    above = s.above;
    at = s.hist[s.boundary];
    __syncthreads();
  }
  return prefix;
}

// The id of the need-th element (1-based, in id order) with is_tie(i); INT32_MAX when there are fewer.
template <typename TieF>
__device__ int32_t nth_tie(int64_t n, TieF is_tie, u64 need, Smem& s) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (threadIdx.x == 0) s.id_cut = INT32_MAX;
  __syncthreads();
  u64 running = 0;
  for (int64_t base = 0; base < n; base += kThreads) {
    const int64_t i = base + threadIdx.x;
    const bool t = i < n && is_tie(i);
    const int c = __syncthreads_count(t);
    if (running + static_cast<u64>(c) >= need) {
      const unsigned ballot = __ballot_sync(0xffffffffu, t);
      if (lane == 0) s.warp_cnt[warp] = __popc(ballot);
      __syncthreads();
      u64 rank = running + __popc(ballot & ((1u << lane) - 1u));
      for (int w = 0; w < warp; ++w) rank += static_cast<u64>(s.warp_cnt[w]);
      if (t && rank + 1 == need) s.id_cut = static_cast<int32_t>(i);
      break;
    }
    running += static_cast<u64>(c);
  }
  __syncthreads();
  return s.id_cut;
}

__device__ __forceinline__ float gumbel(uint2 seed, int64_t i) {
  const uint4 r =
      curand_Philox4x32_10(make_uint4(static_cast<uint32_t>(i), static_cast<uint32_t>(i >> 32), 0, 0), seed);
  const float u = static_cast<float>(r.x >> 8) * 0x1.0p-24f + 0x1.0p-25f;  // (0, 1)
  return -logf(-logf(u));
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(const float* __restrict__ logits, int64_t vocab, const SampleRow* __restrict__ rows,
                  int32_t* __restrict__ ids, float* __restrict__ logprobs, LogprobEntry* __restrict__ top) {
  __shared__ Smem s;
  const SampleRow p = rows[blockIdx.x];
  const float* x = logits + static_cast<int64_t>(p.row) * vocab;
  const int64_t n = vocab;

  // What the choice sees: disallowed ids (guided decoding) are -inf; logprobs stay those of the raw row.
  const uint8_t* allowed = p.allowed;
  const auto sel = [&](int64_t i) -> float {
    return allowed != nullptr && allowed[i] == 0 ? -INFINITY : clean(x[i]);
  };
  // The raw max (for the partition function) and the choice's max with its lowest id.
  float m = -INFINITY, ms = -INFINITY;
  int32_t mi = INT32_MAX;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) {
    const float v = clean(x[i]);
    m = fmaxf(m, v);
    const float w = allowed != nullptr && allowed[i] == 0 ? -INFINITY : v;
    if (w > ms) {  // strided order: the first hit of a thread is its lowest id
      ms = w;
      mi = static_cast<int32_t>(i);
    }
  }
  m = block_max(m, s.red_s);
  block_argmax(ms, mi, s.red_v, s.red_i);
  if (mi == INT32_MAX) mi = 0;
  float sum = 0.0f;
  if (m != -INFINITY) {
    for (int64_t i = threadIdx.x; i < n; i += kThreads) {
      const float v = clean(x[i]);
      sum += isinf(m) ? (v == m ? 1.0f : 0.0f) : expf(v - m);
    }
  }
  sum = block_sum(sum, s.red_s);
  const bool inf_max = isinf(m) && m > 0.0f;
  const auto logprob = [&](float v) -> float {
    if (m == -INFINITY) return -INFINITY;
    if (inf_max) return v == m ? -logf(sum) : -INFINITY;
    return v - m - logf(sum);
  };

  int32_t chosen = mi;
  if (p.temperature > 0.0f && ms != -INFINITY) {
    const float inv_t = 1.0f / p.temperature;
    const bool inf_sel = isinf(ms);
    const auto log_weight = [&](float v) -> float {
      if (inf_sel) return v == ms ? 0.0f : -INFINITY;
      return (v - ms) * inv_t;
    };
    const auto logit_key = [&](int64_t i) { return order_key(sel(i)); };
    // top_k: the k highest logits, lower ids first among equals.
    const bool use_k = p.top_k > 0 && p.top_k < n;
    uint32_t tau_k = 0;
    int32_t cut_k = INT32_MAX;
    if (use_k) {
      u64 target = 0, above = 0, at = 0;
      tau_k = radix_select(
          n, logit_key, [](int64_t) { return u64{1}; }, [&](u64) { return static_cast<u64>(p.top_k); },
          target, above, at, s);
      const u64 need = target - above;
      if (need < at)
        cut_k = nth_tie(
            n, [&](int64_t i) { return logit_key(i) == tau_k; }, need, s);
    }
    const auto candidate = [&](int64_t i, float& w) -> bool {
      if (use_k) {
        const uint32_t k = logit_key(i);
        if (k < tau_k || (k == tau_k && i > cut_k)) return false;
      }
      w = expf(log_weight(sel(i)));
      return w > 0.0f && w >= p.min_p;
    };
    // top_p over the candidates' weights (positive floats order like their bits).
    const bool use_p = p.top_p < 1.0f;
    uint32_t tau_p = 0;
    int32_t cut_p = INT32_MAX;
    const auto mass_of = [](float w) -> u64 {
      const u64 q = static_cast<u64>(static_cast<double>(w) * 0x1.0p40);
      return q > 0 ? q : 1;
    };
    const auto mass = [&](int64_t i) -> u64 {
      float w = 0.0f;
      return candidate(i, w) ? mass_of(w) : 0;
    };
    const auto weight_key = [&](int64_t i) { return __float_as_uint(expf(log_weight(sel(i)))); };
    if (use_p) {
      u64 target = 0, above = 0, at = 0;
      tau_p = radix_select(
          n, weight_key, mass,
          [&](u64 total) {
            u64 t = static_cast<u64>(ceil(static_cast<double>(p.top_p) * static_cast<double>(total)));
            return t < 1 ? u64{1} : (t > total ? total : t);
          },
          target, above, at, s);
      const u64 unit = mass_of(__uint_as_float(tau_p));
      const u64 need = (target - above + unit - 1) / unit;
      if (need < at / unit)
        cut_p = nth_tie(
            n, [&](int64_t i) { return weight_key(i) == tau_p && mass(i) != 0; }, need, s);
    }
    // The race: argmax of log-weight + Gumbel noise over the kept tokens.
    const uint2 seed = make_uint2(static_cast<uint32_t>(p.seed), static_cast<uint32_t>(p.seed >> 32));
    float best = -INFINITY;
    int32_t bi = INT32_MAX;
    for (int64_t i = threadIdx.x; i < n; i += kThreads) {
      float w = 0.0f;
      if (!candidate(i, w)) continue;
      if (use_p) {
        const uint32_t k = __float_as_uint(w);
        if (k < tau_p || (k == tau_p && i > cut_p)) continue;
      }
      const float score = log_weight(sel(i)) + gumbel(seed, i);
      if (score > best) {
        best = score;
        bi = static_cast<int32_t>(i);
      }
    }
    block_argmax(best, bi, s.red_v, s.red_i);
    if (bi != INT32_MAX) chosen = bi;
  }
  if (threadIdx.x == 0) {
    ids[p.row] = chosen;
    logprobs[p.row] = logprob(clean(x[chosen]));
  }

  // Top logprobs: the k highest raw logits (ties: lower id first), highest first.
  const int k = p.top_logprobs < n ? p.top_logprobs : static_cast<int>(n);
  if (k <= 0) return;
  const auto logit_key = [&](int64_t i) { return order_key(clean(x[i])); };
  u64 target = 0, above = 0, at = 0;
  const uint32_t tau = radix_select(
      n, logit_key, [](int64_t) { return u64{1}; }, [&](u64) { return static_cast<u64>(k); }, target, above,
      at, s);
  const u64 need = target - above;
  const int32_t cut = need < at ? nth_tie(
                                      n, [&](int64_t i) { return logit_key(i) == tau; }, need, s)
                                : INT32_MAX;
  if (threadIdx.x == 0) s.ntop = 0;
  __syncthreads();
  for (int64_t i = threadIdx.x; i < n; i += kThreads) {
    const uint32_t key = logit_key(i);
    if (key > tau || (key == tau && i <= cut)) {
      const int slot = atomicAdd(&s.ntop, 1);
      if (slot < kMaxTopLogprobs) s.top[slot] = {static_cast<int32_t>(i), clean(x[i])};
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const int cnt = s.ntop < k ? s.ntop : k;
    for (int a = 1; a < cnt; ++a) {  // insertion sort: value descending, id ascending
      const LogprobEntry e = s.top[a];
      int b = a - 1;
      while (b >= 0 &&
             (s.top[b].logprob < e.logprob || (s.top[b].logprob == e.logprob && s.top[b].id > e.id))) {
        s.top[b + 1] = s.top[b];
        --b;
      }
      s.top[b + 1] = e;
    }
    LogprobEntry* out = top + static_cast<int64_t>(p.row) * kMaxTopLogprobs;
    for (int a = 0; a < cnt; ++a) out[a] = {s.top[a].id, logprob(s.top[a].logprob)};
  }
}

}  // namespace

int sample_rows(const float* logits, int64_t vocab, const SampleRow* rows, int n, int32_t* ids,
                float* logprobs, LogprobEntry* top, Launch s) {
  if (n <= 0) return 0;
  if (n > 65535 || vocab <= 0 || vocab > INT32_MAX) return static_cast<int>(cudaErrorInvalidValue);
  sample_kernel<<<static_cast<unsigned>(n), kThreads, 0, s.stream>>>(logits, vocab, rows, ids, logprobs, top);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace hearth::cuda
