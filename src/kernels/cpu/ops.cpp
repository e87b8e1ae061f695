#include "kernels/cpu/ops.h"

#include "kernels/cpu/cpu_features.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace hearth {

void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  const float ss = dot(x, x, n);
  const float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = weight[i] * (x[i] * inv);
}

void silu_mul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void add_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void axpy_reference(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void axpy(float a, const float* x, float* y, int64_t n) {
  static const auto fn = cpu_isa() == CpuIsa::kAvx512 ? &cpu_detail::axpy_avx512
                         : cpu_isa() == CpuIsa::kAvx2 ? &cpu_detail::axpy_avx2
                                                      : &axpy_reference;
  fn(a, x, y, n);
}

void softmax_inplace(float* x, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  if (!std::isfinite(mx)) {
    std::fill(x, x + n, 0.0f);
    return;
  }
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

float dot_reference(const float* a, const float* b, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

float dot(const float* a, const float* b, int64_t n) {
  static const auto fn = cpu_isa() == CpuIsa::kAvx512 ? &cpu_detail::dot_avx512
                         : cpu_isa() == CpuIsa::kAvx2 ? &cpu_detail::dot_avx2
                                                      : &dot_reference;
  return fn(a, b, n);
}

}  // namespace hearth
