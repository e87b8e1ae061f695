#pragma once
// Element-wise and row-wise CPU kernels of the transformer block. dot() and axpy() (the inner loops of
// attention and RMSNorm) dispatch to AVX-512 / AVX2 versions, tested against the *_reference ones;
// the rest are plain loops the compiler vectorises, a small share of the time.
#include <cstdint>

namespace hearth {

// out[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i] over n elements (HF RMSNorm: f32 statistics).
// out may alias x.
void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out);
// gate[i] = silu(gate[i]) * up[i].
void silu_mul(float* gate, const float* up, int64_t n);
// y[i] += x[i].
void add_inplace(float* y, const float* x, int64_t n);
// y[i] += a * x[i].
void axpy(float a, const float* x, float* y, int64_t n);
// y[i] += b[i] (bias).
inline void add_bias(float* y, const float* b, int64_t n) {
  add_inplace(y, b, n);
}
// In-place softmax over n values; returns nothing; -inf entries become 0.
void softmax_inplace(float* x, int64_t n);
float dot(const float* a, const float* b, int64_t n);

float dot_reference(const float* a, const float* b, int64_t n);
void axpy_reference(float a, const float* x, float* y, int64_t n);

namespace cpu_detail {
float dot_avx2(const float* a, const float* b, int64_t n);
float dot_avx512(const float* a, const float* b, int64_t n);
void axpy_avx2(float a, const float* x, float* y, int64_t n);
void axpy_avx512(float a, const float* x, float* y, int64_t n);
}  // namespace cpu_detail

}  // namespace hearth
