#pragma once
// The blocked driver shared by the per-ISA matmul files. Each file includes this header after
// defining a traits struct `V` (vector width, load, fma, masked tail load, horizontal sum) and its row
// decoder; the template then instantiates row x token register tiles for that ISA. Included only by
// matmul_avx2.cpp and matmul_avx512.cpp, each compiled for its own -m flags.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cpu/weight_matrix.h"

namespace hearth::cpu_detail {

// y[t * ys + i] = dot(w_rows[i][0..k), x[t * xs ..]) for i < NR, t < NT. The arithmetic for one (i, t)
// is the same whatever NR and NT are: that is what makes results batch-invariant.
template <class V, int NR, int NT>
inline void dot_tile(const float* const* w_rows, const float* x, int64_t xs, int64_t k, float* y,
                     int64_t ys) {
  typename V::reg acc[NR][NT];
  for (int i = 0; i < NR; ++i)
    for (int t = 0; t < NT; ++t) acc[i][t] = V::zero();
  int64_t c = 0;
  for (; c + V::kWidth <= k; c += V::kWidth) {
    typename V::reg xv[NT];
    for (int t = 0; t < NT; ++t) xv[t] = V::load(x + t * xs + c);
    for (int i = 0; i < NR; ++i) {
      const typename V::reg wv = V::load(w_rows[i] + c);
      for (int t = 0; t < NT; ++t) acc[i][t] = V::fma(wv, xv[t], acc[i][t]);
    }
  }
  if (c < k) {
    const int rem = static_cast<int>(k - c);
    typename V::reg xv[NT];
    for (int t = 0; t < NT; ++t) xv[t] = V::load_partial(x + t * xs + c, rem);
    for (int i = 0; i < NR; ++i) {
      const typename V::reg wv = V::load_partial(w_rows[i] + c, rem);
      for (int t = 0; t < NT; ++t) acc[i][t] = V::fma(wv, xv[t], acc[i][t]);
    }
  }
  for (int i = 0; i < NR; ++i)
    for (int t = 0; t < NT; ++t) y[t * ys + i] = V::hsum(acc[i][t]);
}

template <class V, int NR>
inline void dot_rows(const float* const* w_rows, const float* x, int64_t xs, int nt, int64_t k, float* y,
                     int64_t ys) {
  switch (nt) {
    case 1: dot_tile<V, NR, 1>(w_rows, x, xs, k, y, ys); break;
    case 2: dot_tile<V, NR, 2>(w_rows, x, xs, k, y, ys); break;
    case 3: dot_tile<V, NR, 3>(w_rows, x, xs, k, y, ys); break;
    case 4: dot_tile<V, NR, 4>(w_rows, x, xs, k, y, ys); break;
    case 5: dot_tile<V, NR, 5>(w_rows, x, xs, k, y, ys); break;
    default: dot_tile<V, NR, 6>(w_rows, x, xs, k, y, ys); break;
  }
}

template <class V>
inline void dot_block(const float* const* w_rows, int nr, const float* x, int64_t xs, int nt, int64_t k,
                      float* y, int64_t ys) {
  switch (nr) {
    case 1: dot_rows<V, 1>(w_rows, x, xs, nt, k, y, ys); break;
    case 2: dot_rows<V, 2>(w_rows, x, xs, nt, k, y, ys); break;
    case 3: dot_rows<V, 3>(w_rows, x, xs, nt, k, y, ys); break;
    default: dot_rows<V, 4>(w_rows, x, xs, nt, k, y, ys); break;
  }
}

// Rows [r0, r1) of y = x W^T; row r lands in column r - y_col0 of y. Rows are decoded V::kRows at a time into
// a per-thread buffer (F32 weights are read in place) and multiplied with tiles of up to V::kTokens tokens;
// tokens are processed in blocks of kTokenBlock so that the activations stay in cache while the decoded rows
// are reused.
template <class V, void (*Decode)(const WeightMatrix&, int64_t, float*)>
void matmul_rows(const WeightMatrix& w, const float* x, int64_t xs, int64_t n, float* y, int64_t ys,
                 int64_t r0, int64_t r1, int64_t y_col0) {
  constexpr int64_t kTokenBlock = 64;
  const int64_t k = w.cols;
  const bool in_place = w.dtype == DType::kF32;
  thread_local std::vector<float> buf;
  if (!in_place && buf.size() < static_cast<size_t>(V::kRows * k)) buf.resize(V::kRows * k);
  for (int64_t tb = 0; tb < n; tb += kTokenBlock) {
    const int64_t tn = std::min(kTokenBlock, n - tb);
    for (int64_t r = r0; r < r1; r += V::kRows) {
      const int nr = static_cast<int>(std::min<int64_t>(V::kRows, r1 - r));
      const float* rows[V::kRows];
      for (int i = 0; i < nr; ++i) {
        if (in_place) {
          rows[i] = reinterpret_cast<const float*>(w.row(r + i));
        } else {
          Decode(w, r + i, buf.data() + i * k);
          rows[i] = buf.data() + i * k;
        }
      }
      for (int64_t t = tb; t < tb + tn; t += V::kTokens) {
        const int nt = static_cast<int>(std::min<int64_t>(V::kTokens, tb + tn - t));
        dot_block<V>(rows, nr, x + t * xs, xs, nt, k, y + t * ys + (r - y_col0), ys);
      }
    }
  }
}

}  // namespace hearth::cpu_detail
