#include "model/fp8_block.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <span>
#include <vector>

#include <fmt/ranges.h>

#include "core/checked_math.h"
#include "core/half.h"

namespace hearth {
namespace {

uint64_t ceil_div(uint64_t a, uint64_t b) {
  return a / b + (a % b != 0 ? 1 : 0);
}

// fp8 code -> float, all 256 codes.
const std::array<float, 256>& fp8_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) t[static_cast<size_t>(i)] = fp8_e4m3_to_float(static_cast<uint8_t>(i));
    return t;
  }();
  return table;
}

template <typename Store>
Status dequantize(const TensorView& weight, const TensorView& scale_inv, Fp8BlockSize block, Store store) {
  HEARTH_RETURN_IF_ERROR(validate_fp8_block_pair(weight, scale_inv, block.rows, block.cols));
  const uint64_t rows = weight.shape[0], cols = weight.shape[1];
  const uint64_t scale_cols = scale_inv.shape[1];
  const auto& table = fp8_table();
  std::vector<float> scales(static_cast<size_t>(scale_cols));
  for (uint64_t r = 0; r < rows; ++r) {
    if (r % block.rows == 0) {  // one row of block scales serves block.rows weight rows
      std::memcpy(scales.data(), scale_inv.data.data() + (r / block.rows) * scale_cols * sizeof(float),
                  scales.size() * sizeof(float));
    }
    const uint8_t* w = weight.data.data() + r * cols;
    for (uint64_t c = 0; c < cols; ++c) store(r * cols + c, table[w[c]] * scales[c / block.cols]);
  }
  return Status::ok();
}

}  // namespace

std::string fp8_scale_inv_name(std::string_view weight_name) {
  std::string name(weight_name);
  name += kFp8ScaleInvSuffix;
  return name;
}

std::array<uint64_t, 2> fp8_scale_inv_shape(uint64_t rows, uint64_t cols, Fp8BlockSize block) {
  return {ceil_div(rows, block.rows), ceil_div(cols, block.cols)};
}

Status validate_fp8_block_pair(const TensorView& weight, const TensorView& scale_inv, uint32_t block_rows,
                               uint32_t block_cols) {
  auto fail = [&](const std::string& why) {
    return make_error(ErrorCode::kCorrupt, "{}: fp8 weight '{}' with scale '{}': {}", weight.file,
                      weight.name, scale_inv.name, why);
  };
  if (block_rows == 0 || block_cols == 0) {
    return fail(fmt::format("block size [{}, {}] must be positive", block_rows, block_cols));
  }
  if (weight.dtype != DType::kF8_E4M3) {
    return fail(fmt::format("weight dtype is {}, expected F8_E4M3", dtype_name(weight.dtype)));
  }
  if (scale_inv.dtype != DType::kF32) {
    return fail(fmt::format("scale dtype is {}, expected F32", dtype_name(scale_inv.dtype)));
  }
  if (weight.shape.size() != 2) {
    return fail(fmt::format("weight shape [{}] is not 2-D", fmt::join(weight.shape, ", ")));
  }
  const auto expected = fp8_scale_inv_shape(weight.shape[0], weight.shape[1], {block_rows, block_cols});
  if (scale_inv.shape.size() != 2 || scale_inv.shape[0] != expected[0] || scale_inv.shape[1] != expected[1]) {
    return fail(fmt::format("scale shape [{}] does not match [{}, {}] (weight [{}, {}] in [{}, {}] blocks)",
                            fmt::join(scale_inv.shape, ", "), expected[0], expected[1], weight.shape[0],
                            weight.shape[1], block_rows, block_cols));
  }
  auto weight_bytes = checked_mul(weight.shape[0], weight.shape[1]);
  auto scale_bytes = checked_mul(expected[0] * expected[1], sizeof(float));  // expected[] <= weight dims
  if (!weight_bytes || weight.data.size() != *weight_bytes) {
    return fail(fmt::format("weight holds {} bytes, its shape needs {}", weight.data.size(),
                            weight_bytes ? fmt::to_string(*weight_bytes) : std::string("more than 2^64")));
  }
  if (!scale_bytes || scale_inv.data.size() != *scale_bytes) {
    return fail(fmt::format("scale holds {} bytes, its shape needs {}", scale_inv.data.size(),
                            scale_bytes ? fmt::to_string(*scale_bytes) : std::string("more than 2^64")));
  }
  return Status::ok();
}

Status dequantize_fp8_block(const TensorView& weight, const TensorView& scale_inv, Fp8BlockSize block,
                            float* out) {
  return dequantize(weight, scale_inv, block, [out](uint64_t i, float v) { out[i] = v; });
}

Status dequantize_fp8_block_to_bf16(const TensorView& weight, const TensorView& scale_inv, Fp8BlockSize block,
                                    uint16_t* out) {
  return dequantize(weight, scale_inv, block, [out](uint64_t i, float v) { out[i] = float_to_bf16(v); });
}

Status quantize_fp8_block(const float* in, uint64_t rows, uint64_t cols, Fp8BlockSize block, uint8_t* w,
                          float* scale_inv) {
  if (block.rows == 0 || block.cols == 0) {
    return make_error(ErrorCode::kInvalidArgument, "quantize_fp8_block: block size [{}, {}] must be positive",
                      block.rows, block.cols);
  }
  if (!checked_mul(rows, cols)) {
    return make_error(ErrorCode::kInvalidArgument, "quantize_fp8_block: [{}, {}] overflows", rows, cols);
  }
  const auto [scale_rows, scale_cols] = fp8_scale_inv_shape(rows, cols, block);
  for (uint64_t br = 0; br < scale_rows; ++br) {
    const uint64_t r0 = br * block.rows, r1 = std::min(rows, r0 + block.rows);
    for (uint64_t bc = 0; bc < scale_cols; ++bc) {
      const uint64_t c0 = bc * block.cols, c1 = std::min(cols, c0 + block.cols);
      float amax = 0.0f;
      for (uint64_t r = r0; r < r1; ++r) {
        for (uint64_t c = c0; c < c1; ++c) {
          const float x = in[r * cols + c];
          if (!std::isfinite(x)) {
            return make_error(ErrorCode::kInvalidArgument, "quantize_fp8_block: element ({}, {}) is {}", r, c,
                              x);
          }
          amax = std::max(amax, std::fabs(x));
        }
      }
      float s = amax > 0.0f ? amax / kFp8E4M3Max : 1.0f;
      if (s == 0.0f) s = std::numeric_limits<float>::denorm_min();  // amax so small that amax/448 underflows
      scale_inv[br * scale_cols + bc] = s;
      for (uint64_t r = r0; r < r1; ++r) {
        for (uint64_t c = c0; c < c1; ++c) w[r * cols + c] = fp8_e4m3_from_float(in[r * cols + c] / s);
      }
    }
  }
  return Status::ok();
}

uint8_t fp8_e4m3_from_float(float f) {
  if (std::isnan(f)) return 0x7F;
  const uint32_t bits = float_to_bits(f);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const uint32_t a = bits & 0x7FFFFFFFu;
  const float af = bits_to_float(a);
  if (af >= kFp8E4M3Max) return sign | 0x7E;
  if (af < 0.015625f) {  // below 2^-6, the smallest normal: subnormal steps of 2^-9
    // af * 512 is exact; rint rounds half to even under the default rounding mode. 8 encodes 2^-6.
    return sign | static_cast<uint8_t>(std::rint(af * 512.0f));
  }
  // Normal: keep the exponent and the top 3 mantissa bits, round the 20 dropped bits to nearest even.
  // A carry out of the mantissa bumps the exponent, which is the right encoding.
  uint32_t v = a >> 20;
  const uint32_t rest = a & 0xFFFFFu;
  if (rest > 0x80000u || (rest == 0x80000u && (v & 1u))) ++v;
  return sign | static_cast<uint8_t>(v - (120u << 3));  // float bias 127 -> e4m3 bias 7
}

}  // namespace hearth
