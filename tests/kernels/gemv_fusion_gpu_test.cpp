// GPU tests of the small-batch GEMV's fusions (cuda::GemvFusion): the RMSNorm prologue (each CTA normalizes
// the f32 residual rows itself) against add_rmsnorm followed by the plain GEMV, and the residual epilogue
// (gemv_residual adds into the residual stream) against the plain GEMV plus the same add on the host.
// Shapes include row counts above what fits on the device at once, so the CTAs loop over row blocks.
// Skipped (not failed) where no CUDA device is usable.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/half.h"
#include "gpu_test_util.h"

#if HEARTH_KERNELS_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_ops.h"
#endif

namespace hearth {
namespace {

using testing::have_gpu;

#if HEARTH_KERNELS_CUDA

using testing::to_device;
using testing::to_host;

std::vector<uint16_t> random_bf16(size_t n, std::mt19937& rng, float sd) {
  std::normal_distribution<float> nd(0.0f, sd);
  std::vector<uint16_t> v(n);
  for (auto& e : v) e = float_to_bf16(nd(rng));
  return v;
}

std::vector<float> random_f32(size_t n, std::mt19937& rng, float mean, float sd) {
  std::normal_distribution<float> nd(mean, sd);
  std::vector<float> v(n);
  for (auto& e : v) e = nd(rng);
  return v;
}

// The SwiGLU GEMV over RMSNorm(x): fused prologue vs add_rmsnorm + unfused GEMV. The two differ only in the
// order the sum of squares is added (so in the last bit of 1/rms and then of a few bf16 inputs).
void norm_case(int64_t n, int64_t inter, int64_t k) {
  std::mt19937 rng(static_cast<uint32_t>(n * 7 + inter + k));
  const auto w = random_bf16(static_cast<size_t>(2 * inter * k), rng, 0.05f);
  const auto x = random_f32(static_cast<size_t>(n * k), rng, 0.1f, 2.0f);
  const auto g = random_f32(static_cast<size_t>(k), rng, 1.0f, 0.2f);
  const float eps = 1e-6f;
  uint16_t* dw = to_device(w);
  float* dx = to_device(x);
  float* dg = to_device(g);
  void* dxn = nullptr;
  void* act_ref = nullptr;
  void* act = nullptr;
  ASSERT_EQ(cudaMalloc(&dxn, static_cast<size_t>(n * k) * 2), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&act_ref, static_cast<size_t>(n * inter) * 2), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&act, static_cast<size_t>(n * inter) * 2), cudaSuccess);

  ASSERT_EQ(cuda::add_rmsnorm(dx, nullptr, nullptr, dg, eps, n, k, dxn, cuda::GpuDType::kBF16, nullptr, {}),
            0);
  ASSERT_EQ(cuda::gemv_swiglu(dw, nullptr, dxn, n, inter, k, act_ref, {}), 0);
  ASSERT_TRUE(cuda::gemv_norm_fits(n, k));
  cuda::GemvFusion fz;
  fz.norm_x = dx;
  fz.norm_w = dg;
  fz.norm_eps = eps;
  ASSERT_EQ(cuda::gemv_swiglu(dw, nullptr, nullptr, n, inter, k, act, {}, false, fz), 0);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const auto ref = to_host(static_cast<const uint16_t*>(act_ref), static_cast<size_t>(n * inter));
  const auto got = to_host(static_cast<const uint16_t*>(act), static_cast<size_t>(n * inter));
  double worst = 0.0, scale = 0.0;
  int64_t equal = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double a = bf16_to_float(ref[i]), b = bf16_to_float(got[i]);
    scale = std::max(scale, std::fabs(a));
    worst = std::max(worst, std::fabs(a - b));
    equal += ref[i] == got[i] ? 1 : 0;
  }
  ASSERT_GT(scale, 0.0);
  EXPECT_LT(worst / scale, 2e-2) << "n " << n << " inter " << inter << " k " << k;
  EXPECT_GT(static_cast<double>(equal), 0.5 * static_cast<double>(ref.size()))
      << "most outputs bit-identical";
  // Without a norm weight the fusion is refused, not run on garbage.
  fz.norm_w = nullptr;
  EXPECT_NE(cuda::gemv_swiglu(dw, nullptr, nullptr, n, inter, k, act, {}, false, fz), 0);
  cudaGetLastError();
  for (void* p : {static_cast<void*>(dw), static_cast<void*>(dx), static_cast<void*>(dg), dxn, act_ref, act})
    cudaFree(p);
}

// gemv_residual: y0 + (plain GEMV + bias), bit for bit (the same sums, the same order of the adds).
void residual_case(int64_t n, int64_t rows, int64_t k) {
  std::mt19937 rng(static_cast<uint32_t>(n * 13 + rows + k));
  const auto w = random_bf16(static_cast<size_t>(rows * k), rng, 0.05f);
  const auto x = random_bf16(static_cast<size_t>(n * k), rng, 1.0f);
  const auto y0 = random_f32(static_cast<size_t>(n * rows), rng, 0.0f, 3.0f);
  const auto bias = random_f32(static_cast<size_t>(rows), rng, 0.0f, 0.5f);
  uint16_t* dw = to_device(w);
  uint16_t* dx = to_device(x);
  float* dy = to_device(y0);
  float* db = to_device(bias);
  float* dp = nullptr;
  ASSERT_EQ(cudaMalloc(&dp, static_cast<size_t>(n * rows) * 4), cudaSuccess);
  ASSERT_EQ(cuda::gemv(dw, nullptr, dx, n, rows, k, dp, rows, {}), 0);
  ASSERT_EQ(cuda::gemv_residual(dw, nullptr, dx, n, rows, k, dy, db, {}), 0);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const auto prod = to_host(dp, static_cast<size_t>(n * rows));
  const auto y = to_host(dy, static_cast<size_t>(n * rows));
  int64_t bad = 0;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      const size_t i = static_cast<size_t>(t * rows + r);
      bad += y[i] != y0[i] + (prod[i] + bias[static_cast<size_t>(r)]) ? 1 : 0;
    }
  EXPECT_EQ(bad, 0) << "n " << n << " rows " << rows << " k " << k;
  for (void* p : {static_cast<void*>(dw), static_cast<void*>(dx), static_cast<void*>(dy),
                  static_cast<void*>(db), static_cast<void*>(dp)})
    cudaFree(p);
}

TEST(GemvFusionGpu, NormPrologueMatchesAddRmsnorm) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  norm_case(1, 8960, 1536);  // the 1.5B's gate/up: 2,240 row blocks, more than fit at once
  norm_case(3, 512, 1536);
  norm_case(8, 256, 2048);
  norm_case(1, 1024, 3584);                     // the 7B's width
  EXPECT_FALSE(cuda::gemv_norm_fits(8, 8192));  // 128 KiB of rows: the separate kernel runs instead
}

TEST(GemvFusionGpu, ResidualEpilogueAddsIntoTheStream) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  residual_case(1, 1536, 8960);
  residual_case(4, 1536, 1536);
  residual_case(8, 200, 640);
}

#else

TEST(GemvFusionGpu, NotCompiled) {
  GTEST_SKIP() << "built without CUDA";
}

#endif

}  // namespace
}  // namespace hearth
