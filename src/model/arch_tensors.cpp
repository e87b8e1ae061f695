#include "model/arch_tensors.h"

#include <fmt/format.h>

namespace hearth {
namespace {

using Shape = std::vector<uint64_t>;

// One tensor of a decoder layer, named relative to "model.layers.N.". Routed-expert templates stand
// for n_routed_experts tensors "mlp.experts.E.<suffix>".
struct Template {
  std::string suffix;
  Shape shape;
  TensorRole role;
  bool fp8_capable = false;
};

uint64_t u(int64_t v) {
  return static_cast<uint64_t>(v);
}

uint64_t numel(const Shape& s) {
  uint64_t n = 1;
  for (uint64_t d : s) n *= d;
  return n;
}

void add(std::vector<Template>* out, std::string suffix, Shape shape, TensorRole role, bool fp8 = false) {
  out->push_back({std::move(suffix), std::move(shape), role, fp8});
}

void mlp_templates(std::string_view prefix, uint64_t hidden, uint64_t width, TensorRole role, bool bias,
                   std::vector<Template>* out) {
  const TensorRole bias_role = TensorRole::kMlpBias;
  add(out, fmt::format("{}gate_proj.weight", prefix), {width, hidden}, role, true);
  if (bias) add(out, fmt::format("{}gate_proj.bias", prefix), {width}, bias_role);
  add(out, fmt::format("{}up_proj.weight", prefix), {width, hidden}, role, true);
  if (bias) add(out, fmt::format("{}up_proj.bias", prefix), {width}, bias_role);
  add(out, fmt::format("{}down_proj.weight", prefix), {hidden, width}, role, true);
  if (bias) add(out, fmt::format("{}down_proj.bias", prefix), {hidden}, bias_role);
}

void gqa_templates(const ModelSpec& s, std::vector<Template>* out) {
  const uint64_t h = u(s.hidden_size);
  const uint64_t q = u(s.num_attention_heads * s.head_dim);
  const uint64_t kv = u(s.num_key_value_heads * s.head_dim);
  const bool qkv_bias = s.attention_bias;  // Qwen2: always; Llama: attention_bias
  const bool o_bias = s.attention_bias && s.architecture == Architecture::kLlama;
  const auto A = TensorRole::kAttention;
  const auto B = TensorRole::kAttentionBias;
  add(out, "self_attn.q_proj.weight", {q, h}, A, true);
  if (qkv_bias) add(out, "self_attn.q_proj.bias", {q}, B);
  add(out, "self_attn.k_proj.weight", {kv, h}, A, true);
  if (qkv_bias) add(out, "self_attn.k_proj.bias", {kv}, B);
  add(out, "self_attn.v_proj.weight", {kv, h}, A, true);
  if (qkv_bias) add(out, "self_attn.v_proj.bias", {kv}, B);
  add(out, "self_attn.o_proj.weight", {h, q}, A, true);
  if (o_bias) add(out, "self_attn.o_proj.bias", {h}, B);
}

void mla_templates(const ModelSpec& s, std::vector<Template>* out) {
  const MlaSpec& m = *s.mla;
  const uint64_t h = u(s.hidden_size);
  const uint64_t heads = u(s.num_attention_heads);
  const uint64_t q_out = heads * u(m.qk_nope_head_dim + m.qk_rope_head_dim);
  const bool bias = s.attention_bias;
  const auto A = TensorRole::kAttention;
  const auto B = TensorRole::kAttentionBias;
  if (m.q_lora_rank > 0) {
    const uint64_t r = u(m.q_lora_rank);
    add(out, "self_attn.q_a_proj.weight", {r, h}, A, true);
    if (bias) add(out, "self_attn.q_a_proj.bias", {r}, B);
    add(out, "self_attn.q_a_layernorm.weight", {r}, TensorRole::kNorm);
    add(out, "self_attn.q_b_proj.weight", {q_out, r}, A, true);
  } else {
    add(out, "self_attn.q_proj.weight", {q_out, h}, A, true);
  }
  const uint64_t kv_a = u(m.kv_lora_rank + m.qk_rope_head_dim);
  add(out, "self_attn.kv_a_proj_with_mqa.weight", {kv_a, h}, A, true);
  if (bias) add(out, "self_attn.kv_a_proj_with_mqa.bias", {kv_a}, B);
  add(out, "self_attn.kv_a_layernorm.weight", {u(m.kv_lora_rank)}, TensorRole::kNorm);
  add(out, "self_attn.kv_b_proj.weight", {heads * u(m.qk_nope_head_dim + m.v_head_dim), u(m.kv_lora_rank)}, A,
      true);
  add(out, "self_attn.o_proj.weight", {h, heads * u(m.v_head_dim)}, A, true);
  if (bias) add(out, "self_attn.o_proj.bias", {h}, B);
}

// The tensors of decoder layer `layer` (an MTP layer when layer >= num_hidden_layers).
std::vector<Template> layer_templates(const ModelSpec& s, int64_t layer) {
  std::vector<Template> out;
  const uint64_t h = u(s.hidden_size);
  const bool mtp = layer >= s.num_hidden_layers;
  if (mtp) {
    add(&out, "embed_tokens.weight", {u(s.vocab_size), h}, TensorRole::kEmbedding);
    add(&out, "enorm.weight", {h}, TensorRole::kNorm);
    add(&out, "hnorm.weight", {h}, TensorRole::kNorm);
    add(&out, "eh_proj.weight", {h, 2 * h}, TensorRole::kMtpProjection);
  }
  add(&out, "input_layernorm.weight", {h}, TensorRole::kNorm);
  if (s.is_mla()) {
    mla_templates(s, &out);
  } else {
    gqa_templates(s, &out);
  }
  add(&out, "post_attention_layernorm.weight", {h}, TensorRole::kNorm);
  if (s.is_moe_layer(layer)) {
    const MoeSpec& m = *s.moe;
    const uint64_t e = u(m.n_routed_experts);
    add(&out, "mlp.gate.weight", {e, h}, TensorRole::kRouter);
    if (m.topk_method == TopkMethod::kNoauxTc) {
      add(&out, "mlp.gate.e_score_correction_bias", {e}, TensorRole::kRouterBias);
    }
    mlp_templates("", h, u(m.moe_intermediate_size), TensorRole::kExpert, false, &out);
    if (m.n_shared_experts > 0) {
      mlp_templates("mlp.shared_experts.", h, u(m.moe_intermediate_size * m.n_shared_experts),
                    TensorRole::kSharedExpert, false, &out);
    }
  } else {
    mlp_templates("mlp.", h, u(s.intermediate_size), TensorRole::kMlp, s.mlp_bias, &out);
  }
  if (mtp) {
    add(&out, "shared_head.norm.weight", {h}, TensorRole::kNorm);
    add(&out, "shared_head.head.weight", {u(s.vocab_size), h}, TensorRole::kLmHead);
  }
  return out;
}

bool quantized(const ModelSpec& s) {
  return s.quantization.method == QuantMethod::kFp8;
}

uint64_t multiplicity(const ModelSpec& s, const Template& t) {
  return t.role == TensorRole::kExpert ? u(s.moe->n_routed_experts) : 1;
}

// Visits `t` (and its scale_inv when quantized).
Status visit_expected(const ModelSpec& s, std::string name, const Template& t, int64_t layer, bool optional,
                      const std::function<Status(const ExpectedTensor&)>& visit) {
  ExpectedTensor e{std::move(name), t.shape, t.role, layer, optional, t.fp8_capable};
  HEARTH_RETURN_IF_ERROR(visit(e));
  if (e.fp8_capable && quantized(s)) {
    e.name.append("_scale_inv");  // ".weight" -> ".weight_scale_inv"
    e.shape = fp8_scale_shape(e.shape, s.quantization);
    e.role = TensorRole::kScaleInv;
    e.fp8_capable = false;
    HEARTH_RETURN_IF_ERROR(visit(e));
  }
  return Status::ok();
}

}  // namespace

std::string_view tensor_role_name(TensorRole r) {
  switch (r) {
    case TensorRole::kEmbedding: return "embedding";
    case TensorRole::kLmHead: return "lm_head";
    case TensorRole::kNorm: return "norm";
    case TensorRole::kAttention: return "attention";
    case TensorRole::kAttentionBias: return "attention_bias";
    case TensorRole::kMlp: return "mlp";
    case TensorRole::kMlpBias: return "mlp_bias";
    case TensorRole::kRouter: return "router";
    case TensorRole::kRouterBias: return "router_bias";
    case TensorRole::kExpert: return "expert";
    case TensorRole::kSharedExpert: return "shared_expert";
    case TensorRole::kMtpProjection: return "mtp_projection";
    case TensorRole::kScaleInv: return "scale_inv";
  }
  return "unknown";
}

std::vector<uint64_t> fp8_scale_shape(const std::vector<uint64_t>& w, const QuantizationSpec& q) {
  if (w.size() != 2 || q.block_rows <= 0 || q.block_cols <= 0) return {};
  const uint64_t br = u(q.block_rows);
  const uint64_t bc = u(q.block_cols);
  return {(w[0] + br - 1) / br, (w[1] + bc - 1) / bc};
}

DType stored_dtype(const ModelSpec& s, const ExpectedTensor& t) {
  if (t.role == TensorRole::kScaleInv || t.role == TensorRole::kRouterBias) return DType::kF32;
  if (t.fp8_capable && quantized(s)) return DType::kF8_E4M3;
  return s.torch_dtype;
}

Status for_each_expected_tensor(const ModelSpec& s,
                                const std::function<Status(const ExpectedTensor&)>& visit) {
  const uint64_t h = u(s.hidden_size);
  const uint64_t v = u(s.vocab_size);
  HEARTH_RETURN_IF_ERROR(
      visit_expected(s, "model.embed_tokens.weight", {"", {v, h}, TensorRole::kEmbedding}, -1, false, visit));
  const int64_t all_layers = s.num_hidden_layers + s.num_nextn_predict_layers;
  for (int64_t layer = 0; layer < all_layers; ++layer) {
    const bool optional = layer >= s.num_hidden_layers;
    const std::string prefix = fmt::format("model.layers.{}.", layer);
    for (const Template& t : layer_templates(s, layer)) {
      if (t.role != TensorRole::kExpert) {
        HEARTH_RETURN_IF_ERROR(visit_expected(s, prefix + t.suffix, t, layer, optional, visit));
        continue;
      }
      for (int64_t e = 0; e < s.moe->n_routed_experts; ++e) {
        HEARTH_RETURN_IF_ERROR(visit_expected(s, fmt::format("{}mlp.experts.{}.{}", prefix, e, t.suffix), t,
                                              layer, optional, visit));
      }
    }
    if (layer + 1 == s.num_hidden_layers) {
      HEARTH_RETURN_IF_ERROR(
          visit_expected(s, "model.norm.weight", {"", {h}, TensorRole::kNorm}, -1, false, visit));
      if (!s.tie_word_embeddings) {
        HEARTH_RETURN_IF_ERROR(
            visit_expected(s, "lm_head.weight", {"", {v, h}, TensorRole::kLmHead}, -1, false, visit));
      }
    }
  }
  return Status::ok();
}

std::vector<ExpectedTensor> expected_tensors(const ModelSpec& s) {
  std::vector<ExpectedTensor> out;
  out.reserve(expected_tensor_count(s));
  Status st = for_each_expected_tensor(s, [&out](const ExpectedTensor& t) {
    out.push_back(t);
    return Status::ok();
  });
  (void)st;  // the visitor never fails
  return out;
}

uint64_t expected_tensor_count(const ModelSpec& s) {
  const uint64_t per_weight = quantized(s) ? 2 : 1;
  uint64_t n = 2 + (s.tie_word_embeddings ? 0 : 1);  // embed, final norm, lm_head
  const int64_t all_layers = s.num_hidden_layers + s.num_nextn_predict_layers;
  for (int64_t layer = 0; layer < all_layers; ++layer) {
    for (const Template& t : layer_templates(s, layer)) {
      n += multiplicity(s, t) * (t.fp8_capable ? per_weight : 1);
    }
  }
  return n;
}

ParameterCounts count_parameters(const ModelSpec& s) {
  ParameterCounts c;
  const uint64_t h = u(s.hidden_size);
  const uint64_t v = u(s.vocab_size);
  c.embedding = v * h;
  c.lm_head = s.tie_word_embeddings ? 0 : v * h;
  c.norms = h;  // model.norm
  uint64_t routed_active = 0;
  const int64_t all_layers = s.num_hidden_layers + s.num_nextn_predict_layers;
  for (int64_t layer = 0; layer < all_layers; ++layer) {
    const bool mtp = layer >= s.num_hidden_layers;
    for (const Template& t : layer_templates(s, layer)) {
      const uint64_t n = numel(t.shape) * multiplicity(s, t);
      if (mtp) {
        c.mtp += n;
        continue;
      }
      switch (t.role) {
        case TensorRole::kAttention:
        case TensorRole::kAttentionBias: c.attention += n; break;
        case TensorRole::kMlp:
        case TensorRole::kMlpBias: c.dense_mlp += n; break;
        case TensorRole::kRouter:
        case TensorRole::kRouterBias: c.router += n; break;
        case TensorRole::kExpert:
          c.routed_experts += n;
          routed_active += numel(t.shape) * u(s.moe->num_experts_per_tok);
          break;
        case TensorRole::kSharedExpert: c.shared_experts += n; break;
        case TensorRole::kNorm: c.norms += n; break;
        default: break;
      }
    }
  }
  c.total = c.embedding + c.lm_head + c.attention + c.dense_mlp + c.routed_experts + c.shared_experts +
            c.router + c.norms;
  // Tied weights: the one matrix is read as the output head, so it stays active.
  const uint64_t inactive_embedding = s.tie_word_embeddings ? 0 : c.embedding;
  c.active_per_token = c.total - inactive_embedding - c.routed_experts + routed_active;
  return c;
}

uint64_t kv_cache_bytes_per_token(const ModelSpec& s, DType kv_dtype) {
  const uint64_t elem = dtype_info(kv_dtype).block_bytes;
  const uint64_t layers = u(s.num_hidden_layers);
  if (s.is_mla()) return u(s.mla->kv_lora_rank + s.mla->qk_rope_head_dim) * layers * elem;
  return 2 * u(s.num_key_value_heads) * u(s.head_dim) * layers * elem;
}

uint64_t weights_bytes(const ModelSpec& s) {
  auto bytes_of = [&](const Template& t) {
    ExpectedTensor e{"", t.shape, t.role, -1, false, t.fp8_capable};
    uint64_t b = numel(t.shape) * dtype_info(stored_dtype(s, e)).block_bytes;
    if (t.fp8_capable && quantized(s)) b += numel(fp8_scale_shape(t.shape, s.quantization)) * 4;
    return b;
  };
  const uint64_t h = u(s.hidden_size);
  const uint64_t v = u(s.vocab_size);
  uint64_t total = bytes_of({"", {v, h}, TensorRole::kEmbedding}) + bytes_of({"", {h}, TensorRole::kNorm});
  if (!s.tie_word_embeddings) total += bytes_of({"", {v, h}, TensorRole::kLmHead});
  for (int64_t layer = 0; layer < s.num_hidden_layers; ++layer) {
    for (const Template& t : layer_templates(s, layer)) total += bytes_of(t) * multiplicity(s, t);
  }
  return total;
}

}  // namespace hearth
