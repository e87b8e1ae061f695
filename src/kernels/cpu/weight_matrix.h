#pragma once
// WeightMatrix: a read-only view of a 2-D linear weight [rows = out features, cols = in features] in
// any storage format the CPU kernels read, usually pointing into a memory-mapped checkpoint (no copy).
// Rows are `row_bytes` apart. Formats: F32, F16, BF16 (any cols); F8_E4M3 with DeepSeek-V3 block
// scales (`block_scale`: f32 [ceil(rows / block_rows)][scale_cols], element (r, c) is
// fp8(w[r, c]) * block_scale[r / block_rows][c / block_cols]); and every ggml block type that
// model/quant.h decodes (Q8_0, Q4_0, Q4_K fast; the others through the reference decoder), with cols a
// multiple of the block. Data need not be aligned.
#include <cstdint>
#include <vector>

#include "model/dtype.h"

namespace hearth {

struct WeightMatrix {
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  const uint8_t* data = nullptr;
  uint64_t row_bytes = 0;
  // F8_E4M3 only.
  const float* block_scale = nullptr;
  int64_t block_rows = 128;
  int64_t block_cols = 128;
  int64_t scale_cols = 0;
  // Q8_0 only: multiply with activations quantized to int8 per 32-block (llama.cpp's W8A8 scheme,
  // integer dot products on AVX-512 VNNI). Faster decode, not exact: off unless the caller asks.
  bool int8_activations = false;

  const uint8_t* row(int64_t r) const { return data + static_cast<uint64_t>(r) * row_bytes; }
  // Rows [r0, r0 + n) as a matrix of their own (an expert's slice of a stacked tensor, a head's slice).
  // For F8_E4M3, r0 and n must be multiples of block_rows unless n is the whole remaining tail.
  WeightMatrix slice_rows(int64_t r0, int64_t n) const;
  uint64_t bytes() const { return static_cast<uint64_t>(rows) * row_bytes; }
};

// Bytes of one row of `cols` elements of `dtype` (0 when cols is not a multiple of the block).
uint64_t weight_row_bytes(DType dtype, int64_t cols);

// True when the CPU kernels can read a matrix of this dtype.
bool cpu_can_read(DType dtype);

}  // namespace hearth
