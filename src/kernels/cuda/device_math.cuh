#pragma once
// Device helpers shared by the .cu files: conversions between f32 and the storage types, warp and
// block reductions. Block reductions need blockDim.x to be a multiple of 32 and a 32-entry smem array.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_ops.h"

#include <cstdint>

namespace hearth::cuda {

__device__ __forceinline__ float to_f32(float v) {
  return v;
}
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <typename T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ float from_f32<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
  return __float2bfloat16(v);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// The sum over the block, returned to every thread.
__device__ __forceinline__ float block_sum(float v, float* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // red may still be read by a previous reduction
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = lane < warps ? red[lane] : 0.0f;
  return warp_sum(v);
}

// The largest value over the block, returned to every thread.
__device__ __forceinline__ float block_max(float v, float* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = lane < warps ? red[lane] : -INFINITY;
  return warp_max(v);
}

// The warp's largest value and its lowest index, returned to every lane.
__device__ __forceinline__ void warp_argmax(float& v, int32_t& idx) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int32_t oi = __shfl_xor_sync(0xffffffffu, idx, o);
    if (ov > v || (ov == v && oi < idx)) {
      v = ov;
      idx = oi;
    }
  }
}

// The block's largest value and its lowest index, returned to every thread.
__device__ __forceinline__ void block_argmax(float& v, int32_t& idx, float* red_v, int32_t* red_i) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  warp_argmax(v, idx);
  __syncthreads();
  if (lane == 0) {
    red_v[warp] = v;
    red_i[warp] = idx;
  }
  __syncthreads();
  v = lane < warps ? red_v[lane] : -INFINITY;
  idx = lane < warps ? red_i[lane] : INT32_MAX;
  warp_argmax(v, idx);
}

// RoPE: element j (< rot_dim) of a rotated vector pairs with `partner` under cos/sin of pair `pair`;
// returns whether j is the pair's first element (x' = x c - y s) or its second (y' = y c + x s).
__device__ __forceinline__ bool rope_pair(int j, int rot_dim, bool interleave, int& pair, int& partner) {
  if (interleave) {
    pair = j / 2;
    partner = j ^ 1;
    return (j & 1) == 0;
  }
  const int half = rot_dim / 2;
  const bool first = j < half;
  pair = first ? j : j - half;
  partner = first ? j + half : j - half;
  return first;
}

// Rotated value of v (element j) with its partner w, with cs[2i], cs[2i + 1] = cos, sin of pair i.
__device__ __forceinline__ float rope_rotate(float v, float w, bool first, const float* cs, int pair) {
  const float c = cs[2 * pair], s = cs[2 * pair + 1];
  return first ? v * c - w * s : v * c + w * s;
}

// Dot product of two 16-byte vectors of 8 bf16, in f32.
__device__ __forceinline__ float dot8_bf16(const uint4& a, const uint4& b) {
  const __nv_bfloat162* pa = reinterpret_cast<const __nv_bfloat162*>(&a);
  const __nv_bfloat162* pb = reinterpret_cast<const __nv_bfloat162*>(&b);
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 fa = __bfloat1622float2(pa[i]);
    const float2 fb = __bfloat1622float2(pb[i]);
    s = fmaf(fa.x, fb.x, s);
    s = fmaf(fa.y, fb.y, s);
  }
  return s;
}

}  // namespace hearth::cuda

namespace hearth::cuda {

// Programmatic dependent launch (Hopper): a kernel launched with launch_pdl() may start while the
// previous kernel in the stream drains; it waits here until that kernel has finished and its writes are
// visible, then lets the next kernel start early in turn. A no-op for kernels launched normally.
__device__ __forceinline__ void pdl_wait_then_release() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  cudaGridDependencySynchronize();
  cudaTriggerProgrammaticLaunchCompletion();
#endif
}

// Launches `kernel` with programmatic dependent launch when s.pdl, in thread-block clusters of `cluster` CTAs
// when that has more than one.
template <typename... KArgs, typename... Args>
inline cudaError_t launch_ex(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, Launch s,
                             dim3 cluster, Args... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s.stream;
  cudaLaunchAttribute attr[2];
  unsigned n = 0;
  if (cluster.x * cluster.y * cluster.z > 1) {
    attr[n].id = cudaLaunchAttributeClusterDimension;
    attr[n].val.clusterDim.x = cluster.x;
    attr[n].val.clusterDim.y = cluster.y;
    attr[n].val.clusterDim.z = cluster.z;
    ++n;
  }
  if (s.pdl) {
    attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[n].val.programmaticStreamSerializationAllowed = 1;
    ++n;
  }
  cfg.attrs = attr;
  cfg.numAttrs = n;
  return cudaLaunchKernelEx(&cfg, kernel, static_cast<KArgs>(args)...);
}

template <typename... KArgs, typename... Args>
inline cudaError_t launch_pdl(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, Launch s,
                              Args... args) {
  return launch_ex(kernel, grid, block, smem, s, dim3(1, 1, 1), args...);
}

// Dot product of 16 e4m3 values (one 16-byte vector) with 16 bf16 (two), in f32.
__device__ __forceinline__ float dot16_fp8_bf16(const uint4& w, const uint4& x0, const uint4& x1) {
  const __nv_fp8x2_storage_t* p = reinterpret_cast<const __nv_fp8x2_storage_t*>(&w);
  const __nv_bfloat162* xb0 = reinterpret_cast<const __nv_bfloat162*>(&x0);
  const __nv_bfloat162* xb1 = reinterpret_cast<const __nv_bfloat162*>(&x1);
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const float2 wf = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(p[i], __NV_E4M3)));
    const float2 xf = __bfloat1622float2(i < 4 ? xb0[i] : xb1[i - 4]);
    s = fmaf(wf.x, xf.x, s);
    s = fmaf(wf.y, xf.y, s);
  }
  return s;
}

}  // namespace hearth::cuda
