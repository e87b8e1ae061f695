// DeepSeek-V3 block-scaled FP8: scale shapes, validation, and the CPU reference conversions.
#include "model/fp8_block.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/half.h"

namespace hearth {
namespace {

// A weight/scale pair that owns its bytes, viewed as TensorViews.
struct Fp8Pair {
  std::vector<uint8_t> w;
  std::vector<uint8_t> s;  // floats as bytes, deliberately at an odd offset below to test alignment
  TensorView weight, scale;
};

Fp8Pair make_pair(const std::vector<float>& values, uint64_t rows, uint64_t cols, Fp8BlockSize block) {
  Fp8Pair p;
  const auto ss = fp8_scale_inv_shape(rows, cols, block);
  std::vector<float> scale(ss[0] * ss[1]);
  p.w.resize(rows * cols);
  EXPECT_TRUE(quantize_fp8_block(values.data(), rows, cols, block, p.w.data(), scale.data()).is_ok());
  p.s.resize(1 + scale.size() * 4);
  std::memcpy(p.s.data() + 1, scale.data(), scale.size() * 4);
  p.weight = {"layer.weight", DType::kF8_E4M3, {rows, cols}, p.w, "model.safetensors", 0};
  p.scale = {"layer.weight_scale_inv", DType::kF32,
             {ss[0], ss[1]},           std::span<const uint8_t>(p.s).subspan(1),
             "model.safetensors",      0};
  return p;
}

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.05f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

TEST(Fp8Block, ScaleNameAndShapeFollowTheHfLayout) {
  EXPECT_EQ(fp8_scale_inv_name("model.layers.3.mlp.down_proj.weight"),
            "model.layers.3.mlp.down_proj.weight_scale_inv");
  EXPECT_EQ(fp8_scale_inv_shape(7168, 18432, {}), (std::array<uint64_t, 2>{56, 144}));
  EXPECT_EQ(fp8_scale_inv_shape(129, 128, {}), (std::array<uint64_t, 2>{2, 1}));  // ragged rows
  EXPECT_EQ(fp8_scale_inv_shape(1, 257, {}), (std::array<uint64_t, 2>{1, 3}));    // ragged cols
  EXPECT_EQ(fp8_scale_inv_shape(0, 5, {}), (std::array<uint64_t, 2>{0, 1}));
  EXPECT_EQ(fp8_scale_inv_shape(100, 100, {64, 32}), (std::array<uint64_t, 2>{2, 4}));
}

TEST(Fp8Block, FastEncoderMatchesTheReferenceOnEveryCodeAndMidpoint) {
  for (int c = 0; c < 256; ++c) {
    const float v = fp8_e4m3_to_float(static_cast<uint8_t>(c));
    if (std::isnan(v)) continue;
    ASSERT_EQ(fp8_e4m3_from_float(v), float_to_fp8_e4m3(v)) << c;
    // Exact midpoints to the next code (ties go to the even code) and just either side of them.
    if ((c & 0x7F) < 0x7E) {
      const float next = fp8_e4m3_to_float(static_cast<uint8_t>(c + 1));
      const float mid = (v + next) / 2;
      for (float x : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1000.0f), -mid}) {
        ASSERT_EQ(fp8_e4m3_from_float(x), float_to_fp8_e4m3(x)) << c << " " << x;
      }
    }
  }
  for (float x : {0.0f, -0.0f, 447.9f, 448.0f, 460.0f, 464.0f, 1e30f, -1e30f, INFINITY, -INFINITY, 1e-30f,
                  std::numeric_limits<float>::denorm_min()}) {
    EXPECT_EQ(fp8_e4m3_from_float(x), float_to_fp8_e4m3(x)) << x;
  }
  EXPECT_EQ(fp8_e4m3_from_float(NAN), 0x7F);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> exponent(-14.0f, 10.0f);
  for (int i = 0; i < 200000; ++i) {
    const float x = std::exp2(exponent(rng)) * ((rng() & 1) ? 1.0f : -1.0f);
    ASSERT_EQ(fp8_e4m3_from_float(x), float_to_fp8_e4m3(x)) << x;
  }
}

TEST(Fp8Block, RoundTripStaysWithinHalfAnFp8StepOfEachBlock) {
  const uint64_t rows = 300, cols = 260;  // ragged blocks on both axes
  const Fp8BlockSize block{};
  auto values = random_values(rows * cols, 1);
  values[5] = 0.0f;
  Fp8Pair p = make_pair(values, rows, cols, block);
  ASSERT_TRUE(validate_fp8_block_pair(p.weight, p.scale, 128, 128).is_ok());
  std::vector<float> out(rows * cols);
  ASSERT_TRUE(dequantize_fp8_block(p.weight, p.scale, block, out.data()).is_ok());
  std::vector<uint16_t> out_bf16(rows * cols);
  ASSERT_TRUE(dequantize_fp8_block_to_bf16(p.weight, p.scale, block, out_bf16.data()).is_ok());
  const auto ss = fp8_scale_inv_shape(rows, cols, block);
  for (uint64_t r = 0; r < rows; ++r) {
    for (uint64_t c = 0; c < cols; ++c) {
      float s;
      std::memcpy(&s, p.s.data() + 1 + ((r / 128) * ss[1] + c / 128) * 4, 4);
      const float x = values[r * cols + c], y = out[r * cols + c];
      // e4m3 has 3 mantissa bits: relative error <= 2^-4 for normals; absolute <= 2^-10 * s below them.
      const float bound = std::max(std::fabs(x) * 0.0625f, s * 0.001953125f) * 1.0001f;
      ASSERT_LE(std::fabs(x - y), bound) << r << "," << c;
      ASSERT_EQ(out_bf16[r * cols + c], float_to_bf16(y));
    }
  }
  EXPECT_EQ(out[5], 0.0f);
}

TEST(Fp8Block, EachBlockMaxMapsTo448) {
  // Scale is amax/448, so each block's largest magnitude is represented exactly as +-448.
  const uint64_t rows = 130, cols = 129;
  auto values = random_values(rows * cols, 2);
  values[0] = -3.0f;  // block (0, 0) max, negative
  std::vector<uint8_t> w(rows * cols);
  std::vector<float> s(2 * 2);
  ASSERT_TRUE(quantize_fp8_block(values.data(), rows, cols, {}, w.data(), s.data()).is_ok());
  EXPECT_FLOAT_EQ(s[0], 3.0f / 448.0f);
  EXPECT_EQ(w[0], 0xFE);  // -448
  float amax11 = 0;       // the 2x1 corner block
  for (uint64_t r = 128; r < rows; ++r) amax11 = std::max(amax11, std::fabs(values[r * cols + 128]));
  EXPECT_FLOAT_EQ(s[3], amax11 / 448.0f);
}

TEST(Fp8Block, AllZeroBlockGetsUnitScale) {
  std::vector<float> zeros(4 * 4, 0.0f);
  std::vector<uint8_t> w(16, 0xFF);
  float s = 0;
  ASSERT_TRUE(quantize_fp8_block(zeros.data(), 4, 4, {}, w.data(), &s).is_ok());
  EXPECT_EQ(s, 1.0f);
  for (uint8_t b : w) EXPECT_EQ(b, 0);
}

TEST(Fp8Block, QuantizeRejectsNonFiniteInputAndZeroBlocks) {
  std::vector<float> v{1.0f, NAN, 2.0f, 3.0f};
  std::vector<uint8_t> w(4);
  float s;
  Status st = quantize_fp8_block(v.data(), 2, 2, {}, w.data(), &s);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("element (0, 1)"), std::string::npos) << st.message();
  v[1] = INFINITY;
  EXPECT_FALSE(quantize_fp8_block(v.data(), 2, 2, {}, w.data(), &s).is_ok());
  EXPECT_FALSE(quantize_fp8_block(v.data(), 2, 2, {0, 128}, w.data(), &s).is_ok());
}

class Fp8BlockValidation : public ::testing::Test {
 protected:
  void SetUp() override { p_ = make_pair(random_values(200 * 300, 3), 200, 300, {}); }
  void expect_invalid(const TensorView& w, const TensorView& s, std::string_view fragment, uint32_t br = 128,
                      uint32_t bc = 128) {
    Status st = validate_fp8_block_pair(w, s, br, bc);
    ASSERT_FALSE(st.is_ok());
    EXPECT_EQ(st.code(), ErrorCode::kCorrupt);
    for (std::string_view f : {std::string_view("model.safetensors"), std::string_view("'layer.weight'"),
                               std::string_view("'layer.weight_scale_inv'"), fragment}) {
      EXPECT_NE(st.message().find(f), std::string::npos) << "'" << f << "' not in: " << st.message();
    }
  }
  Fp8Pair p_;
};

TEST_F(Fp8BlockValidation, AcceptsExactRaggedScaleShape) {
  EXPECT_EQ(p_.scale.shape, (std::vector<uint64_t>{2, 3}));
  EXPECT_TRUE(validate_fp8_block_pair(p_.weight, p_.scale, 128, 128).is_ok());
}

TEST_F(Fp8BlockValidation, RejectsWrongWeightDtype) {
  TensorView w = p_.weight;
  w.dtype = DType::kBF16;
  expect_invalid(w, p_.scale, "weight dtype is BF16, expected F8_E4M3");
}

TEST_F(Fp8BlockValidation, RejectsWrongScaleDtype) {
  TensorView s = p_.scale;
  s.dtype = DType::kBF16;
  expect_invalid(p_.weight, s, "scale dtype is BF16, expected F32");
}

TEST_F(Fp8BlockValidation, RejectsNonTwoDimensionalWeight) {
  TensorView w = p_.weight;
  w.shape = {200 * 300};
  expect_invalid(w, p_.scale, "weight shape [60000] is not 2-D");
}

TEST_F(Fp8BlockValidation, RejectsScaleShapeThatIsNotCeilOfTheBlocks) {
  TensorView s = p_.scale;
  s.shape = {1, 2};  // floor instead of ceil
  expect_invalid(p_.weight, s, "scale shape [1, 2] does not match [2, 3]");
  s.shape = {6};
  expect_invalid(p_.weight, s, "scale shape [6] does not match");
  s.shape = {3, 2};  // transposed
  expect_invalid(p_.weight, s, "does not match [2, 3]");
}

TEST_F(Fp8BlockValidation, RejectsScaleForAnotherBlockSize) {
  expect_invalid(p_.weight, p_.scale, "does not match [4, 5]", 64, 64);
}

TEST_F(Fp8BlockValidation, RejectsZeroBlockSize) {
  expect_invalid(p_.weight, p_.scale, "block size [0, 128] must be positive", 0, 128);
}

TEST_F(Fp8BlockValidation, RejectsDataOfTheWrongSize) {
  TensorView w = p_.weight;
  w.data = w.data.subspan(1);
  expect_invalid(w, p_.scale, "weight holds 59999 bytes");
  TensorView s = p_.scale;
  s.data = s.data.subspan(4);
  expect_invalid(p_.weight, s, "scale holds 20 bytes, its shape needs 24");
}

TEST_F(Fp8BlockValidation, DequantizeRefusesAnInvalidPair) {
  TensorView s = p_.scale;
  s.shape = {1, 1};
  std::vector<float> out(200 * 300);
  EXPECT_FALSE(dequantize_fp8_block(p_.weight, s, {}, out.data()).is_ok());
}

}  // namespace
}  // namespace hearth
