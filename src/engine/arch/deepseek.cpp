// DeepSeek V2 / V3 / R1: multi-head latent attention (MLA) in absorbed form over a cache of the
// normalised kv latent + rope key, and DeepSeek MoE (routed + shared experts, dense first layers).
//
// Absorption: with kv_b = [W_UK[h]; W_UV[h]] per head, q_nope . (W_UK c) = (W_UK^T q_nope) . c, and
// sum_t p_t W_UV c_t = W_UV (sum_t p_t c_t). So attention runs over the latent c directly; W_UK^T is
// kept per head as an owned f32 matrix (built at load from any weight format), W_UV is read in place.
#include <fmt/format.h>

#include "engine/arch/arch_model.h"
#include "engine/arch/transformer.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/moe_routing.h"
#include "kernels/cpu/ops.h"

namespace hearth {
namespace {

struct MoeWeights {
  LinearWeights router;                    // [n_experts, hidden]
  const float* correction_bias = nullptr;  // V3 e_score_correction_bias
  std::vector<MlpWeights> experts;
  std::optional<MlpWeights> shared;
};

struct Layer {
  const float* attn_norm = nullptr;
  const float* mlp_norm = nullptr;
  std::optional<LinearWeights> q_proj;  // no q_lora
  LinearWeights q_a, q_b;
  const float* q_a_norm = nullptr;
  LinearWeights kv_a;  // [lora + rope, hidden]
  const float* kv_a_norm = nullptr;
  WeightMatrix kv_b;  // [heads * (nope + v), lora]
  WeightMatrix uk_t;  // [heads * lora, nope]: W_UK[h]^T stacked
  LinearWeights o;
  std::optional<MlpWeights> dense;
  std::optional<MoeWeights> moe;
};

class DeepseekModel final : public ArchModel {
 public:
  explicit DeepseekModel(const ModelSpec& spec)
      : spec_(spec), mla_(*spec.mla), rope_(make_rope_table(spec)) {}

  Status load(ModelWeights& w) {
    const int64_t h = spec_.hidden_size, nh = spec_.num_attention_heads;
    const int64_t nope = mla_.qk_nope_head_dim, rope = mla_.qk_rope_head_dim, vd = mla_.v_head_dim;
    const int64_t lora = mla_.kv_lora_rank, qk = nope + rope;
    const bool bias = spec_.attention_bias;
    HEARTH_ASSIGN_OR_RETURN(ends_, load_model_ends(w));
    layers_.resize(static_cast<size_t>(spec_.num_hidden_layers));
    for (int64_t l = 0; l < spec_.num_hidden_layers; ++l) {
      Layer& L = layers_[static_cast<size_t>(l)];
      const std::string p = fmt::format("model.layers.{}", l);
      const std::string a = p + ".self_attn";
      HEARTH_ASSIGN_OR_RETURN(L.attn_norm, w.vector(p + ".input_layernorm.weight", h));
      HEARTH_ASSIGN_OR_RETURN(L.mlp_norm, w.vector(p + ".post_attention_layernorm.weight", h));
      if (mla_.q_lora_rank > 0) {
        HEARTH_ASSIGN_OR_RETURN(L.q_a, load_linear(w, a + ".q_a_proj", mla_.q_lora_rank, h, bias));
        HEARTH_ASSIGN_OR_RETURN(L.q_a_norm, w.vector(a + ".q_a_layernorm.weight", mla_.q_lora_rank));
        HEARTH_ASSIGN_OR_RETURN(L.q_b, load_linear(w, a + ".q_b_proj", nh * qk, mla_.q_lora_rank, false));
      } else {
        HEARTH_ASSIGN_OR_RETURN(L.q_proj, load_linear(w, a + ".q_proj", nh * qk, h, false));
      }
      HEARTH_ASSIGN_OR_RETURN(L.kv_a, load_linear(w, a + ".kv_a_proj_with_mqa", lora + rope, h, bias));
      HEARTH_ASSIGN_OR_RETURN(L.kv_a_norm, w.vector(a + ".kv_a_layernorm.weight", lora));
      HEARTH_ASSIGN_OR_RETURN(L.kv_b, w.embedding(a + ".kv_b_proj.weight", nh * (nope + vd), lora));
      // W_UK[h]^T: row (h * lora + c), column i = kv_b[h * (nope + v) + i][c].
      std::vector<float> ukt(static_cast<size_t>(nh * lora * nope));
      std::vector<float> row(static_cast<size_t>(lora));
      for (int64_t hh = 0; hh < nh; ++hh)
        for (int64_t i = 0; i < nope; ++i) {
          decode_row(L.kv_b, hh * (nope + vd) + i, row.data());
          for (int64_t c = 0; c < lora; ++c) ukt[(hh * lora + c) * nope + i] = row[c];
        }
      L.uk_t = w.own_f32(std::move(ukt), nh * lora, nope);
      HEARTH_ASSIGN_OR_RETURN(L.o, load_linear(w, a + ".o_proj", h, nh * vd, bias));
      if (spec_.is_moe_layer(l)) {
        const MoeSpec& m = *spec_.moe;
        MoeWeights moe;
        HEARTH_ASSIGN_OR_RETURN(moe.router.w, w.embedding(p + ".mlp.gate.weight", m.n_routed_experts, h));
        if (spec_.architecture == Architecture::kDeepseekV3 || m.topk_method == TopkMethod::kNoauxTc) {
          HEARTH_ASSIGN_OR_RETURN(moe.correction_bias,
                                  w.vector(p + ".mlp.gate.e_score_correction_bias", m.n_routed_experts));
        }
        moe.experts.resize(static_cast<size_t>(m.n_routed_experts));
        for (int64_t e = 0; e < m.n_routed_experts; ++e) {
          MlpWeights& x = moe.experts[static_cast<size_t>(e)];
          x.inter = m.moe_intermediate_size;
          HEARTH_ASSIGN_OR_RETURN(x.gate.w, w.expert(l, e, "gate_proj", m.moe_intermediate_size, h));
          HEARTH_ASSIGN_OR_RETURN(x.up.w, w.expert(l, e, "up_proj", m.moe_intermediate_size, h));
          HEARTH_ASSIGN_OR_RETURN(x.down.w, w.expert(l, e, "down_proj", h, m.moe_intermediate_size));
        }
        if (m.n_shared_experts > 0) {
          HEARTH_ASSIGN_OR_RETURN(moe.shared, load_mlp(w, p + ".mlp.shared_experts", h,
                                                       m.n_shared_experts * m.moe_intermediate_size, false));
        }
        L.moe = std::move(moe);
      } else {
        HEARTH_ASSIGN_OR_RETURN(L.dense, load_mlp(w, p + ".mlp", h, spec_.intermediate_size, false));
      }
    }
    return Status::ok();
  }

  KvLayout kv_layout() const override {
    return {spec_.num_hidden_layers, mla_.kv_lora_rank + mla_.qk_rope_head_dim};
  }

  Status forward(const ForwardBatch& batch, KvCache& kv, ThreadPool& pool,
                 std::vector<float>& logits) override {
    const FlatBatch fb(batch);
    const int64_t n = fb.n, h = spec_.hidden_size, nh = spec_.num_attention_heads;
    const int64_t nope = mla_.qk_nope_head_dim, rope = mla_.qk_rope_head_dim, vd = mla_.v_head_dim;
    const int64_t lora = mla_.kv_lora_rank, qk = nope + rope;
    const float eps = static_cast<float>(spec_.rms_norm_eps);
    const float scale = attention_softmax_scale(spec_);
    const std::vector<float> cs = rope_cos_sin_rows(rope_, fb);
    int64_t max_ctx = 0;
    for (int64_t p : fb.pos) max_ctx = std::max(max_ctx, p + 1);

    std::vector<float> x(n * h), xn(n * h), q(n * nh * qk), ckv(n * (lora + rope)), qlat(n * nh * lora),
        olat(n * nh * lora), att(n * nh * vd), qa, tmp;
    embed_tokens(ends_.embed, fb, x.data(), pool);
    for (size_t l = 0; l < layers_.size(); ++l) {
      const Layer& L = layers_[l];
      PagedKvLayer cache = kv.layer(static_cast<int64_t>(l));
      rms_norm_rows(x.data(), h, n, h, L.attn_norm, eps, xn.data(), h, pool);
      if (L.q_proj) {
        linear(*L.q_proj, xn.data(), h, n, q.data(), nh * qk, pool);
      } else {
        const int64_t qr = mla_.q_lora_rank;
        qa.resize(static_cast<size_t>(n * qr));
        linear(L.q_a, xn.data(), h, n, qa.data(), qr, pool);
        rms_norm_rows(qa.data(), qr, n, qr, L.q_a_norm, eps, qa.data(), qr, pool);
        linear(L.q_b, qa.data(), qr, n, q.data(), nh * qk, pool);
      }
      linear(L.kv_a, xn.data(), h, n, ckv.data(), lora + rope, pool);
      for (int64_t t = 0; t < n; ++t) {
        const float* c = cs.data() + t * rope;
        float* ct = ckv.data() + t * (lora + rope);
        rms_norm(ct, L.kv_a_norm, lora, eps, ct);
        apply_rope(rope_, c, ct + lora, 1, rope);
        apply_rope(rope_, c, q.data() + t * nh * qk + nope, nh, qk);
        const auto& chunk = batch.chunks[static_cast<size_t>(fb.chunk[t])];
        std::copy(ct, ct + lora + rope, kv_slot(cache, chunk.block_table, fb.pos[t]));
      }
      // q_lat[t][h] = W_UK[h]^T q_nope[t][h]
      for (int64_t hh = 0; hh < nh; ++hh)
        matmul_row_range(L.uk_t, hh * lora, (hh + 1) * lora, q.data() + hh * qk, nh * qk, n,
                         qlat.data() + hh * lora, nh * lora, &pool);
      pool.parallel_for(n * nh, [&](int64_t a, int64_t b) {
        std::vector<float> scores(static_cast<size_t>(max_ctx));
        for (int64_t i = a; i < b; ++i) {
          const int64_t t = i / nh, hh = i % nh;
          const auto& chunk = batch.chunks[static_cast<size_t>(fb.chunk[t])];
          attention_mla_head(cache, chunk.block_table, fb.pos[t] + 1, qlat.data() + (t * nh + hh) * lora,
                             q.data() + t * nh * qk + hh * qk + nope, lora, rope, scale,
                             olat.data() + (t * nh + hh) * lora, scores.data());
        }
      });
      // v[t][h] = W_UV[h] o_lat[t][h]
      for (int64_t hh = 0; hh < nh; ++hh)
        matmul_row_range(L.kv_b, hh * (nope + vd) + nope, (hh + 1) * (nope + vd), olat.data() + hh * lora,
                         nh * lora, n, att.data() + hh * vd, nh * vd, &pool);
      linear(L.o, att.data(), nh * vd, n, xn.data(), h, pool);
      add_inplace(x.data(), xn.data(), n * h);
      rms_norm_rows(x.data(), h, n, h, L.mlp_norm, eps, xn.data(), h, pool);
      if (L.dense) {
        swiglu_mlp(*L.dense, xn.data(), n, h, xn.data(), tmp, pool);
      } else {
        moe_forward(*L.moe, xn.data(), n, xn.data(), pool);
      }
      add_inplace(x.data(), xn.data(), n * h);
    }
    lm_head_logits(ends_, spec_, fb, x.data(), logits, pool);
    return Status::ok();
  }

 private:
  // out[t] = sum over the token's routed experts (ascending id) of w * expert(x[t]), plus the shared
  // experts. Each expert runs once over the tokens routed to it. `out` may alias `x`.
  void moe_forward(const MoeWeights& m, const float* x, int64_t n, float* out, ThreadPool& pool) {
    const MoeSpec& spec = *spec_.moe;
    const int64_t h = spec_.hidden_size, ne = spec.n_routed_experts, k = spec.num_experts_per_tok;
    std::vector<float> router(n * ne), scratch(2 * ne), weights(n * k), routed(n * k * h), tmp;
    std::vector<int32_t> experts(n * k);
    matmul(m.router.w, x, h, n, router.data(), ne, &pool);
    const bool v3 = spec_.architecture == Architecture::kDeepseekV3;
    for (int64_t t = 0; t < n; ++t)
      moe_route(router.data() + t * ne, spec, m.correction_bias, v3, experts.data() + t * k,
                weights.data() + t * k, scratch.data());
    // Group (token, slot) pairs by expert.
    std::vector<std::vector<int64_t>> by_expert(static_cast<size_t>(ne));
    for (int64_t i = 0; i < n * k; ++i) by_expert[static_cast<size_t>(experts[i])].push_back(i);
    std::vector<float> xin, yout;
    for (int64_t e = 0; e < ne; ++e) {
      const auto& slots = by_expert[static_cast<size_t>(e)];
      if (slots.empty()) continue;
      const int64_t c = static_cast<int64_t>(slots.size());
      xin.resize(static_cast<size_t>(c * h));
      yout.resize(static_cast<size_t>(c * h));
      for (int64_t j = 0; j < c; ++j)
        std::copy(x + (slots[j] / k) * h, x + (slots[j] / k + 1) * h, xin.data() + j * h);
      swiglu_mlp(m.experts[static_cast<size_t>(e)], xin.data(), c, h, yout.data(), tmp, pool);
      for (int64_t j = 0; j < c; ++j)
        std::copy(yout.data() + j * h, yout.data() + (j + 1) * h, routed.data() + slots[j] * h);
    }
    std::vector<float> shared;
    if (m.shared) {
      shared.resize(static_cast<size_t>(n * h));
      swiglu_mlp(*m.shared, x, n, h, shared.data(), tmp, pool);
    }
    for (int64_t t = 0; t < n; ++t) {
      float* o = out + t * h;
      std::fill(o, o + h, 0.0f);
      for (int64_t s = 0; s < k; ++s) axpy(weights[t * k + s], routed.data() + (t * k + s) * h, o, h);
      if (m.shared) add_inplace(o, shared.data() + t * h, h);
    }
  }

  ModelSpec spec_;
  MlaSpec mla_;
  RopeTable rope_;
  ModelEnds ends_;
  std::vector<Layer> layers_;
};

}  // namespace

Result<std::unique_ptr<ArchModel>> make_deepseek_model(ModelWeights& weights) {
  if (!weights.spec().is_mla() || !weights.spec().is_moe()) {
    return make_error(ErrorCode::kUnsupported, "{}: DeepSeek models without MLA or MoE are not supported",
                      weights.checkpoint().path());
  }
  auto m = std::make_unique<DeepseekModel>(weights.spec());
  HEARTH_RETURN_IF_ERROR(m->load(weights));
  return std::unique_ptr<ArchModel>(std::move(m));
}

}  // namespace hearth
