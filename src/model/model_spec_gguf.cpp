// GGUF metadata -> ModelSpec, and Hugging Face tensor names -> llama.cpp tensor names, for the
// architectures llama.cpp calls qwen2, llama and deepseek2 (which covers DeepSeek V2 and V3).
#include <algorithm>
#include <cstdlib>
#include <limits>
#include <string>

#include <fmt/format.h>

#include "model/gguf.h"
#include "model/model_spec.h"

namespace hearth {
namespace {

// Typed optional access to `<arch>.<key>` metadata; errors name the full key.
class GgufKeys {
 public:
  GgufKeys(const GgufFile& f, std::string arch) : f_(f), prefix_(std::move(arch) + ".") {}

  std::string key(std::string_view k) const { return prefix_ + std::string(k); }
  bool has(std::string_view k) const { return f_.find(key(k)) != nullptr; }

  Status req_int(std::string_view k, int64_t* out) const {
    if (!has(k))
      return make_error(ErrorCode::kNotFound, "{}: metadata key '{}' is missing", f_.path(), key(k));
    return opt_int(k, out);
  }
  Status opt_int(std::string_view k, int64_t* out) const { return int_at(key(k), out); }
  Status int_at(const std::string& full, int64_t* out) const {
    if (f_.find(full) == nullptr) return Status::ok();
    HEARTH_ASSIGN_OR_RETURN(uint64_t v, f_.get_u64(full));
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return make_error(ErrorCode::kOutOfRange, "{}: metadata key '{}' = {} is too large", f_.path(), full,
                        v);
    }
    *out = static_cast<int64_t>(v);
    return Status::ok();
  }
  Status opt_double(std::string_view k, double* out) const {
    if (!has(k)) return Status::ok();
    HEARTH_ASSIGN_OR_RETURN(float v, f_.get_f32(key(k)));
    *out = v;
    return Status::ok();
  }
  Status opt_bool(std::string_view k, bool* out) const {
    if (!has(k)) return Status::ok();
    HEARTH_ASSIGN_OR_RETURN(*out, f_.get_bool(key(k)));
    return Status::ok();
  }

 private:
  const GgufFile& f_;
  std::string prefix_;
};

Status read_rope(const GgufFile& f, const GgufKeys& k, bool deepseek, ModelSpec* s) {
  HEARTH_RETURN_IF_ERROR(k.opt_double("rope.freq_base", &s->rope_theta));
  if (!k.has("rope.scaling.type")) return Status::ok();
  HEARTH_ASSIGN_OR_RETURN(std::string_view type, f.get_string(k.key("rope.scaling.type")));
  RopeScaling& r = s->rope_scaling;
  if (type == "none") return Status::ok();
  if (type == "linear") {
    r.type = RopeType::kLinear;
  } else if (type == "yarn") {
    r.type = RopeType::kYarn;
  } else {
    return make_error(ErrorCode::kUnsupported, "{}: {} '{}' is not supported (supported: none, linear, yarn)",
                      f.path(), k.key("rope.scaling.type"), type);
  }
  HEARTH_RETURN_IF_ERROR(k.opt_double("rope.scaling.factor", &r.factor));
  if (k.has("rope.scaling.original_context_length")) {
    int64_t orig = 0;
    HEARTH_RETURN_IF_ERROR(k.opt_int("rope.scaling.original_context_length", &orig));
    r.original_max_position_embeddings = orig;
  }
  if (r.type == RopeType::kYarn) {
    HEARTH_RETURN_IF_ERROR(k.opt_double("rope.scaling.yarn_beta_fast", &r.beta_fast));
    HEARTH_RETURN_IF_ERROR(k.opt_double("rope.scaling.yarn_beta_slow", &r.beta_slow));
    if (deepseek && k.has("rope.scaling.yarn_log_multiplier")) {
      // llama.cpp stores 0.1 * mscale_all_dim (DeepSeek's mscale equals it in V2 and V3).
      double mult = 0;
      HEARTH_RETURN_IF_ERROR(k.opt_double("rope.scaling.yarn_log_multiplier", &mult));
      r.mscale_all_dim = mult / 0.1;
      r.mscale = r.mscale_all_dim;
    }
  }
  return Status::ok();
}

Status read_deepseek(const GgufFile& f, const GgufKeys& k, ModelSpec* s) {
  MlaSpec m;
  HEARTH_RETURN_IF_ERROR(k.opt_int("attention.q_lora_rank", &m.q_lora_rank));
  HEARTH_RETURN_IF_ERROR(k.req_int("attention.kv_lora_rank", &m.kv_lora_rank));
  HEARTH_RETURN_IF_ERROR(k.req_int("rope.dimension_count", &m.qk_rope_head_dim));
  // Files converted for llama.cpp's absorbed MLA keep the per-head sizes in *_mla keys.
  int64_t key_len = 0, value_len = 0;
  HEARTH_RETURN_IF_ERROR(k.req_int(
      k.has("attention.key_length_mla") ? "attention.key_length_mla" : "attention.key_length", &key_len));
  HEARTH_RETURN_IF_ERROR(
      k.req_int(k.has("attention.value_length_mla") ? "attention.value_length_mla" : "attention.value_length",
                &value_len));
  if (key_len < m.qk_rope_head_dim || key_len > ModelSpecLimits::kMaxHeadDim) {
    return make_error(ErrorCode::kOutOfRange, "{}: {} ({}) must be in [rope.dimension_count ({}), {}]",
                      f.path(), k.key("attention.key_length"), key_len, m.qk_rope_head_dim,
                      ModelSpecLimits::kMaxHeadDim);
  }
  m.qk_nope_head_dim = key_len - m.qk_rope_head_dim;
  m.v_head_dim = value_len;
  s->mla = m;
  s->head_dim = key_len;

  int64_t experts = 0;
  HEARTH_RETURN_IF_ERROR(k.opt_int("expert_count", &experts));
  if (experts == 0) return Status::ok();
  MoeSpec e;
  e.n_routed_experts = experts;
  HEARTH_RETURN_IF_ERROR(k.req_int("expert_used_count", &e.num_experts_per_tok));
  HEARTH_RETURN_IF_ERROR(k.opt_int("expert_shared_count", &e.n_shared_experts));
  HEARTH_RETURN_IF_ERROR(k.req_int("expert_feed_forward_length", &e.moe_intermediate_size));
  HEARTH_RETURN_IF_ERROR(k.opt_int("leading_dense_block_count", &e.first_k_dense_replace));
  HEARTH_RETURN_IF_ERROR(k.opt_double("expert_weights_scale", &e.routed_scaling_factor));
  HEARTH_RETURN_IF_ERROR(k.opt_bool("expert_weights_norm", &e.norm_topk_prob));
  HEARTH_RETURN_IF_ERROR(k.opt_int("expert_group_count", &e.n_group));
  HEARTH_RETURN_IF_ERROR(k.opt_int("expert_group_used_count", &e.topk_group));
  e.n_group = std::max<int64_t>(e.n_group, 1);
  e.topk_group = std::max<int64_t>(e.topk_group, 1);
  e.scoring_func =
      s->architecture == Architecture::kDeepseekV3 ? ScoringFunc::kSigmoid : ScoringFunc::kSoftmax;
  if (f.find_tensor(fmt::format("blk.{}.exp_probs_b.bias", e.first_k_dense_replace)) != nullptr) {
    e.topk_method = TopkMethod::kNoauxTc;
  } else if (e.n_group > 1) {
    e.topk_method = TopkMethod::kGroupLimitedGreedy;
  } else {
    e.topk_method = TopkMethod::kGreedy;
  }
  s->moe = e;
  return Status::ok();
}

Status read_spec(const GgufFile& f, ModelSpec* s) {
  HEARTH_ASSIGN_OR_RETURN(std::string_view arch, f.architecture());
  const GgufKeys k(f, std::string(arch));
  bool deepseek = false;
  if (arch == "qwen2") {
    s->architecture = Architecture::kQwen2;
    s->attention_bias = true;
  } else if (arch == "llama") {
    s->architecture = Architecture::kLlama;
    s->attention_bias = f.find_tensor("blk.0.attn_q.bias") != nullptr;
  } else if (arch == "deepseek2") {
    deepseek = true;
    int64_t gating = 1;  // llama.cpp: 1 softmax, 2 sigmoid (DeepSeek-V3)
    HEARTH_RETURN_IF_ERROR(k.opt_int("expert_gating_func", &gating));
    if (gating != 1 && gating != 2) {
      return make_error(ErrorCode::kUnsupported,
                        "{}: deepseek2.expert_gating_func {} is not supported (1, 2)", f.path(), gating);
    }
    s->architecture = gating == 2 ? Architecture::kDeepseekV3 : Architecture::kDeepseekV2;
  } else {
    return make_error(ErrorCode::kUnsupported,
                      "{}: general.architecture '{}' is not supported (supported: qwen2, llama, deepseek2)",
                      f.path(), arch);
  }
  // llama.cpp's rope layouts: qwen2 keeps HF's halves (NEOX); llama's q/k weights are permuted at
  // conversion to the interleaved (NORM) layout; deepseek2 weights are interleaved as in HF.
  s->rope_interleave = s->architecture != Architecture::kQwen2;
  HEARTH_RETURN_IF_ERROR(k.req_int("embedding_length", &s->hidden_size));
  int64_t blocks = 0;
  HEARTH_RETURN_IF_ERROR(k.req_int("block_count", &blocks));
  int64_t nextn = 0;
  HEARTH_RETURN_IF_ERROR(k.opt_int("nextn_predict_layers", &nextn));
  if (nextn < 0 || nextn >= blocks) nextn = 0;
  s->num_hidden_layers = blocks - nextn;
  s->num_nextn_predict_layers = s->architecture == Architecture::kDeepseekV3 ? nextn : 0;
  HEARTH_RETURN_IF_ERROR(k.req_int("attention.head_count", &s->num_attention_heads));
  s->num_key_value_heads = s->num_attention_heads;
  HEARTH_RETURN_IF_ERROR(k.opt_int("attention.head_count_kv", &s->num_key_value_heads));
  HEARTH_RETURN_IF_ERROR(k.req_int("feed_forward_length", &s->intermediate_size));
  HEARTH_RETURN_IF_ERROR(k.req_int("context_length", &s->max_position_embeddings));
  HEARTH_RETURN_IF_ERROR(k.opt_double("attention.layer_norm_rms_epsilon", &s->rms_norm_eps));
  HEARTH_RETURN_IF_ERROR(read_rope(f, k, deepseek, s));

  const TensorView* embed = f.find_tensor("token_embd.weight");
  if (k.has("vocab_size")) {
    HEARTH_RETURN_IF_ERROR(k.opt_int("vocab_size", &s->vocab_size));
  } else if (const GgufValue* tokens = f.find("tokenizer.ggml.tokens"); tokens && tokens->is_array()) {
    s->vocab_size =
        static_cast<int64_t>(std::min<uint64_t>(tokens->size(), std::numeric_limits<int32_t>::max()));
  } else if (embed != nullptr && embed->shape.size() == 2) {
    s->vocab_size =
        static_cast<int64_t>(std::min<uint64_t>(embed->shape[0], std::numeric_limits<int32_t>::max()));
  }
  if (embed != nullptr) {
    if (embed->dtype == DType::kF32 || embed->dtype == DType::kF16) s->torch_dtype = embed->dtype;
  }
  s->tie_word_embeddings = f.find_tensor("output.weight") == nullptr;
  for (auto [key, ids] : {std::pair{"tokenizer.ggml.bos_token_id", &s->bos_token_ids},
                          std::pair{"tokenizer.ggml.eos_token_id", &s->eos_token_ids}}) {
    int64_t id = 0;
    if (f.find(key) == nullptr) continue;
    HEARTH_RETURN_IF_ERROR(k.int_at(key, &id));
    ids->assign(1, id);
  }
  if (deepseek) {
    HEARTH_RETURN_IF_ERROR(read_deepseek(f, k, s));
  } else if (k.has("attention.key_length")) {
    HEARTH_RETURN_IF_ERROR(k.opt_int("attention.key_length", &s->head_dim));
  } else {
    if (s->num_attention_heads <= 0 || s->hidden_size % s->num_attention_heads != 0) {
      return make_error(ErrorCode::kInvalidArgument, "{}: {} ({}) does not divide {} ({})", f.path(),
                        k.key("attention.head_count"), s->num_attention_heads, k.key("embedding_length"),
                        s->hidden_size);
    }
    s->head_dim = s->hidden_size / s->num_attention_heads;
  }
  return s->validate();
}

struct NameRule {
  std::string_view hf;    // suffix after "model.layers.N."
  std::string_view gguf;  // suffix after "blk.N."
};
constexpr NameRule kLayerRules[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.o_proj.bias", "attn_output.bias"},
    {"self_attn.q_a_proj.weight", "attn_q_a.weight"},
    {"self_attn.q_a_proj.bias", "attn_q_a.bias"},
    {"self_attn.q_a_layernorm.weight", "attn_q_a_norm.weight"},
    {"self_attn.q_b_proj.weight", "attn_q_b.weight"},
    {"self_attn.kv_a_proj_with_mqa.weight", "attn_kv_a_mqa.weight"},
    {"self_attn.kv_a_proj_with_mqa.bias", "attn_kv_a_mqa.bias"},
    {"self_attn.kv_a_layernorm.weight", "attn_kv_a_norm.weight"},
    {"self_attn.kv_b_proj.weight", "attn_kv_b.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"mlp.gate_proj.bias", "ffn_gate.bias"},
    {"mlp.up_proj.bias", "ffn_up.bias"},
    {"mlp.down_proj.bias", "ffn_down.bias"},
    {"mlp.gate.weight", "ffn_gate_inp.weight"},
    {"mlp.gate.e_score_correction_bias", "exp_probs_b.bias"},
    {"mlp.shared_experts.gate_proj.weight", "ffn_gate_shexp.weight"},
    {"mlp.shared_experts.up_proj.weight", "ffn_up_shexp.weight"},
    {"mlp.shared_experts.down_proj.weight", "ffn_down_shexp.weight"},
};

}  // namespace

Result<ModelSpec> model_spec_from_gguf(const GgufFile& gguf) {
  ModelSpec spec;
  Status st = read_spec(gguf, &spec);
  if (!st.is_ok()) {
    // Messages from validate() name only the field: say which file and that it came from GGUF.
    if (st.message().find(gguf.path()) == std::string::npos) {
      return st.with_context(fmt::format("{} (GGUF metadata)", gguf.path()));
    }
    return st;
  }
  return spec;
}

std::string gguf_tensor_name(std::string_view hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  constexpr std::string_view kLayers = "model.layers.";
  if (!hf.starts_with(kLayers)) return {};
  const std::string_view rest = hf.substr(kLayers.size());
  const size_t dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0) return {};
  const std::string_view layer = rest.substr(0, dot);
  std::string_view suffix = rest.substr(dot + 1);
  constexpr std::string_view kExperts = "mlp.experts.";
  if (suffix.starts_with(kExperts)) {  // stacked: blk.N.ffn_{gate,up,down}_exps.weight
    const std::string_view e = suffix.substr(kExperts.size());
    const size_t d = e.find('.');
    if (d == std::string_view::npos) return {};
    const std::string_view proj = e.substr(d + 1);
    if (proj == "gate_proj.weight") return fmt::format("blk.{}.ffn_gate_exps.weight", layer);
    if (proj == "up_proj.weight") return fmt::format("blk.{}.ffn_up_exps.weight", layer);
    if (proj == "down_proj.weight") return fmt::format("blk.{}.ffn_down_exps.weight", layer);
    return {};
  }
  for (const NameRule& r : kLayerRules) {
    if (suffix == r.hf) return fmt::format("blk.{}.{}", layer, r.gguf);
  }
  return {};
}

}  // namespace hearth
