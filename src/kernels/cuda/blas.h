#pragma once
// BlasLt: the dense GEMMs of the GPU engine through cuBLASLt. y[n][rows] (f32, row stride ldy) =
// x[n][k] · w[rows][k]^T with w and x both f32 or both bf16 (f32 accumulation; no TF32, so f32 models
// keep f32 precision). Plans (descriptors + the heuristic's algorithm) are cached per shape, so a
// repeated shape costs one cublasLtMatmul call and can be captured in a CUDA graph.
#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "core/status.h"
#include "kernels/cuda/cuda_ops.h"

namespace hearth::cuda {

class BlasLt {
 public:
  // `workspace` (device memory, `bytes` long) must outlive this object.
  static Result<std::unique_ptr<BlasLt>> create(void* workspace, uint64_t bytes);
  ~BlasLt();
  BlasLt(const BlasLt&) = delete;
  BlasLt& operator=(const BlasLt&) = delete;

  Status gemm(const void* w, const void* x, GpuDType t, int64_t n, int64_t rows, int64_t k, float* y,
              int64_t ldy, Stream s);

  // `batch` independent products with strided operands (elements between consecutive matrices):
  // y_b[n][rows] (row stride ldy, type yt) = x_b[n][k] (row stride ldx) · w_b[rows][k]^T (row stride ldw).
  // MLA's per-head absorptions are this shape.
  struct Batched {
    const void* w = nullptr;
    int64_t ldw = 0, stride_w = 0;
    const void* x = nullptr;
    int64_t ldx = 0, stride_x = 0;
    void* y = nullptr;
    int64_t ldy = 0, stride_y = 0;
    GpuDType yt = GpuDType::kF32;
  };
  Status gemm_batched(const Batched& b, GpuDType t, int64_t batch, int64_t n, int64_t rows, int64_t k,
                      Stream s);

  // FP8 e4m3 on tensor cores: y[n][rows] (f32, row stride ldy) = x[n][k] · w[rows][k]^T, each product
  // scaled. kRowwise: w_scale[rows] (one per weight row) and x_scale[n] (one per token). kBlock128
  // (DeepSeek-V3's recipe): w_scale per 128x128 block of w, row-major [ceil(rows/128)][L4] with L4 =
  // ceil(k/128) rounded up to a multiple of 4 (padding ignored), and x_scale per 1x128 block of x,
  // [ceil(k/128)][n] (quantize_fp8's layout). n and rows must be multiples of 4 for kBlock128, scale
  // pointers 16-byte aligned. Fails with kUnsupported where cuBLASLt (>= 12.9, sm_90) has no algorithm:
  // callers fall back.
  // kBlock1x128: w_scale per row and 128 columns, [ceil(k/128)][rows] (gemv's block_scales layout), x_scale
  // as for kBlock128.
  enum class Fp8Scaling : int { kRowwise = 1, kBlock128 = 2, kBlock1x128 = 3 };
  Status gemm_fp8(const void* w, const float* w_scale, const void* x, const float* x_scale,
                  Fp8Scaling scaling, int64_t n, int64_t rows, int64_t k, float* y, int64_t ldy, Stream s);

 private:
  struct Plan;
  BlasLt() = default;
  // (scaling mode: 0 none or Fp8Scaling, type, output type, batch, n, rows, k, ldw, ldx, ldy, strides)
  using Key = std::tuple<int, int, int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                         int64_t, int64_t, int64_t>;
  Result<Plan*> plan(const Key& key);

  void* handle_ = nullptr;  // cublasLtHandle_t
  void* workspace_ = nullptr;
  uint64_t workspace_bytes_ = 0;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace hearth::cuda
