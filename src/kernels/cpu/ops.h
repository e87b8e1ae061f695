#pragma once
// Element-wise and row-wise CPU kernels of the transformer block. Plain loops the compiler
// vectorises; they are a small share of the time next to the linear layers and attention.
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

}  // namespace hearth
