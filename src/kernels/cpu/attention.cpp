#include "kernels/cpu/attention.h"

#include <algorithm>

#include "kernels/cpu/ops.h"

namespace hearth {

void attention_gqa_head(const PagedKvLayer& kv, std::span<const int32_t> block_table, int64_t n_ctx,
                        const float* q, int64_t head, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                        float scale, float* out, float* scores) {
  const int64_t kvh = head / (n_heads / n_kv_heads);
  const int64_t k_off = kvh * head_dim;
  const int64_t v_off = n_kv_heads * head_dim + kvh * head_dim;
  for (int64_t t = 0; t < n_ctx; ++t)
    scores[t] = dot(q, kv_slot(kv, block_table, t) + k_off, head_dim) * scale;
  softmax_inplace(scores, n_ctx);
  std::fill(out, out + head_dim, 0.0f);
  for (int64_t t = 0; t < n_ctx; ++t) axpy(scores[t], kv_slot(kv, block_table, t) + v_off, out, head_dim);
}

void attention_mla_head(const PagedKvLayer& kv, std::span<const int32_t> block_table, int64_t n_ctx,
                        const float* q_lat, const float* q_rope, int64_t kv_lora_rank, int64_t rope_dim,
                        float scale, float* out_lat, float* scores) {
  for (int64_t t = 0; t < n_ctx; ++t) {
    const float* slot = kv_slot(kv, block_table, t);
    scores[t] = (dot(q_lat, slot, kv_lora_rank) + dot(q_rope, slot + kv_lora_rank, rope_dim)) * scale;
  }
  softmax_inplace(scores, n_ctx);
  std::fill(out_lat, out_lat + kv_lora_rank, 0.0f);
  for (int64_t t = 0; t < n_ctx; ++t) axpy(scores[t], kv_slot(kv, block_table, t), out_lat, kv_lora_rank);
}

}  // namespace hearth
