// Reference dequantization of ggml block formats. Each decoder takes one block's bytes and writes its
// block_elems floats; the layouts (offsets below) are those of ggml's block_* structs, little-endian,
// with f16 scales.
#include "model/quant.h"

#include <cstring>

#include "core/checked_math.h"
#include "core/half.h"

namespace hearth {
namespace {

constexpr int kQK = 32;    // elements per Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 block
constexpr int kQKK = 256;  // elements per K-quant super-block

inline float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_float(h);
}

// block_q4_0 {f16 d; u8 qs[16]}: x[j] = (nibble - 8) * d; low nibbles hold 0..15, high 16..31.
void dequant_q4_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = static_cast<float>((qs[j] & 0xF) - 8) * d;
    y[j + kQK / 2] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

// block_q4_1 {f16 d; f16 m; u8 qs[16]}: x = nibble * d + m.
void dequant_q4_1(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const float m = f16_at(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = static_cast<float>(qs[j] & 0xF) * d + m;
    y[j + kQK / 2] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

// block_q5_0 {f16 d; u8 qh[4]; u8 qs[16]}: 5-bit q = nibble | (bit j of qh) << 4, x = (q - 16) * d.
void dequant_q5_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < kQK / 2; ++j) {
    const int hi0 = static_cast<int>((qh >> j) & 1u) << 4;
    const int hi1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
    y[j] = static_cast<float>(((qs[j] & 0xF) | hi0) - 16) * d;
    y[j + kQK / 2] = static_cast<float>(((qs[j] >> 4) | hi1) - 16) * d;
  }
}

// block_q5_1 {f16 d; f16 m; u8 qh[4]; u8 qs[16]}: x = q * d + m.
void dequant_q5_1(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const float m = f16_at(b + 2);
  uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < kQK / 2; ++j) {
    const int hi0 = static_cast<int>((qh >> j) & 1u) << 4;
    const int hi1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
    y[j] = static_cast<float>((qs[j] & 0xF) | hi0) * d + m;
    y[j + kQK / 2] = static_cast<float>((qs[j] >> 4) | hi1) * d + m;
  }
}

// block_q8_0 {f16 d; i8 qs[32]}: x = q * d.
void dequant_q8_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}

// block_q2_K {u8 scales[16]; u8 qs[64]; f16 d; f16 dmin}: 16 groups of 16; scales byte = 4-bit scale
// (low) and 4-bit min (high); x = d * scale * q - dmin * min, q 2 bits. Each 128-element half uses 32
// qs bytes, taking 2-bit fields at shifts 0,2,4,6 for its four 32-element quarters.
void dequant_q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* q = b + 16;
  const float d = f16_at(b + 80);
  const float dmin = f16_at(b + 82);
  int is = 0;
  for (int n = 0; n < kQKK; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; ++half) {
        const uint8_t sc = scales[is++];
        const float dl = d * static_cast<float>(sc & 0xF);
        const float ml = dmin * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + 16 * half] >> shift) & 3) - ml;
      }
    }
    q += 32;
  }
}

// The sixteen 6-bit scales of Q3_K: low 4 bits in bytes 0..7 (low nibble for 0..7, high for 8..15),
// top 2 bits in bytes 8..11 (byte 8 + s%4, bit pair s/4). Stored with a bias of 32.
int q3_k_scale(const uint8_t* s, int i) {
  const int low = i < 8 ? (s[i] & 0xF) : (s[i - 8] >> 4);
  const int high = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// block_q3_K {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d}: 3-bit q = 2 low bits from qs (as Q2_K)
// minus 4 unless the hmask bit is set; x = d * (scale - 32) * q.
void dequant_q3_k(const uint8_t* b, float* y) {
  const uint8_t* hm = b;
  const uint8_t* q = b + 32;
  const uint8_t* scales = b + 96;
  const float d = f16_at(b + 108);
  int is = 0;
  uint8_t m = 1;
  for (int n = 0; n < kQKK; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; ++half) {
        const float dl = d * static_cast<float>(q3_k_scale(scales, is++));
        for (int l = 0; l < 16; ++l) {
          const int k = l + 16 * half;
          const int v = ((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4);
          *y++ = dl * static_cast<float>(v);
        }
      }
      m = static_cast<uint8_t>(m << 1);
    }
    q += 32;
  }
}

// The eight 6-bit (scale, min) pairs of Q4_K/Q5_K packed into 12 bytes.
void k4_scale_min(int j, const uint8_t* s, uint8_t* sc, uint8_t* mn) {
  if (j < 4) {
    *sc = s[j] & 63;
    *mn = s[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
    *mn = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// block_q4_K {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}: 8 groups of 32; each 64 elements share 32 qs
// bytes (low nibbles first group, high nibbles second); x = d * sc * q - dmin * m.
void dequant_q4_k(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const float dmin = f16_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  for (int j = 0; j < 8; j += 2) {
    uint8_t sc, mn;
    k4_scale_min(j, scales, &sc, &mn);
    const float d1 = d * sc, m1 = dmin * mn;
    k4_scale_min(j + 1, scales, &sc, &mn);
    const float d2 = d * sc, m2 = dmin * mn;
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    q += 32;
  }
}

// block_q5_K {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}: Q4_K plus a fifth bit; group g
// takes bit g of qh[l].
void dequant_q5_k(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const float dmin = f16_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0; j < 8; j += 2) {
    uint8_t sc, mn;
    k4_scale_min(j, scales, &sc, &mn);
    const float d1 = d * sc, m1 = dmin * mn;
    k4_scale_min(j + 1, scales, &sc, &mn);
    const float d2 = d * sc, m2 = dmin * mn;
    for (int l = 0; l < 32; ++l) {
      *y++ = d1 * static_cast<float>((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
    }
    for (int l = 0; l < 32; ++l) {
      *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    }
    ql += 32;
    u1 = static_cast<uint8_t>(u1 << 2);
    u2 = static_cast<uint8_t>(u2 << 2);
  }
}

// block_q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: 6-bit q = 4 bits of ql | 2 bits of qh,
// x = d * scale * (q - 32). Each 128-element half uses 64 ql bytes, 32 qh bytes and 8 scales.
void dequant_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = f16_at(b + 208);
  for (int n = 0; n < kQKK; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      // (d * scale) * q, in this order, as ggml rounds it.
      y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

using BlockDecoder = void (*)(const uint8_t*, float*);

BlockDecoder block_decoder(DType t) {
  switch (t) {
    case DType::kQ4_0: return dequant_q4_0;
    case DType::kQ4_1: return dequant_q4_1;
    case DType::kQ5_0: return dequant_q5_0;
    case DType::kQ5_1: return dequant_q5_1;
    case DType::kQ8_0: return dequant_q8_0;
    case DType::kQ2_K: return dequant_q2_k;
    case DType::kQ3_K: return dequant_q3_k;
    case DType::kQ4_K: return dequant_q4_k;
    case DType::kQ5_K: return dequant_q5_k;
    case DType::kQ6_K: return dequant_q6_k;
    default: return nullptr;
  }
}

}  // namespace

bool can_dequantize(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16 || t == DType::kF64 ||
         block_decoder(t) != nullptr;
}

Status dequantize(DType t, std::span<const uint8_t> src, uint64_t n_elems, float* dst) {
  if (!can_dequantize(t)) {
    return make_error(ErrorCode::kUnsupported, "dequantize: type {} is not supported", dtype_name(t));
  }
  const DTypeInfo& info = dtype_info(t);
  if (n_elems % info.block_elems != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "dequantize {}: {} elements is not a multiple of the block size {}", info.name, n_elems,
                      info.block_elems);
  }
  const uint64_t n_blocks = n_elems / info.block_elems;
  auto need = checked_mul(n_blocks, info.block_bytes);
  if (!need || *need != src.size()) {
    return make_error(ErrorCode::kInvalidArgument, "dequantize {}: {} elements need {} bytes, got {}",
                      info.name, n_elems, need ? fmt::format("{}", *need) : std::string("more than 2^64"),
                      src.size());
  }
  const uint8_t* p = src.data();
  switch (t) {
    case DType::kF32:
      if (n_elems > 0) std::memcpy(dst, p, n_elems * 4);
      return Status::ok();
    case DType::kF16:
      for (uint64_t i = 0; i < n_elems; ++i) dst[i] = f16_at(p + 2 * i);
      return Status::ok();
    case DType::kBF16:
      for (uint64_t i = 0; i < n_elems; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = bf16_to_float(h);
      }
      return Status::ok();
    case DType::kF64:
      for (uint64_t i = 0; i < n_elems; ++i) {
        double v;
        std::memcpy(&v, p + 8 * i, 8);
        dst[i] = static_cast<float>(v);
      }
      return Status::ok();
    default: break;
  }
  const BlockDecoder decode = block_decoder(t);
  for (uint64_t b = 0; b < n_blocks; ++b) decode(p + b * info.block_bytes, dst + b * info.block_elems);
  return Status::ok();
}

}  // namespace hearth
