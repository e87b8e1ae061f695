// Dispatch, the reference path and the shared helpers of the CPU linear layers.
#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <span>
#include <vector>

#include "core/half.h"
#include "kernels/cpu/cpu_features.h"
#include "model/quant.h"

namespace hearth {

uint64_t weight_row_bytes(DType dtype, int64_t cols) {
  const DTypeInfo& info = dtype_info(dtype);
  if (cols <= 0 || cols % info.block_elems != 0) return 0;
  return static_cast<uint64_t>(cols / info.block_elems) * info.block_bytes;
}

bool cpu_can_read(DType dtype) {
  return dtype == DType::kF8_E4M3 || (can_dequantize(dtype) && dtype != DType::kF64);
}

WeightMatrix WeightMatrix::slice_rows(int64_t r0, int64_t n) const {
  WeightMatrix s = *this;
  s.data = row(r0);
  s.rows = n;
  if (dtype == DType::kF8_E4M3 && block_scale != nullptr) s.block_scale += (r0 / block_rows) * scale_cols;
  return s;
}

void decode_row(const WeightMatrix& w, int64_t r, float* out) {
  const uint8_t* p = w.row(r);
  switch (w.dtype) {
    case DType::kF32: std::memcpy(out, p, static_cast<size_t>(w.cols) * 4); return;
    case DType::kBF16:
      for (int64_t c = 0; c < w.cols; ++c) {
        uint16_t h;
        std::memcpy(&h, p + 2 * c, 2);
        out[c] = bf16_to_float(h);
      }
      return;
    case DType::kF16:
      for (int64_t c = 0; c < w.cols; ++c) {
        uint16_t h;
        std::memcpy(&h, p + 2 * c, 2);
        out[c] = f16_to_float(h);
      }
      return;
    case DType::kF8_E4M3: {
      const float* srow = w.block_scale + (r / w.block_rows) * w.scale_cols;
      for (int64_t c = 0; c < w.cols; ++c) out[c] = fp8_e4m3_to_float(p[c]) * srow[c / w.block_cols];
      return;
    }
    default: {
      // ggml blocks: sizes were validated when the matrix was built, so this cannot fail.
      const Status st = dequantize(w.dtype, std::span<const uint8_t>(p, w.row_bytes), w.cols, out);
      if (!st.is_ok()) std::fill(out, out + w.cols, 0.0f);
      return;
    }
  }
}

void matmul_reference(const WeightMatrix& w, const float* x, int64_t x_stride, int64_t n, float* y,
                      int64_t y_stride) {
  std::vector<float> row(w.cols);
  for (int64_t r = 0; r < w.rows; ++r) {
    decode_row(w, r, row.data());
    for (int64_t t = 0; t < n; ++t) {
      const float* xt = x + t * x_stride;
      double acc = 0.0;
      for (int64_t c = 0; c < w.cols; ++c) acc += static_cast<double>(row[c]) * xt[c];
      y[t * y_stride + r] = static_cast<float>(acc);
    }
  }
}

namespace cpu_detail {
void matmul_rows_scalar(const WeightMatrix& w, const float* x, int64_t x_stride, int64_t n, float* y,
                        int64_t y_stride, int64_t r0, int64_t r1, int64_t y_col0) {
  std::vector<float> row(w.cols);
  for (int64_t r = r0; r < r1; ++r) {
    decode_row(w, r, row.data());
    for (int64_t t = 0; t < n; ++t) {
      const float* xt = x + t * x_stride;
      float acc = 0.0f;
      for (int64_t c = 0; c < w.cols; ++c) acc += row[c] * xt[c];
      y[t * y_stride + (r - y_col0)] = acc;
    }
  }
}
}  // namespace cpu_detail

namespace cpu_detail {
void quantize_activations_q8(const float* x, int64_t x_stride, int64_t n, int64_t cols, uint8_t* xq,
                             float* xd) {
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x + t * x_stride;
    for (int64_t b = 0; b < cols / 32; ++b) {
      float amax = 0.0f;
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::abs(xt[b * 32 + i]));
      const float d = amax / 127.0f;
      const float id = d > 0.0f ? 1.0f / d : 0.0f;
      xd[t * (cols / 32) + b] = d;
      for (int i = 0; i < 32; ++i) {
        const int q = static_cast<int>(std::nearbyint(xt[b * 32 + i] * id));
        xq[t * cols + b * 32 + i] = static_cast<uint8_t>(std::clamp(q, -127, 127) + 128);
      }
    }
  }
}
}  // namespace cpu_detail

namespace {
bool use_w8a8(CpuIsa isa, const WeightMatrix& w) {
  return w.int8_activations && w.dtype == DType::kQ8_0 && isa == CpuIsa::kAvx512 &&
         cpu_features().avx512_vnni && w.cols % 32 == 0;
}

void run_rows(CpuIsa isa, const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride,
              int64_t n, float* y, int64_t y_stride, ThreadPool* pool) {
  if (n <= 0 || r1 <= r0) return;
  if (use_w8a8(isa, w)) {
    std::vector<uint8_t> xq(static_cast<size_t>(n * w.cols));
    std::vector<float> xd(static_cast<size_t>(n * (w.cols / 32)));
    cpu_detail::quantize_activations_q8(x, x_stride, n, w.cols, xq.data(), xd.data());
    constexpr int64_t kGroup = 16;
    const int64_t groups = (r1 - r0 + kGroup - 1) / kGroup;
    auto run = [&](int64_t g0, int64_t g1) {
      cpu_detail::matmul_rows_w8a8_avx512(w, xq.data(), xd.data(), n, y, y_stride, r0 + g0 * kGroup,
                                          std::min(r1, r0 + g1 * kGroup), r0);
    };
    if (pool == nullptr || pool->size() == 1 || (r1 - r0) * w.cols * n < (1 << 15)) {
      run(0, groups);
    } else {
      pool->parallel_for(groups, run);
    }
    return;
  }
  auto* fn = &cpu_detail::matmul_rows_scalar;
  if (isa == CpuIsa::kAvx512) fn = &cpu_detail::matmul_rows_avx512;
  if (isa == CpuIsa::kAvx2) fn = &cpu_detail::matmul_rows_avx2;
  // Rows go to threads in groups of 16 (whole register tiles); each thread decodes its own rows once
  // per token block.
  constexpr int64_t kGroup = 16;
  const int64_t rows = r1 - r0;
  const int64_t groups = (rows + kGroup - 1) / kGroup;
  auto run = [&](int64_t g0, int64_t g1) {
    fn(w, x, x_stride, n, y, y_stride, r0 + g0 * kGroup, std::min(r1, r0 + g1 * kGroup), r0);
  };
  // Tiny products are not worth waking the pool for (results do not depend on the split).
  const int64_t work = rows * w.cols * n;
  if (pool == nullptr || pool->size() == 1 || work < (1 << 15)) {
    run(0, groups);
  } else {
    pool->parallel_for(groups, run);
  }
}
}  // namespace

void matmul_isa(CpuIsa isa, const WeightMatrix& w, const float* x, int64_t x_stride, int64_t n, float* y,
                int64_t y_stride, ThreadPool* pool) {
  run_rows(isa, w, 0, w.rows, x, x_stride, n, y, y_stride, pool);
}

void matmul_row_range(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride,
                      int64_t n, float* y, int64_t y_stride, ThreadPool* pool) {
  run_rows(cpu_isa(), w, r0, r1, x, x_stride, n, y, y_stride, pool);
}

void matmul(const WeightMatrix& w, const float* x, int64_t x_stride, int64_t n, float* y, int64_t y_stride,
            ThreadPool* pool) {
  matmul_isa(cpu_isa(), w, x, x_stride, n, y, y_stride, pool);
}

void axpy_row(const WeightMatrix& w, int64_t r, float a, float* y, float* scratch) {
  const float* row = nullptr;
  if (w.dtype == DType::kF32 && (reinterpret_cast<uintptr_t>(w.row(r)) % 4) == 0) {
    row = reinterpret_cast<const float*>(w.row(r));
  } else {
    switch (cpu_isa()) {
      case CpuIsa::kAvx512: cpu_detail::decode_row_avx512(w, r, scratch); break;
      case CpuIsa::kAvx2: cpu_detail::decode_row_avx2(w, r, scratch); break;
      case CpuIsa::kReference: decode_row(w, r, scratch); break;
    }
    row = scratch;
  }
  for (int64_t c = 0; c < w.cols; ++c) y[c] += a * row[c];
}

}  // namespace hearth
