// DeepSeek's own kernels (cuda_ops.h): the MLA cache store with RoPE and the latent norm, MoE routing
// (sigmoid/softmax scores, group-limited top-k, the V3 correction bias), the routed experts as grouped
// GEMVs over stacked weights, and the weighted combine.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_math.cuh"

namespace hearth::cuda {
namespace {

// Rotated value of element j of a rot_dim-wide vector v (f32), with cs[2i], cs[2i + 1] = cos, sin of pair i.
__device__ __forceinline__ float rotated(const float* v, int j, int rot_dim, bool interleave,
                                         const float* cs) {
  int pair, partner;
  const bool first = rope_pair(j, rot_dim, interleave, pair, partner);
  return rope_rotate(v[j], v[partner], first, cs, pair);
}

template <typename KT, typename QT>
__global__ void mla_rope_store_kernel(const float* __restrict__ ckv, const float* __restrict__ kv_norm,
                                      float eps, const float* __restrict__ q, MlaShape ml, RopeParams rope,
                                      const int32_t* __restrict__ pos, const int32_t* __restrict__ seq_of,
                                      const int32_t* __restrict__ block_table, int table_width,
                                      int block_size, KT* __restrict__ kv_layer, float* __restrict__ qcat,
                                      QT* __restrict__ qnope) {
  pdl_wait_then_release();
  __shared__ float cs[256];
  __shared__ float red[32];
  const int64_t t = blockIdx.x;
  const int kdim = ml.lora + ml.rope, qk = ml.nope + ml.rope;
  const int p = pos[t];
  for (int i = threadIdx.x; i < ml.rope / 2; i += blockDim.x) {
    float sn = 0.0f, cn = 1.0f;
    if (p >= 0) sincosf(rope.inv_freq[i] * static_cast<float>(p), &sn, &cn);
    cs[2 * i] = cn * rope.attention_factor;
    cs[2 * i + 1] = sn * rope.attention_factor;
  }
  const float* c = ckv + t * kdim;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < ml.lora; i += blockDim.x) ss += c[i] * c[i];
  ss = block_sum(ss, red);  // also orders the cs writes before their use
  const float inv = rsqrtf(ss / static_cast<float>(ml.lora) + eps);
  if (p >= 0) {
    const int32_t b = block_table[static_cast<int64_t>(seq_of[t]) * table_width + p / block_size];
    KT* row = kv_layer + (static_cast<int64_t>(b) * block_size + p % block_size) * kdim;
    for (int i = threadIdx.x; i < ml.lora; i += blockDim.x) row[i] = from_f32<KT>(kv_norm[i] * (c[i] * inv));
    for (int j = threadIdx.x; j < ml.rope; j += blockDim.x)
      row[ml.lora + j] = from_f32<KT>(rotated(c + ml.lora, j, ml.rope, rope.interleave, cs));
  }
  const float* qt = q + t * ml.q_stride;
  for (int e = threadIdx.x; e < ml.nh * qk; e += blockDim.x) {
    const int h = e / qk, j = e - h * qk;
    const float* qh = qt + h * qk;
    if (j < ml.nope) {
      qnope[(t * ml.nh + h) * ml.nope + j] = from_f32<QT>(qh[j]);
    } else {
      const int jj = j - ml.nope;
      qcat[(t * ml.nh + h) * kdim + ml.lora + jj] =
          p >= 0 ? rotated(qh + ml.nope, jj, ml.rope, rope.interleave, cs) : qh[j];
    }
  }
}

// One block per token. Small serial steps (group selection, sorting k ids) run on thread 0.
__global__ void moe_route_kernel(const float* __restrict__ logits, MoeRouteParams p,
                                 const float* __restrict__ correction_bias, int32_t* __restrict__ experts,
                                 float* __restrict__ weights) {
  extern __shared__ float sm[];
  float* scores = sm;                // n_experts
  float* choice = sm + p.n_experts;  // n_experts
  __shared__ float red_v[32];
  __shared__ int32_t red_i[32];
  __shared__ float red_s[32];
  __shared__ int32_t chosen[64];
  __shared__ unsigned char kept[64];
  const int64_t t = blockIdx.x;
  const float* lg = logits + t * p.n_experts;
  const int ne = p.n_experts;
  if (p.sigmoid) {
    for (int e = threadIdx.x; e < ne; e += blockDim.x) scores[e] = 1.0f / (1.0f + expf(-lg[e]));
  } else {
    float mx = -INFINITY;
    for (int e = threadIdx.x; e < ne; e += blockDim.x) mx = fmaxf(mx, lg[e]);
    int32_t unused = 0;
    block_argmax(mx, unused, red_v, red_i);  // the block's max
    float sum = 0.0f;
    for (int e = threadIdx.x; e < ne; e += blockDim.x) sum += (scores[e] = expf(lg[e] - mx));
    sum = block_sum(sum, red_s);
    for (int e = threadIdx.x; e < ne; e += blockDim.x) scores[e] /= sum;
  }
  __syncthreads();
  for (int e = threadIdx.x; e < ne; e += blockDim.x)
    choice[e] = scores[e] + (correction_bias != nullptr ? correction_bias[e] : 0.0f);
  __syncthreads();
  if (p.method != 0 && p.n_group > 1) {
    if (threadIdx.x == 0) {
      const int per = ne / p.n_group;
      float gs[64];
      for (int g = 0; g < p.n_group; ++g) {
        const float* v = choice + g * per;
        if (p.method == 2) {
          float a = -INFINITY, b = -INFINITY;
          for (int i = 0; i < per; ++i) {
            if (v[i] > a) {
              b = a;
              a = v[i];
            } else if (v[i] > b) {
              b = v[i];
            }
          }
          gs[g] = per >= 2 ? a + b : a;
        } else {
          float a = -INFINITY;
          for (int i = 0; i < per; ++i) a = fmaxf(a, v[i]);
          gs[g] = a;
        }
        kept[g] = 0;
      }
      for (int r = 0; r < p.topk_group; ++r) {  // the topk_group best groups (ties: lower index)
        int best = -1;
        for (int g = 0; g < p.n_group; ++g)
          if (!kept[g] && (best < 0 || gs[g] > gs[best])) best = g;
        kept[best] = 1;
      }
    }
    __syncthreads();
    const int per = ne / p.n_group;
    for (int e = threadIdx.x; e < ne; e += blockDim.x)
      if (!kept[e / per]) choice[e] = 0.0f;
    __syncthreads();
  }
  // Top-k of choice (ties: lower id first), one block-wide argmax per pick.
  for (int r = 0; r < p.top_k; ++r) {
    float best = -INFINITY;
    int32_t bi = INT32_MAX;
    for (int e = threadIdx.x; e < ne; e += blockDim.x) {
      bool taken = false;
      for (int q = 0; q < r; ++q) taken = taken || chosen[q] == e;
      const float v = choice[e];
      if (!taken && (v > best || (v == best && e < bi) || bi == INT32_MAX)) {
        best = v;
        bi = e;
      }
    }
    block_argmax(best, bi, red_v, red_i);
    if (threadIdx.x == 0) chosen[r] = bi;
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const int k = p.top_k;
    for (int i = 1; i < k; ++i)  // ascending ids
      for (int j = i; j > 0 && chosen[j - 1] > chosen[j]; --j) {
        const int32_t tmp = chosen[j];
        chosen[j] = chosen[j - 1];
        chosen[j - 1] = tmp;
      }
    float w[64];
    float sum = 0.0f;
    for (int i = 0; i < k; ++i) sum += (w[i] = scores[chosen[i]]);
    const bool norm = p.norm_topk && k > 1;
    if (norm) {
      const float denom = sum + 1e-20f;
      for (int i = 0; i < k; ++i) w[i] /= denom;
    }
    if (!norm || p.scale_after_norm)
      for (int i = 0; i < k; ++i) w[i] *= p.routed_scaling;
    for (int i = 0; i < k; ++i) {
      experts[t * k + i] = chosen[i];
      weights[t * k + i] = w[i];
    }
  }
}

// Dot products of 16-byte vectors of T (4 f32 or 8 bf16), in f32.
template <typename T>
struct Vec;
template <>
struct Vec<float> {
  __device__ static float dot(const uint4& a, const uint4& b) {
    const float* x = reinterpret_cast<const float*>(&a);
    const float* y = reinterpret_cast<const float*>(&b);
    return x[0] * y[0] + x[1] * y[1] + x[2] * y[2] + x[3] * y[3];
  }
};
template <>
struct Vec<__nv_bfloat16> {
  __device__ static float dot(const uint4& a, const uint4& b) { return dot8_bf16(a, b); }
};

// One warp per output row of one pair's expert: y = W[e] x. blockIdx.y is the pair.
template <typename T>
__device__ __forceinline__ float warp_row_dot(const uint4* __restrict__ wr, const uint4* __restrict__ xr,
                                              int64_t kv) {
  float acc = 0.0f;
  const int lane = threadIdx.x & 31;
  for (int64_t i = lane; i < kv; i += 32) acc += Vec<T>::dot(__ldg(wr + i), __ldg(xr + i));
  return warp_sum(acc);
}

// FP8 e4m3 weights with one scale per row and 128 columns (`scale`, [kb][rows] for this expert): 16 weights
// per chunk, x bf16 (two chunks of x per chunk of w).
__device__ __forceinline__ float warp_row_dot_fp8(const uint4* __restrict__ wr,
                                                  const float* __restrict__ scale, int64_t srows,
                                                  const uint4* __restrict__ xr, int64_t kc) {
  float acc = 0.0f;
  const int lane = threadIdx.x & 31;
  for (int64_t i = lane; i < kc; i += 32)
    acc += __ldg(scale + (i >> 3) * srows) *
           dot16_fp8_bf16(__ldg(wr + i), __ldg(xr + 2 * i), __ldg(xr + 2 * i + 1));
  return warp_sum(acc);
}

// kv: 16-byte chunks of a weight row (T, or FP8 when w_scale is set: then x is bf16 with twice the chunks).
template <typename T>
__global__ void moe_swiglu_kernel(const uint4* __restrict__ w, const float* __restrict__ w_scale,
                                  const uint4* __restrict__ x, const int32_t* __restrict__ experts, int k,
                                  int64_t inter, int64_t kv, T* __restrict__ act) {
  pdl_wait_then_release();
  const int64_t pair = blockIdx.x;
  const int64_t e = experts[pair];
  const int warp = threadIdx.x >> 5;
  const int64_t i = static_cast<int64_t>(blockIdx.y) * 4 + warp / 2;  // output column; warp pairs: gate, up
  __shared__ float part[8];
  float v = 0.0f;
  if (i < inter) {
    const int64_t row = 2 * i + (warp & 1);
    if (w_scale != nullptr) {
      const int64_t kb = (kv + 7) / 8;
      v = warp_row_dot_fp8(w + (e * 2 * inter + row) * kv, w_scale + e * kb * 2 * inter + row, 2 * inter,
                           x + (pair / k) * 2 * kv, kv);
    } else {
      v = warp_row_dot<T>(w + (e * 2 * inter + row) * kv, x + (pair / k) * kv, kv);
    }
  }
  if ((threadIdx.x & 31) == 0) part[warp] = v;
  __syncthreads();
  if (threadIdx.x < 4) {
    const int64_t o = static_cast<int64_t>(blockIdx.y) * 4 + threadIdx.x;
    if (o < inter) {
      const float g = part[2 * threadIdx.x], u = part[2 * threadIdx.x + 1];
      act[pair * inter + o] = from_f32<T>(g / (1.0f + expf(-g)) * u);
    }
  }
}

template <typename T>
__global__ void moe_down_kernel(const uint4* __restrict__ w, const float* __restrict__ w_scale,
                                const uint4* __restrict__ act, const int32_t* __restrict__ experts,
                                int64_t hidden, int64_t kv, float* __restrict__ y) {
  pdl_wait_then_release();
  const int64_t pair = blockIdx.x;
  const int64_t e = experts[pair];
  const int64_t row = static_cast<int64_t>(blockIdx.y) * 8 + (threadIdx.x >> 5);
  if (row >= hidden) return;
  const float v = w_scale != nullptr ? warp_row_dot_fp8(w + (e * hidden + row) * kv,
                                                        w_scale + e * ((kv + 7) / 8) * hidden + row, hidden,
                                                        act + pair * 2 * kv, kv)
                                     : warp_row_dot<T>(w + (e * hidden + row) * kv, act + pair * kv, kv);
  if ((threadIdx.x & 31) == 0) y[pair * hidden + row] = v;
}

// ---- routed experts grouped by expert (large batches)
// ------------------------------------------------------ Pairs sorted by expert into tasks of up to kMoeGroup
// pairs of one expert: each weight chunk is read once per task instead of once per pair. Every pair's dot
// products are summed exactly as the per-pair kernels sum them (same lanes, same order), so the two paths
// give bit-identical results.
__global__ void moe_group_kernel(const int32_t* __restrict__ experts, int64_t pairs, int ne,
                                 int32_t* __restrict__ order, MoeTask* __restrict__ tasks,
                                 int32_t* __restrict__ num_tasks) {
  extern __shared__ int32_t sh[];
  int32_t* count = sh;           // [ne]
  int32_t* cursor = sh + ne;     // [ne]: next slot of the expert in `order`
  int32_t* task0 = sh + 2 * ne;  // [ne]: the expert's first task
  for (int e = threadIdx.x; e < ne; e += blockDim.x) count[e] = 0;
  __syncthreads();
  for (int64_t p = threadIdx.x; p < pairs; p += blockDim.x) {
    const int32_t e = experts[p];
    if (e >= 0 && e < ne) atomicAdd(&count[e], 1);
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int32_t off = 0, t = 0;
    for (int e = 0; e < ne; ++e) {
      cursor[e] = off;
      task0[e] = t;
      off += count[e];
      t += (count[e] + kMoeGroup - 1) / kMoeGroup;
    }
    *num_tasks = t;
  }
  __syncthreads();
  for (int e = threadIdx.x; e < ne; e += blockDim.x) {
    const int32_t c = count[e], start = cursor[e];
    for (int32_t j = 0; j * kMoeGroup < c; ++j)
      tasks[task0[e] + j] = {e, start + j * kMoeGroup, min(kMoeGroup, c - j * kMoeGroup), 0};
  }
  __syncthreads();
  for (int64_t p = threadIdx.x; p < pairs; p += blockDim.x) {
    const int32_t e = experts[p];
    if (e >= 0 && e < ne) order[atomicAdd(&cursor[e], 1)] = static_cast<int32_t>(p);
  }
}

// One 16-byte weight chunk against chunk c of an x row: f32 (4), bf16 (8) or e4m3 (16, x bf16).
template <int KIND>
__device__ __forceinline__ float chunk_dot(const uint4& wv, const uint4* __restrict__ xr, int64_t c) {
  if constexpr (KIND == 2) {
    return dot16_fp8_bf16(wv, __ldg(xr + 2 * c), __ldg(xr + 2 * c + 1));
  } else if constexpr (KIND == 1) {
    return Vec<__nv_bfloat16>::dot(wv, __ldg(xr + c));
  } else {
    return Vec<float>::dot(wv, __ldg(xr + c));
  }
}

// A warp's dot products of weight row `wr` (kc chunks; FP8: scales at sc[(c / 8) * sstride]) with the
// task's x rows, summed over the warp: acc[t] for t < count.
template <int KIND>
__device__ __forceinline__ void warp_rows_dot(const uint4* __restrict__ wr, const float* __restrict__ sc,
                                              int64_t sstride, const uint4* const* xrows, int count,
                                              int64_t kc, float (&acc)[kMoeGroup]) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int t = 0; t < kMoeGroup; ++t) acc[t] = 0.0f;
  for (int64_t i = lane; i < kc; i += 32) {
    const uint4 wv = __ldg(wr + i);
    const float scale = KIND == 2 ? __ldg(sc + (i >> 3) * sstride) : 1.0f;
#pragma unroll
    for (int t = 0; t < kMoeGroup; ++t) {
      if (t < count) {
        if constexpr (KIND == 2) {
          acc[t] += scale * chunk_dot<KIND>(wv, xrows[t], i);
        } else {
          acc[t] += chunk_dot<KIND>(wv, xrows[t], i);
        }
      }
    }
  }
#pragma unroll
  for (int t = 0; t < kMoeGroup; ++t) acc[t] = warp_sum(acc[t]);
}

// grid (max tasks, ceil(inter / 4)); blocks past the task count return. x: T rows of `hidden` (bf16 for FP8),
// xv 16-byte chunks a row; kc weight chunks a row.
template <int KIND, typename OT>
__global__ void moe_grouped_swiglu_kernel(const uint4* __restrict__ w, const float* __restrict__ w_scale,
                                          const uint4* __restrict__ x, const int32_t* __restrict__ order,
                                          const MoeTask* __restrict__ tasks,
                                          const int32_t* __restrict__ num_tasks, int k, int64_t inter,
                                          int64_t kc, int64_t xv, OT* __restrict__ act) {
  pdl_wait_then_release();
  if (static_cast<int32_t>(blockIdx.x) >= *num_tasks) return;
  const MoeTask tk = tasks[blockIdx.x];
  __shared__ const uint4* xrows[kMoeGroup];
  __shared__ int32_t pair_of[kMoeGroup];
  __shared__ float part[8][kMoeGroup];
  if (threadIdx.x < tk.count) {
    const int32_t p = order[tk.start + threadIdx.x];
    pair_of[threadIdx.x] = p;
    xrows[threadIdx.x] = x + static_cast<int64_t>(p / k) * xv;
  }
  __syncthreads();
  const int warp = threadIdx.x >> 5;
  const int64_t i = static_cast<int64_t>(blockIdx.y) * 4 + warp / 2;  // output column; warp pairs: gate, up
  float acc[kMoeGroup];
  if (i < inter) {
    const int64_t e = tk.expert, row = 2 * i + (warp & 1);
    const int64_t kb = (kc + 7) / 8;
    warp_rows_dot<KIND>(w + (e * 2 * inter + row) * kc,
                        KIND == 2 ? w_scale + e * kb * 2 * inter + row : nullptr, 2 * inter, xrows, tk.count,
                        kc, acc);
    if ((threadIdx.x & 31) == 0) {
#pragma unroll
      for (int t = 0; t < kMoeGroup; ++t) part[warp][t] = acc[t];
    }
  }
  __syncthreads();
  if (threadIdx.x < 4 * kMoeGroup) {
    const int t = threadIdx.x / 4, c = threadIdx.x % 4;
    const int64_t o = static_cast<int64_t>(blockIdx.y) * 4 + c;
    if (t < tk.count && o < inter) {
      const float g = part[2 * c][t], u = part[2 * c + 1][t];
      act[static_cast<int64_t>(pair_of[t]) * inter + o] = from_f32<OT>(g / (1.0f + expf(-g)) * u);
    }
  }
}

// grid (max tasks, ceil(hidden / 8)): a warp per output row. act: pairs rows (xv chunks each).
template <int KIND>
__global__ void moe_grouped_down_kernel(const uint4* __restrict__ w, const float* __restrict__ w_scale,
                                        const uint4* __restrict__ act, const int32_t* __restrict__ order,
                                        const MoeTask* __restrict__ tasks,
                                        const int32_t* __restrict__ num_tasks, int64_t hidden, int64_t kc,
                                        int64_t xv, float* __restrict__ y) {
  pdl_wait_then_release();
  if (static_cast<int32_t>(blockIdx.x) >= *num_tasks) return;
  const MoeTask tk = tasks[blockIdx.x];
  __shared__ const uint4* xrows[kMoeGroup];
  __shared__ int32_t pair_of[kMoeGroup];
  if (threadIdx.x < tk.count) {
    const int32_t p = order[tk.start + threadIdx.x];
    pair_of[threadIdx.x] = p;
    xrows[threadIdx.x] = act + static_cast<int64_t>(p) * xv;
  }
  __syncthreads();
  const int64_t row = static_cast<int64_t>(blockIdx.y) * 8 + (threadIdx.x >> 5);
  if (row >= hidden) return;
  const int64_t e = tk.expert, kb = (kc + 7) / 8;
  float acc[kMoeGroup];
  warp_rows_dot<KIND>(w + (e * hidden + row) * kc, KIND == 2 ? w_scale + e * kb * hidden + row : nullptr,
                      hidden, xrows, tk.count, kc, acc);
  if ((threadIdx.x & 31) == 0) {
#pragma unroll
    for (int t = 0; t < kMoeGroup; ++t)
      if (t < tk.count) y[static_cast<int64_t>(pair_of[t]) * hidden + row] = acc[t];
  }
}

__global__ void moe_combine_kernel(const float* __restrict__ y, const float* __restrict__ weights,
                                   const float* __restrict__ shared, int k, int64_t hidden,
                                   float* __restrict__ out) {
  pdl_wait_then_release();
  const int64_t t = blockIdx.y;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < hidden;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = shared != nullptr ? shared[t * hidden + i] : 0.0f;
    for (int s = 0; s < k; ++s) v += weights[t * k + s] * y[(t * k + s) * hidden + i];
    out[t * hidden + i] = v;
  }
}

int last_error() {
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

int mla_rope_store(const float* ckv, const float* kv_norm, float eps, const float* q, int64_t n,
                   const MlaShape& ml, const RopeParams& rope, const int32_t* pos, const int32_t* seq_of,
                   const int32_t* block_table, int table_width, int block_size, void* kv_layer, GpuDType kvt,
                   float* qcat, void* qnope, GpuDType qt, Launch s) {
  if (n <= 0) return 0;
  if (ml.rope > 256 || ml.rope % 2 != 0 || kvt != qt) return static_cast<int>(cudaErrorInvalidValue);
  if (kvt == GpuDType::kF32) {
    launch_pdl(mla_rope_store_kernel<float, float>, static_cast<unsigned>(n), 256, 0, s, ckv, kv_norm, eps, q,
               ml, rope, pos, seq_of, block_table, table_width, block_size, static_cast<float*>(kv_layer),
               qcat, static_cast<float*>(qnope));
  } else {
    launch_pdl(mla_rope_store_kernel<__nv_bfloat16, __nv_bfloat16>, static_cast<unsigned>(n), 256, 0, s, ckv,
               kv_norm, eps, q, ml, rope, pos, seq_of, block_table, table_width, block_size,
               static_cast<__nv_bfloat16*>(kv_layer), qcat, static_cast<__nv_bfloat16*>(qnope));
  }
  return last_error();
}

int moe_route(const float* router_logits, int64_t n, const MoeRouteParams& p, const float* correction_bias,
              int32_t* experts, float* weights, Launch s) {
  if (n <= 0) return 0;
  if (p.n_experts <= 0 || p.top_k <= 0 || p.top_k > 64 || p.top_k > p.n_experts || p.n_group > 64 ||
      p.n_group < 1 || p.n_experts % p.n_group != 0 || p.topk_group > p.n_group)
    return static_cast<int>(cudaErrorInvalidValue);
  launch_pdl(moe_route_kernel, static_cast<unsigned>(n), 256, sizeof(float) * 2 * p.n_experts, s,
             router_logits, p, correction_bias, experts, weights);
  return last_error();
}

int moe_experts_swiglu(const void* w_gu, const float* w_scale, const void* x, const int32_t* experts,
                       int64_t pairs, int k, int64_t inter, int64_t hidden, void* act, GpuDType t, Launch s) {
  if (pairs <= 0) return 0;
  const int vn = w_scale != nullptr ? 16 : t == GpuDType::kF32 ? 4 : 8;
  if (hidden % vn != 0 || pairs > 0x7fffffff || (inter + 3) / 4 > 65535 ||
      (w_scale != nullptr && t != GpuDType::kBF16))
    return static_cast<int>(cudaErrorInvalidValue);
  const dim3 grid(static_cast<unsigned>(pairs), static_cast<unsigned>((inter + 3) / 4));
  const auto* w = static_cast<const uint4*>(w_gu);
  const auto* xv = static_cast<const uint4*>(x);
  if (t == GpuDType::kF32)
    launch_pdl(moe_swiglu_kernel<float>, grid, 256, 0, s, w, w_scale, xv, experts, k, inter, hidden / vn,
               static_cast<float*>(act));
  else
    launch_pdl(moe_swiglu_kernel<__nv_bfloat16>, grid, 256, 0, s, w, w_scale, xv, experts, k, inter,
               hidden / vn, static_cast<__nv_bfloat16*>(act));
  return last_error();
}

int moe_experts_down(const void* w_down, const float* w_scale, const void* act, const int32_t* experts,
                     int64_t pairs, int64_t inter, int64_t hidden, float* y, GpuDType t, Launch s) {
  if (pairs <= 0) return 0;
  const int vn = w_scale != nullptr ? 16 : t == GpuDType::kF32 ? 4 : 8;
  if (inter % vn != 0 || pairs > 0x7fffffff || (hidden + 7) / 8 > 65535 ||
      (w_scale != nullptr && t != GpuDType::kBF16))
    return static_cast<int>(cudaErrorInvalidValue);
  const dim3 grid(static_cast<unsigned>(pairs), static_cast<unsigned>((hidden + 7) / 8));
  const auto* w = static_cast<const uint4*>(w_down);
  const auto* a = static_cast<const uint4*>(act);
  if (t == GpuDType::kF32)
    launch_pdl(moe_down_kernel<float>, grid, 256, 0, s, w, w_scale, a, experts, hidden, inter / vn, y);
  else
    launch_pdl(moe_down_kernel<__nv_bfloat16>, grid, 256, 0, s, w, w_scale, a, experts, hidden, inter / vn,
               y);
  return last_error();
}

int64_t moe_max_tasks(int64_t pairs, int ne) {
  return std::max<int64_t>(1, std::min<int64_t>(pairs, (pairs + kMoeGroup - 1) / kMoeGroup + ne));
}

int moe_group(const int32_t* experts, int64_t pairs, int ne, const MoeGroups& g, Launch s) {
  if (pairs <= 0) return 0;
  if (ne <= 0 || ne > 4096 || pairs > 0x7fffffff) return static_cast<int>(cudaErrorInvalidValue);
  launch_pdl(moe_group_kernel, 1, 1024, sizeof(int32_t) * 3 * ne, s, experts, pairs, ne, g.order, g.tasks,
             g.num_tasks);
  return last_error();
}

int moe_grouped_swiglu(const void* w_gu, const float* w_scale, const void* x, const MoeGroups& g,
                       int64_t pairs, int ne, int k, int64_t inter, int64_t hidden, void* act, GpuDType t,
                       Launch s) {
  if (pairs <= 0) return 0;
  const int vn = w_scale != nullptr ? 16 : t == GpuDType::kF32 ? 4 : 8;
  if (hidden % vn != 0 || (inter + 3) / 4 > 65535 || (w_scale != nullptr && t != GpuDType::kBF16))
    return static_cast<int>(cudaErrorInvalidValue);
  const dim3 grid(static_cast<unsigned>(moe_max_tasks(pairs, ne)), static_cast<unsigned>((inter + 3) / 4));
  const auto* w = static_cast<const uint4*>(w_gu);
  const auto* xv = static_cast<const uint4*>(x);
  const int64_t kc = hidden / vn, xc = hidden / (t == GpuDType::kF32 ? 4 : 8);
  if (w_scale != nullptr)
    launch_pdl(moe_grouped_swiglu_kernel<2, __nv_bfloat16>, grid, 256, 0, s, w, w_scale, xv, g.order, g.tasks,
               g.num_tasks, k, inter, kc, xc, static_cast<__nv_bfloat16*>(act));
  else if (t == GpuDType::kBF16)
    launch_pdl(moe_grouped_swiglu_kernel<1, __nv_bfloat16>, grid, 256, 0, s, w, w_scale, xv, g.order, g.tasks,
               g.num_tasks, k, inter, kc, xc, static_cast<__nv_bfloat16*>(act));
  else
    launch_pdl(moe_grouped_swiglu_kernel<0, float>, grid, 256, 0, s, w, w_scale, xv, g.order, g.tasks,
               g.num_tasks, k, inter, kc, xc, static_cast<float*>(act));
  return last_error();
}

int moe_grouped_down(const void* w_down, const float* w_scale, const void* act, const MoeGroups& g,
                     int64_t pairs, int ne, int64_t inter, int64_t hidden, float* y, GpuDType t, Launch s) {
  if (pairs <= 0) return 0;
  const int vn = w_scale != nullptr ? 16 : t == GpuDType::kF32 ? 4 : 8;
  if (inter % vn != 0 || (hidden + 7) / 8 > 65535 || (w_scale != nullptr && t != GpuDType::kBF16))
    return static_cast<int>(cudaErrorInvalidValue);
  const dim3 grid(static_cast<unsigned>(moe_max_tasks(pairs, ne)), static_cast<unsigned>((hidden + 7) / 8));
  const auto* w = static_cast<const uint4*>(w_down);
  const auto* a = static_cast<const uint4*>(act);
  const int64_t kc = inter / vn, xc = inter / (t == GpuDType::kF32 ? 4 : 8);
  if (w_scale != nullptr)
    launch_pdl(moe_grouped_down_kernel<2>, grid, 256, 0, s, w, w_scale, a, g.order, g.tasks, g.num_tasks,
               hidden, kc, xc, y);
  else if (t == GpuDType::kBF16)
    launch_pdl(moe_grouped_down_kernel<1>, grid, 256, 0, s, w, w_scale, a, g.order, g.tasks, g.num_tasks,
               hidden, kc, xc, y);
  else
    launch_pdl(moe_grouped_down_kernel<0>, grid, 256, 0, s, w, w_scale, a, g.order, g.tasks, g.num_tasks,
               hidden, kc, xc, y);
  return last_error();
}

int moe_combine(const float* y, const float* weights, const float* shared, int64_t n, int k, int64_t hidden,
                float* out, Launch s) {
  if (n <= 0) return 0;
  if (n > 65535) return static_cast<int>(cudaErrorInvalidValue);
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>((hidden + 255) / 256, 64)),
                  static_cast<unsigned>(n));
  launch_pdl(moe_combine_kernel, grid, 256, 0, s, y, weights, shared, k, hidden, out);
  return last_error();
}

}  // namespace hearth::cuda
