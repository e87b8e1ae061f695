#pragma once
// What a checkpoint of a ModelSpec must contain: every tensor by its Hugging Face name, with shape
// and role, plus the numbers derived from them (parameter counts, KV-cache and weight bytes).
// All functions require a spec that passed validate(): its bounds keep every product below 2^63.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "model/dtype.h"
#include "model/model_spec.h"

namespace hearth {

enum class TensorRole : uint8_t {
  kEmbedding,  // model.embed_tokens.weight (and an MTP layer's own copy)
  kLmHead,     // lm_head.weight (absent when tied; MTP: shared_head.head)
  kNorm,       // every RMSNorm weight
  kAttention,  // attention projections (q/k/v/o, MLA q_a/q_b/kv_a/kv_b)
  kAttentionBias,
  kMlp,  // dense MLP gate/up/down
  kMlpBias,
  kRouter,         // mlp.gate.weight
  kRouterBias,     // mlp.gate.e_score_correction_bias (noaux_tc)
  kExpert,         // mlp.experts.E.{gate,up,down}_proj.weight
  kSharedExpert,   // mlp.shared_experts.{gate,up,down}_proj.weight
  kMtpProjection,  // MTP eh_proj.weight
  kScaleInv,       // F32 weight_scale_inv of an fp8 linear weight
};
std::string_view tensor_role_name(TensorRole r);

struct ExpectedTensor {
  std::string name;
  std::vector<uint64_t> shape;  // PyTorch order: [out_features, in_features] for linear weights
  TensorRole role = TensorRole::kNorm;
  int64_t layer = -1;        // -1: not inside model.layers
  bool optional = false;     // MTP layers: validated when present, skipped at load
  bool fp8_capable = false;  // a linear weight stored as F8_E4M3 + weight_scale_inv when quantized
};

// Every tensor of the spec, in checkpoint order (embedding, layers 0.., norm, lm_head, MTP layers).
// When spec.quantization is fp8, each fp8_capable weight is followed by its `.weight_scale_inv`
// (F32, shape fp8_scale_shape()). V3 (671B) lists about 92k tensors: callers handling untrusted
// configs check expected_tensor_count() first.
std::vector<ExpectedTensor> expected_tensors(const ModelSpec& spec);
uint64_t expected_tensor_count(const ModelSpec& spec);
// The same sequence, one tensor at a time in O(one layer) memory; stops at the first error `visit`
// returns (and returns it).
Status for_each_expected_tensor(const ModelSpec& spec,
                                const std::function<Status(const ExpectedTensor&)>& visit);

// [ceil(rows / block_rows), ceil(cols / block_cols)] for a 2-D weight.
std::vector<uint64_t> fp8_scale_shape(const std::vector<uint64_t>& weight_shape, const QuantizationSpec& q);

// The dtype a checkpoint of `spec` stores `t` in: fp8_capable weights F8_E4M3 (scales F32) when the
// spec is fp8-quantized, the router's e_score_correction_bias F32 (as DeepSeek-V3 ships it), the
// rest spec.torch_dtype.
DType stored_dtype(const ModelSpec& spec, const ExpectedTensor& t);

struct ParameterCounts {
  uint64_t total = 0;             // all main-model parameters (MTP and fp8 scales excluded)
  uint64_t active_per_token = 0;  // total - input embedding - routed experts not selected
  uint64_t embedding = 0;         // input embedding table
  uint64_t lm_head = 0;           // 0 when tied
  uint64_t attention = 0;         // projections and biases, all layers
  uint64_t dense_mlp = 0;
  uint64_t routed_experts = 0;  // all experts of all MoE layers
  uint64_t shared_experts = 0;
  uint64_t router = 0;  // gate weights and correction biases
  uint64_t norms = 0;
  uint64_t mtp = 0;  // optional MTP layers (not in total)
};
// Computed from layer shapes without listing tensors (cheap for any valid spec).
// The input embedding is not "active": a token reads one row of it (DeepSeek counts the same way:
// V3 671B total / 37B active, V2-Lite 15.7B / 2.4B).
ParameterCounts count_parameters(const ModelSpec& spec);

// KV-cache bytes per token over all layers: GQA 2 x kv_heads x head_dim x layers x elem_bytes;
// MLA (kv_lora_rank + qk_rope_head_dim) x layers x elem_bytes (the compressed latent and the rope key).
uint64_t kv_cache_bytes_per_token(const ModelSpec& spec, DType kv_dtype = DType::kBF16);

// Bytes of all main-model tensors as stored_dtype() stores them (fp8 scales included, MTP excluded).
uint64_t weights_bytes(const ModelSpec& spec);

}  // namespace hearth
