// Reference quantizers (float -> ggml blocks) for synthesized checkpoints and tests. Plain
// round-to-nearest with scales chosen from each group's range; they produce valid blocks that any
// ggml reader decodes, without llama.cpp's error-minimising scale search.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/checked_math.h"
#include "core/half.h"
#include "model/quant.h"

namespace hearth {
namespace {

// Scales are stored as f16: quantize with the value the reader will see.
struct HalfScale {
  uint16_t bits;
  float value;
};

HalfScale to_half(float v) {
  const uint16_t h = float_to_f16(v);
  return {h, f16_to_float(h)};
}

void store_half(uint8_t* p, uint16_t h) {
  std::memcpy(p, &h, 2);
}

int clamp_round(float v, int lo, int hi) {
  const float r = std::nearbyint(v);
  if (!(r >= static_cast<float>(lo))) return lo;  // also catches NaN
  if (r > static_cast<float>(hi)) return hi;
  return static_cast<int>(r);
}

// block_q8_0: d = absmax / 127.
void encode_q8_0(const float* x, uint8_t* b) {
  float amax = 0;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const HalfScale d = to_half(amax / 127.0f);
  store_half(b, d.bits);
  const float id = d.value != 0 ? 1.0f / d.value : 0.0f;
  for (int j = 0; j < 32; ++j) {
    b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(clamp_round(x[j] * id, -127, 127)));
  }
}

// block_q4_0: the value of largest magnitude maps to -8 exactly, d = that value / -8.
void encode_q4_0(const float* x, uint8_t* b) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  const HalfScale d = to_half(max / -8.0f);
  store_half(b, d.bits);
  const float id = d.value != 0 ? 1.0f / d.value : 0.0f;
  for (int j = 0; j < 16; ++j) {
    const int q0 = clamp_round(x[j] * id, -8, 7) + 8;
    const int q1 = clamp_round(x[j + 16] * id, -8, 7) + 8;
    b[2 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}

// block_q4_K: 8 groups of 32 with x ~= d*sc*q - dmin*m, q in 0..15, sc and m 6-bit. Each group's
// offset covers its minimum (clamped to <= 0) and its scale covers the rest of its range.
void encode_q4_k(const float* x, uint8_t* b) {
  float group_min[8], group_max[8], need_scale[8];
  float max_min = 0;
  for (int g = 0; g < 8; ++g) {
    float lo = 0, hi = -INFINITY;
    for (int l = 0; l < 32; ++l) {
      lo = std::min(lo, x[32 * g + l]);
      hi = std::max(hi, x[32 * g + l]);
    }
    group_min[g] = -lo;  // >= 0
    group_max[g] = hi;
    max_min = std::max(max_min, group_min[g]);
  }
  const HalfScale dmin = to_half(max_min / 63.0f);
  uint8_t m[8], sc[8];
  float offset[8];
  float max_scale = 0;
  for (int g = 0; g < 8; ++g) {
    m[g] = dmin.value > 0
               ? static_cast<uint8_t>(std::clamp(std::ceil(group_min[g] / dmin.value), 0.0f, 63.0f))
               : 0;
    offset[g] = dmin.value * m[g];
    need_scale[g] = std::max(0.0f, (group_max[g] + offset[g]) / 15.0f);
    max_scale = std::max(max_scale, need_scale[g]);
  }
  const HalfScale d = to_half(max_scale / 63.0f);
  for (int g = 0; g < 8; ++g) {
    sc[g] =
        d.value > 0 ? static_cast<uint8_t>(std::clamp(std::ceil(need_scale[g] / d.value), 0.0f, 63.0f)) : 0;
  }
  store_half(b, d.bits);
  store_half(b + 2, dmin.bits);
  uint8_t* s = b + 4;
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = static_cast<uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
    s[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
  }
  uint8_t q[256];
  for (int g = 0; g < 8; ++g) {
    const float step = d.value * sc[g];
    const float inv = step > 0 ? 1.0f / step : 0.0f;
    for (int l = 0; l < 32; ++l) {
      q[32 * g + l] = static_cast<uint8_t>(clamp_round((x[32 * g + l] + offset[g]) * inv, 0, 15));
    }
  }
  uint8_t* qs = b + 16;
  for (int c = 0; c < 4; ++c) {  // 64 elements per 32 bytes: group 2c in low nibbles, 2c+1 in high
    for (int l = 0; l < 32; ++l) {
      qs[32 * c + l] = static_cast<uint8_t>(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
    }
  }
}

// block_q6_K: 16 groups of 16 with x ~= d*sc*(q-32), q in 0..63, sc a signed byte. The value of
// largest magnitude in a group maps to q-32 = -32.
void encode_q6_k(const float* x, uint8_t* b) {
  float group_scale[16];
  float max_abs_scale = 0;
  for (int g = 0; g < 16; ++g) {
    float amax = 0, max = 0;
    for (int l = 0; l < 16; ++l) {
      if (std::fabs(x[16 * g + l]) > amax) {
        amax = std::fabs(x[16 * g + l]);
        max = x[16 * g + l];
      }
    }
    group_scale[g] = max / -32.0f;
    max_abs_scale = std::max(max_abs_scale, std::fabs(group_scale[g]));
  }
  const HalfScale d = to_half(max_abs_scale / 127.0f);
  auto* scales = reinterpret_cast<int8_t*>(b + 192);
  uint8_t q[256];
  for (int g = 0; g < 16; ++g) {
    const int sc = d.value > 0 ? clamp_round(group_scale[g] / d.value, -127, 127) : 0;
    scales[g] = static_cast<int8_t>(sc);
    const float step = d.value * static_cast<float>(sc);
    const float inv = step != 0 ? 1.0f / step : 0.0f;
    for (int l = 0; l < 16; ++l) {
      q[16 * g + l] = static_cast<uint8_t>(clamp_round(x[16 * g + l] * inv, -32, 31) + 32);
    }
  }
  store_half(b + 208, d.bits);
  uint8_t* ql = b;
  uint8_t* qh = b + 128;
  for (int half = 0; half < 2; ++half) {
    const uint8_t* qq = q + 128 * half;
    for (int l = 0; l < 32; ++l) {
      const uint8_t q1 = qq[l], q2 = qq[l + 32], q3 = qq[l + 64], q4 = qq[l + 96];
      ql[l] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
      ql[l + 32] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
      qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
    }
    ql += 64;
    qh += 32;
  }
}

using BlockEncoder = void (*)(const float*, uint8_t*);

BlockEncoder block_encoder(DType t) {
  switch (t) {
    case DType::kQ8_0: return encode_q8_0;
    case DType::kQ4_0: return encode_q4_0;
    case DType::kQ4_K: return encode_q4_k;
    case DType::kQ6_K: return encode_q6_k;
    default: return nullptr;
  }
}

// Largest |x| a block type can represent through its f16 scales (scale <= 65504).
float max_magnitude(DType t) {
  switch (t) {
    case DType::kQ8_0: return 65504.0f * 127.0f;
    case DType::kQ4_0: return 65504.0f * 8.0f;
    case DType::kQ4_K: return 65504.0f * 15.0f;  // conservative: one 6-bit step of the scale
    case DType::kQ6_K: return 65504.0f * 32.0f;
    case DType::kF16: return 65504.0f;
    default: return INFINITY;
  }
}

}  // namespace

bool can_quantize(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16 || block_encoder(t) != nullptr;
}

Status quantize(DType t, std::span<const float> src, std::span<uint8_t> dst) {
  if (!can_quantize(t)) {
    return make_error(ErrorCode::kUnsupported, "quantize: type {} is not supported", dtype_name(t));
  }
  const DTypeInfo& info = dtype_info(t);
  if (src.size() % info.block_elems != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "quantize {}: {} elements is not a multiple of the block size {}", info.name,
                      src.size(), info.block_elems);
  }
  const uint64_t n_blocks = src.size() / info.block_elems;
  auto need = checked_mul(n_blocks, info.block_bytes);
  if (!need || *need != dst.size()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "quantize {}: {} elements need {} bytes, the output has {}", info.name, src.size(),
                      need.value_or(0), dst.size());
  }
  const float limit = max_magnitude(t);
  for (size_t i = 0; i < src.size(); ++i) {
    if (!std::isfinite(src[i]) || std::fabs(src[i]) > limit) {
      return make_error(ErrorCode::kOutOfRange, "quantize {}: element {} ({}) is not finite or exceeds {}",
                        info.name, i, src[i], limit);
    }
  }
  uint8_t* out = dst.data();
  switch (t) {
    case DType::kF32:
      if (!src.empty()) std::memcpy(out, src.data(), src.size() * 4);
      return Status::ok();
    case DType::kF16:
    case DType::kBF16:
      for (size_t i = 0; i < src.size(); ++i) {
        const uint16_t h = t == DType::kF16 ? float_to_f16(src[i]) : float_to_bf16(src[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      return Status::ok();
    default: break;
  }
  const BlockEncoder encode = block_encoder(t);
  for (uint64_t b = 0; b < n_blocks; ++b) {
    encode(src.data() + b * info.block_elems, out + b * info.block_bytes);
  }
  return Status::ok();
}

Result<std::vector<uint8_t>> quantize(DType t, std::span<const float> src) {
  const DTypeInfo& info = dtype_info(t);
  if (src.size() % info.block_elems != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "quantize {}: {} elements is not a multiple of the block size {}", info.name,
                      src.size(), info.block_elems);
  }
  std::vector<uint8_t> out(src.size() / info.block_elems * info.block_bytes);
  HEARTH_RETURN_IF_ERROR(quantize(t, src, out));
  return out;
}

}  // namespace hearth
