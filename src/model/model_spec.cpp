#include "model/model_spec.h"

#include <array>
#include <cmath>

namespace hearth {
namespace {

struct ArchNames {
  Architecture arch;
  std::string_view hf_class;
  std::string_view model_type;
};
constexpr std::array<ArchNames, 4> kArchs = {{
    {Architecture::kQwen2, "Qwen2ForCausalLM", "qwen2"},
    {Architecture::kLlama, "LlamaForCausalLM", "llama"},
    {Architecture::kDeepseekV2, "DeepseekV2ForCausalLM", "deepseek_v2"},
    {Architecture::kDeepseekV3, "DeepseekV3ForCausalLM", "deepseek_v3"},
}};

Status out_of_range(std::string_view field, int64_t value, int64_t lo, int64_t hi) {
  return make_error(ErrorCode::kOutOfRange, "{}: {} is outside [{}, {}]", field, value, lo, hi);
}

Status check_range(std::string_view field, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi) return out_of_range(field, value, lo, hi);
  return Status::ok();
}

// Finite and in (lo, hi] (lo exclusive: zero is never a valid epsilon, theta or factor).
Status check_positive(std::string_view field, double value, double hi) {
  if (!std::isfinite(value) || value <= 0.0 || value > hi) {
    return make_error(ErrorCode::kOutOfRange, "{}: {} must be finite and in (0, {}]", field, value, hi);
  }
  return Status::ok();
}

Status validate_rope(const ModelSpec& s) {
  const RopeScaling& r = s.rope_scaling;
  HEARTH_RETURN_IF_ERROR(check_positive("rope_theta", s.rope_theta, ModelSpecLimits::kMaxRopeTheta));
  if (r.type == RopeType::kDefault) return Status::ok();
  HEARTH_RETURN_IF_ERROR(check_positive("rope_scaling.factor", r.factor, ModelSpecLimits::kMaxRopeFactor));
  if (r.original_max_position_embeddings) {
    HEARTH_RETURN_IF_ERROR(check_range("rope_scaling.original_max_position_embeddings",
                                       *r.original_max_position_embeddings, 1,
                                       ModelSpecLimits::kMaxPositions));
  }
  if (r.type == RopeType::kYarn) {
    HEARTH_RETURN_IF_ERROR(check_positive("rope_scaling.beta_fast", r.beta_fast, 1e6));
    HEARTH_RETURN_IF_ERROR(check_positive("rope_scaling.beta_slow", r.beta_slow, 1e6));
    if (r.beta_fast < r.beta_slow) {
      return make_error(ErrorCode::kOutOfRange, "rope_scaling.beta_fast ({}) is below beta_slow ({})",
                        r.beta_fast, r.beta_slow);
    }
    for (auto [name, v] : {std::pair<std::string_view, const std::optional<double>&>{"mscale", r.mscale},
                           {"mscale_all_dim", r.mscale_all_dim}}) {
      if (v && (!std::isfinite(*v) || *v < 0.0 || *v > 1e3)) {
        return make_error(ErrorCode::kOutOfRange, "rope_scaling.{}: {} must be finite and in [0, 1000]", name,
                          *v);
      }
    }
    if (r.attention_factor) {
      HEARTH_RETURN_IF_ERROR(check_positive("rope_scaling.attention_factor", *r.attention_factor, 1e3));
    }
  }
  if (r.type == RopeType::kLlama3) {
    if (!r.original_max_position_embeddings) {
      return make_error(ErrorCode::kInvalidArgument,
                        "rope_scaling.original_max_position_embeddings: required by rope type llama3");
    }
    HEARTH_RETURN_IF_ERROR(check_positive("rope_scaling.low_freq_factor", r.low_freq_factor, 1e6));
    HEARTH_RETURN_IF_ERROR(check_positive("rope_scaling.high_freq_factor", r.high_freq_factor, 1e6));
    if (r.high_freq_factor <= r.low_freq_factor) {
      return make_error(ErrorCode::kOutOfRange,
                        "rope_scaling.high_freq_factor ({}) must be above low_freq_factor ({})",
                        r.high_freq_factor, r.low_freq_factor);
    }
  }
  return Status::ok();
}

Status validate_mla(const ModelSpec& s) {
  const MlaSpec& m = *s.mla;
  using L = ModelSpecLimits;
  HEARTH_RETURN_IF_ERROR(check_range("q_lora_rank", m.q_lora_rank, 0, L::kMaxLoraRank));
  HEARTH_RETURN_IF_ERROR(check_range("kv_lora_rank", m.kv_lora_rank, 1, L::kMaxLoraRank));
  HEARTH_RETURN_IF_ERROR(check_range("qk_nope_head_dim", m.qk_nope_head_dim, 0, L::kMaxHeadDim));
  HEARTH_RETURN_IF_ERROR(check_range("qk_rope_head_dim", m.qk_rope_head_dim, 2, L::kMaxHeadDim));
  HEARTH_RETURN_IF_ERROR(check_range("v_head_dim", m.v_head_dim, 1, L::kMaxHeadDim));
  if (m.qk_rope_head_dim % 2 != 0) {
    return make_error(ErrorCode::kInvalidArgument, "qk_rope_head_dim: {} must be even (RoPE rotates pairs)",
                      m.qk_rope_head_dim);
  }
  if (s.head_dim != m.qk_nope_head_dim + m.qk_rope_head_dim) {
    return make_error(ErrorCode::kInvalidArgument,
                      "head_dim: {} must equal qk_nope_head_dim + qk_rope_head_dim ({}) for MLA", s.head_dim,
                      m.qk_nope_head_dim + m.qk_rope_head_dim);
  }
  return Status::ok();
}

Status validate_moe(const ModelSpec& s) {
  const MoeSpec& m = *s.moe;
  using L = ModelSpecLimits;
  HEARTH_RETURN_IF_ERROR(check_range("n_routed_experts", m.n_routed_experts, 1, L::kMaxExperts));
  HEARTH_RETURN_IF_ERROR(check_range("n_shared_experts", m.n_shared_experts, 0, L::kMaxSharedExperts));
  HEARTH_RETURN_IF_ERROR(check_range("num_experts_per_tok", m.num_experts_per_tok, 1, m.n_routed_experts));
  HEARTH_RETURN_IF_ERROR(
      check_range("moe_intermediate_size", m.moe_intermediate_size, 1, L::kMaxIntermediate));
  HEARTH_RETURN_IF_ERROR(
      check_range("first_k_dense_replace", m.first_k_dense_replace, 0, s.num_hidden_layers));
  HEARTH_RETURN_IF_ERROR(check_range("moe_layer_freq", m.moe_layer_freq, 1, s.num_hidden_layers));
  HEARTH_RETURN_IF_ERROR(check_range("n_group", m.n_group, 1, m.n_routed_experts));
  if (m.n_routed_experts % m.n_group != 0) {
    return make_error(ErrorCode::kInvalidArgument, "n_group: {} does not divide n_routed_experts ({})",
                      m.n_group, m.n_routed_experts);
  }
  HEARTH_RETURN_IF_ERROR(check_range("topk_group", m.topk_group, 1, m.n_group));
  const int64_t per_group = m.n_routed_experts / m.n_group;
  if (m.topk_method == TopkMethod::kNoauxTc && per_group < 2) {
    return make_error(ErrorCode::kInvalidArgument,
                      "n_group: noaux_tc scores each group by its top-2 experts, so every group needs at "
                      "least 2 experts (n_routed_experts {} / n_group {})",
                      m.n_routed_experts, m.n_group);
  }
  if (m.topk_method != TopkMethod::kGreedy && m.num_experts_per_tok > m.topk_group * per_group) {
    return make_error(ErrorCode::kOutOfRange,
                      "num_experts_per_tok: {} exceeds the {} experts of the topk_group={} groups kept",
                      m.num_experts_per_tok, m.topk_group * per_group, m.topk_group);
  }
  HEARTH_RETURN_IF_ERROR(check_positive("routed_scaling_factor", m.routed_scaling_factor, 1000.0));
  return Status::ok();
}

}  // namespace

std::string_view architecture_name(Architecture a) {
  return kArchs[static_cast<size_t>(a)].hf_class;
}

std::string_view architecture_model_type(Architecture a) {
  return kArchs[static_cast<size_t>(a)].model_type;
}

std::optional<Architecture> architecture_from_name(std::string_view hf_class_name) {
  for (const auto& a : kArchs) {
    if (a.hf_class == hf_class_name) return a.arch;
  }
  return std::nullopt;
}

std::optional<Architecture> architecture_from_model_type(std::string_view model_type) {
  for (const auto& a : kArchs) {
    if (a.model_type == model_type) return a.arch;
  }
  return std::nullopt;
}

std::string supported_architectures_list() {
  std::string out;
  for (const auto& a : kArchs) {
    if (!out.empty()) out += ", ";
    out += a.hf_class;
  }
  return out;
}

std::string_view rope_type_name(RopeType t) {
  switch (t) {
    case RopeType::kDefault: return "default";
    case RopeType::kLinear: return "linear";
    case RopeType::kDynamic: return "dynamic";
    case RopeType::kYarn: return "yarn";
    case RopeType::kLlama3: return "llama3";
  }
  return "default";
}

std::string_view topk_method_name(TopkMethod m) {
  switch (m) {
    case TopkMethod::kGreedy: return "greedy";
    case TopkMethod::kGroupLimitedGreedy: return "group_limited_greedy";
    case TopkMethod::kNoauxTc: return "noaux_tc";
  }
  return "greedy";
}

std::string_view scoring_func_name(ScoringFunc f) {
  return f == ScoringFunc::kSigmoid ? "sigmoid" : "softmax";
}

std::string_view torch_dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "float32";
    case DType::kF16: return "float16";
    case DType::kBF16: return "bfloat16";
    default: return "unsupported";
  }
}

bool ModelSpec::is_moe_layer(int64_t layer) const {
  if (!moe) return false;
  return layer >= moe->first_k_dense_replace && layer % moe->moe_layer_freq == 0;
}

int64_t ModelSpec::gqa_group() const {
  if (is_mla() || num_key_value_heads <= 0) return 1;
  return num_attention_heads / num_key_value_heads;
}

Status ModelSpec::validate() const {
  using L = ModelSpecLimits;
  const bool deepseek =
      architecture == Architecture::kDeepseekV2 || architecture == Architecture::kDeepseekV3;
  HEARTH_RETURN_IF_ERROR(check_range("hidden_size", hidden_size, 1, L::kMaxHidden));
  HEARTH_RETURN_IF_ERROR(check_range("num_hidden_layers", num_hidden_layers, 1, L::kMaxLayers));
  HEARTH_RETURN_IF_ERROR(check_range("num_attention_heads", num_attention_heads, 1, L::kMaxHeads));
  HEARTH_RETURN_IF_ERROR(check_range("intermediate_size", intermediate_size, 1, L::kMaxIntermediate));
  HEARTH_RETURN_IF_ERROR(check_range("vocab_size", vocab_size, 1, L::kMaxVocab));
  HEARTH_RETURN_IF_ERROR(
      check_range("max_position_embeddings", max_position_embeddings, 1, L::kMaxPositions));
  HEARTH_RETURN_IF_ERROR(check_positive("rms_norm_eps", rms_norm_eps, 0.5));
  HEARTH_RETURN_IF_ERROR(validate_rope(*this));
  if (torch_dtype != DType::kF32 && torch_dtype != DType::kF16 && torch_dtype != DType::kBF16) {
    return make_error(ErrorCode::kUnsupported, "torch_dtype: {} is not one of float32, float16, bfloat16",
                      dtype_name(torch_dtype));
  }
  for (const auto* ids : {&bos_token_ids, &eos_token_ids}) {
    for (int64_t id : *ids) {
      HEARTH_RETURN_IF_ERROR(
          check_range(ids == &bos_token_ids ? "bos_token_id" : "eos_token_id", id, 0, vocab_size - 1));
    }
  }
  if (deepseek != mla.has_value()) {
    return make_error(ErrorCode::kInvalidArgument, "{}: MLA fields (kv_lora_rank, ...) {}",
                      architecture_name(architecture),
                      deepseek ? "are required" : "belong to DeepSeek architectures only");
  }
  if (!deepseek && moe) {
    return make_error(ErrorCode::kInvalidArgument, "n_routed_experts: {} has no mixture of experts",
                      architecture_name(architecture));
  }
  if (deepseek) {
    HEARTH_RETURN_IF_ERROR(validate_mla(*this));
  } else {
    HEARTH_RETURN_IF_ERROR(check_range("num_key_value_heads", num_key_value_heads, 1, num_attention_heads));
    if (num_attention_heads % num_key_value_heads != 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "num_key_value_heads: {} does not divide num_attention_heads ({})",
                        num_key_value_heads, num_attention_heads);
    }
    HEARTH_RETURN_IF_ERROR(check_range("head_dim", head_dim, 2, L::kMaxHeadDim));
    if (head_dim % 2 != 0) {
      return make_error(ErrorCode::kInvalidArgument, "head_dim: {} must be even (RoPE rotates pairs)",
                        head_dim);
    }
  }
  if (moe) HEARTH_RETURN_IF_ERROR(validate_moe(*this));
  HEARTH_RETURN_IF_ERROR(
      check_range("num_nextn_predict_layers", num_nextn_predict_layers, 0, L::kMaxMtpLayers));
  if (num_nextn_predict_layers > 0 && architecture != Architecture::kDeepseekV3) {
    return make_error(ErrorCode::kInvalidArgument,
                      "num_nextn_predict_layers: {} has no multi-token-prediction layers",
                      architecture_name(architecture));
  }
  if (quantization.method == QuantMethod::kFp8) {
    if (quantization.fmt != "e4m3") {
      return make_error(ErrorCode::kUnsupported, "quantization_config.fmt: '{}' is not supported (e4m3)",
                        quantization.fmt);
    }
    HEARTH_RETURN_IF_ERROR(check_range("quantization_config.weight_block_size[0]", quantization.block_rows, 1,
                                       L::kMaxQuantBlock));
    HEARTH_RETURN_IF_ERROR(check_range("quantization_config.weight_block_size[1]", quantization.block_cols, 1,
                                       L::kMaxQuantBlock));
    if (quantization.activation_scheme != "dynamic" && quantization.activation_scheme != "static") {
      return make_error(ErrorCode::kUnsupported,
                        "quantization_config.activation_scheme: '{}' is not dynamic or static",
                        quantization.activation_scheme);
    }
  }
  return Status::ok();
}

}  // namespace hearth
