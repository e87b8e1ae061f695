#pragma once
// Linear layers on the CPU: y[t][r] = sum_c W[r][c] * x[t][c] for n tokens at once (n = 1 is the
// decode GEMV; prefill passes many tokens). Q8_0 weights flagged int8_activations take the W8A8 path
// (AVX-512 VNNI) instead; it is batch-invariant too, but not exact. The weight is decoded to f32 a few rows
// at a time and multiplied with register tiles of rows x tokens in f32 (AVX-512 or AVX2+FMA, runtime
// dispatch); every output element is accumulated in an order that depends only on its row and the ISA — never
// on n, the tile it lands in or the thread count — so a sequence gets the same bits alone or in a batch.
#include <cstdint>

#include "core/thread_pool.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/weight_matrix.h"

namespace hearth {

// x: n rows of w.cols floats, `x_stride` apart; y: n rows of w.rows floats, `y_stride` apart.
// `pool` may be null (single-threaded).
void matmul(const WeightMatrix& w, const float* x, int64_t x_stride, int64_t n, float* y, int64_t y_stride,
            ThreadPool* pool);
// The same with an explicit ISA (tests compare levels; kAvx512 on a CPU without it is a bug).
void matmul_isa(CpuIsa isa, const WeightMatrix& w, const float* x, int64_t x_stride, int64_t n, float* y,
                int64_t y_stride, ThreadPool* pool);

// Only output rows [r0, r1) of w: y[t][r - r0]. Reads nothing outside those rows (a head's slice of
// a fused projection, without the block-alignment limits of WeightMatrix::slice_rows).
void matmul_row_range(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride,
                      int64_t n, float* y, int64_t y_stride, ThreadPool* pool);

// Plain reference: scalar decode of each row, double accumulation. Tests measure the fast paths
// against it.
void matmul_reference(const WeightMatrix& w, const float* x, int64_t x_stride, int64_t n, float* y,
                      int64_t y_stride);

// Decodes row r to cols floats (reference decoder; also used for embedding lookups).
void decode_row(const WeightMatrix& w, int64_t r, float* out);
// y[c] += a * W[r][c] for c in [0, cols): the transposed product W^T x built row by row (MLA's
// absorbed key projection). Uses the fast decoder of the current ISA.
void axpy_row(const WeightMatrix& w, int64_t r, float a, float* y, float* scratch);

namespace cpu_detail {
// Per-ISA entry points (matmul_avx2.cpp, matmul_avx512.cpp): compute output rows [r0, r1) into
// columns r - y_col0 of y.
void matmul_rows_avx2(const WeightMatrix& w, const float* x, int64_t x_stride, int64_t n, float* y,
                      int64_t y_stride, int64_t r0, int64_t r1, int64_t y_col0);
void matmul_rows_avx512(const WeightMatrix& w, const float* x, int64_t x_stride, int64_t n, float* y,
                        int64_t y_stride, int64_t r0, int64_t r1, int64_t y_col0);
void matmul_rows_scalar(const WeightMatrix& w, const float* x, int64_t x_stride, int64_t n, float* y,
                        int64_t y_stride, int64_t r0, int64_t r1, int64_t y_col0);
void decode_row_avx2(const WeightMatrix& w, int64_t r, float* out);
// W8A8 Q8_0 (AVX-512 VNNI): activations `xq` (n rows of cols bytes, q + 128) with one f32 scale per
// 32-block in `xd` (n rows of cols / 32).
void matmul_rows_w8a8_avx512(const WeightMatrix& w, const uint8_t* xq, const float* xd, int64_t n, float* y,
                             int64_t y_stride, int64_t r0, int64_t r1, int64_t y_col0);
// Quantizes n rows of x (cols a multiple of 32) for matmul_rows_w8a8_avx512: per 32-block d = amax / 127,
// q = round(x / d), stored as q + 128.
void quantize_activations_q8(const float* x, int64_t x_stride, int64_t n, int64_t cols, uint8_t* xq,
                             float* xd);
void decode_row_avx512(const WeightMatrix& w, int64_t r, float* out);
}  // namespace cpu_detail

}  // namespace hearth
