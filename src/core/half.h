#pragma once
// Scalar conversions between float and the 16/8-bit float formats found in checkpoints.
#include <cmath>
#include <cstdint>
#include <cstring>

namespace hearth {

inline float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float bf16_to_float(uint16_t h) {
  return bits_to_float(static_cast<uint32_t>(h) << 16);
}

// Round-to-nearest-even, NaN preserved (as PyTorch does).
inline uint16_t float_to_bf16(float f) {
  uint32_t u = float_to_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float f16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t man = h & 0x3FFu;
  if (exp == 0) {
    if (man == 0) return bits_to_float(sign);
    // subnormal: man * 2^-24
    float v = std::ldexp(static_cast<float>(man), -24);
    return sign ? -v : v;
  }
  if (exp == 0x1F) return bits_to_float(sign | 0x7F800000u | (man << 13));
  return bits_to_float(sign | ((exp + 112) << 23) | (man << 13));
}

inline uint16_t float_to_f16(float f) {
  uint32_t u = float_to_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  u &= 0x7FFFFFFFu;
  if (u > 0x7F800000u) return sign | 0x7E00u;   // NaN
  if (u >= 0x477FF000u) return sign | 0x7C00u;  // overflow -> inf (after rounding)
  if (u < 0x38800000u) {                        // subnormal or zero in f16
    float v = bits_to_float(u);
    auto m = static_cast<uint32_t>(std::nearbyint(v * 16777216.0f));  // 2^24, ties to even
    return sign | static_cast<uint16_t>(m);
  }
  uint32_t mant = u & 0x7FFFFFu;
  uint32_t exp = (u >> 23) - 112;
  uint32_t h = (exp << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return sign | static_cast<uint16_t>(h);
}

// OCP FP8 E4M3 (fn variant: no infinities, 0x7F/0xFF are NaN), as torch.float8_e4m3fn.
inline float fp8_e4m3_to_float(uint8_t v) {
  const uint32_t sign = (v & 0x80u) ? 1u : 0u;
  const uint32_t exp = (v >> 3) & 0xFu;
  const uint32_t man = v & 0x7u;
  float r;
  if (exp == 0xF && man == 0x7) {
    r = NAN;
  } else if (exp == 0) {
    r = std::ldexp(static_cast<float>(man), -9);  // subnormal: man/8 * 2^-6
  } else {
    r = std::ldexp(1.0f + static_cast<float>(man) / 8.0f, static_cast<int>(exp) - 7);
  }
  return sign ? -r : r;
}

// Round-to-nearest-even with saturation to +-448 (what DeepSeek's fp8 casts produce). This is the
// reference encoder (a search over the codes); model/fp8_block.h has the O(1) one tested against it.
inline uint8_t float_to_fp8_e4m3(float f) {
  if (std::isnan(f)) return 0x7F;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0x00;
  float a = std::fabs(f);
  if (a >= 448.0f) return sign | 0x7E;
  // Brute-force nearest over the 127 non-negative finite codes; exact and small enough for
  // load-time conversion and tests (hot paths use the GPU).
  uint8_t best = 0;
  float best_err = INFINITY;
  for (uint8_t c = 0; c <= 0x7E; ++c) {
    float err = std::fabs(fp8_e4m3_to_float(c) - a);
    if (err < best_err || (err == best_err && (c & 1u) == 0)) {
      best = c;
      best_err = err;
    }
  }
  return sign | best;
}

}  // namespace hearth
