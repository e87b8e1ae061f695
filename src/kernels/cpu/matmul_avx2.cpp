// AVX2 + FMA + F16C linear layers: vector decoders for F16/BF16/Q8_0 (the other formats use the
// reference decoder) and 4 x 2 tiles (16 ymm registers).
#include <immintrin.h>

#include <cstring>

#include "core/half.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_tile.h"

namespace hearth::cpu_detail {
namespace {

struct V256 {
  using reg = __m256;
  static constexpr int kWidth = 8;
  static constexpr int kRows = 4;
  static constexpr int kTokens = 2;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static reg load_partial(const float* p, int n) {
    alignas(32) static const int32_t kMask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_maskload_ps(p, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMask + 8 - n)));
  }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static float hsum(reg a) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 s2 = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
  }
};

inline float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_float(h);
}

}  // namespace

void decode_row_avx2(const WeightMatrix& w, int64_t r, float* out) {
  const uint8_t* p = w.row(r);
  const int64_t k = w.cols;
  switch (w.dtype) {
    case DType::kBF16: {
      int64_t c = 0;
      for (; c + 8 <= k; c += 8) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * c));
        _mm256_storeu_ps(out + c, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16)));
      }
      for (; c < k; ++c) {
        uint16_t h;
        std::memcpy(&h, p + 2 * c, 2);
        out[c] = bf16_to_float(h);
      }
      return;
    }
    case DType::kF16: {
      int64_t c = 0;
      for (; c + 8 <= k; c += 8) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * c));
        _mm256_storeu_ps(out + c, _mm256_cvtph_ps(v));
      }
      for (; c < k; ++c) out[c] = f16_at(p + 2 * c);
      return;
    }
    case DType::kQ8_0: {
      for (int64_t b = 0; b < k / 32; ++b) {
        const uint8_t* blk = p + b * 34;
        const __m256 d = _mm256_set1_ps(f16_at(blk));
        for (int h = 0; h < 4; ++h) {
          const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 2 + 8 * h));
          _mm256_storeu_ps(out + b * 32 + 8 * h,
                           _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d));
        }
      }
      return;
    }
    default: break;
  }
  decode_row(w, r, out);
}

void matmul_rows_avx2(const WeightMatrix& w, const float* x, int64_t x_stride, int64_t n, float* y,
                      int64_t y_stride, int64_t r0, int64_t r1, int64_t y_col0) {
  matmul_rows<V256, &decode_row_avx2>(w, x, x_stride, n, y, y_stride, r0, r1, y_col0);
}

}  // namespace hearth::cpu_detail
