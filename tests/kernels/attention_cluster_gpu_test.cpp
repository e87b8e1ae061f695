// GPU tests of paged decode attention's two multi-CTA forms: fixed-length splits merged by the combine
// launch, and one thread-block cluster per (token, head slice) that divides the token's actual context and
// merges in distributed shared memory. Both against a double-precision host reference over the same paged
// cache (blocks shuffled, contexts of 1 token up to several thousand, an empty row). Skipped without a CUDA
// device, and the cluster case without cluster support (before Hopper).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
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

struct Case {
  int nh = 12, nkv = 2, hd = 128, block = 16;
  std::vector<int> ctx;  // per token (one token per sequence); 0 = an empty row (pos -1)
};

// out[t][h][d] in double from the same (rounded) cache values the kernel reads.
std::vector<double> reference(const Case& c, const std::vector<float>& q, const std::vector<float>& kvf,
                              const std::vector<int32_t>& table, int width, float scale) {
  const int n = static_cast<int>(c.ctx.size()), kvd = c.nkv * c.hd, group = c.nh / c.nkv;
  std::vector<double> out(static_cast<size_t>(n) * c.nh * c.hd, 0.0);
  for (int t = 0; t < n; ++t)
    for (int h = 0; h < c.nh; ++h) {
      const int g = h / group, ctx = c.ctx[static_cast<size_t>(t)];
      if (ctx == 0) continue;
      std::vector<double> s(static_cast<size_t>(ctx));
      double mx = -INFINITY;
      for (int p = 0; p < ctx; ++p) {
        const int64_t slot =
            static_cast<int64_t>(table[static_cast<size_t>(t * width + p / c.block)]) * c.block + p % c.block;
        double d = 0.0;
        for (int i = 0; i < c.hd; ++i)
          d += static_cast<double>(q[static_cast<size_t>((t * c.nh + h) * c.hd + i)]) * scale *
               kvf[static_cast<size_t>(slot * 2 * kvd + g * c.hd + i)];
        s[static_cast<size_t>(p)] = d;
        mx = std::max(mx, d);
      }
      double den = 0.0;
      for (double& v : s) den += (v = std::exp(v - mx));
      for (int p = 0; p < ctx; ++p) {
        const int64_t slot =
            static_cast<int64_t>(table[static_cast<size_t>(t * width + p / c.block)]) * c.block + p % c.block;
        for (int i = 0; i < c.hd; ++i)
          out[static_cast<size_t>((t * c.nh + h) * c.hd + i)] +=
              s[static_cast<size_t>(p)] / den * kvf[static_cast<size_t>(slot * 2 * kvd + kvd + g * c.hd + i)];
      }
    }
  return out;
}

// Runs the case with bf16 (or f32) KV and f32 output, split + combine and clustered; returns the worst
// absolute error of each against the reference (relative to the largest |output|).
void run_case(const Case& c, bool bf16_kv) {
  std::mt19937 rng(static_cast<uint32_t>(c.ctx.size() * 31 + c.hd + (bf16_kv ? 1 : 0)));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int n = static_cast<int>(c.ctx.size()), kvd = c.nkv * c.hd;
  const int max_ctx = *std::max_element(c.ctx.begin(), c.ctx.end());
  const int width = (max_ctx + c.block - 1) / c.block + 1;
  const int blocks = n * width;
  // Shuffled physical blocks: sequence t's logical block b is table[t][b].
  std::vector<int32_t> table(static_cast<size_t>(blocks));
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), rng);
  std::vector<float> kvf(static_cast<size_t>(blocks) * c.block * 2 * kvd);
  std::vector<uint16_t> kvb(kvf.size());
  for (size_t i = 0; i < kvf.size(); ++i) {
    kvb[i] = float_to_bf16(nd(rng));
    kvf[i] = bf16_to_float(kvb[i]);  // both layouts hold the same values
  }
  std::vector<float> q(static_cast<size_t>(n) * c.nh * c.hd);
  for (float& v : q) v = nd(rng);
  std::vector<int32_t> pos(static_cast<size_t>(n)), seq_of(static_cast<size_t>(n));
  for (int t = 0; t < n; ++t) {
    pos[static_cast<size_t>(t)] = c.ctx[static_cast<size_t>(t)] - 1;
    seq_of[static_cast<size_t>(t)] = t;
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.hd));
  const auto ref = reference(c, q, kvf, table, width, scale);
  double top = 0.0;
  for (double v : ref) top = std::max(top, std::fabs(v));

  float* dq = to_device(q);
  void* dkv = bf16_kv ? static_cast<void*>(to_device(kvb)) : static_cast<void*>(to_device(kvf));
  int32_t* dpos = to_device(pos);
  int32_t* dseq = to_device(seq_of);
  int32_t* dtab = to_device(table);
  const size_t out_n = static_cast<size_t>(n) * c.nh * c.hd;
  float* dout = nullptr;
  float* dpart = nullptr;
  constexpr int kSplits = 16;
  ASSERT_EQ(cudaMalloc(&dout, out_n * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dpart, static_cast<size_t>(n) * c.nh * kSplits * (c.hd + 2) * 4), cudaSuccess);
  const cuda::GpuDType kvt = bf16_kv ? cuda::GpuDType::kBF16 : cuda::GpuDType::kF32;

  cuda::AttentionShape sh;
  sh.nh = c.nh;
  sh.nkv = c.nkv;
  sh.hd = c.hd;
  sh.scale = scale;
  sh.block_size = c.block;
  sh.table_width = width;
  sh.splits = kSplits;
  sh.split_len = ((max_ctx + kSplits - 1) / kSplits + 31) / 32 * 32;
  auto check = [&](const char* what) {
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << what;
    const auto got = to_host(dout, out_n);
    double worst = 0.0;
    for (size_t i = 0; i < out_n; ++i) worst = std::max(worst, std::fabs(got[i] - ref[i]));
    EXPECT_LT(worst / top, 2e-5) << what << " hd " << c.hd << " max ctx " << max_ctx;
  };
  ASSERT_EQ(cuda::paged_attention(dq, dkv, kvt, dpos, dseq, dtab, nullptr, n, sh, dpart, dout,
                                  cuda::GpuDType::kF32, {}),
            0);
  check("split + combine");

  const int cl = cuda::attention_cluster_size(c.hd, kvt, cuda::GpuDType::kF32);
  if (cl < 2) {
    std::printf("no thread-block clusters on this device: clustered form not checked\n");
  } else {
    for (int size : {cl, 3, 2}) {
      cudaMemset(dout, 0xff, out_n * 4);  // NaNs: every element must be written
      sh.cluster = size;
      sh.splits = size;
      ASSERT_EQ(cuda::paged_attention(dq, dkv, kvt, dpos, dseq, dtab, nullptr, n, sh, nullptr, dout,
                                      cuda::GpuDType::kF32, {}),
                0);
      check(size == cl ? "clustered (largest size)" : "clustered (small size)");
    }
    sh.cluster = cuda::kMaxAttentionCluster + 1;  // refused, not launched
    EXPECT_NE(cuda::paged_attention(dq, dkv, kvt, dpos, dseq, dtab, nullptr, n, sh, nullptr, dout,
                                    cuda::GpuDType::kF32, {}),
              0);
  }
  for (void* p : {static_cast<void*>(dq), dkv, static_cast<void*>(dpos), static_cast<void*>(dseq),
                  static_cast<void*>(dtab), static_cast<void*>(dout), static_cast<void*>(dpart)})
    cudaFree(p);
}

TEST(AttentionClusterGpu, ClusteredAndSplitMatchTheReference) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  Case c;
  c.ctx = {1, 37, 384, 0, 1000, 4096};
  run_case(c, true);
  run_case(c, false);
  Case wide;  // the 7B's heads (28 / 4), a group of 7
  wide.nh = 28;
  wide.nkv = 4;
  wide.ctx = {5, 260};
  run_case(wide, true);
  Case small;  // head_dim 64, groups above the 8 heads a CTA holds (two slices)
  small.nh = 16;
  small.nkv = 1;
  small.hd = 64;
  small.ctx = {33, 129};
  run_case(small, true);
}

#else

TEST(AttentionClusterGpu, NotCompiled) {
  GTEST_SKIP() << "built without CUDA";
}

#endif

}  // namespace
}  // namespace hearth
