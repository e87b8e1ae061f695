// Single-query attention over a paged KV cache against a naive double-precision implementation that
// reads a plain (unpaged) copy of the cache. Blocks are handed out in shuffled order and every slot
// that does not hold a position < n_ctx is NaN, so a wrong block, slot or offset shows up as NaN.
#include "kernels/cpu/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace hearth {
namespace {

constexpr double kTol = 1e-5;

struct PagedCache {
  std::vector<float> storage;
  std::vector<int32_t> table;
  std::vector<float> logical;  // position p's slot at p * token_stride
  PagedKvLayer kv;
};

PagedCache make_cache(int64_t n_ctx, int64_t block_size, int64_t token_stride, std::mt19937& rng) {
  PagedCache c;
  const int64_t used = (n_ctx + block_size - 1) / block_size;
  const int64_t n_blocks = used + 3;  // spare blocks the table never names
  c.storage.assign(static_cast<size_t>(n_blocks * block_size * token_stride), NAN);
  std::vector<int32_t> perm(n_blocks);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  c.table.assign(perm.begin(), perm.begin() + used);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  c.logical.resize(static_cast<size_t>(n_ctx * token_stride));
  for (float& f : c.logical) f = dist(rng);
  for (int64_t p = 0; p < n_ctx; ++p) {
    const int64_t physical = c.table[p / block_size] * block_size + p % block_size;
    std::copy_n(c.logical.data() + p * token_stride, token_stride,
                c.storage.data() + physical * token_stride);
  }
  c.kv = PagedKvLayer{c.storage.data(), token_stride, block_size};
  return c;
}

std::vector<float> random_vector(std::mt19937& rng, int64_t n, float amplitude) {
  std::uniform_real_distribution<float> dist(-amplitude, amplitude);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

std::vector<double> softmax(std::vector<double> s) {
  const double mx = *std::max_element(s.begin(), s.end());
  double sum = 0.0;
  for (double& v : s) sum += (v = std::exp(v - mx));
  for (double& v : s) v /= sum;
  return s;
}

// out = softmax(q . K_t * scale) V over positions, with K/V of kv head `kvh` (slot: [K heads][V heads]).
std::vector<double> naive_gqa(const std::vector<float>& logical, int64_t n_ctx, const float* q, int64_t kvh,
                              int64_t n_kv, int64_t head_dim, double scale) {
  const int64_t stride = 2 * n_kv * head_dim;
  std::vector<double> s(n_ctx);
  for (int64_t t = 0; t < n_ctx; ++t) {
    const float* k = logical.data() + t * stride + kvh * head_dim;
    double acc = 0.0;
    for (int64_t d = 0; d < head_dim; ++d) acc += static_cast<double>(q[d]) * k[d];
    s[t] = acc * scale;
  }
  const std::vector<double> p = softmax(s);
  std::vector<double> out(head_dim, 0.0);
  for (int64_t t = 0; t < n_ctx; ++t) {
    const float* v = logical.data() + t * stride + n_kv * head_dim + kvh * head_dim;
    for (int64_t d = 0; d < head_dim; ++d) out[d] += p[t] * v[d];
  }
  return out;
}

TEST(Attention, GqaHeadMatchesNaiveAttentionOverShuffledBlocks) {
  constexpr int64_t kHeads = 8, kKvHeads = 2, kHeadDim = 32;
  const double scale = 1.0 / std::sqrt(static_cast<double>(kHeadDim));
  std::mt19937 rng(11);
  for (int64_t block_size : {4, 16}) {
    for (int64_t n_ctx : {1, 7, 33}) {
      SCOPED_TRACE("block_size " + std::to_string(block_size) + " n_ctx " + std::to_string(n_ctx));
      const PagedCache c = make_cache(n_ctx, block_size, 2 * kKvHeads * kHeadDim, rng);
      // Queries of amplitude 3 give peaked as well as flat score distributions.
      const std::vector<float> q = random_vector(rng, kHeads * kHeadDim, 3.0f);
      for (int64_t h = 0; h < kHeads; ++h) {
        std::vector<float> out(kHeadDim, NAN), scores(n_ctx, NAN);
        attention_gqa_head(c.kv, c.table, n_ctx, q.data() + h * kHeadDim, h, kHeads, kKvHeads, kHeadDim,
                           static_cast<float>(scale), out.data(), scores.data());
        const std::vector<double> ref = naive_gqa(c.logical, n_ctx, q.data() + h * kHeadDim,
                                                  h / (kHeads / kKvHeads), kKvHeads, kHeadDim, scale);
        for (int64_t d = 0; d < kHeadDim; ++d)
          EXPECT_NEAR(out[d], ref[d], kTol) << "head " << h << " dim " << d;
      }
    }
  }
}

TEST(Attention, GqaQueryHeadsShareTheirGroupsKvHead) {
  // 8 query heads over 2 KV heads: heads 0-3 read KV head 0, heads 4-7 read KV head 1. Zero keys make the
  // softmax uniform, and KV head j's values are 10 (j + 1) + t at position t, so the output of a head
  // is 10 (j + 1) + (n_ctx - 1) / 2 in every dimension.
  constexpr int64_t kHeads = 8, kKvHeads = 2, kHeadDim = 8, kCtx = 9, kBlock = 4;
  std::mt19937 rng(12);
  PagedCache c = make_cache(kCtx, kBlock, 2 * kKvHeads * kHeadDim, rng);
  for (int64_t t = 0; t < kCtx; ++t) {
    float* slot = kv_slot(c.kv, c.table, t);
    std::fill_n(slot, kKvHeads * kHeadDim, 0.0f);
    for (int64_t j = 0; j < kKvHeads; ++j)
      std::fill_n(slot + (kKvHeads + j) * kHeadDim, kHeadDim, 10.0f * (j + 1) + static_cast<float>(t));
  }
  const std::vector<float> q = random_vector(rng, kHeadDim, 1.0f);
  for (int64_t h = 0; h < kHeads; ++h) {
    std::vector<float> out(kHeadDim), scores(kCtx);
    attention_gqa_head(c.kv, c.table, kCtx, q.data(), h, kHeads, kKvHeads, kHeadDim, 0.5f, out.data(),
                       scores.data());
    const float expected = 10.0f * (h / 4 + 1) + 4.0f;
    for (float v : out) EXPECT_NEAR(v, expected, 1e-5) << "head " << h;
  }
}

TEST(Attention, MlaHeadMatchesNaiveAbsorbedAttention) {
  constexpr int64_t kRank = 64, kRope = 16;
  const double scale = 0.3;
  std::mt19937 rng(13);
  for (int64_t block_size : {4, 16}) {
    for (int64_t n_ctx : {1, 7, 33}) {
      SCOPED_TRACE("block_size " + std::to_string(block_size) + " n_ctx " + std::to_string(n_ctx));
      const PagedCache c = make_cache(n_ctx, block_size, kRank + kRope, rng);
      const std::vector<float> q_lat = random_vector(rng, kRank, 1.0f);
      const std::vector<float> q_rope = random_vector(rng, kRope, 2.0f);
      std::vector<float> out(kRank, NAN), scores(n_ctx, NAN);
      attention_mla_head(c.kv, c.table, n_ctx, q_lat.data(), q_rope.data(), kRank, kRope,
                         static_cast<float>(scale), out.data(), scores.data());
      // scores = (q_lat . latent_t + q_rope . rope_t) * scale; out = sum_t p_t latent_t.
      std::vector<double> s(n_ctx);
      for (int64_t t = 0; t < n_ctx; ++t) {
        const float* slot = c.logical.data() + t * (kRank + kRope);
        double acc = 0.0;
        for (int64_t i = 0; i < kRank; ++i) acc += static_cast<double>(q_lat[i]) * slot[i];
        for (int64_t i = 0; i < kRope; ++i) acc += static_cast<double>(q_rope[i]) * slot[kRank + i];
        s[t] = acc * scale;
      }
      const std::vector<double> p = softmax(s);
      for (int64_t i = 0; i < kRank; ++i) {
        double ref = 0.0;
        for (int64_t t = 0; t < n_ctx; ++t) ref += p[t] * c.logical[t * (kRank + kRope) + i];
        EXPECT_NEAR(out[i], ref, kTol) << "latent dim " << i;
      }
    }
  }
}

}  // namespace
}  // namespace hearth
