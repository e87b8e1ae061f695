// AVX-512 linear layers: vector row decoders for F16/BF16/F8_E4M3/Q8_0/Q4_0/Q4_K and 4 x 4 tiles.
// Decoders prefetch 2 KiB ahead: decode is a stream through the weights, and on the 2-core machine
// explicit prefetch took Q8_0 decode of the 1.5B model from ~40% to ~85% of the read bandwidth.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/half.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_tile.h"

namespace hearth::cpu_detail {
namespace {

struct V512 {
  using reg = __m512;
  static constexpr int kWidth = 16;
  static constexpr int kRows = 4;
  static constexpr int kTokens = 6;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static reg load_partial(const float* p, int n) {
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p);
  }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static float hsum(reg a) { return _mm512_reduce_add_ps(a); }
};

inline float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);  // F16C: exact, like f16_to_float
}

// E4M3 bytes -> f32: the 7 magnitude bits placed at f32's exponent/mantissa boundary and rescaled by
// 2^(127 - 7) (exact, subnormals included); the sign bit moved to bit 31; the NaN codes made NaN.
inline __m512 fp8x16_to_f32(__m128i bytes) {
  const __m512i b = _mm512_cvtepu8_epi32(bytes);
  const __m512i mag = _mm512_slli_epi32(_mm512_and_si512(b, _mm512_set1_epi32(0x7f)), 20);
  const __m512 f = _mm512_mul_ps(_mm512_castsi512_ps(mag), _mm512_set1_ps(0x1p120f));
  const __m512i sign = _mm512_slli_epi32(_mm512_and_si512(b, _mm512_set1_epi32(0x80)), 24);
  const __m512 v = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(f), sign));
  // 0x7F / 0xFF are NaN in E4M3 (fn), as in the reference decoder.
  const __mmask16 nan =
      _mm512_cmpeq_epi32_mask(_mm512_and_si512(b, _mm512_set1_epi32(0x7f)), _mm512_set1_epi32(0x7f));
  return _mm512_mask_mov_ps(v, nan, _mm512_set1_ps(std::numeric_limits<float>::quiet_NaN()));
}

void k4_scale_min(int j, const uint8_t* s, int* sc, int* mn) {
  if (j < 4) {
    *sc = s[j] & 63;
    *mn = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

}  // namespace

void decode_row_avx512(const WeightMatrix& w, int64_t r, float* out) {
  const uint8_t* p = w.row(r);
  const int64_t k = w.cols;
  switch (w.dtype) {
    case DType::kBF16: {
      int64_t c = 0;
      for (; c + 16 <= k; c += 16) {
        _mm_prefetch(reinterpret_cast<const char*>(p + 2 * c + 2048), _MM_HINT_T0);
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2 * c));
        _mm512_storeu_ps(out + c, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16)));
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
      for (; c + 16 <= k; c += 16) {
        _mm_prefetch(reinterpret_cast<const char*>(p + 2 * c + 2048), _MM_HINT_T0);
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2 * c));
        _mm512_storeu_ps(out + c, _mm512_cvtph_ps(v));
      }
      for (; c < k; ++c) out[c] = f16_at(p + 2 * c);
      return;
    }
    case DType::kF8_E4M3: {
      if (w.block_cols % 16 != 0) break;
      const float* srow = w.block_scale + (r / w.block_rows) * w.scale_cols;
      int64_t c = 0;
      for (; c + 16 <= k; c += 16) {
        _mm_prefetch(reinterpret_cast<const char*>(p + c + 2048), _MM_HINT_T0);
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + c));
        _mm512_storeu_ps(out + c, _mm512_mul_ps(fp8x16_to_f32(v), _mm512_set1_ps(srow[c / w.block_cols])));
      }
      for (; c < k; ++c) out[c] = fp8_e4m3_to_float(p[c]) * srow[c / w.block_cols];
      return;
    }
    case DType::kQ8_0: {
      // block_q8_0 {f16 d; i8 qs[32]}
      for (int64_t b = 0; b < k / 32; ++b) {
        const uint8_t* blk = p + b * 34;
        _mm_prefetch(reinterpret_cast<const char*>(blk + 2048), _MM_HINT_T0);
        const __m512 d = _mm512_set1_ps(f16_at(blk));
        for (int h = 0; h < 2; ++h) {
          const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2 + 16 * h));
          _mm512_storeu_ps(out + b * 32 + 16 * h,
                           _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), d));
        }
      }
      return;
    }
    case DType::kQ4_0: {
      // block_q4_0 {f16 d; u8 qs[16]}: low nibbles are elements 0..15, high nibbles 16..31.
      const __m512i eight = _mm512_set1_epi32(8);
      for (int64_t b = 0; b < k / 32; ++b) {
        const uint8_t* blk = p + b * 18;
        _mm_prefetch(reinterpret_cast<const char*>(blk + 2048), _MM_HINT_T0);
        const __m512 d = _mm512_set1_ps(f16_at(blk));
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
        const __m512i q32 = _mm512_cvtepu8_epi32(q);
        const __m512i lo = _mm512_sub_epi32(_mm512_and_si512(q32, _mm512_set1_epi32(0xF)), eight);
        const __m512i hi = _mm512_sub_epi32(_mm512_srli_epi32(q32, 4), eight);
        _mm512_storeu_ps(out + b * 32, _mm512_mul_ps(_mm512_cvtepi32_ps(lo), d));
        _mm512_storeu_ps(out + b * 32 + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(hi), d));
      }
      return;
    }
    case DType::kQ4_K: {
      // block_q4_K {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]} (144 bytes, 256 elements).
      for (int64_t b = 0; b < k / 256; ++b) {
        const uint8_t* blk = p + b * 144;
        _mm_prefetch(reinterpret_cast<const char*>(blk + 2048), _MM_HINT_T0);
        const float d = f16_at(blk), dmin = f16_at(blk + 2);
        const uint8_t* scales = blk + 4;
        const uint8_t* q = blk + 16;
        float* y = out + b * 256;
        for (int j = 0; j < 8; j += 2) {
          int sc = 0, mn = 0;
          k4_scale_min(j, scales, &sc, &mn);
          const __m512 d1 = _mm512_set1_ps(d * static_cast<float>(sc)),
                       m1 = _mm512_set1_ps(dmin * static_cast<float>(mn));
          k4_scale_min(j + 1, scales, &sc, &mn);
          const __m512 d2 = _mm512_set1_ps(d * static_cast<float>(sc)),
                       m2 = _mm512_set1_ps(dmin * static_cast<float>(mn));
          for (int h = 0; h < 2; ++h) {
            const __m512i q32 =
                _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16 * h)));
            const __m512 lo = _mm512_cvtepi32_ps(_mm512_and_si512(q32, _mm512_set1_epi32(0xF)));
            const __m512 hi = _mm512_cvtepi32_ps(_mm512_srli_epi32(q32, 4));
            _mm512_storeu_ps(y + 16 * h, _mm512_sub_ps(_mm512_mul_ps(d1, lo), m1));
            _mm512_storeu_ps(y + 32 + 16 * h, _mm512_sub_ps(_mm512_mul_ps(d2, hi), m2));
          }
          y += 64;
          q += 32;
        }
      }
      return;
    }
    default: break;
  }
  decode_row(w, r, out);
}

namespace {
// The 32 weights of a row from column c (a multiple of 32) as two vectors, decoded exactly as
// decode_row_avx512 decodes them.
struct Q8Chunk {
  static void at2(const uint8_t* row, int64_t c, __m512* w0, __m512* w1) {
    const uint8_t* blk = row + (c / 32) * 34;
    _mm_prefetch(reinterpret_cast<const char*>(blk + 2048), _MM_HINT_T0);
    const __m512 d = _mm512_set1_ps(f16_at(blk));
    *w0 = _mm512_mul_ps(
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2)))),
        d);
    *w1 = _mm512_mul_ps(
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 18)))),
        d);
  }
};
struct Bf16Chunk {
  static void at2(const uint8_t* row, int64_t c, __m512* w0, __m512* w1) {
    _mm_prefetch(reinterpret_cast<const char*>(row + 2 * c + 2048), _MM_HINT_T0);
    const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * c));
    const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * c + 32));
    *w0 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v0), 16));
    *w1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v1), 16));
  }
};

// Decode (at most 4 tokens): rows are decoded in registers and multiplied at once, skipping the f32
// row buffer. Per (row, token) the arithmetic is exactly that of the buffered path (same products, the
// same 16-lane chunks in the same order, one accumulator, the same final sum), so a token's result
// does not depend on which path its batch size picked. Needs cols % 32 == 0.
template <class Chunk, int NT>
void rows_fused(const WeightMatrix& w, const float* x, int64_t xs, float* y, int64_t ys, int64_t r0,
                int64_t r1, int64_t y_col0) {
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) {
    __m512 acc[4][NT];
    for (auto& row : acc)
      for (auto& a : row) a = _mm512_setzero_ps();
    const uint8_t* rows[4] = {w.row(r), w.row(r + 1), w.row(r + 2), w.row(r + 3)};
    for (int64_t c = 0; c < w.cols; c += 32) {
      __m512 x0[NT], x1[NT];
      for (int t = 0; t < NT; ++t) {
        x0[t] = _mm512_loadu_ps(x + t * xs + c);
        x1[t] = _mm512_loadu_ps(x + t * xs + c + 16);
      }
      for (int i = 0; i < 4; ++i) {
        __m512 w0, w1;
        Chunk::at2(rows[i], c, &w0, &w1);
        for (int t = 0; t < NT; ++t) {
          acc[i][t] = _mm512_fmadd_ps(w0, x0[t], acc[i][t]);
          acc[i][t] = _mm512_fmadd_ps(w1, x1[t], acc[i][t]);
        }
      }
    }
    for (int i = 0; i < 4; ++i)
      for (int t = 0; t < NT; ++t) y[t * ys + (r + i - y_col0)] = _mm512_reduce_add_ps(acc[i][t]);
  }
  if (r < r1) matmul_rows<V512, &decode_row_avx512>(w, x, xs, NT, y, ys, r, r1, y_col0);
}

template <class Chunk>
void fused_dispatch(const WeightMatrix& w, const float* x, int64_t xs, int64_t n, float* y, int64_t ys,
                    int64_t r0, int64_t r1, int64_t y_col0) {
  switch (n) {
    case 1: return rows_fused<Chunk, 1>(w, x, xs, y, ys, r0, r1, y_col0);
    case 2: return rows_fused<Chunk, 2>(w, x, xs, y, ys, r0, r1, y_col0);
    case 3: return rows_fused<Chunk, 3>(w, x, xs, y, ys, r0, r1, y_col0);
    default: return rows_fused<Chunk, 4>(w, x, xs, y, ys, r0, r1, y_col0);
  }
}
}  // namespace

namespace {
// Rows [r, r + NR) x tokens [t0, t0 + nt) of the W8A8 product (see matmul_rows_w8a8_avx512). Every
// (row, token) accumulator sees the same operations in the same order whatever NR and nt are.
template <int NR>
void w8a8_tile(const WeightMatrix& w, const uint8_t* xq, const float* xd, int64_t t0, int nt, float* y,
               int64_t ys, int64_t r, int64_t y_col0) {
  const int64_t cols = w.cols, blocks = cols / 32;
  const __m512i k128 = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[NR][4];
  for (auto& row : acc)
    for (auto& a : row) a = _mm512_setzero_ps();
  for (int64_t b = 0; b < blocks; b += 2) {
    const bool pair = b + 1 < blocks;
    __m512i wv[NR], corr[NR];
    __m512 dw[NR];
    for (int i = 0; i < NR; ++i) {
      const uint8_t* ba = w.row(r + i) + b * 34;
      _mm_prefetch(reinterpret_cast<const char*>(ba + 2048), _MM_HINT_T0);
      const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ba + 2));
      wv[i] = pair ? _mm512_inserti64x4(_mm512_castsi256_si512(lo),
                                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ba + 36)), 1)
                   : _mm512_zextsi256_si512(lo);
      corr[i] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), k128, wv[i]);
      dw[i] = _mm512_mask_blend_ps(static_cast<__mmask16>(0xFF00), _mm512_set1_ps(f16_at(ba)),
                                   _mm512_set1_ps(pair ? f16_at(ba + 34) : 0.0f));
    }
    for (int t = 0; t < nt; ++t) {
      const uint8_t* xt = xq + (t0 + t) * cols + b * 32;
      const float* dt = xd + (t0 + t) * blocks + b;
      const __m256i xlo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xt));
      const __m512i xv =
          pair ? _mm512_inserti64x4(_mm512_castsi256_si512(xlo),
                                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xt + 32)), 1)
               : _mm512_zextsi256_si512(xlo);
      const __m512 dx = _mm512_mask_blend_ps(static_cast<__mmask16>(0xFF00), _mm512_set1_ps(dt[0]),
                                             _mm512_set1_ps(pair ? dt[1] : 0.0f));
      for (int i = 0; i < NR; ++i) {
        const __m512i dp = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), xv, wv[i]), corr[i]);
        acc[i][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dp), _mm512_mul_ps(dw[i], dx), acc[i][t]);
      }
    }
  }
  for (int i = 0; i < NR; ++i)
    for (int t = 0; t < nt; ++t) y[(t0 + t) * ys + (r + i - y_col0)] = _mm512_reduce_add_ps(acc[i][t]);
}
}  // namespace

void matmul_rows_w8a8_avx512(const WeightMatrix& w, const uint8_t* xq, const float* xd, int64_t n, float* y,
                             int64_t ys, int64_t r0, int64_t r1, int64_t y_col0) {
  // Integer dot products with vpdpbusd (u8 x s8): activations are stored as q + 128 (u8), so each
  // 4-byte lane computes sum((q + 128) * w) and 128 * sum(w) (the same instruction on a vector of
  // 128s) is subtracted. Two Q8_0 blocks (64 weights) per step: lanes 0-7 belong to the first block,
  // 8-15 to the second, each scaled by its weight scale x activation scale. Rows go in pairs, outer,
  // so that a pair's weights stay in L1 while every token tile passes over them.
  int64_t r = r0;
  // Decode (one token tile) goes row by row: measured faster than pairs there (13.2 -> 15 tok/s on the
  // 1.5B shape); prefill shares each token tile's activations between two rows.
  if (n > 4)
    for (; r + 2 <= r1; r += 2)
      for (int64_t t0 = 0; t0 < n; t0 += 4)
        w8a8_tile<2>(w, xq, xd, t0, static_cast<int>(std::min<int64_t>(4, n - t0)), y, ys, r, y_col0);
  for (; r < r1; ++r)
    for (int64_t t0 = 0; t0 < n; t0 += 4)
      w8a8_tile<1>(w, xq, xd, t0, static_cast<int>(std::min<int64_t>(4, n - t0)), y, ys, r, y_col0);
}

void matmul_rows_avx512(const WeightMatrix& w, const float* x, int64_t x_stride, int64_t n, float* y,
                        int64_t y_stride, int64_t r0, int64_t r1, int64_t y_col0) {
  if (n <= 4 && w.cols % 32 == 0) {
    if (w.dtype == DType::kQ8_0)
      return fused_dispatch<Q8Chunk>(w, x, x_stride, n, y, y_stride, r0, r1, y_col0);
    if (w.dtype == DType::kBF16)
      return fused_dispatch<Bf16Chunk>(w, x, x_stride, n, y, y_stride, r0, r1, y_col0);
  }
  matmul_rows<V512, &decode_row_avx512>(w, x, x_stride, n, y, y_stride, r0, r1, y_col0);
}

}  // namespace hearth::cpu_detail
