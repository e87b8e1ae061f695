#pragma once
// Attention of one query token over a paged KV cache (one layer). The cache holds tokens in
// fixed-size blocks; a sequence's block table lists its blocks in order, so position p lives in block
// table[p / block_size], slot p % block_size. Two slot layouts:
//   GQA: [K: n_kv_heads x head_dim][V: n_kv_heads x head_dim]
//   MLA: [latent: kv_lora_rank (normalised)][rope key: qk_rope_head_dim]  (absorbed form)
#include <cstdint>
#include <span>

namespace hearth {

struct PagedKvLayer {
  float* base = nullptr;     // slot s at base + s * token_stride
  int64_t token_stride = 0;  // floats per token
  int64_t block_size = 16;
};

inline float* kv_slot(const PagedKvLayer& kv, std::span<const int32_t> block_table, int64_t pos) {
  const int64_t block = block_table[static_cast<size_t>(pos / kv.block_size)];
  return kv.base + (block * kv.block_size + pos % kv.block_size) * kv.token_stride;
}

// One query head h over positions [0, n_ctx): out[head_dim] = softmax(q . K^T * scale) V, with K/V of
// kv head h / (n_heads / n_kv_heads). `scores`: n_ctx floats of scratch.
void attention_gqa_head(const PagedKvLayer& kv, std::span<const int32_t> block_table, int64_t n_ctx,
                        const float* q, int64_t head, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                        float scale, float* out, float* scores);

// One MLA head in absorbed form: scores = (q_lat . latent_t + q_rope . rope_t) * scale, out_lat =
// sum_t p_t latent_t (kv_lora_rank floats; the caller applies the value up-projection).
void attention_mla_head(const PagedKvLayer& kv, std::span<const int32_t> block_table, int64_t n_ctx,
                        const float* q_lat, const float* q_rope, int64_t kv_lora_rank, int64_t rope_dim,
                        float scale, float* out_lat, float* scores);

}  // namespace hearth
