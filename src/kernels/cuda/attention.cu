// Paged grouped-query attention (flash-decoding): one CTA per (token, KV head, group slice, split). It
// stages 32-position tiles of K and V in shared memory (each K/V row is read once for all of the
// group's query heads), keeps an online softmax per head, and either writes the normalized output or,
// with several splits, an unnormalized partial (acc, max, sum) that the combine kernel merges. With
// AttentionShape::cluster the splits of one (token, head slice) are a thread-block cluster that divides the
// token's actual context among its CTAs and merges the partials through distributed shared memory: one
// launch, no partial round trip through global memory (the short-context, small-batch case).
#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_math.cuh"

namespace hearth::cuda {
namespace {

constexpr int kTile = 32;
constexpr int kThreads = 128;
constexpr int kMaxHd = 256;
constexpr int kMaxGroup = 8;  // query heads per CTA
constexpr int kAccPerThread = kMaxGroup * kMaxHd / kThreads;

// ---- pieces shared by the GQA and MLA flash-decoding kernels (kThreads threads, kTile positions) -------

// Cache slot of positions [p0, p0 + cnt) of a sequence's block table.
__device__ __forceinline__ void tile_slots(const int32_t* table, int p0, int cnt, int block_size,
                                           int64_t* slot_of) {
  if (threadIdx.x < cnt) {
    const int pp = p0 + threadIdx.x;
    slot_of[threadIdx.x] = static_cast<int64_t>(table[pp / block_size]) * block_size + pp % block_size;
  }
}

// sc[h][j] = q_h . k_j over `kdim` (k rows `kstride` apart), -inf past cnt.
__device__ __forceinline__ void tile_scores(const float* qs, const float* ks, int kdim, int kstride, int gh,
                                            int cnt, float* sc) {
  for (int i = threadIdx.x; i < gh * kTile; i += kThreads) {
    const int h = i / kTile, j = i % kTile;
    float sv = -INFINITY;
    if (j < cnt) {
      sv = 0.0f;
      const float* qh = qs + h * kdim;
      const float* kj = ks + j * kstride;
      for (int d = 0; d < kdim; ++d) sv = fmaf(qh[d], kj[d], sv);
    }
    sc[h * kTile + j] = sv;
  }
}

// Online softmax over one tile: sc becomes exp(s - new max); alpha rescales the running sums.
__device__ __forceinline__ void tile_softmax(float* sc, float* m, float* l, float* alpha, int gh) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int h = warp; h < gh; h += kThreads / 32) {
    const float sv = sc[h * kTile + lane];
    const float m_new = fmaxf(m[h], warp_max(sv));
    const float e = sv == -INFINITY ? 0.0f : expf(sv - m_new);
    const float sum = warp_sum(e);
    sc[h * kTile + lane] = e;
    __syncwarp();
    if (lane == 0) {
      const float a = m[h] == -INFINITY ? 0.0f : expf(m[h] - m_new);
      alpha[h] = a;
      l[h] = l[h] * a + sum;
      m[h] = m_new;
    }
  }
}

// acc (thread-owned elements e = threadIdx.x + j * kThreads of gh x vd) = acc * alpha + P V.
template <int ACC>
__device__ __forceinline__ void tile_pv(float (&acc)[ACC], const float* sc, const float* alpha,
                                        const float* vs, int vstride, int gh, int vd, int cnt) {
#pragma unroll
  for (int j = 0; j < ACC; ++j) {
    const int e = threadIdx.x + j * kThreads;
    if (e < gh * vd) {
      const int h = e / vd, d = e % vd;
      float a = acc[j] * alpha[h];
      const float* ph = sc + h * kTile;
      for (int jj = 0; jj < cnt; ++jj) a = fmaf(ph[jj], vs[jj * vstride + d], a);
      acc[j] = a;
    }
  }
}

// The normalised output (one split) or the split's partial (acc, max, sum) for the combine pass.
// Head h of this CTA is head (h0 + h) of row `row` (out) / list entry `li` (partials).
template <int ACC, typename OT>
__device__ __forceinline__ void store_heads(const float (&acc)[ACC], const float* m, const float* l, int gh,
                                            int vd, int nh, int h0, int64_t row, int64_t li, int splits,
                                            int split, float* partial, OT* out) {
#pragma unroll
  for (int j = 0; j < ACC; ++j) {
    const int e = threadIdx.x + j * kThreads;
    if (e < gh * vd) {
      const int h = e / vd, d = e % vd;
      if (splits == 1) {
        out[(row * nh + h0 + h) * vd + d] = from_f32<OT>(l[h] > 0.0f ? acc[j] / l[h] : 0.0f);
      } else {
        float* part = partial + ((li * nh + h0 + h) * splits + split) * (vd + 2);
        part[d] = acc[j];
        if (d == 0) {
          part[vd] = m[h];
          part[vd + 1] = l[h];
        }
      }
    }
  }
}

// The clustered epilogue: each CTA leaves its partial (acc in `stage` [gh][vd], max m and sum l per head)
// in its own shared memory; after a cluster barrier CTA r merges output elements r, r + cluster, ... (in
// kThreads-wide strips) from every CTA's shared memory and writes them normalised. The second barrier
// keeps each CTA's shared memory alive until every peer has read it.
template <int ACC, typename OT>
__device__ __forceinline__ void cluster_merge(const float (&acc)[ACC], const float* m, const float* l,
                                              float* stage, int gh, int vd, int nh, int h0, int64_t row,
                                              int csize, OT* out) {
  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
#pragma unroll
  for (int j = 0; j < ACC; ++j) {
    const int e = threadIdx.x + j * kThreads;
    if (e < gh * vd) stage[e] = acc[j];
  }
  cluster.sync();
  const int rank = static_cast<int>(cluster.block_rank());
  for (int e = rank * kThreads + threadIdx.x; e < gh * vd; e += csize * kThreads) {
    const int h = e / vd;
    float mx = -INFINITY;
    for (int r = 0; r < csize; ++r) mx = fmaxf(mx, *cluster.map_shared_rank(m + h, r));
    float num = 0.0f, den = 0.0f;
    if (mx != -INFINITY) {
      for (int r = 0; r < csize; ++r) {
        const float lr = *cluster.map_shared_rank(l + h, r);
        if (lr == 0.0f) continue;
        const float w = expf(*cluster.map_shared_rank(m + h, r) - mx);
        num += w * *cluster.map_shared_rank(stage + e, r);
        den += w * lr;
      }
    }
    out[(row * nh + h0) * vd + e] = from_f32<OT>(den > 0.0f ? num / den : 0.0f);
  }
  cluster.sync();
}

size_t attention_smem(int hd) {
  return sizeof(float) * (static_cast<size_t>(kMaxGroup) * hd + static_cast<size_t>(kTile) * (hd + 1) +
                          static_cast<size_t>(kTile) * hd + kMaxGroup * kTile + 3 * kMaxGroup);
}

template <typename KT, typename OT>
__global__ void __launch_bounds__(kThreads)
    paged_attention_kernel(const float* __restrict__ q, const KT* __restrict__ kv,
                           const int32_t* __restrict__ pos, const int32_t* __restrict__ seq_of,
                           const int32_t* __restrict__ block_table, const int32_t* __restrict__ list,
                           AttentionShape sh, float* __restrict__ partial, OT* __restrict__ out) {
  pdl_wait_then_release();
  extern __shared__ float smem[];
  const int hd = sh.hd;
  float* qs = smem;                       // [kMaxGroup][hd], pre-scaled
  float* ks = qs + kMaxGroup * hd;        // [kTile][hd + 1]
  float* vs = ks + kTile * (hd + 1);      // [kTile][hd]
  float* sc = vs + kTile * hd;            // [kMaxGroup][kTile]
  float* alpha = sc + kMaxGroup * kTile;  // [kMaxGroup]
  float* m = alpha + kMaxGroup;           // running max
  float* l = m + kMaxGroup;               // running sum

  const int64_t li = blockIdx.x;  // entry of the token list (partials are indexed by it)
  const int64_t t = list != nullptr ? list[li] : li;
  const int group = sh.nh / sh.nkv;
  const int slices = (group + kMaxGroup - 1) / kMaxGroup;
  const int g = blockIdx.y / slices;
  const int h0 = g * group + (blockIdx.y % slices) * kMaxGroup;
  const int gh = min(kMaxGroup, g * group + group - h0);
  const int split = blockIdx.z;
  const int p = pos[t];
  const int ctx = p >= 0 ? p + 1 : 0;
  // Clustered: the actual context in equal parts; otherwise fixed-length splits of the planned capacity.
  const int len = sh.cluster > 1 ? (ctx + sh.cluster - 1) / sh.cluster : sh.split_len;
  const int start = split * len;
  const int end = min(ctx, start + len);
  const int kvd = sh.nkv * hd;
  const int32_t* table = block_table + static_cast<int64_t>(seq_of[t]) * sh.table_width;

  for (int i = threadIdx.x; i < gh * hd; i += kThreads) qs[i] = q[(t * sh.nh + h0) * hd + i] * sh.scale;
  if (threadIdx.x < kMaxGroup) {
    m[threadIdx.x] = -INFINITY;
    l[threadIdx.x] = 0.0f;
  }
  float acc[kAccPerThread];
#pragma unroll
  for (int j = 0; j < kAccPerThread; ++j) acc[j] = 0.0f;
  __syncthreads();

  __shared__ int64_t slot_of[kTile];
  constexpr int kVec = 16 / sizeof(KT);  // elements per 16-byte load
  const int vec_per_row = hd / kVec;
  for (int p0 = start; p0 < end; p0 += kTile) {
    const int cnt = min(kTile, end - p0);
    tile_slots(table, p0, cnt, sh.block_size, slot_of);
    __syncthreads();
    // K and V rows of the tile: 16-byte loads, four of each in flight per thread before any is used.
    const int total = cnt * vec_per_row;
    for (int base = threadIdx.x; base < total; base += 4 * kThreads) {
      uint4 kr[4], vr[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int i = base + u * kThreads;
        if (i < total) {
          const int j = i / vec_per_row, c = i - j * vec_per_row;
          const KT* src = kv + slot_of[j] * 2 * kvd + static_cast<int64_t>(g) * hd + c * kVec;
          kr[u] = *reinterpret_cast<const uint4*>(src);
          vr[u] = *reinterpret_cast<const uint4*>(src + kvd);
        }
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int i = base + u * kThreads;
        if (i < total) {
          const int j = i / vec_per_row, c = i - j * vec_per_row;
          const KT* kk = reinterpret_cast<const KT*>(&kr[u]);
          const KT* vv = reinterpret_cast<const KT*>(&vr[u]);
#pragma unroll
          for (int e = 0; e < kVec; ++e) {
            ks[j * (hd + 1) + c * kVec + e] = to_f32(kk[e]);
            vs[j * hd + c * kVec + e] = to_f32(vv[e]);
          }
        }
      }
    }
    __syncthreads();
    tile_scores(qs, ks, hd, hd + 1, gh, cnt, sc);
    __syncthreads();
    tile_softmax(sc, m, l, alpha, gh);
    __syncthreads();
    tile_pv(acc, sc, alpha, vs, hd, gh, hd, cnt);
    __syncthreads();
  }

  if (sh.cluster > 1) {
    cluster_merge(acc, m, l, ks, gh, hd, sh.nh, h0, t, sh.cluster, out);
  } else {
    store_heads(acc, m, l, gh, hd, sh.nh, h0, t, li, sh.splits, split, partial, out);
  }
}

template <typename OT>
__global__ void combine_kernel(const float* __restrict__ partial, const int32_t* __restrict__ list, int nh,
                               int hd, int splits, OT* __restrict__ out) {
  pdl_wait_then_release();
  const int64_t li = blockIdx.x;
  const int64_t t = list != nullptr ? list[li] : li;
  const int h = blockIdx.y;
  const float* base = partial + (li * nh + h) * splits * (hd + 2);
  float mx = -INFINITY;
  for (int s = 0; s < splits; ++s) mx = fmaxf(mx, base[s * (hd + 2) + hd]);
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float num = 0.0f, den = 0.0f;
    if (mx != -INFINITY) {
      for (int s = 0; s < splits; ++s) {
        const float* part = base + s * (hd + 2);
        if (part[hd + 1] == 0.0f) continue;
        const float w = expf(part[hd] - mx);
        num += w * part[d];
        den += w * part[hd + 1];
      }
    }
    out[(t * nh + h) * hd + d] = from_f32<OT>(den > 0.0f ? num / den : 0.0f);
  }
}

template <typename KT, typename OT>
int launch(const float* q, const KT* kv, const int32_t* pos, const int32_t* seq_of,
           const int32_t* block_table, const int32_t* list, int64_t n, const AttentionShape& sh,
           float* partial, OT* out, Launch s) {
  const size_t smem = attention_smem(sh.hd);
  // The shared-memory limit is an attribute of each instantiation: raised once (thread-safe static).
  static const cudaError_t configured =
      cudaFuncSetAttribute(paged_attention_kernel<KT, OT>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(attention_smem(kMaxHd)));
  if (configured != cudaSuccess) return static_cast<int>(configured);
  const int group = sh.nh / sh.nkv;
  const int slices = (group + kMaxGroup - 1) / kMaxGroup;
  if (sh.cluster > 1) {
    static const cudaError_t nonportable = cudaFuncSetAttribute(
        paged_attention_kernel<KT, OT>, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
    if (nonportable != cudaSuccess) return static_cast<int>(nonportable);
    const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>(sh.nkv * slices),
                    static_cast<unsigned>(sh.cluster));
    launch_ex(paged_attention_kernel<KT, OT>, grid, kThreads, smem, s, dim3(1, 1, sh.cluster), q, kv, pos,
              seq_of, block_table, list, sh, partial, out);
    return static_cast<int>(cudaGetLastError());
  }
  const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>(sh.nkv * slices),
                  static_cast<unsigned>(sh.splits));
  launch_pdl(paged_attention_kernel<KT, OT>, grid, kThreads, smem, s, q, kv, pos, seq_of, block_table, list,
             sh, partial, out);
  if (sh.splits > 1) {
    const dim3 cgrid(static_cast<unsigned>(n), static_cast<unsigned>(sh.nh));
    launch_pdl(combine_kernel<OT>, cgrid, sh.hd >= 128 ? 128 : 64, 0, s, partial, list, sh.nh, sh.hd,
               sh.splits, out);
  }
  return static_cast<int>(cudaGetLastError());
}

// ---- MLA (absorbed): every query head attends over the shared cache row [latent | k_pe]; the value is
// the latent itself, so one staged tile serves as both K and V.
constexpr int kMlaMaxK = 640;
constexpr int kMlaMaxV = 512;
constexpr int kMlaAcc = kMaxGroup * kMlaMaxV / kThreads;

size_t mla_smem(int kdim) {
  return sizeof(float) * (static_cast<size_t>(kMaxGroup) * kdim + static_cast<size_t>(kTile) * (kdim + 1) +
                          kMaxGroup * kTile + 3 * kMaxGroup);
}

template <typename KT, typename OT>
__global__ void __launch_bounds__(kThreads)
    mla_attention_kernel(const float* __restrict__ qcat, const KT* __restrict__ kv,
                         const int32_t* __restrict__ pos, const int32_t* __restrict__ seq_of,
                         const int32_t* __restrict__ block_table, MlaShape ml, AttentionShape sh,
                         float* __restrict__ partial, OT* __restrict__ out) {
  pdl_wait_then_release();
  extern __shared__ float smem[];
  const int kdim = ml.lora + ml.rope, vd = ml.lora;
  float* qs = smem;                     // [kMaxGroup][kdim], pre-scaled
  float* ks = qs + kMaxGroup * kdim;    // [kTile][kdim + 1]: K rows, whose first vd columns are V
  float* sc = ks + kTile * (kdim + 1);  // [kMaxGroup][kTile]
  float* alpha = sc + kMaxGroup * kTile;
  float* m = alpha + kMaxGroup;
  float* l = m + kMaxGroup;
  __shared__ int64_t slot_of[kTile];

  const int64_t t = blockIdx.x;
  const int h0 = blockIdx.y * kMaxGroup;
  const int gh = min(kMaxGroup, ml.nh - h0);
  const int split = blockIdx.z;
  const int p = pos[t];
  const int ctx = p >= 0 ? p + 1 : 0;
  const int start = split * sh.split_len;
  const int end = min(ctx, start + sh.split_len);
  const int32_t* table = block_table + static_cast<int64_t>(seq_of[t]) * sh.table_width;

  for (int i = threadIdx.x; i < gh * kdim; i += kThreads)
    qs[i] = qcat[(t * ml.nh + h0) * kdim + i] * sh.scale;
  if (threadIdx.x < kMaxGroup) {
    m[threadIdx.x] = -INFINITY;
    l[threadIdx.x] = 0.0f;
  }
  float acc[kMlaAcc];
#pragma unroll
  for (int j = 0; j < kMlaAcc; ++j) acc[j] = 0.0f;
  __syncthreads();

  constexpr int kVec = 16 / sizeof(KT);
  const int vec_per_row = kdim / kVec;
  for (int p0 = start; p0 < end; p0 += kTile) {
    const int cnt = min(kTile, end - p0);
    tile_slots(table, p0, cnt, sh.block_size, slot_of);
    __syncthreads();
    const int total = cnt * vec_per_row;
    for (int base = threadIdx.x; base < total; base += 4 * kThreads) {
      uint4 kr[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int i = base + u * kThreads;
        if (i < total) {
          const int j = i / vec_per_row, c = i - j * vec_per_row;
          kr[u] = *reinterpret_cast<const uint4*>(kv + slot_of[j] * kdim + c * kVec);
        }
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int i = base + u * kThreads;
        if (i < total) {
          const int j = i / vec_per_row, c = i - j * vec_per_row;
          const KT* kk = reinterpret_cast<const KT*>(&kr[u]);
#pragma unroll
          for (int e = 0; e < kVec; ++e) ks[j * (kdim + 1) + c * kVec + e] = to_f32(kk[e]);
        }
      }
    }
    __syncthreads();
    tile_scores(qs, ks, kdim, kdim + 1, gh, cnt, sc);
    __syncthreads();
    tile_softmax(sc, m, l, alpha, gh);
    __syncthreads();
    tile_pv(acc, sc, alpha, ks, kdim + 1, gh, vd, cnt);  // V is the first vd columns of the K rows
    __syncthreads();
  }
  store_heads(acc, m, l, gh, vd, ml.nh, h0, t, t, sh.splits, split, partial, out);
}

template <typename KT, typename OT>
int launch_mla(const float* qcat, const KT* kv, const int32_t* pos, const int32_t* seq_of,
               const int32_t* block_table, int64_t n, const MlaShape& ml, const AttentionShape& sh,
               float* partial, OT* out, Launch s) {
  static const cudaError_t configured =
      cudaFuncSetAttribute(mla_attention_kernel<KT, OT>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(mla_smem(kMlaMaxK)));
  if (configured != cudaSuccess) return static_cast<int>(configured);
  const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>((ml.nh + kMaxGroup - 1) / kMaxGroup),
                  static_cast<unsigned>(sh.splits));
  launch_pdl(mla_attention_kernel<KT, OT>, grid, kThreads, mla_smem(ml.lora + ml.rope), s, qcat, kv, pos,
             seq_of, block_table, ml, sh, partial, out);
  if (sh.splits > 1) {
    const dim3 cgrid(static_cast<unsigned>(n), static_cast<unsigned>(ml.nh));
    launch_pdl(combine_kernel<OT>, cgrid, 128, 0, s, static_cast<const float*>(partial),
               static_cast<const int32_t*>(nullptr), ml.nh, ml.lora, sh.splits, out);
  }
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

int paged_attention(const float* q, const void* kv_layer, GpuDType kvt, const int32_t* pos,
                    const int32_t* seq_of, const int32_t* block_table, const int32_t* list, int64_t n,
                    const AttentionShape& shape, float* partial, void* out, GpuDType ot, Launch s) {
  if (n <= 0) return 0;
  // 16-byte loads of K/V rows: head_dim a multiple of 8 (bf16) / 4 (f32).
  if (shape.hd <= 0 || shape.hd > kMaxHd || shape.hd % (kvt == GpuDType::kF32 ? 4 : 8) != 0 ||
      shape.nkv <= 0 || shape.nh % shape.nkv != 0 || shape.splits < 1 || shape.split_len < 1 ||
      shape.cluster < 0 || shape.cluster > kMaxAttentionCluster)
    return static_cast<int>(cudaErrorInvalidValue);
  if (kvt == GpuDType::kF32) {
    const auto* kv = static_cast<const float*>(kv_layer);
    return ot == GpuDType::kF32
               ? launch(q, kv, pos, seq_of, block_table, list, n, shape, partial, static_cast<float*>(out), s)
               : launch(q, kv, pos, seq_of, block_table, list, n, shape, partial,
                        static_cast<__nv_bfloat16*>(out), s);
  }
  const auto* kv = static_cast<const __nv_bfloat16*>(kv_layer);
  return ot == GpuDType::kF32
             ? launch(q, kv, pos, seq_of, block_table, list, n, shape, partial, static_cast<float*>(out), s)
             : launch(q, kv, pos, seq_of, block_table, list, n, shape, partial,
                      static_cast<__nv_bfloat16*>(out), s);
}

int attention_cluster_size(int hd, GpuDType kvt, GpuDType ot) {
  if (hd <= 0 || hd > kMaxHd) return 0;
  // The (KV, output) types the engine pairs: f32 with f32, bf16 with bf16.
  const void* fn =
      kvt == GpuDType::kF32
          ? (ot == GpuDType::kF32
                 ? reinterpret_cast<const void*>(paged_attention_kernel<float, float>)
                 : reinterpret_cast<const void*>(paged_attention_kernel<float, __nv_bfloat16>))
          : (ot == GpuDType::kF32
                 ? reinterpret_cast<const void*>(paged_attention_kernel<__nv_bfloat16, float>)
                 : reinterpret_cast<const void*>(paged_attention_kernel<__nv_bfloat16, __nv_bfloat16>));
  if (cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(attention_smem(kMaxHd))) != cudaSuccess ||
      cudaFuncSetAttribute(fn, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  for (int c = kMaxAttentionCluster; c >= 2; c /= 2) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(1, 1, static_cast<unsigned>(c));
    cfg.blockDim = dim3(kThreads);
    cfg.dynamicSmemBytes = attention_smem(hd);
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = 1;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = static_cast<unsigned>(c);
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    int clusters = 0;
    if (cudaOccupancyMaxActiveClusters(&clusters, fn, &cfg) == cudaSuccess && clusters > 0) return c;
    cudaGetLastError();
  }
  return 0;
}

int mla_attention(const float* qcat, const void* kv_layer, GpuDType kvt, const int32_t* pos,
                  const int32_t* seq_of, const int32_t* block_table, int64_t n, const MlaShape& ml,
                  const AttentionShape& sh, float* partial, void* out, GpuDType ot, Launch s) {
  if (n <= 0) return 0;
  const int kdim = ml.lora + ml.rope;
  if (ml.nh <= 0 || kdim > kMlaMaxK || ml.lora > kMlaMaxV || kdim % (kvt == GpuDType::kF32 ? 4 : 8) != 0 ||
      sh.splits < 1 || sh.split_len < 1)
    return static_cast<int>(cudaErrorInvalidValue);
  if (kvt == GpuDType::kF32) {
    const auto* kv = static_cast<const float*>(kv_layer);
    return ot == GpuDType::kF32 ? launch_mla(qcat, kv, pos, seq_of, block_table, n, ml, sh, partial,
                                             static_cast<float*>(out), s)
                                : launch_mla(qcat, kv, pos, seq_of, block_table, n, ml, sh, partial,
                                             static_cast<__nv_bfloat16*>(out), s);
  }
  const auto* kv = static_cast<const __nv_bfloat16*>(kv_layer);
  return ot == GpuDType::kF32
             ? launch_mla(qcat, kv, pos, seq_of, block_table, n, ml, sh, partial, static_cast<float*>(out), s)
             : launch_mla(qcat, kv, pos, seq_of, block_table, n, ml, sh, partial,
                          static_cast<__nv_bfloat16*>(out), s);
}

}  // namespace hearth::cuda
