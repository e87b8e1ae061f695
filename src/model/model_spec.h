#pragma once
// ModelSpec: the shape of a model, read from a Hugging Face config.json (model_spec_config.cpp) or
// from GGUF metadata (model_spec_gguf.cpp). A plain struct with defaults; validate() enforces the
// bounds listed in docs/models.md so nothing derived from an untrusted config can overflow.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/status.h"
#include "model/dtype.h"

namespace hearth {

enum class Architecture : uint8_t { kQwen2, kLlama, kDeepseekV2, kDeepseekV3 };

// "Qwen2ForCausalLM", "LlamaForCausalLM", "DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM".
std::string_view architecture_name(Architecture a);
// HF model_type: "qwen2", "llama", "deepseek_v2", "deepseek_v3".
std::string_view architecture_model_type(Architecture a);
std::optional<Architecture> architecture_from_name(std::string_view hf_class_name);
std::optional<Architecture> architecture_from_model_type(std::string_view model_type);
// "Qwen2ForCausalLM, LlamaForCausalLM, ..." for error messages.
std::string supported_architectures_list();

enum class RopeType : uint8_t { kDefault, kLinear, kDynamic, kYarn, kLlama3 };
std::string_view rope_type_name(RopeType t);  // "default", "linear", "dynamic", "yarn", "llama3"

// RoPE frequency scaling, from `rope_scaling` (transformers < 5) or `rope_parameters` (5.x).
// Only the fields of `type` are meaningful; the others keep their defaults.
struct RopeScaling {
  RopeType type = RopeType::kDefault;
  double factor = 1.0;                                      // linear, dynamic, yarn, llama3
  std::optional<int64_t> original_max_position_embeddings;  // dynamic, yarn, llama3
  double beta_fast = 32.0;                                  // yarn
  double beta_slow = 1.0;                                   // yarn
  std::optional<double> mscale;                             // yarn (DeepSeek)
  std::optional<double> mscale_all_dim;                     // yarn (DeepSeek)
  std::optional<double> attention_factor;                   // yarn
  double low_freq_factor = 1.0;                             // llama3
  double high_freq_factor = 4.0;                            // llama3
};

// Multi-head latent attention (DeepSeek V2/V3).
struct MlaSpec {
  int64_t q_lora_rank = 0;  // 0: no query compression (q_proj instead of q_a_proj/q_b_proj)
  int64_t kv_lora_rank = 512;
  int64_t qk_nope_head_dim = 128;
  int64_t qk_rope_head_dim = 64;
  int64_t v_head_dim = 128;
};

enum class TopkMethod : uint8_t { kGreedy, kGroupLimitedGreedy, kNoauxTc };
enum class ScoringFunc : uint8_t { kSoftmax, kSigmoid };
std::string_view topk_method_name(TopkMethod m);    // "greedy", "group_limited_greedy", "noaux_tc"
std::string_view scoring_func_name(ScoringFunc f);  // "softmax", "sigmoid"

// DeepSeek mixture of experts. Layer l is an MoE layer when l >= first_k_dense_replace and
// l % moe_layer_freq == 0; the others use the dense MLP of width intermediate_size.
struct MoeSpec {
  int64_t n_routed_experts = 0;
  int64_t n_shared_experts = 0;  // fused into one MLP of width n_shared * moe_intermediate_size
  int64_t num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  int64_t first_k_dense_replace = 0;
  int64_t moe_layer_freq = 1;
  int64_t n_group = 1;
  int64_t topk_group = 1;
  TopkMethod topk_method = TopkMethod::kGreedy;
  ScoringFunc scoring_func = ScoringFunc::kSoftmax;
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0;
};

enum class QuantMethod : uint8_t { kNone, kFp8 };

// `quantization_config`: DeepSeek-V3's block-wise FP8 (e4m3 weights, f32 `weight_scale_inv` per
// block_rows x block_cols block of each linear weight).
struct QuantizationSpec {
  QuantMethod method = QuantMethod::kNone;
  std::string fmt = "e4m3";
  int64_t block_rows = 128;
  int64_t block_cols = 128;
  std::string activation_scheme = "dynamic";
};

struct ModelSpec {
  Architecture architecture = Architecture::kLlama;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // GQA; MLA models carry it but do not use it
  // Per-head width of q/k/v for GQA models (config "head_dim" or hidden / heads). For MLA models:
  // qk_nope_head_dim + qk_rope_head_dim (the query/key head width); config "head_dim" is ignored.
  int64_t head_dim = 0;
  int64_t intermediate_size = 0;  // dense MLP width
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  // The rotary part of q/k is stored interleaved (pairs (0,1), (2,3), ...) rather than as halves
  // (rotate_half). DeepSeek V2/V3 checkpoints are interleaved (transformers 5 writes
  // `rope_interleave: true` for V3); Qwen2/Llama use halves. Config key `rope_interleave` overrides.
  bool rope_interleave = false;
  bool tie_word_embeddings = false;
  // Biases: Qwen2 has q/k/v biases always; Llama has q/k/v/o biases when attention_bias and
  // gate/up/down biases when mlp_bias; DeepSeek has q_a(or q)/kv_a/o biases when attention_bias.
  bool attention_bias = false;
  bool mlp_bias = false;
  DType torch_dtype = DType::kBF16;  // "torch_dtype" or transformers-5 "dtype"
  std::vector<int64_t> bos_token_ids;
  std::vector<int64_t> eos_token_ids;
  std::optional<MlaSpec> mla;            // set for DeepSeek V2/V3
  std::optional<MoeSpec> moe;            // set when n_routed_experts > 0
  int64_t num_nextn_predict_layers = 0;  // MTP layers after the main ones (optional at load)
  QuantizationSpec quantization;

  bool is_mla() const { return mla.has_value(); }
  bool is_moe() const { return moe.has_value(); }
  bool is_moe_layer(int64_t layer) const;
  // The number of query/key heads sharing one cached K/V head (1 for MLA: every head is separate).
  int64_t gqa_group() const;

  // Checks every field against the bounds of docs/models.md; the message names the field.
  Status validate() const;
};

// Bounds enforced by validate() (documented in docs/models.md).
struct ModelSpecLimits {
  static constexpr int64_t kMaxHidden = 65536;
  static constexpr int64_t kMaxLayers = 1024;
  static constexpr int64_t kMaxHeads = 1024;
  static constexpr int64_t kMaxHeadDim = 4096;
  static constexpr int64_t kMaxIntermediate = 1 << 20;
  static constexpr int64_t kMaxVocab = 1 << 24;
  static constexpr int64_t kMaxPositions = 1 << 24;
  static constexpr int64_t kMaxLoraRank = 65536;
  static constexpr int64_t kMaxExperts = 1024;
  static constexpr int64_t kMaxSharedExperts = 64;
  static constexpr int64_t kMaxMtpLayers = 16;
  static constexpr int64_t kMaxQuantBlock = 4096;
  static constexpr double kMaxRopeTheta = 1e12;
  static constexpr double kMaxRopeFactor = 1024.0;
  static constexpr uint64_t kMaxConfigBytes = 1 << 20;
  static constexpr int kMaxConfigDepth = 32;
};

// Parses config.json text. Runs check_json_limits first; `what` names the file in messages
// ("model/config.json"). The result is validated.
Result<ModelSpec> parse_model_spec(std::string_view config_json, std::string_view what = "config.json");
// Reads and parses a config.json file.
Result<ModelSpec> load_model_spec(const std::string& config_path);

// The config.json a Hugging Face checkpoint of this spec carries (architectures, model_type,
// torch_dtype, rope_scaling, quantization_config, ...). parse_model_spec() reads it back equal.
nlohmann::json model_spec_to_hf_config(const ModelSpec& spec);

class GgufFile;
// GGUF metadata (`<arch>.block_count`, `.embedding_length`, `.attention.head_count`, ...) of the
// llama.cpp architectures qwen2, llama and deepseek2 (V3 when expert_gating_func is sigmoid).
// The result is validated; errors name the file and the key.
Result<ModelSpec> model_spec_from_gguf(const GgufFile& gguf);
// "model.layers.3.self_attn.q_a_proj.weight" -> "blk.3.attn_q_a.weight". Routed experts map to the
// layer's stacked tensor ("blk.3.ffn_gate_exps.weight"); "" when llama.cpp has no such tensor.
std::string gguf_tensor_name(std::string_view hf_name);

// Dtype names as written in config.json: "bfloat16", "float16", "float32".
std::string_view torch_dtype_name(DType t);

}  // namespace hearth
