#pragma once
// Rotary position embeddings: the inverse frequencies of every RoPE type hearth reads (default,
// linear, dynamic at its base length, YaRN with DeepSeek's mscale, Llama-3), computed as
// transformers 5 does in float32, and their application to query/key heads.
#include <cstdint>
#include <vector>

#include "model/model_spec.h"

namespace hearth {

struct RopeTable {
  int64_t rot_dim = 0;            // rotated width per head (qk_rope_head_dim for MLA, head_dim otherwise)
  std::vector<float> inv_freq;    // rot_dim / 2
  float attention_factor = 1.0f;  // multiplies cos and sin (YaRN)
  bool interleave = false;        // pairs (2i, 2i+1) instead of (i, i + rot_dim / 2)
};

RopeTable make_rope_table(const ModelSpec& spec);

// The softmax scale of attention: head_dim^-0.5, times YaRN's mscale(factor, mscale_all_dim)^2 for
// DeepSeek models (DeepSeek's reference code and transformers' DeepseekV3Attention).
float attention_softmax_scale(const ModelSpec& spec);

// cos/sin for one position: cs[2 * i] = cos, cs[2 * i + 1] = sin for i < rot_dim / 2, both already
// multiplied by the attention factor.
void rope_cos_sin(const RopeTable& rope, int64_t pos, float* cs);
// Rotates the first rot_dim elements of each of n_heads heads (head h at x + h * head_stride).
void apply_rope(const RopeTable& rope, const float* cs, float* x, int64_t n_heads, int64_t head_stride);

}  // namespace hearth
