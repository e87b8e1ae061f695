// Dequantization against ggml's block layouts: hand-built blocks with values worked out from the
// layout, an element-indexed restatement of each layout on random blocks, and quantize->dequantize
// error bounds.
#include "model/quant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/half.h"

namespace hearth {
namespace {

void put_half(uint8_t* p, float v) {
  const uint16_t h = float_to_f16(v);
  std::memcpy(p, &h, 2);
}

std::vector<float> deq(DType t, const std::vector<uint8_t>& block, uint64_t n) {
  std::vector<float> out(n, NAN);
  Status s = dequantize(t, block, n, out.data());
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return out;
}

// ---- hand-built blocks -------------------------------------------------------------------------

TEST(Dequantize, PlainFloatTypes) {
  std::vector<uint8_t> f16(4);
  put_half(f16.data(), 1.5f);
  put_half(f16.data() + 2, -2.0f);
  EXPECT_EQ(deq(DType::kF16, f16, 2), (std::vector<float>{1.5f, -2.0f}));
  std::vector<uint8_t> bf16{0x80, 0x3F, 0x40, 0xC0};  // 0x3F80 = 1.0, 0xC040 = -3.0
  EXPECT_EQ(deq(DType::kBF16, bf16, 2), (std::vector<float>{1.0f, -3.0f}));
  std::vector<uint8_t> f32(4);
  const float x = 0.1f;
  std::memcpy(f32.data(), &x, 4);
  EXPECT_EQ(deq(DType::kF32, f32, 1)[0], 0.1f);
  std::vector<uint8_t> f64(8);
  const double y = 2.5;
  std::memcpy(f64.data(), &y, 8);
  EXPECT_EQ(deq(DType::kF64, f64, 1)[0], 2.5f);
}

TEST(Dequantize, Q8_0IsScaleTimesSignedByte) {
  std::vector<uint8_t> b(34);
  put_half(b.data(), 0.5f);
  for (int j = 0; j < 32; ++j) b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(j - 16));
  b[2 + 31] = 0x80;  // -128
  auto y = deq(DType::kQ8_0, b, 32);
  EXPECT_EQ(y[0], -8.0f);
  EXPECT_EQ(y[16], 0.0f);
  EXPECT_EQ(y[30], 7.0f);
  EXPECT_EQ(y[31], -64.0f);
}

TEST(Dequantize, Q4_0LowNibblesFirstHalfHighNibblesSecond) {
  std::vector<uint8_t> b(18);
  put_half(b.data(), 2.0f);
  for (int j = 0; j < 16; ++j) b[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  auto y = deq(DType::kQ4_0, b, 32);
  EXPECT_EQ(y[0], -16.0f);  // (0 - 8) * 2
  EXPECT_EQ(y[15], 14.0f);  // (15 - 8) * 2
  EXPECT_EQ(y[16], 14.0f);  // high nibble of byte 0 = 15
  EXPECT_EQ(y[31], -16.0f);
}

TEST(Dequantize, Q4_1AddsTheMin) {
  std::vector<uint8_t> b(20);
  put_half(b.data(), 0.5f);
  put_half(b.data() + 2, -3.0f);
  for (int j = 0; j < 16; ++j) b[4 + j] = static_cast<uint8_t>(j | (2 << 4));
  auto y = deq(DType::kQ4_1, b, 32);
  EXPECT_EQ(y[0], -3.0f);
  EXPECT_EQ(y[15], 4.5f);  // 15 * 0.5 - 3
  EXPECT_EQ(y[20], -2.0f);
}

TEST(Dequantize, Q5_0TakesTheFifthBitFromQh) {
  std::vector<uint8_t> b(22);
  put_half(b.data(), 1.0f);
  const uint32_t qh = 0x80000001u;  // element 0 and element 31 have the high bit
  std::memcpy(b.data() + 2, &qh, 4);
  for (int j = 0; j < 16; ++j) b[6 + j] = 0x53;  // low 3, high 5
  auto y = deq(DType::kQ5_0, b, 32);
  EXPECT_EQ(y[0], 3.0f);     // (3 | 16) - 16
  EXPECT_EQ(y[1], -13.0f);   // 3 - 16
  EXPECT_EQ(y[16], -11.0f);  // 5 - 16
  EXPECT_EQ(y[31], 5.0f);    // (5 | 16) - 16
}

TEST(Dequantize, Q5_1TakesTheFifthBitAndAddsTheMin) {
  std::vector<uint8_t> b(24);
  put_half(b.data(), 0.25f);
  put_half(b.data() + 2, 1.0f);
  const uint32_t qh = 0x00010000u;  // element 16
  std::memcpy(b.data() + 4, &qh, 4);
  for (int j = 0; j < 16; ++j) b[8 + j] = 0x44;
  auto y = deq(DType::kQ5_1, b, 32);
  EXPECT_EQ(y[0], 2.0f);   // 4 * 0.25 + 1
  EXPECT_EQ(y[16], 6.0f);  // 20 * 0.25 + 1
  EXPECT_EQ(y[17], 2.0f);
}

// Q4_K/Q5_K scale bytes chosen so that sc = {1,2,3,4,16,17,18,19} and m = {2,4,6,8,1,1,1,1}.
void put_k4_scales(uint8_t* s) {
  for (int g = 0; g < 4; ++g) {
    s[g] = static_cast<uint8_t>(0x40 | (g + 1));    // sc[g] = g+1; top bits 01 -> sc[g+4] bit 4
    s[g + 4] = static_cast<uint8_t>(2 * (g + 1));   // m[g]; top bits 00 -> m[g+4] < 16
    s[g + 8] = static_cast<uint8_t>(g | (1 << 4));  // sc[g+4] low = g, m[g+4] low = 1
  }
}
constexpr int kK4Sc[8] = {1, 2, 3, 4, 16, 17, 18, 19};
constexpr int kK4Min[8] = {2, 4, 6, 8, 1, 1, 1, 1};

TEST(Dequantize, Q4_KUnpacksSixBitScalesAndMins) {
  std::vector<uint8_t> b(144);
  put_half(b.data(), 0.5f);       // d
  put_half(b.data() + 2, 0.25f);  // dmin
  put_k4_scales(b.data() + 4);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) b[16 + 32 * c + l] = static_cast<uint8_t>((l % 16) | ((15 - l % 16) << 4));
  }
  auto y = deq(DType::kQ4_K, b, 256);
  for (int e = 0; e < 256; ++e) {
    const int g = e / 32, l = e % 32;
    const int q = g % 2 == 0 ? l % 16 : 15 - l % 16;
    EXPECT_EQ(y[e], 0.5f * kK4Sc[g] * q - 0.25f * kK4Min[g]) << e;
  }
  EXPECT_EQ(y[1], 0.5f * 1 * 1 - 0.5f);          // group 0: sc 1, m 2
  EXPECT_EQ(y[255], 0.5f * 19 * 0 - 0.25f);      // group 7: sc 19, m 1, q 0
  EXPECT_EQ(y[128 + 3], 0.5f * 16 * 3 - 0.25f);  // group 4
}

TEST(Dequantize, Q5_KAddsSixteenFromQhBitOfTheGroup) {
  std::vector<uint8_t> b(176);
  put_half(b.data(), 1.0f);
  put_half(b.data() + 2, 1.0f);
  put_k4_scales(b.data() + 4);
  for (int l = 0; l < 32; ++l) b[16 + l] = static_cast<uint8_t>(l % 2 == 0 ? 0xA5 : 0x00);  // groups 0,2,5,7
  for (int i = 0; i < 128; ++i) b[48 + i] = 0x21;  // low nibble 1, high 2
  auto y = deq(DType::kQ5_K, b, 256);
  for (int e = 0; e < 256; ++e) {
    const int g = e / 32, l = e % 32;
    const int nib = g % 2 == 0 ? 1 : 2;
    const bool hi = l % 2 == 0 && ((0xA5 >> g) & 1);
    EXPECT_EQ(y[e], 1.0f * kK4Sc[g] * (nib + (hi ? 16 : 0)) - 1.0f * kK4Min[g]) << e;
  }
  EXPECT_EQ(y[0], 1.0f * 17 - 2);  // group 0, high bit set: q = 17
  EXPECT_EQ(y[1], 1.0f * 1 - 2);
}

TEST(Dequantize, Q6_KCombinesFourLowAndTwoHighBits) {
  std::vector<uint8_t> b(210);
  for (int i = 0; i < 128; ++i) b[i] = 0x7A;       // low nibble 10, high 7
  for (int i = 0; i < 64; ++i) b[128 + i] = 0xE4;  // bit pairs (from bit 0): 0, 1, 2, 3
  for (int s = 0; s < 16; ++s) b[192 + s] = static_cast<uint8_t>(static_cast<int8_t>(s - 8));
  put_half(b.data() + 208, 0.5f);
  auto y = deq(DType::kQ6_K, b, 256);
  for (int e = 0; e < 256; ++e) {
    const int quarter = (e % 128) / 32;  // 0: low nibble, pair 0; 1: low, pair 1; 2: high, pair 2; 3: high, 3
    const int q = (quarter < 2 ? 10 : 7) | (quarter << 4);
    EXPECT_EQ(y[e], 0.5f * static_cast<float>(e / 16 - 8) * static_cast<float>(q - 32)) << e;
  }
  EXPECT_EQ(y[0], 0.5f * -8 * (10 - 32));
  EXPECT_EQ(y[100], 0.5f * -2 * ((7 | 48) - 32));
}

TEST(Dequantize, Q3_KSubtractsFourWithoutTheHmaskBit) {
  std::vector<uint8_t> b(110);
  for (int l = 0; l < 32; ++l) b[l] = static_cast<uint8_t>(l < 16 ? 0x0F : 0xF0);  // hmask
  for (int i = 0; i < 64; ++i) b[32 + i] = 0x1B;  // 2-bit fields (from bit 0): 3, 2, 1, 0
  // scales: low 4 bits i for 0..7, 15-i for 8..15; top bits 2 -> (low | 32) - 32 = low.
  for (int i = 0; i < 8; ++i) b[96 + i] = static_cast<uint8_t>(i | ((15 - i) << 4));
  for (int i = 8; i < 12; ++i) b[96 + i] = 0xAA;
  put_half(b.data() + 108, 2.0f);
  auto y = deq(DType::kQ3_K, b, 256);
  for (int e = 0; e < 256; ++e) {
    const int half = e / 128, quarter = (e % 128) / 32, l = e % 32;
    const int group = half * 8 + quarter * 2 + l / 16;
    const int scale = group < 8 ? group : 15 - (group - 8);
    const int low = 3 - quarter;
    const int bit = half * 4 + quarter;  // hmask bit for this quarter
    const bool set = ((l < 16 ? 0x0F : 0xF0) >> bit) & 1;
    EXPECT_EQ(y[e], 2.0f * static_cast<float>(scale) * static_cast<float>(low - (set ? 0 : 4))) << e;
  }
  EXPECT_EQ(y[0], 0.0f);                 // scale 0
  EXPECT_EQ(y[16], 2.0f * 1 * (3 - 4));  // scale 1, hmask bit 0 clear for l >= 16
  EXPECT_EQ(y[32], 2.0f * 2 * 2);        // scale 2, q 2, bit 1 set
}

TEST(Dequantize, Q2_KAppliesFourBitScaleAndMinPerSixteen) {
  std::vector<uint8_t> b(84);
  for (int s = 0; s < 16; ++s) b[s] = static_cast<uint8_t>((s % 16) | ((15 - s) << 4));
  for (int i = 0; i < 64; ++i) b[16 + i] = 0xE4;  // fields 0, 1, 2, 3
  put_half(b.data() + 80, 1.0f);
  put_half(b.data() + 82, 0.5f);
  auto y = deq(DType::kQ2_K, b, 256);
  for (int e = 0; e < 256; ++e) {
    const int half = e / 128, quarter = (e % 128) / 32, l = e % 32;
    const int group = half * 8 + quarter * 2 + l / 16;
    EXPECT_EQ(y[e], 1.0f * group * quarter - 0.5f * (15 - group)) << e;
  }
}

// ---- sizes and types ---------------------------------------------------------------------------

TEST(Dequantize, RejectsElementCountsThatAreNotWholeBlocks) {
  std::vector<uint8_t> b(144);
  std::vector<float> out(256);
  Status s = dequantize(DType::kQ4_K, b, 100, out.data());
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.message().find("100 elements is not a multiple of the block size 256"), std::string::npos);
}

TEST(Dequantize, RejectsSourceOfTheWrongSize) {
  std::vector<uint8_t> b(33);
  std::vector<float> out(32);
  Status s = dequantize(DType::kQ8_0, b, 32, out.data());
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.message().find("need 34 bytes, got 33"), std::string::npos) << s.message();
  EXPECT_FALSE(dequantize(DType::kF16, std::vector<uint8_t>(3), 2, out.data()).is_ok());
}

TEST(Dequantize, RejectsNonFloatTypes) {
  std::vector<uint8_t> b(4);
  float out;
  EXPECT_EQ(dequantize(DType::kI32, b, 1, &out).code(), ErrorCode::kUnsupported);
  EXPECT_FALSE(can_dequantize(DType::kF8_E4M3));
  EXPECT_TRUE(can_dequantize(DType::kQ3_K));
}

// ---- quantize -> dequantize --------------------------------------------------------------------

struct RoundTrip {
  DType type;
  double max_err_vs_block_absmax;  // worst |x - y| / absmax of the x's block
  double rel_rmse;                 // RMS error / RMS of x
};

class QuantRoundTrip : public ::testing::TestWithParam<RoundTrip> {};

TEST_P(QuantRoundTrip, ErrorStaysWithinTheTypeBound) {
  const RoundTrip p = GetParam();
  const uint32_t block = dtype_info(p.type).block_elems;
  const uint32_t group = std::max<uint32_t>(block, 32);  // error is measured against each group's absmax
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float offset : {0.0f, 3.0f}) {  // centred data, and data that is all positive
    std::vector<float> x(64 * 256);
    for (auto& v : x) v = normal(rng) * 0.02f + offset * 0.02f;
    auto q = quantize(p.type, x);
    ASSERT_TRUE(q.is_ok()) << q.status().to_string();
    EXPECT_EQ(q->size(), x.size() / block * dtype_info(p.type).block_bytes);
    std::vector<float> y(x.size());
    ASSERT_TRUE(dequantize(p.type, *q, x.size(), y.data()).is_ok());
    double se = 0, sx = 0, worst = 0;
    for (size_t b0 = 0; b0 < x.size(); b0 += group) {
      float amax = 0;
      for (uint32_t i = 0; i < group; ++i) amax = std::max(amax, std::fabs(x[b0 + i]));
      for (uint32_t i = 0; i < group; ++i) {
        const double e = std::fabs(static_cast<double>(x[b0 + i]) - y[b0 + i]);
        worst = std::max(worst, e / amax);
        se += e * e;
        sx += static_cast<double>(x[b0 + i]) * x[b0 + i];
      }
    }
    EXPECT_LE(worst, p.max_err_vs_block_absmax) << dtype_name(p.type) << " offset " << offset;
    EXPECT_LE(std::sqrt(se / sx), p.rel_rmse) << dtype_name(p.type) << " offset " << offset;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Types, QuantRoundTrip,
    ::testing::Values(RoundTrip{DType::kF16, 1e-3, 1e-3}, RoundTrip{DType::kBF16, 8e-3, 8e-3},
                      RoundTrip{DType::kQ8_0, 0.0045, 0.01}, RoundTrip{DType::kQ4_0, 0.126, 0.12},
                      RoundTrip{DType::kQ4_K, 0.08, 0.1}, RoundTrip{DType::kQ6_K, 0.035, 0.025}),
    [](const auto& info) { return std::string(dtype_name(info.param.type)); });

TEST(Quantize, ZerosStayZero) {
  for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ6_K}) {
    std::vector<float> x(256, 0.0f);
    auto q = quantize(t, x);
    ASSERT_TRUE(q.is_ok());
    std::vector<float> y(256, 1.0f);
    ASSERT_TRUE(dequantize(t, *q, 256, y.data()).is_ok());
    for (float v : y) EXPECT_EQ(v, 0.0f) << dtype_name(t);
  }
}

TEST(Quantize, RejectsPartialBlocksNonFiniteValuesAndUnsupportedTypes) {
  std::vector<float> x(33, 1.0f);
  EXPECT_EQ(quantize(DType::kQ8_0, x).status().code(), ErrorCode::kInvalidArgument);
  std::vector<float> y(32, 1.0f);
  y[7] = NAN;
  auto r = quantize(DType::kQ8_0, y);
  EXPECT_EQ(r.status().code(), ErrorCode::kOutOfRange);
  EXPECT_NE(r.status().message().find("element 7"), std::string::npos);
  std::vector<float> big(32, 1e12f);
  EXPECT_FALSE(quantize(DType::kQ4_0, big).is_ok());  // the f16 scale cannot hold it
  EXPECT_EQ(quantize(DType::kQ5_K, std::vector<float>(256)).status().code(), ErrorCode::kUnsupported);
  std::vector<uint8_t> small(10);
  EXPECT_FALSE(quantize(DType::kQ8_0, std::vector<float>(32), small).is_ok());
}

}  // namespace
}  // namespace hearth
