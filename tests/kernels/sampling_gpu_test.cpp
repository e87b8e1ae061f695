// GPU test of the sampling kernel (cuda::sample_rows) against the host Sampler's semantics: argmax, raw
// logprobs and top logprobs exactly as the host computes them; draws that never leave the set top_k / min_p /
// top_p keep and that follow softmax(x / T) inside it; ties resolved in id order; seeds that reproduce.
// Skipped (not failed) where no CUDA device is usable.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <vector>

#include "gpu_test_util.h"
#include "kernels/cpu/sampling.h"

#if HEARTH_KERNELS_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_ops.h"
#endif

namespace hearth {
namespace {

using testing::have_gpu;

#if HEARTH_KERNELS_CUDA

struct DeviceRun {
  std::vector<int32_t> ids;
  std::vector<float> logprobs;
  std::vector<cuda::LogprobEntry> top;  // rows x kMaxTopLogprobs
};

// Samples every row of `logits` (rows x vocab) under params[r] (its .row is set here), with masks[r] as the
// row's allowed ids where given (non-empty).
DeviceRun run_rows(const std::vector<float>& logits, int64_t vocab, std::vector<cuda::SampleRow> params,
                   const std::vector<std::vector<uint8_t>>& masks = {}) {
  const int64_t rows = static_cast<int64_t>(params.size());
  uint8_t* d_masks = nullptr;
  if (!masks.empty()) {
    EXPECT_EQ(cudaMalloc(&d_masks, static_cast<size_t>(rows * vocab)), cudaSuccess);
  }
  for (int64_t r = 0; r < rows; ++r) {
    cuda::SampleRow& p = params[static_cast<size_t>(r)];
    p.row = static_cast<int32_t>(r);
    if (static_cast<size_t>(r) < masks.size() && !masks[static_cast<size_t>(r)].empty()) {
      p.allowed = d_masks + r * vocab;
      cudaMemcpy(d_masks + r * vocab, masks[static_cast<size_t>(r)].data(), static_cast<size_t>(vocab),
                 cudaMemcpyHostToDevice);
    }
  }
  float* d_logits = nullptr;
  cuda::SampleRow* d_rows = nullptr;
  int32_t* d_ids = nullptr;
  float* d_lps = nullptr;
  cuda::LogprobEntry* d_top = nullptr;
  const size_t top_n = static_cast<size_t>(rows) * cuda::kMaxTopLogprobs;
  EXPECT_EQ(cudaMalloc(&d_logits, logits.size() * 4), cudaSuccess);
  EXPECT_EQ(cudaMalloc(&d_rows, params.size() * sizeof(cuda::SampleRow)), cudaSuccess);
  EXPECT_EQ(cudaMalloc(&d_ids, static_cast<size_t>(rows) * 4), cudaSuccess);
  EXPECT_EQ(cudaMalloc(&d_lps, static_cast<size_t>(rows) * 4), cudaSuccess);
  EXPECT_EQ(cudaMalloc(&d_top, top_n * sizeof(cuda::LogprobEntry)), cudaSuccess);
  cudaMemcpy(d_logits, logits.data(), logits.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(d_rows, params.data(), params.size() * sizeof(cuda::SampleRow), cudaMemcpyHostToDevice);
  EXPECT_EQ(cuda::sample_rows(d_logits, vocab, d_rows, static_cast<int>(rows), d_ids, d_lps, d_top, {}), 0);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  DeviceRun out;
  out.ids.resize(static_cast<size_t>(rows));
  out.logprobs.resize(static_cast<size_t>(rows));
  out.top.resize(top_n);
  cudaMemcpy(out.ids.data(), d_ids, out.ids.size() * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(out.logprobs.data(), d_lps, out.logprobs.size() * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(out.top.data(), d_top, top_n * sizeof(cuda::LogprobEntry), cudaMemcpyDeviceToHost);
  cudaFree(d_logits);
  cudaFree(d_rows);
  cudaFree(d_ids);
  cudaFree(d_lps);
  cudaFree(d_top);
  cudaFree(d_masks);
  return out;
}

std::vector<float> random_row(int64_t vocab, uint32_t seed, float spread) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, spread);
  std::vector<float> row(static_cast<size_t>(vocab));
  for (float& v : row) v = n(rng);
  return row;
}

// The host's kept set for one row and the probability of each kept id (double precision reference).
std::map<int32_t, double> kept_distribution(const std::vector<float>& row, const cuda::SampleRow& p) {
  std::vector<int32_t> order(row.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < order.size()) order.resize(static_cast<size_t>(p.top_k));
  const double max = row[static_cast<size_t>(order[0])];
  std::vector<std::pair<int32_t, double>> cand;
  double total = 0.0;
  for (int32_t id : order) {
    const double w = std::exp((row[static_cast<size_t>(id)] - max) / p.temperature);
    if (w > 0.0 && w >= p.min_p) {
      cand.emplace_back(id, w);
      total += w;
    }
  }
  std::map<int32_t, double> out;
  double cum = 0.0;
  for (const auto& [id, w] : cand) {
    out[id] = w;
    cum += w;
    if (p.top_p < 1.0f && cum >= p.top_p * total) break;
  }
  for (auto& [id, w] : out) w /= cum;
  return out;
}

// Draws n samples of one row with distinct seeds and checks them against kept_distribution.
void check_distribution(const std::vector<float>& row, cuda::SampleRow p, int n) {
  const int64_t vocab = static_cast<int64_t>(row.size());
  std::vector<float> logits;
  logits.reserve(row.size() * static_cast<size_t>(n));
  std::vector<cuda::SampleRow> params;
  for (int i = 0; i < n; ++i) {
    logits.insert(logits.end(), row.begin(), row.end());
    p.seed = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(i + 1);
    params.push_back(p);
  }
  const DeviceRun run = run_rows(logits, vocab, params);
  const std::map<int32_t, double> expect = kept_distribution(row, p);
  std::map<int32_t, int> count;
  for (int32_t id : run.ids) {
    ASSERT_TRUE(expect.count(id) == 1) << "token " << id << " is outside the kept set of " << expect.size();
    ++count[id];
  }
  for (const auto& [id, prob] : expect) {
    const double mean = prob * n;
    const double sigma = std::sqrt(n * prob * (1.0 - prob));
    EXPECT_NEAR(count[id], mean, 5.0 * sigma + 3.0) << "token " << id << " (p = " << prob << ")";
  }
}

TEST(SamplingGpu, ArgmaxLogprobAndTopLogprobsMatchTheHost) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  for (int64_t vocab : {7, 1000, 151936}) {
    std::vector<float> logits;
    std::vector<cuda::SampleRow> params;
    for (int r = 0; r < 6; ++r) {
      std::vector<float> row = random_row(vocab, 100 + static_cast<uint32_t>(r), 3.0f);
      if (r == 1) std::fill(row.begin(), row.end(), 0.5f);  // all tied
      if (r == 2 && vocab > 20) {
        row[5] = std::numeric_limits<float>::quiet_NaN();
        row[9] = -std::numeric_limits<float>::infinity();
        row[11] = row[3] = row[17] = 40.0f;  // tied maxima
      }
      logits.insert(logits.end(), row.begin(), row.end());
      cuda::SampleRow p;
      p.top_logprobs = r == 5 ? 0 : 20;
      params.push_back(p);
    }
    const DeviceRun run = run_rows(logits, vocab, params);
    for (int r = 0; r < 6; ++r) {
      // The host Sampler's greedy path: argmax (NaN as -inf, lowest id), raw log-softmax, top-k of it.
      const std::span<const float> row(logits.data() + r * vocab, static_cast<size_t>(vocab));
      std::vector<float> lp(row.size());
      log_softmax(row, lp);
      const int32_t want = argmax(row);
      EXPECT_EQ(run.ids[static_cast<size_t>(r)], want) << "vocab " << vocab << " row " << r;
      EXPECT_NEAR(run.logprobs[static_cast<size_t>(r)], lp[static_cast<size_t>(want)], 2e-5)
          << "vocab " << vocab << " row " << r;
      std::vector<int32_t> top;
      top_k_indices(lp, params[static_cast<size_t>(r)].top_logprobs, top);
      for (size_t k = 0; k < top.size(); ++k) {
        const cuda::LogprobEntry& e = run.top[static_cast<size_t>(r) * cuda::kMaxTopLogprobs + k];
        EXPECT_EQ(e.id, top[k]) << "vocab " << vocab << " row " << r << " rank " << k;
        EXPECT_NEAR(e.logprob, lp[static_cast<size_t>(top[k])], 2e-5);
      }
    }
  }
}

TEST(SamplingGpu, DrawsFollowTheFilteredSoftmax) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const std::vector<float> row = random_row(2000, 7, 2.0f);
  cuda::SampleRow p;
  p.temperature = 1.0f;  // plain softmax over the whole vocabulary
  check_distribution(std::vector<float>(row.begin(), row.begin() + 64), p, 20000);
  p.temperature = 0.7f;
  p.top_p = 0.9f;  // nucleus only: the radix select over weights
  check_distribution(row, p, 20000);
  p.top_k = 40;  // top_k then top_p
  check_distribution(row, p, 20000);
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.1f;  // min_p only
  check_distribution(row, p, 20000);
  p.temperature = 1.5f;
  p.top_k = 100;
  p.top_p = 0.5f;
  p.min_p = 0.02f;  // all three
  check_distribution(row, p, 20000);
}

TEST(SamplingGpu, TiesAtTheBoundaryAreKeptInIdOrder) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const std::vector<float> flat(3000, 1.25f);
  cuda::SampleRow p;
  p.temperature = 1.0f;
  p.top_k = 5;
  check_distribution(flat, p, 5000);  // ids 0..4, uniform
  p.top_k = 0;
  p.top_p = 0.5f;
  check_distribution(flat, p, 20000);  // the first 1500 ids
}

TEST(SamplingGpu, SeedsReproduceAndRowsAreIndependent) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const int64_t vocab = 151936;
  const std::vector<float> row = random_row(vocab, 3, 1.0f);  // flat enough that draws vary
  std::vector<float> logits;
  std::vector<cuda::SampleRow> params;
  for (int r = 0; r < 64; ++r) {
    logits.insert(logits.end(), row.begin(), row.end());
    cuda::SampleRow p;
    p.temperature = 1.0f;
    p.top_p = 0.95f;
    p.seed = static_cast<uint64_t>(r % 8);  // rows r and r + 8 share a seed
    params.push_back(p);
  }
  const DeviceRun a = run_rows(logits, vocab, params);
  const DeviceRun b = run_rows(logits, vocab, params);
  EXPECT_EQ(a.ids, b.ids);
  std::vector<int32_t> distinct;
  for (int r = 0; r < 64; ++r) {
    EXPECT_EQ(a.ids[static_cast<size_t>(r)], a.ids[static_cast<size_t>(r % 8)]);
    distinct.push_back(a.ids[static_cast<size_t>(r)]);
  }
  std::sort(distinct.begin(), distinct.end());
  EXPECT_GT(std::unique(distinct.begin(), distinct.end()) - distinct.begin(), 4);
}

// Guided decoding: the mask restricts the choice (argmax and draws), never the reported logprobs.
TEST(SamplingGpu, MasksRestrictTheChoiceNotTheLogprobs) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const int64_t vocab = 3000;
  const std::vector<float> row = random_row(vocab, 21, 2.0f);
  std::vector<uint8_t> mask(static_cast<size_t>(vocab), 0);
  for (int64_t i = 5; i < vocab; i += 97) mask[static_cast<size_t>(i)] = 1;
  std::vector<float> lp(row.size());
  log_softmax(row, lp);
  // Greedy with top logprobs: the best allowed id; the top list is the raw row's.
  {
    cuda::SampleRow p;
    p.top_logprobs = 4;
    const DeviceRun run = run_rows(row, vocab, {p}, {mask});
    std::vector<float> masked = row;
    for (int64_t i = 0; i < vocab; ++i)
      if (mask[static_cast<size_t>(i)] == 0)
        masked[static_cast<size_t>(i)] = -std::numeric_limits<float>::infinity();
    const int32_t want = argmax(masked);
    EXPECT_EQ(run.ids[0], want);
    EXPECT_NEAR(run.logprobs[0], lp[static_cast<size_t>(want)], 2e-5);
    std::vector<int32_t> top;
    top_k_indices(lp, 4, top);
    for (size_t k = 0; k < top.size(); ++k) EXPECT_EQ(run.top[k].id, top[k]);
  }
  // Draws: only allowed ids, in proportion to softmax(x / T) over them.
  const int n = 20000;
  std::vector<float> logits;
  std::vector<cuda::SampleRow> params;
  std::vector<std::vector<uint8_t>> masks;
  for (int i = 0; i < n; ++i) {
    logits.insert(logits.end(), row.begin(), row.end());
    cuda::SampleRow p;
    p.temperature = 0.9f;
    p.seed = static_cast<uint64_t>(i) * 7919 + 1;
    params.push_back(p);
    masks.push_back(mask);
  }
  const DeviceRun run = run_rows(logits, vocab, params, masks);
  double total = 0.0, mx = -1e30;
  for (int64_t i = 0; i < vocab; ++i)
    if (mask[static_cast<size_t>(i)] != 0) mx = std::max<double>(mx, row[static_cast<size_t>(i)]);
  std::map<int32_t, double> expect;
  for (int64_t i = 0; i < vocab; ++i) {
    if (mask[static_cast<size_t>(i)] == 0) continue;
    const double w = std::exp((row[static_cast<size_t>(i)] - mx) / 0.9);
    expect[static_cast<int32_t>(i)] = w;
    total += w;
  }
  std::map<int32_t, int> count;
  for (int32_t id : run.ids) {
    ASSERT_EQ(mask[static_cast<size_t>(id)], 1) << "token " << id << " is not allowed";
    ++count[id];
  }
  for (const auto& [id, w] : expect) {
    const double prob = w / total;
    EXPECT_NEAR(count[id], prob * n, 5.0 * std::sqrt(n * prob * (1.0 - prob)) + 3.0) << "token " << id;
  }
}

TEST(SamplingGpu, DegenerateRows) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const int64_t vocab = 5000;
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> logits(static_cast<size_t>(vocab * 3), -inf);
  logits[static_cast<size_t>(1234)] = 0.0f;       // row 0: one finite token
  logits[static_cast<size_t>(vocab + 42)] = inf;  // row 1: two +inf tokens share the mass
  logits[static_cast<size_t>(vocab + 4242)] = inf;
  for (int64_t i = 0; i < vocab; i += 2) logits[static_cast<size_t>(2 * vocab + i)] = std::nanf("");  // row 2
  std::vector<cuda::SampleRow> params(3);
  for (auto& p : params) {
    p.temperature = 0.8f;
    p.top_p = 0.9f;
    p.top_logprobs = 3;
    p.seed = 11;
  }
  const DeviceRun run = run_rows(logits, vocab, params);
  EXPECT_EQ(run.ids[0], 1234);
  EXPECT_FLOAT_EQ(run.logprobs[0], 0.0f);
  EXPECT_TRUE(run.ids[1] == 42 || run.ids[1] == 4242) << run.ids[1];
  EXPECT_NEAR(run.logprobs[1], -std::log(2.0f), 1e-6);
  EXPECT_EQ(run.top[cuda::kMaxTopLogprobs].id, 42);
  EXPECT_EQ(run.top[cuda::kMaxTopLogprobs + 1].id, 4242);
  EXPECT_EQ(run.ids[2], 0);  // nothing finite: the lowest id, -inf
  EXPECT_EQ(run.logprobs[2], -inf);
}

#else

TEST(SamplingGpu, NotCompiled) {
  GTEST_SKIP() << "built without CUDA";
}

#endif

}  // namespace
}  // namespace hearth
