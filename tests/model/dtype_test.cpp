#include "model/dtype.h"

#include <gtest/gtest.h>

#include <vector>

namespace hearth {
namespace {

TEST(DType, ParsesSafetensorsNames) {
  EXPECT_EQ(dtype_from_safetensors("BF16"), DType::kBF16);
  EXPECT_EQ(dtype_from_safetensors("F8_E4M3"), DType::kF8_E4M3);
  EXPECT_EQ(dtype_from_safetensors("I64"), DType::kI64);
  EXPECT_FALSE(dtype_from_safetensors("Q4_K").has_value());  // GGUF-only
  EXPECT_FALSE(dtype_from_safetensors("bf16").has_value());
}

TEST(DType, NbytesChecksOverflowAndBlockAlignment) {
  std::vector<uint64_t> shape{4, 64};
  EXPECT_EQ(tensor_nbytes(DType::kBF16, shape), 512u);
  EXPECT_EQ(tensor_nbytes(DType::kQ8_0, shape), 4u * 2 * 34);
  std::vector<uint64_t> ragged{4, 33};
  EXPECT_FALSE(tensor_nbytes(DType::kQ8_0, ragged).has_value());
  std::vector<uint64_t> huge{1ULL << 40, 1ULL << 30};
  EXPECT_FALSE(tensor_nbytes(DType::kF32, huge).has_value());
  std::vector<uint64_t> scalar{};
  EXPECT_EQ(tensor_nbytes(DType::kF32, scalar), 4u);
}

}  // namespace
}  // namespace hearth
