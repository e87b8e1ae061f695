// Elementwise, normalization, RoPE, MLP activation, small-batch GEMV and argmax kernels of the GPU
// engine (declared in cuda_ops.h). Memory-bound: each kernel reads and writes its rows once.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cfloat>
#include <cstdint>
#include <cstdlib>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_math.cuh"

namespace hearth::cuda {
namespace {

// ---- embedding ---------------------------------------------------------------------------------------
template <typename T>
__global__ void embed_kernel(const T* __restrict__ embed, const int32_t* __restrict__ tok, int64_t hidden,
                             float* __restrict__ x) {
  const int64_t t = blockIdx.x;
  const T* row = embed + static_cast<int64_t>(tok[t]) * hidden;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) x[t * hidden + i] = to_f32(row[i]);
}

// ---- residual add + RMSNorm --------------------------------------------------------------------------
template <typename OT>
__global__ void add_rmsnorm_kernel(float* __restrict__ x, const float* __restrict__ delta,
                                   const float* __restrict__ bias, const float* __restrict__ weight,
                                   float eps, int64_t hidden, OT* __restrict__ out,
                                   const int32_t* __restrict__ rows) {
  pdl_wait_then_release();
  __shared__ float red[32];
  const int64_t t = blockIdx.x;
  float* xr = x + (rows != nullptr ? static_cast<int64_t>(rows[t]) : t) * hidden;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
    float v = xr[i];
    if (rows == nullptr && delta != nullptr) {
      v += delta[t * hidden + i] + (bias != nullptr ? bias[i] : 0.0f);
      xr[i] = v;
    }
    ss += v * v;
  }
  ss = block_sum(ss, red);
  const float inv = rsqrtf(ss / static_cast<float>(hidden) + eps);
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x)
    out[t * hidden + i] = from_f32<OT>(weight[i] * (xr[i] * inv));
}

// ---- q/k/v: bias, RoPE, KV-cache store ---------------------------------------------------------------
// One block per token: cos/sin of each rotated pair once (float32 angle as torch computes it), then every
// element of the row.
template <typename KT>
__global__ void qkv_rope_store_kernel(const float* __restrict__ qkv, const float* __restrict__ bias, int nh,
                                      int nkv, int hd, RopeParams rope, const int32_t* __restrict__ pos,
                                      const int32_t* __restrict__ seq_of,
                                      const int32_t* __restrict__ block_table, int table_width,
                                      int block_size, float* __restrict__ q, KT* __restrict__ kv_layer) {
  pdl_wait_then_release();
  __shared__ float cs[256];  // cos, sin of rot_dim / 2 <= 128 pairs
  const int64_t t = blockIdx.x;
  const int width = (nh + 2 * nkv) * hd;
  const int kvd = nkv * hd;
  const float* row = qkv + t * width;
  const int p = pos[t];
  const int half = rope.rot_dim / 2;
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    float sn = 0.0f, cn = 1.0f;
    if (p >= 0) sincosf(rope.inv_freq[i] * static_cast<float>(p), &sn, &cn);
    cs[2 * i] = cn * rope.attention_factor;
    cs[2 * i + 1] = sn * rope.attention_factor;
  }
  __syncthreads();
  int64_t slot = -1;
  if (p >= 0) {
    const int32_t b = block_table[static_cast<int64_t>(seq_of[t]) * table_width + p / block_size];
    slot = static_cast<int64_t>(b) * block_size + p % block_size;
  }
  for (int e = threadIdx.x; e < width; e += blockDim.x) {
    const int head = e / hd, j = e - (e / hd) * hd;
    const float v = row[e] + (bias != nullptr ? bias[e] : 0.0f);
    float o = v;
    if (head < nh + nkv && j < rope.rot_dim) {
      int pair, partner;
      const bool first = rope_pair(j, rope.rot_dim, rope.interleave, pair, partner);
      const int pe = head * hd + partner;
      o = rope_rotate(v, row[pe] + (bias != nullptr ? bias[pe] : 0.0f), first, cs, pair);
    }
    if (head < nh) {
      q[t * nh * hd + e] = o;
    } else if (slot >= 0) {
      // K heads then V heads: the same order as the row's tail.
      kv_layer[slot * 2 * kvd + (e - nh * hd)] = from_f32<KT>(o);
    }
  }
}

// ---- SiLU(gate) * up ---------------------------------------------------------------------------------
// grid.y: tokens (no 64-bit division per element).
template <typename OT>
__global__ void silu_mul_kernel(const float* __restrict__ gu, const float* __restrict__ bias, int inter,
                                OT* __restrict__ out) {
  pdl_wait_then_release();
  const int64_t t = blockIdx.y;
  const float* g_row = gu + t * 2 * inter;
  OT* o_row = out + t * inter;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < inter; i += gridDim.x * blockDim.x) {
    float g = g_row[2 * i], u = g_row[2 * i + 1];  // interleaved gate/up columns
    if (bias != nullptr) {
      g += bias[2 * i];
      u += bias[2 * i + 1];
    }
    o_row[i] = from_f32<OT>(g / (1.0f + expf(-g)) * u);
  }
}

// ---- bf16 GEMV for n <= 8 rows of x ------------------------------------------------------------------
// `wpr` warps share a weight row (each takes every wpr-th 16-byte chunk of it) so that narrow matrices
// (few rows, long rows: down_proj) still keep enough loads in flight; kUnroll loads per lane in flight;
// x rows are read through L1. The warps of a row add their sums in shared memory. A CTA loops over row
// blocks (blockIdx.x, + gridDim.x, ...); the grid is capped only when the CTA has a prologue to amortize.
//
// Batch-1 decode is a chain of short kernels, so each GEMV issues its first weight loads before waiting for
// the previous kernel (weights never depend on it): under programmatic dependent launch those loads overlap
// the predecessor's tail.
constexpr int kGemvWarps = 8;
constexpr int kUnroll = 8;
constexpr size_t kGemvNormSmem = 48 * 1024;  // the RMSNorm prologue's rows (each CTA normalizes them)

// Epilogues: kPlain writes y; kSwiglu takes rows as interleaved gate/up pairs (2i, 2i+1) and writes
// silu(gate) * up as bf16 to act[t][i] (ldy = inter); kQkvRope takes rows of [q | k | v] whose rotated
// dims are interleaved pairs, adds the bias, applies RoPE and writes q (f32) and K/V into the cache;
// kResidual adds the product (+ bias) into y (the f32 residual stream).
enum GemvMode { kPlain = 0, kSwiglu = 1, kQkvRope = 2, kResidual = 3 };

// FP8: w holds e4m3 weights (16 per 16-byte chunk, kc = k / 16 chunks a row) with one f32 scale per row, or
// with srows > 0 one per row and 128 columns at w_scale[(c / 8) * srows + row] (DeepSeek-V3's 128x128
// blocks, expanded per row so that rows can be reordered); otherwise bf16 (8 per chunk, kc = k / 8). x is
// bf16 either way, in global memory (LDG: read-only path) or in shared memory (the norm prologue's rows).
template <bool FP8, bool LDG>
__device__ __forceinline__ float dot_chunk(const uint4& wv, const uint4* __restrict__ xr, int64_t c) {
  if constexpr (FP8) {
    if constexpr (LDG) return dot16_fp8_bf16(wv, __ldg(xr + 2 * c), __ldg(xr + 2 * c + 1));
    return dot16_fp8_bf16(wv, xr[2 * c], xr[2 * c + 1]);
  } else {
    if constexpr (LDG) return dot8_bf16(wv, __ldg(xr + c));
    return dot8_bf16(wv, xr[c]);
  }
}

// kUnroll guarded loads of a row's chunks i, i + step, ...: streamed once, so not kept in cache.
__device__ __forceinline__ void load_chunks(uint4 (&wv)[kUnroll], const uint4* __restrict__ wr, int64_t i,
                                            int64_t step, int64_t kc) {
#pragma unroll
  for (int u = 0; u < kUnroll; ++u)
    if (i + step * u < kc) wv[u] = __ldcs(wr + i + step * u);
}

// The RMSNorm prologue: xs[t] = bf16(weight * x[t] / rms(x[t])) for the n <= N f32 residual rows of fz.x,
// the same formula as add_rmsnorm. `red` is the GEMV's reduction scratch (free until its epilogue).
template <int N>
__device__ __forceinline__ void norm_rows(const GemvFusion& fz, int64_t k, __nv_bfloat16* xs,
                                          float (&red)[kGemvWarps][N]) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t k4 = k / 4;
  float ss[N];
#pragma unroll
  for (int t = 0; t < N; ++t) {
    ss[t] = 0.0f;
    const float4* xr = reinterpret_cast<const float4*>(fz.norm_x + t * k);
    for (int64_t i = threadIdx.x; i < k4; i += blockDim.x) {
      const float4 v = xr[i];
      ss[t] += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
    ss[t] = warp_sum(ss[t]);
    if (lane == 0) red[warp][t] = ss[t];
  }
  __syncthreads();
#pragma unroll
  for (int t = 0; t < N; ++t) {
    float sum = 0.0f;
    for (int w = 0; w < kGemvWarps; ++w) sum += red[w][t];
    const float inv = rsqrtf(sum / static_cast<float>(k) + fz.norm_eps);
    const float4* xr = reinterpret_cast<const float4*>(fz.norm_x + t * k);
    const float4* wr = reinterpret_cast<const float4*>(fz.norm_w);
    __nv_bfloat162* out = reinterpret_cast<__nv_bfloat162*>(xs + t * k);
    for (int64_t i = threadIdx.x; i < k4; i += blockDim.x) {
      const float4 v = xr[i], g = __ldg(wr + i);
      out[2 * i] = __floats2bfloat162_rn(g.x * (v.x * inv), g.y * (v.y * inv));
      out[2 * i + 1] = __floats2bfloat162_rn(g.z * (v.z * inv), g.w * (v.w * inv));
    }
  }
  __syncthreads();  // xs complete; red free again
}

// The epilogue of one row (the warps of a row have added their sums into red).
template <int N, int MODE, bool FP8>
__device__ __forceinline__ void gemv_epilogue(const float (&red)[kGemvWarps][N],
                                              const float* __restrict__ w_scale, int64_t srows, int64_t rows,
                                              int64_t row, int warp, int part, int wpr, int lane,
                                              float* __restrict__ y, __nv_bfloat16* __restrict__ act,
                                              int64_t ldy, const QkvRopeEpilogue& qe, const GemvFusion& fz) {
  if (MODE == kPlain || MODE == kResidual) {
    if (part == 0 && row < rows && lane < N) {
      float v = 0.0f;
      for (int p = 0; p < wpr; ++p) v += red[warp + p][lane];
      if (FP8 && srows == 0) v *= w_scale[row];
      if (MODE == kPlain) {
        y[lane * ldy + row] = v;
      } else {
        float* yr = y + lane * ldy + row;
        *yr += v + (fz.bias != nullptr ? fz.bias[row] : 0.0f);
      }
    }
    return;
  }
  // Pairs: the even row's first warp finishes both rows (rows per block is even).
  if (part != 0 || (row & 1) != 0 || row + 1 >= rows || lane >= N) return;
  float a = 0.0f, b = 0.0f;
  for (int p = 0; p < wpr; ++p) {
    a += red[warp + p][lane];
    b += red[warp + wpr + p][lane];
  }
  if (FP8 && srows == 0) {
    a *= w_scale[row];
    b *= w_scale[row + 1];
  }
  if (MODE == kSwiglu) {
    act[lane * ldy + row / 2] = __float2bfloat16(a / (1.0f + expf(-a)) * b);
    return;
  }
  const int r = static_cast<int>(row), hd = qe.hd;
  if (qe.bias != nullptr) {
    a += qe.bias[r];
    b += qe.bias[r + 1];
  }
  const int head = r / hd, j = r - head * hd;
  const int p = qe.pos[lane];
  if (head < qe.nh + qe.nkv && j < qe.rope.rot_dim && p >= 0) {
    float sn, cn;
    sincosf(qe.rope.inv_freq[j / 2] * static_cast<float>(p), &sn, &cn);
    cn *= qe.rope.attention_factor;
    sn *= qe.rope.attention_factor;
    const float a2 = a * cn - b * sn;
    b = b * cn + a * sn;
    a = a2;
  }
  if (head < qe.nh) {
    float* q = qe.q + static_cast<int64_t>(lane) * qe.nh * hd + r;
    q[0] = a;
    q[1] = b;
  } else if (p >= 0) {
    const int kvd = qe.nkv * hd;
    const int32_t blk =
        qe.block_table[static_cast<int64_t>(qe.seq_of[lane]) * qe.table_width + p / qe.block_size];
    const int64_t slot = static_cast<int64_t>(blk) * qe.block_size + p % qe.block_size;
    __nv_bfloat16* dst = qe.kv_layer + slot * 2 * kvd + (r - qe.nh * hd);
    dst[0] = __float2bfloat16(a);
    dst[1] = __float2bfloat16(b);
  }
}

template <int N, int MODE, bool FP8, bool NORM>
__global__ void __launch_bounds__(kGemvWarps * 32)
    gemv_bf16_kernel(const uint4* __restrict__ w, const float* __restrict__ w_scale, int64_t srows,
                     const uint4* __restrict__ x, int64_t rows, int64_t kc, int64_t k8, int wpr,
                     float* __restrict__ y, __nv_bfloat16* __restrict__ act, int64_t ldy, QkvRopeEpilogue qe,
                     GemvFusion fz, bool prefetch) {
  extern __shared__ uint4 xs_smem[];  // NORM: the normalized x rows, bf16 [N][k]
  __shared__ float red[kGemvWarps][N];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int rows_per_block = kGemvWarps / wpr;
  const int part = warp % wpr;
  const int64_t step = 32 * static_cast<int64_t>(wpr);
  const int64_t i0 = lane + 32 * static_cast<int64_t>(part);
  const int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
  uint4 wv[kUnroll];
  {
    const int64_t row = static_cast<int64_t>(blockIdx.x) * rows_per_block + warp / wpr;
    if (prefetch && row < rows) load_chunks(wv, w + row * kc, i0, step, kc);
  }
  pdl_wait_then_release();
  const uint4* xr = x;
  if constexpr (NORM) {
    norm_rows<N>(fz, k8 * 8, reinterpret_cast<__nv_bfloat16*>(xs_smem), red);
    xr = xs_smem;
  }
  for (int64_t blk = blockIdx.x; blk < blocks; blk += gridDim.x) {
    const int64_t row = blk * rows_per_block + warp / wpr;
    float acc[N];
#pragma unroll
    for (int t = 0; t < N; ++t) acc[t] = 0.0f;
    if (row < rows) {
      const uint4* wr = w + row * kc;
      for (int64_t i = i0; i < kc; i += step * kUnroll) {
        if (i != i0 || blk != blockIdx.x || !prefetch) load_chunks(wv, wr, i, step, kc);
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          if (i + step * u < kc) {
            const int64_t c = i + step * u;
            if (FP8 && srows > 0) {
              const float sc = __ldg(w_scale + (c >> 3) * srows + row);
#pragma unroll
              for (int t = 0; t < N; ++t) acc[t] += sc * dot_chunk<FP8, !NORM>(wv[u], xr + t * k8, c);
            } else {
#pragma unroll
              for (int t = 0; t < N; ++t) acc[t] += dot_chunk<FP8, !NORM>(wv[u], xr + t * k8, c);
            }
          }
        }
      }
    }
#pragma unroll
    for (int t = 0; t < N; ++t) {
      const float v = warp_sum(acc[t]);
      if (lane == 0) red[warp][t] = v;
    }
    __syncthreads();
    gemv_epilogue<N, MODE, FP8>(red, w_scale, srows, rows, row, warp, part, wpr, lane, y, act, ldy, qe, fz);
    if (blk + gridDim.x < blocks) __syncthreads();  // red is rewritten by the next row block
  }
}

// ---- argmax + log-softmax value ----------------------------------------------------------------------
// Phase 1: each block takes a slice of a row: its max, the lowest index of it, and sum(exp(v - max)).
// Phase 2: one warp per row merges the slices.
constexpr int kArgmaxSlice = 4096;
constexpr int kArgmaxMaxSlices = 64;

__global__ void argmax_slices_kernel(const float* __restrict__ logits, int64_t vocab, int slices,
                                     float* __restrict__ part) {
  pdl_wait_then_release();
  __shared__ float red_v[32];
  __shared__ int32_t red_i[32];
  __shared__ float red_s[32];
  const int64_t r = blockIdx.y;
  const float* row = logits + r * vocab;
  const int64_t per = (vocab + slices - 1) / slices;
  const int64_t a = blockIdx.x * per, b = min(vocab, a + per);
  float best = -INFINITY;
  int32_t bi = INT32_MAX;
  for (int64_t i = a + threadIdx.x; i < b; i += blockDim.x) {
    float v = row[i];
    if (v != v) v = -INFINITY;  // NaN never wins
    if (v > best || (v == best && static_cast<int32_t>(i) < bi)) {
      best = v;
      bi = static_cast<int32_t>(i);
    }
  }
  block_argmax(best, bi, red_v, red_i);
  float sum = 0.0f;
  if (best != -INFINITY) {
    for (int64_t i = a + threadIdx.x; i < b; i += blockDim.x) {
      const float v = row[i];
      if (v == v) sum += expf(v - best);
    }
  }
  sum = block_sum(sum, red_s);
  if (threadIdx.x == 0) {
    float* o = part + (r * slices + blockIdx.x) * 3;
    o[0] = best;
    o[1] = __int_as_float(bi);
    o[2] = sum;
  }
}

__global__ void argmax_merge_kernel(const float* __restrict__ part, int slices, int32_t* __restrict__ ids,
                                    float* __restrict__ logprobs) {
  pdl_wait_then_release();
  const int64_t r = blockIdx.x;
  const int lane = threadIdx.x;
  float m = -INFINITY;
  int32_t idx = INT32_MAX;
  for (int s = lane; s < slices; s += 32) {
    const float* o = part + (r * slices + s) * 3;
    const int32_t oi = __float_as_int(o[1]);
    if (o[0] > m || (o[0] == m && oi < idx)) {
      m = o[0];
      idx = oi;
    }
  }
  warp_argmax(m, idx);
  float sum = 0.0f;
  if (m != -INFINITY) {
    for (int s = lane; s < slices; s += 32) {
      const float* o = part + (r * slices + s) * 3;
      if (o[0] != -INFINITY) sum += o[2] * expf(o[0] - m);
    }
  }
  sum = warp_sum(sum);
  if (lane == 0) {
    ids[r] = idx == INT32_MAX ? 0 : idx;
    logprobs[r] = m == -INFINITY ? -INFINITY : -logf(sum);
  }
}

template <typename T>
__global__ void convert_kernel(const float* __restrict__ in, int64_t n, T* __restrict__ out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = from_f32<T>(in[i]);
}

unsigned grid_for(int64_t total, int threads) {
  const int64_t g = (total + threads - 1) / threads;
  return static_cast<unsigned>(g < 1 ? 1 : (g > 65535 * 8 ? 65535 * 8 : g));
}

int last_error() {
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

int embed_rows(const void* embed, GpuDType et, const int32_t* tok, int64_t n, int64_t hidden, float* x,
               Launch s) {
  if (n <= 0) return 0;
  if (et == GpuDType::kF32)
    embed_kernel<<<static_cast<unsigned>(n), 256, 0, s.stream>>>(static_cast<const float*>(embed), tok,
                                                                 hidden, x);
  else
    embed_kernel<<<static_cast<unsigned>(n), 256, 0, s.stream>>>(static_cast<const __nv_bfloat16*>(embed),
                                                                 tok, hidden, x);
  return last_error();
}

int add_rmsnorm(float* x, const float* delta, const float* bias, const float* weight, float eps, int64_t n,
                int64_t hidden, void* out, GpuDType ot, const int32_t* rows, Launch s) {
  if (n <= 0) return 0;
  const int threads = hidden >= 4096 ? 1024 : (hidden >= 1024 ? 512 : 256);
  if (ot == GpuDType::kF32)
    launch_pdl(add_rmsnorm_kernel<float>, static_cast<unsigned>(n), threads, 0, s, x, delta, bias, weight,
               eps, hidden, static_cast<float*>(out), rows);
  else
    launch_pdl(add_rmsnorm_kernel<__nv_bfloat16>, static_cast<unsigned>(n), threads, 0, s, x, delta, bias,
               weight, eps, hidden, static_cast<__nv_bfloat16*>(out), rows);
  return last_error();
}

int qkv_rope_store(const float* qkv, const float* bias, int64_t n, int nh, int nkv, int hd,
                   const RopeParams& rope, const int32_t* pos, const int32_t* seq_of,
                   const int32_t* block_table, int table_width, int block_size, float* q, void* kv_layer,
                   GpuDType kvt, Launch s) {
  if (n <= 0) return 0;
  if (kvt == GpuDType::kF32)
    launch_pdl(qkv_rope_store_kernel<float>, static_cast<unsigned>(n), 256, 0, s, qkv, bias, nh, nkv, hd,
               rope, pos, seq_of, block_table, table_width, block_size, q, static_cast<float*>(kv_layer));
  else
    launch_pdl(qkv_rope_store_kernel<__nv_bfloat16>, static_cast<unsigned>(n), 256, 0, s, qkv, bias, nh, nkv,
               hd, rope, pos, seq_of, block_table, table_width, block_size, q,
               static_cast<__nv_bfloat16*>(kv_layer));
  return last_error();
}

int silu_mul(const float* gu, const float* bias, int64_t n, int64_t inter, void* out, GpuDType ot, Launch s) {
  if (n <= 0) return 0;
  if (n > 65535) return static_cast<int>(cudaErrorInvalidValue);
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>((inter + 255) / 256, 64)),
                  static_cast<unsigned>(n));
  if (ot == GpuDType::kF32)
    launch_pdl(silu_mul_kernel<float>, grid, 256, 0, s, gu, bias, static_cast<int>(inter),
               static_cast<float*>(out));
  else
    launch_pdl(silu_mul_kernel<__nv_bfloat16>, grid, 256, 0, s, gu, bias, static_cast<int>(inter),
               static_cast<__nv_bfloat16*>(out));
  return last_error();
}

namespace {

// Blocks of the grid: every row block, or with the norm prologue (recomputed by each CTA) at most the
// CTAs that fit on the device at once, each looping over row blocks.
template <int N, int M, bool FP8, bool NORM>
unsigned gemv_grid(int64_t blocks, size_t smem) {
  if constexpr (NORM) {
    static thread_local size_t cached_smem = 0;
    static thread_local int64_t cached_cap = 0;
    if (cached_smem != smem) {
      int dev = 0, sms = 0, per_sm = 0;
      cudaGetDevice(&dev);
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, gemv_bf16_kernel<N, M, FP8, NORM>,
                                                    kGemvWarps * 32, smem);
      cached_cap = std::max<int64_t>(1, static_cast<int64_t>(per_sm) * sms);
      cached_smem = smem;
    }
    blocks = std::min(blocks, cached_cap);
  }
  return static_cast<unsigned>(blocks);
}

int gemv_launch(const void* w, const float* w_scale, bool block_scales, const void* x, int64_t n,
                int64_t rows, int64_t k, float* y, __nv_bfloat16* act, int64_t ldy, int mode,
                const QkvRopeEpilogue& qe, const GemvFusion& fz, Launch s) {
  if (n <= 0 || rows <= 0) return 0;
  const bool fp8 = w_scale != nullptr;
  const bool norm = fz.norm_x != nullptr;
  const int64_t srows = fp8 && block_scales ? rows : 0;
  const bool paired = mode == kSwiglu || mode == kQkvRope;
  if (n > kGemvMaxRows || k % (fp8 ? 16 : 8) != 0 || (paired && rows % 2 != 0) ||
      (norm && (!paired || fz.norm_w == nullptr || !gemv_norm_fits(n, k))))
    return static_cast<int>(cudaErrorInvalidValue);
  const auto* wv = static_cast<const uint4*>(w);
  const auto* xv = static_cast<const uint4*>(x);
  const int64_t k8 = k / 8;
  const int64_t kc = fp8 ? k / 16 : k8;
  // Enough warps for every SM to keep ~96 warps of loads in flight, without splitting rows below
  // 64 chunks per warp; paired epilogues need an even number of rows per block (wpr <= 4).
  const int max_wpr = paired ? kGemvWarps / 2 : kGemvWarps;
  int wpr = 1;
  while (wpr < max_wpr && rows * wpr < 132 * 96 && kc / (wpr * 2) >= 64) wpr *= 2;
  const int rows_per_block = kGemvWarps / wpr;
  const int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
  const size_t smem = norm ? static_cast<size_t>(n * k) * sizeof(__nv_bfloat16) : 0;
  // HEARTH_CUDA_NO_GEMV_PREFETCH=1: no weight loads before the wait (for comparisons).
  static const bool prefetch = std::getenv("HEARTH_CUDA_NO_GEMV_PREFETCH") == nullptr;
  switch (n * 16 + mode * 4 + (norm ? 2 : 0) + (fp8 ? 1 : 0)) {
#define HEARTH_GEMV_KERNEL(N, M, NORM, FP8)                                                                  \
  case 16 * N + 4 * M + 2 * NORM + FP8:                                                                      \
    launch_pdl(gemv_bf16_kernel<N, M, FP8, NORM>, gemv_grid<N, M, FP8, NORM>(blocks, smem), kGemvWarps * 32, \
               smem, s, wv, w_scale, srows, xv, rows, kc, k8, wpr, y, act, ldy, qe, fz, prefetch);           \
    break;
    // clang-format does not settle on one layout for these two:
    // clang-format off
#define HEARTH_GEMV_MODE(N, M, NORM) HEARTH_GEMV_KERNEL(N, M, NORM, false) HEARTH_GEMV_KERNEL(N, M, NORM, true)
#define HEARTH_GEMV_CASE(N)                                                    \
  HEARTH_GEMV_MODE(N, kPlain, false) HEARTH_GEMV_MODE(N, kResidual, false)     \
  HEARTH_GEMV_MODE(N, kSwiglu, false) HEARTH_GEMV_MODE(N, kSwiglu, true)       \
  HEARTH_GEMV_MODE(N, kQkvRope, false) HEARTH_GEMV_MODE(N, kQkvRope, true)
    // clang-format on
    HEARTH_GEMV_CASE(1)
    HEARTH_GEMV_CASE(2)
    HEARTH_GEMV_CASE(3)
    HEARTH_GEMV_CASE(4)
    HEARTH_GEMV_CASE(5)
    HEARTH_GEMV_CASE(6)
    HEARTH_GEMV_CASE(7)
    HEARTH_GEMV_CASE(8)
#undef HEARTH_GEMV_CASE
#undef HEARTH_GEMV_MODE
#undef HEARTH_GEMV_KERNEL
    default: break;
  }
  return last_error();
}

}  // namespace

bool gemv_norm_fits(int64_t n, int64_t k) {
  return n >= 1 && n <= kGemvMaxRows && k % 8 == 0 &&
         static_cast<size_t>(n * k) * sizeof(__nv_bfloat16) <= kGemvNormSmem;
}

int gemv(const void* w, const float* w_scale, const void* x, int64_t n, int64_t rows, int64_t k, float* y,
         int64_t ldy, Launch s, bool block_scales) {
  return gemv_launch(w, w_scale, block_scales, x, n, rows, k, y, nullptr, ldy, kPlain, QkvRopeEpilogue{},
                     GemvFusion{}, s);
}

int gemv_residual(const void* w, const float* w_scale, const void* x, int64_t n, int64_t rows, int64_t k,
                  float* residual, const float* bias, Launch s, bool block_scales) {
  if (residual == nullptr) return static_cast<int>(cudaErrorInvalidValue);
  GemvFusion fz;
  fz.bias = bias;
  return gemv_launch(w, w_scale, block_scales, x, n, rows, k, residual, nullptr, rows, kResidual,
                     QkvRopeEpilogue{}, fz, s);
}

int gemv_swiglu(const void* w, const float* w_scale, const void* x, int64_t n, int64_t inter, int64_t k,
                void* act, Launch s, bool block_scales, const GemvFusion& norm) {
  if (act == nullptr) return static_cast<int>(cudaErrorInvalidValue);
  return gemv_launch(w, w_scale, block_scales, x, n, 2 * inter, k, nullptr, static_cast<__nv_bfloat16*>(act),
                     inter, kSwiglu, QkvRopeEpilogue{}, norm, s);
}

int gemv_qkv_rope(const void* w, const float* w_scale, const void* x, int64_t n, int64_t k,
                  const QkvRopeEpilogue& e, Launch s, bool block_scales, const GemvFusion& norm) {
  if (e.kv_layer == nullptr || e.q == nullptr || e.hd % 2 != 0 || !e.rope.interleave)
    return static_cast<int>(cudaErrorInvalidValue);
  const int64_t rows = static_cast<int64_t>(e.nh + 2 * e.nkv) * e.hd;
  return gemv_launch(w, w_scale, block_scales, x, n, rows, k, nullptr, nullptr, 0, kQkvRope, e, norm, s);
}

namespace {
__global__ void dequant_fp8_rows_kernel(const uint8_t* __restrict__ w, const float* __restrict__ scale,
                                        int64_t srows, int64_t cols, __nv_bfloat16* __restrict__ out) {
  pdl_wait_then_release();
  const int64_t r = blockIdx.y;
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < cols;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float sc = srows > 0 ? scale[(c >> 7) * srows + r] : scale[r];
    const __half h = __half(__nv_cvt_fp8_to_halfraw(w[r * cols + c], __NV_E4M3));
    out[r * cols + c] = __float2bfloat16(__half2float(h) * sc);
  }
}
}  // namespace

int dequant_fp8_rows(const void* w, const float* scale, int64_t rows, int64_t cols, void* out, Launch s,
                     bool block_scales) {
  if (rows <= 0 || cols <= 0) return 0;
  if (rows > 65535 * 64) return static_cast<int>(cudaErrorInvalidValue);
  // rows may exceed grid.y's 65535 (the LM head): chunk them. Block scales index the whole matrix's rows.
  for (int64_t r0 = 0; r0 < rows; r0 += 65535) {
    const int64_t nr = std::min<int64_t>(65535, rows - r0);
    const dim3 grid(static_cast<unsigned>(std::min<int64_t>((cols + 255) / 256, 16)),
                    static_cast<unsigned>(nr));
    launch_pdl(dequant_fp8_rows_kernel, grid, 256, 0, s, static_cast<const uint8_t*>(w) + r0 * cols,
               scale + r0, block_scales ? rows : 0, cols, static_cast<__nv_bfloat16*>(out) + r0 * cols);
  }
  return last_error();
}

namespace {
// One block per (row, group of `group` columns): amax -> scale = amax / 448 (e4m3's largest normal), then
// every element divided by it. Scales go to scale[g * scale_ld + row] (group-major: cuBLASLt's layout
// for per-128 activation scales) or scale[row] when there is one group.
__global__ void quantize_fp8_kernel(const __nv_bfloat16* __restrict__ x, int64_t k, int64_t group,
                                    uint8_t* __restrict__ out, float* __restrict__ scale, int64_t scale_ld) {
  pdl_wait_then_release();
  __shared__ float red[32];
  const int64_t r = blockIdx.x, g = blockIdx.y;
  const int64_t a = g * group, b = min(k, a + group);
  const __nv_bfloat16* xr = x + r * k;
  float amax = 0.0f;
  for (int64_t c = a + threadIdx.x; c < b; c += blockDim.x)
    amax = fmaxf(amax, fabsf(__bfloat162float(xr[c])));
  amax = block_max(amax, red);
  const float sc = fmaxf(amax, 1e-12f) / 448.0f;
  const float inv = 1.0f / sc;
  for (int64_t c = a + threadIdx.x; c < b; c += blockDim.x)
    out[r * k + c] = __nv_cvt_float_to_fp8(__bfloat162float(xr[c]) * inv, __NV_SATFINITE, __NV_E4M3);
  if (threadIdx.x == 0) scale[g * scale_ld + r] = sc;
}
}  // namespace

int quantize_fp8(const void* x, int64_t n, int64_t k, int64_t group, void* out, float* scale, Launch s) {
  if (n <= 0 || k <= 0) return 0;
  if (group <= 0 || group > k) group = k;
  const int64_t groups = (k + group - 1) / group;
  if (n > INT32_MAX || groups > 65535) return static_cast<int>(cudaErrorInvalidValue);
  launch_pdl(quantize_fp8_kernel, dim3(static_cast<unsigned>(n), static_cast<unsigned>(groups)),
             group >= 1024 ? 256 : 128, 0, s, static_cast<const __nv_bfloat16*>(x), k, group,
             static_cast<uint8_t*>(out), scale, n);
  return last_error();
}

int argmax_logprob(const float* logits, int64_t n, int64_t vocab, int32_t* ids, float* logprobs,
                   float* scratch, Launch s) {
  if (n <= 0) return 0;
  if (n > 65535) return static_cast<int>(cudaErrorInvalidValue);
  const int slices =
      static_cast<int>(std::min<int64_t>(kArgmaxMaxSlices, (vocab + kArgmaxSlice - 1) / kArgmaxSlice));
  launch_pdl(argmax_slices_kernel, dim3(static_cast<unsigned>(slices), static_cast<unsigned>(n)), 256, 0, s,
             logits, vocab, slices, scratch);
  launch_pdl(argmax_merge_kernel, static_cast<unsigned>(n), 32, 0, s, scratch, slices, ids, logprobs);
  return last_error();
}

int convert_f32(const float* in, int64_t n, void* out, GpuDType dt, Launch s) {
  if (n <= 0) return 0;
  const unsigned grid = grid_for(n, 256);
  if (dt == GpuDType::kF32)
    convert_kernel<<<grid, 256, 0, s.stream>>>(in, n, static_cast<float*>(out));
  else
    convert_kernel<<<grid, 256, 0, s.stream>>>(in, n, static_cast<__nv_bfloat16*>(out));
  return last_error();
}

}  // namespace hearth::cuda
