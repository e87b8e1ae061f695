#pragma once
// Reference CPU (de)quantization for the float and ggml block-quantized tensor types found in GGUF
// files. Layouts follow ggml's block structs exactly (docs/formats.md "## GGUF"); these are the
// correctness reference for the GPU kernels and the loader, not a fast path.
#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "model/dtype.h"

namespace hearth {

// True when dequantize() handles `t`: F32, F16, BF16, F64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K,
// Q4_K, Q5_K, Q6_K.
bool can_dequantize(DType t);

// Decodes n_elems values of type `t` from `src` into dst[0..n_elems). n_elems must be a multiple of
// the type's block size and src.size() must be exactly the bytes those elements occupy.
Status dequantize(DType t, std::span<const uint8_t> src, uint64_t n_elems, float* dst);

// True when quantize() handles `t`: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K.
bool can_quantize(DType t);

// Encodes src into `dst` (exactly tensor_nbytes(t, {src.size()}) bytes). Simple round-to-nearest
// blocks: valid for any reader, not tuned like llama.cpp's quantizers. src.size() must be a multiple
// of the block size; non-finite inputs are rejected.
Status quantize(DType t, std::span<const float> src, std::span<uint8_t> dst);
Result<std::vector<uint8_t>> quantize(DType t, std::span<const float> src);

}  // namespace hearth
