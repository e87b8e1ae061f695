#pragma once
// DeepSeek-V3's native FP8 weights (Hugging Face "fine-grained FP8" layout): a 2-D F8_E4M3 weight
// `<prefix>.weight` [rows, cols] with a companion F32 `<prefix>.weight_scale_inv` of shape
// [ceil(rows / block_rows), ceil(cols / block_cols)]; element (r, c) is fp8(w[r, c]) *
// scale_inv[r / block_rows, c / block_cols]. The block comes from config.json's
// quantization_config.weight_block_size (default [128, 128]); edge blocks may be ragged.
// The conversions here are CPU references (tests, synth, load-time fallback); GPUs do their own.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "model/tensor.h"

namespace hearth {

struct Fp8BlockSize {
  uint32_t rows = 128;
  uint32_t cols = 128;
};

inline constexpr std::string_view kFp8ScaleInvSuffix = "_scale_inv";
inline constexpr float kFp8E4M3Max = 448.0f;

// "model.layers.0.mlp.up_proj.weight" -> "model.layers.0.mlp.up_proj.weight_scale_inv".
std::string fp8_scale_inv_name(std::string_view weight_name);

// [ceil(rows / block.rows), ceil(cols / block.cols)]; block dims must be non-zero.
std::array<uint64_t, 2> fp8_scale_inv_shape(uint64_t rows, uint64_t cols, Fp8BlockSize block);

// Checks a weight / scale_inv pair: weight F8_E4M3 2-D, scale_inv F32 with exactly the shape above,
// block dims non-zero, data spans of the right size. Errors name both tensors.
Status validate_fp8_block_pair(const TensorView& weight, const TensorView& scale_inv, uint32_t block_rows,
                               uint32_t block_cols);

// Reference dequantization to row-major float / bf16 bits (rows x cols elements in `out`).
// Validates the pair first. Reads are alignment-safe (mapped data need not be 4-aligned).
Status dequantize_fp8_block(const TensorView& weight, const TensorView& scale_inv, Fp8BlockSize block,
                            float* out);
Status dequantize_fp8_block_to_bf16(const TensorView& weight, const TensorView& scale_inv, Fp8BlockSize block,
                                    uint16_t* out);

// Per-block quantization as DeepSeek's weight_quant: s = amax(|block|) / 448, w = e4m3(x / s) and
// scale_inv = s. An all-zero block gets s = 1. `in` is row-major rows x cols; `w` receives rows x cols
// bytes, `scale_inv` the fp8_scale_inv_shape() floats. Non-finite input is an error.
Status quantize_fp8_block(const float* in, uint64_t rows, uint64_t cols, Fp8BlockSize block, uint8_t* w,
                          float* scale_inv);

// float -> E4M3 (fn) with round-to-nearest-even and saturation to +-448, NaN -> 0x7F. Bit-exact
// with float_to_fp8_e4m3 in core/half.h, but O(1) instead of a search over the codes.
uint8_t fp8_e4m3_from_float(float f);

}  // namespace hearth
