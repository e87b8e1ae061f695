#include "core/half.h"

#include <gtest/gtest.h>

#include <random>

namespace hearth {
namespace {

TEST(Half, Bf16RoundTripsAndRoundsToNearestEven) {
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(bf16_to_float(float_to_bf16(-2.5f)), -2.5f);
  // 1 + 2^-8 is exactly between two bf16 values: ties to even -> 1.0
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(NAN))));
}

TEST(Half, F16MatchesKnownEncodings) {
  EXPECT_EQ(float_to_f16(1.0f), 0x3C00);
  EXPECT_EQ(float_to_f16(-2.0f), 0xC000);
  EXPECT_EQ(float_to_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(float_to_f16(1e6f), 0x7C00);
  EXPECT_EQ(f16_to_float(0x0001), std::ldexp(1.0f, -24));
  std::mt19937 rng(7);
  for (int i = 0; i < 65536; ++i) {
    auto h = static_cast<uint16_t>(i);
    float f = f16_to_float(h);
    if (std::isnan(f)) continue;
    EXPECT_EQ(float_to_f16(f), h) << "code " << i;
  }
}

TEST(Half, Fp8E4M3CoversTheFormat) {
  EXPECT_EQ(fp8_e4m3_to_float(0x7E), 448.0f);
  EXPECT_EQ(fp8_e4m3_to_float(0x38), 1.0f);
  EXPECT_EQ(fp8_e4m3_to_float(0x01), std::ldexp(1.0f, -9));
  EXPECT_TRUE(std::isnan(fp8_e4m3_to_float(0x7F)));
  EXPECT_EQ(float_to_fp8_e4m3(1000.0f), 0x7E);  // saturates
  for (int c = 0; c < 256; ++c) {
    float f = fp8_e4m3_to_float(static_cast<uint8_t>(c));
    if (std::isnan(f) || c == 0x80) continue;
    EXPECT_EQ(float_to_fp8_e4m3(f), c) << "code " << c;
  }
}

}  // namespace
}  // namespace hearth
