// GPU test: skipped (not failed) where no CUDA device is usable.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/half.h"
#include "gpu_test_util.h"
#include "kernels/device_info.h"

namespace hearth {
namespace {

using testing::have_gpu;

TEST(Fp8DequantGpu, MatchesCpuReference) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const uint64_t rows = 300, cols = 260;  // ragged blocks on both axes
  std::mt19937 rng(1);
  std::vector<uint8_t> w(rows * cols);
  for (auto& b : w) {
    do b = static_cast<uint8_t>(rng());
    while ((b & 0x7F) == 0x7F);
  }
  const uint64_t sr = (rows + 127) / 128, sc = (cols + 127) / 128;
  std::vector<float> s(sr * sc);
  std::uniform_real_distribution<float> u(0.001f, 0.1f);
  for (auto& x : s) x = u(rng);
  std::vector<uint16_t> out(rows * cols);
  std::string err;
  ASSERT_TRUE(kernels::cuda_fp8_block_dequant_to_bf16(w.data(), s.data(), rows, cols, out.data(), &err))
      << err;
  for (uint64_t r = 0; r < rows; ++r) {
    for (uint64_t c = 0; c < cols; ++c) {
      float ref = fp8_e4m3_to_float(w[r * cols + c]) * s[(r / 128) * sc + c / 128];
      ASSERT_EQ(out[r * cols + c], float_to_bf16(ref)) << r << "," << c;
    }
  }
}

}  // namespace
}  // namespace hearth
