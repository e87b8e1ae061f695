// Prefill attention on tensor cores (WMMA bf16 16x16x16, f32 accumulation). One CTA per (query tile,
// query head): 4 warps own 16 query rows each. Two passes over the key tiles of the paged cache:
//   1. S = Q K^T per 64-key tile -> each row's running max and sum of exp (scalars, cheap to rescale),
//   2. S again -> P = exp(S - max) / sum (bf16) -> O += P V in accumulator fragments.
// Recomputing S costs a third more tensor work but keeps O in registers with no rescaling, which WMMA's
// opaque fragment layout would not allow.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <cstdint>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_math.cuh"

namespace hearth::cuda {
namespace {

using namespace nvcuda;

constexpr int kQ = kPrefillTile;  // query rows per CTA
constexpr int kK = 64;            // keys per tile
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;

template <int HD>
struct Smem {
  static constexpr int ld = HD + 8;   // bf16 rows (16-byte multiple, skews banks)
  static constexpr int lds = kK + 4;  // f32 score rows
  static constexpr int ldp = kK + 8;  // bf16 probability rows
  static constexpr size_t q = 0;
  static constexpr size_t k = q + sizeof(__nv_bfloat16) * kQ * ld;
  static constexpr size_t v = k + sizeof(__nv_bfloat16) * kK * ld;
  static constexpr size_t s = v + sizeof(__nv_bfloat16) * kK * ld;
  static constexpr size_t p = s + sizeof(float) * kQ * lds;
  static constexpr size_t slots = p + sizeof(__nv_bfloat16) * kQ * ldp;
  static constexpr size_t bytes = slots + sizeof(int64_t) * kK;
};

// Loads keys [k0, k0 + kK) (zeros past kend) of one KV head into smem rows (K, and V when with_v).
template <int HD>
__device__ void load_kv_tile(const __nv_bfloat16* __restrict__ kv, const int32_t* __restrict__ table,
                             int block_size, int kvd, int g, int k0, int kend, bool with_v, __nv_bfloat16* ks,
                             __nv_bfloat16* vs, int64_t* slots) {
  using L = Smem<HD>;
  if (threadIdx.x < kK) {
    const int kp = k0 + threadIdx.x;
    slots[threadIdx.x] =
        kp < kend ? static_cast<int64_t>(table[kp / block_size]) * block_size + kp % block_size : -1;
  }
  __syncthreads();
  constexpr int vpr = HD / 8;
  for (int i = threadIdx.x; i < kK * vpr; i += kThreads) {
    const int j = i / vpr, c = i % vpr;
    uint4 kr = make_uint4(0, 0, 0, 0), vr = make_uint4(0, 0, 0, 0);
    if (slots[j] >= 0) {
      const __nv_bfloat16* src = kv + slots[j] * 2 * kvd + static_cast<int64_t>(g) * HD + c * 8;
      kr = *reinterpret_cast<const uint4*>(src);
      if (with_v) vr = *reinterpret_cast<const uint4*>(src + kvd);
    }
    *reinterpret_cast<uint4*>(ks + j * L::ld + c * 8) = kr;
    if (with_v) *reinterpret_cast<uint4*>(vs + j * L::ld + c * 8) = vr;
  }
  __syncthreads();
}

// S (this warp's 16 rows x kK keys, f32) = Q K^T.
template <int HD>
__device__ void scores(const __nv_bfloat16* qs, const __nv_bfloat16* ks, float* ss, int warp) {
  using L = Smem<HD>;
#pragma unroll
  for (int j = 0; j < kK / 16; ++j) {
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
#pragma unroll
    for (int kk = 0; kk < HD / 16; ++kk) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> b;
      wmma::load_matrix_sync(a, qs + (warp * 16) * L::ld + kk * 16, L::ld);
      wmma::load_matrix_sync(b, ks + (j * 16) * L::ld + kk * 16, L::ld);
      wmma::mma_sync(acc, a, b, acc);
    }
    wmma::store_matrix_sync(ss + (warp * 16) * L::lds + j * 16, acc, L::lds, wmma::mem_row_major);
  }
  __syncwarp();
}

template <int HD>
__global__ void __launch_bounds__(kThreads)
    prefill_attention_kernel(const float* __restrict__ q, const __nv_bfloat16* __restrict__ kv,
                             const int32_t* __restrict__ pos, const int32_t* __restrict__ seq_of,
                             const int32_t* __restrict__ block_table, const int32_t* __restrict__ tiles,
                             AttentionShape sh, __nv_bfloat16* __restrict__ out) {
  using L = Smem<HD>;
  extern __shared__ __align__(16) unsigned char smem[];
  auto* qs = reinterpret_cast<__nv_bfloat16*>(smem + L::q);
  auto* ks = reinterpret_cast<__nv_bfloat16*>(smem + L::k);
  auto* vs = reinterpret_cast<__nv_bfloat16*>(smem + L::v);
  auto* ss = reinterpret_cast<float*>(smem + L::s);
  auto* ps = reinterpret_cast<__nv_bfloat16*>(smem + L::p);
  auto* slots = reinterpret_cast<int64_t*>(smem + L::slots);

  const int t0 = tiles[2 * blockIdx.x], count = tiles[2 * blockIdx.x + 1];
  const int h = blockIdx.y;
  const int g = h / (sh.nh / sh.nkv);
  const int kvd = sh.nkv * HD;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int32_t* table = block_table + static_cast<int64_t>(seq_of[t0]) * sh.table_width;
  const int kend = pos[t0 + count - 1] + 1;  // keys the tile's last query sees

  for (int i = threadIdx.x; i < kQ * HD; i += kThreads) {
    const int r = i / HD, d = i % HD;
    const float v = r < count ? q[(static_cast<int64_t>(t0 + r) * sh.nh + h) * HD + d] : 0.0f;
    qs[r * L::ld + d] = __float2bfloat16(v);
  }
  // Each lane pair owns one of the warp's 16 rows: lane/2 is the row, lane%2 the half of the key tile.
  const int my_row = warp * 16 + (lane >> 1);
  const int my_pos = my_row < count ? pos[t0 + my_row] : -1;
  const int half = lane & 1;
  float m = -INFINITY, l = 0.0f;

  // Pass 1: row max and sum of exp.
  for (int k0 = 0; k0 < kend; k0 += kK) {
    load_kv_tile<HD>(kv, table, sh.block_size, kvd, g, k0, kend, false, ks, vs, slots);
    scores<HD>(qs, ks, ss, warp);
    const float* srow = ss + my_row * L::lds + half * (kK / 2);
    float tmax = -INFINITY;
    for (int j = 0; j < kK / 2; ++j) {
      const int kp = k0 + half * (kK / 2) + j;
      if (kp <= my_pos) tmax = fmaxf(tmax, srow[j] * sh.scale);
    }
    tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
    const float m_new = fmaxf(m, tmax);
    float sum = 0.0f;
    if (m_new != -INFINITY) {
      for (int j = 0; j < kK / 2; ++j) {
        const int kp = k0 + half * (kK / 2) + j;
        if (kp <= my_pos) sum += expf(srow[j] * sh.scale - m_new);
      }
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    l = (m == -INFINITY ? 0.0f : l * expf(m - m_new)) + sum;
    m = m_new;
    __syncthreads();  // before the next tile overwrites ks
  }
  const float inv_l = l > 0.0f ? 1.0f / l : 0.0f;

  // Pass 2: O = sum over tiles of P V.
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> o[HD / 16];
#pragma unroll
  for (int d = 0; d < HD / 16; ++d) wmma::fill_fragment(o[d], 0.0f);
  for (int k0 = 0; k0 < kend; k0 += kK) {
    load_kv_tile<HD>(kv, table, sh.block_size, kvd, g, k0, kend, true, ks, vs, slots);
    scores<HD>(qs, ks, ss, warp);
    const float* srow = ss + my_row * L::lds + half * (kK / 2);
    __nv_bfloat16* prow = ps + my_row * L::ldp + half * (kK / 2);
    for (int j = 0; j < kK / 2; ++j) {
      const int kp = k0 + half * (kK / 2) + j;
      const float p = kp <= my_pos ? expf(srow[j] * sh.scale - m) * inv_l : 0.0f;
      prow[j] = __float2bfloat16(p);
    }
    __syncwarp();
#pragma unroll
    for (int kk = 0; kk < kK / 16; ++kk) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
      wmma::load_matrix_sync(a, ps + (warp * 16) * L::ldp + kk * 16, L::ldp);
#pragma unroll
      for (int d = 0; d < HD / 16; ++d) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> b;
        wmma::load_matrix_sync(b, vs + (kk * 16) * L::ld + d * 16, L::ld);
        wmma::mma_sync(o[d], a, b, o[d]);
      }
    }
    __syncthreads();
  }
  // Out through the (now free) score buffer, 16 columns at a time.
  float* stage = ss + (warp * 16) * L::lds;
#pragma unroll
  for (int d = 0; d < HD / 16; ++d) {
    wmma::store_matrix_sync(stage, o[d], L::lds, wmma::mem_row_major);
    __syncwarp();
    for (int i = lane; i < 16 * 16; i += 32) {
      const int r = i / 16, c = i % 16;
      const int row = warp * 16 + r;
      if (row < count)
        out[(static_cast<int64_t>(t0 + row) * sh.nh + h) * HD + d * 16 + c] =
            __float2bfloat16(stage[r * L::lds + c]);
    }
    __syncwarp();
  }
}

template <int HD>
int launch_prefill(const float* q, const void* kv, const int32_t* pos, const int32_t* seq_of,
                   const int32_t* block_table, const int32_t* tiles, int64_t num_tiles,
                   const AttentionShape& sh, void* out, Launch s) {
  static const cudaError_t configured =
      cudaFuncSetAttribute(prefill_attention_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(Smem<HD>::bytes));
  if (configured != cudaSuccess) return static_cast<int>(configured);
  const dim3 grid(static_cast<unsigned>(num_tiles), static_cast<unsigned>(sh.nh));
  prefill_attention_kernel<HD><<<grid, kThreads, Smem<HD>::bytes, s.stream>>>(
      q, static_cast<const __nv_bfloat16*>(kv), pos, seq_of, block_table, tiles, sh,
      static_cast<__nv_bfloat16*>(out));
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

bool prefill_attention_supported(int hd) {
  return hd == 16 || hd == 32 || hd == 64 || hd == 128;
}

int prefill_attention(const float* q, const void* kv_layer, const int32_t* pos, const int32_t* seq_of,
                      const int32_t* block_table, const int32_t* tiles, int64_t num_tiles,
                      const AttentionShape& shape, void* out, Launch s) {
  if (num_tiles <= 0) return 0;
  if (shape.nkv <= 0 || shape.nh % shape.nkv != 0 || num_tiles > 0x7fffffff || shape.nh > 65535)
    return static_cast<int>(cudaErrorInvalidValue);
  switch (shape.hd) {
    case 16:
      return launch_prefill<16>(q, kv_layer, pos, seq_of, block_table, tiles, num_tiles, shape, out, s);
    case 32:
      return launch_prefill<32>(q, kv_layer, pos, seq_of, block_table, tiles, num_tiles, shape, out, s);
    case 64:
      return launch_prefill<64>(q, kv_layer, pos, seq_of, block_table, tiles, num_tiles, shape, out, s);
    case 128:
      return launch_prefill<128>(q, kv_layer, pos, seq_of, block_table, tiles, num_tiles, shape, out, s);
    default: return static_cast<int>(cudaErrorInvalidValue);
  }
}

}  // namespace hearth::cuda
