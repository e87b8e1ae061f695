// GPU test: the routed experts grouped by expert (moe_group + moe_grouped_swiglu / moe_grouped_down) give
// bit-identical results to the per-pair kernels, for f32, bf16 and FP8 (block-scaled) expert weights, with
// uneven expert loads (one expert taking more than a task's worth of pairs, others none).
// Skipped (not failed) where no CUDA device is usable.
#include <gtest/gtest.h>

#include <cstring>
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

// The raw bytes of a device buffer.
template <typename T>
std::vector<uint8_t> download(const T* d, size_t bytes) {
  return testing::to_host(reinterpret_cast<const uint8_t*>(d), bytes);
}

enum class Kind { kF32, kBF16, kFP8 };

void run(Kind kind) {
  const int ne = 16, k = 4;
  const int64_t n = 37, inter = 96, hidden = 128, pairs = n * k;
  std::mt19937 rng(static_cast<uint32_t>(kind) + 5);
  std::normal_distribution<float> nd(0.0f, 0.5f);
  // Expert choices: expert 3 takes most pairs (several tasks), experts 10..15 none.
  std::vector<int32_t> experts(static_cast<size_t>(pairs));
  for (int64_t p = 0; p < pairs; ++p)
    experts[static_cast<size_t>(p)] = p % 3 == 0 ? 3 : static_cast<int32_t>(rng() % 10);
  const size_t wb = kind == Kind::kF32 ? 4 : kind == Kind::kBF16 ? 2 : 1;
  const size_t xb = kind == Kind::kF32 ? 4 : 2;
  const auto fill = [&](size_t count, size_t bytes) {
    std::vector<uint8_t> v(count * bytes);
    for (size_t i = 0; i < count; ++i) {
      const float f = nd(rng);
      if (bytes == 4) std::memcpy(&v[i * 4], &f, 4);
      if (bytes == 2) {
        const uint16_t h = float_to_bf16(f);
        std::memcpy(&v[i * 2], &h, 2);
      }
      if (bytes == 1) v[i] = float_to_fp8_e4m3(f * 50.0f);
    }
    return v;
  };
  const std::vector<uint8_t> w_gu = fill(static_cast<size_t>(ne * 2 * inter * hidden), wb);
  const std::vector<uint8_t> w_dn = fill(static_cast<size_t>(ne * hidden * inter), wb);
  const std::vector<uint8_t> x = fill(static_cast<size_t>(n * hidden), xb);
  std::vector<float> s_gu, s_dn;
  if (kind == Kind::kFP8) {
    std::uniform_real_distribution<float> us(0.001f, 0.02f);
    s_gu.resize(static_cast<size_t>(ne * ((hidden + 127) / 128) * 2 * inter));
    s_dn.resize(static_cast<size_t>(ne * ((inter + 127) / 128) * hidden));
    for (auto& v : s_gu) v = us(rng);
    for (auto& v : s_dn) v = us(rng);
  }
  const cuda::GpuDType t = kind == Kind::kF32 ? cuda::GpuDType::kF32 : cuda::GpuDType::kBF16;
  auto* d_experts = to_device(experts);
  auto* d_gu = to_device(w_gu);
  auto* d_dn = to_device(w_dn);
  auto* d_x = to_device(x);
  float* d_sgu = kind == Kind::kFP8 ? to_device(s_gu) : nullptr;
  float* d_sdn = kind == Kind::kFP8 ? to_device(s_dn) : nullptr;
  const size_t act_bytes = static_cast<size_t>(pairs * inter) * xb,
               y_bytes = static_cast<size_t>(pairs * hidden) * 4;
  void *act_a = nullptr, *act_b = nullptr;
  float *y_a = nullptr, *y_b = nullptr;
  cudaMalloc(&act_a, act_bytes);
  cudaMalloc(&act_b, act_bytes);
  cudaMalloc(&y_a, y_bytes);
  cudaMalloc(&y_b, y_bytes);
  cuda::MoeGroups g;
  cudaMalloc(&g.order, static_cast<size_t>(pairs) * 4);
  cudaMalloc(&g.tasks, static_cast<size_t>(cuda::moe_max_tasks(pairs, ne)) * sizeof(cuda::MoeTask));
  cudaMalloc(&g.num_tasks, 4);

  ASSERT_EQ(cuda::moe_experts_swiglu(d_gu, d_sgu, d_x, d_experts, pairs, k, inter, hidden, act_a, t, {}), 0);
  ASSERT_EQ(cuda::moe_experts_down(d_dn, d_sdn, act_a, d_experts, pairs, inter, hidden, y_a, t, {}), 0);
  ASSERT_EQ(cuda::moe_group(d_experts, pairs, ne, g, {}), 0);
  ASSERT_EQ(cuda::moe_grouped_swiglu(d_gu, d_sgu, d_x, g, pairs, ne, k, inter, hidden, act_b, t, {}), 0);
  ASSERT_EQ(cuda::moe_grouped_down(d_dn, d_sdn, act_b, g, pairs, ne, inter, hidden, y_b, t, {}), 0);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  int32_t tasks = 0;
  cudaMemcpy(&tasks, g.num_tasks, 4, cudaMemcpyDeviceToHost);
  std::vector<int> per_expert(ne, 0);
  for (int32_t e : experts) ++per_expert[static_cast<size_t>(e)];
  int want_tasks = 0;
  for (int c : per_expert) want_tasks += (c + cuda::kMoeGroup - 1) / cuda::kMoeGroup;
  EXPECT_GT(per_expert[3], 2 * cuda::kMoeGroup);
  EXPECT_EQ(tasks, want_tasks) << "tasks of " << pairs << " pairs";
  EXPECT_LE(tasks, cuda::moe_max_tasks(pairs, ne));
  EXPECT_EQ(download(act_a, act_bytes), download(act_b, act_bytes)) << "swiglu outputs differ";
  EXPECT_EQ(download(y_a, y_bytes), download(y_b, y_bytes)) << "down outputs differ";
  for (void* p : {static_cast<void*>(d_experts), static_cast<void*>(d_gu), static_cast<void*>(d_dn),
                  static_cast<void*>(d_x), static_cast<void*>(d_sgu), static_cast<void*>(d_sdn), act_a, act_b,
                  static_cast<void*>(y_a), static_cast<void*>(y_b), static_cast<void*>(g.order),
                  static_cast<void*>(g.tasks), static_cast<void*>(g.num_tasks)})
    cudaFree(p);
}

TEST(MoeGroupedGpu, F32MatchesPerPairBitForBit) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  run(Kind::kF32);
}

TEST(MoeGroupedGpu, Bf16MatchesPerPairBitForBit) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  run(Kind::kBF16);
}

TEST(MoeGroupedGpu, Fp8MatchesPerPairBitForBit) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  run(Kind::kFP8);
}

#else

TEST(MoeGroupedGpu, NotCompiled) {
  GTEST_SKIP() << "built without CUDA";
}

#endif

}  // namespace
}  // namespace hearth
