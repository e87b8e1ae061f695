#include "engine/arch/dense_decoder.h"

#include <fmt/format.h>

#include "engine/arch/transformer.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/ops.h"

namespace hearth {
namespace {

struct Layer {
  const float* attn_norm = nullptr;
  const float* mlp_norm = nullptr;
  LinearWeights q, k, v, o;
  MlpWeights mlp;
};

class DenseDecoder final : public ArchModel {
 public:
  explicit DenseDecoder(const ModelSpec& spec) : spec_(spec), rope_(make_rope_table(spec)) {}

  Status load(ModelWeights& w, const DenseDecoderOptions& opt) {
    const int64_t h = spec_.hidden_size, hd = spec_.head_dim;
    const int64_t qd = spec_.num_attention_heads * hd, kvd = spec_.num_key_value_heads * hd;
    HEARTH_ASSIGN_OR_RETURN(ends_, load_model_ends(w));
    if (w.checkpoint().find("rope_freqs.weight") != nullptr) {  // GGUF: Llama-3 scaling as divisors
      HEARTH_ASSIGN_OR_RETURN(const float* f, w.vector("rope_freqs.weight", rope_.rot_dim / 2));
      for (int64_t i = 0; i < rope_.rot_dim / 2; ++i) rope_.inv_freq[i] /= f[i];
    }
    layers_.resize(static_cast<size_t>(spec_.num_hidden_layers));
    for (int64_t l = 0; l < spec_.num_hidden_layers; ++l) {
      Layer& L = layers_[static_cast<size_t>(l)];
      const std::string p = fmt::format("model.layers.{}", l);
      HEARTH_ASSIGN_OR_RETURN(L.attn_norm, w.vector(p + ".input_layernorm.weight", h));
      HEARTH_ASSIGN_OR_RETURN(L.mlp_norm, w.vector(p + ".post_attention_layernorm.weight", h));
      HEARTH_ASSIGN_OR_RETURN(L.q, load_linear(w, p + ".self_attn.q_proj", qd, h, opt.qkv_bias));
      HEARTH_ASSIGN_OR_RETURN(L.k, load_linear(w, p + ".self_attn.k_proj", kvd, h, opt.qkv_bias));
      HEARTH_ASSIGN_OR_RETURN(L.v, load_linear(w, p + ".self_attn.v_proj", kvd, h, opt.qkv_bias));
      HEARTH_ASSIGN_OR_RETURN(L.o, load_linear(w, p + ".self_attn.o_proj", h, qd, opt.o_bias));
      HEARTH_ASSIGN_OR_RETURN(L.mlp, load_mlp(w, p + ".mlp", h, spec_.intermediate_size, opt.mlp_bias));
    }
    return Status::ok();
  }

  KvLayout kv_layout() const override {
    return {spec_.num_hidden_layers, 2 * spec_.num_key_value_heads * spec_.head_dim};
  }

  Status forward(const ForwardBatch& batch, KvCache& kv, ThreadPool& pool,
                 std::vector<float>& logits) override {
    const FlatBatch fb(batch);
    const int64_t n = fb.n, h = spec_.hidden_size, hd = spec_.head_dim;
    const int64_t nh = spec_.num_attention_heads, nkv = spec_.num_key_value_heads;
    const int64_t qd = nh * hd, kvd = nkv * hd;
    const float eps = static_cast<float>(spec_.rms_norm_eps);
    const float scale = attention_softmax_scale(spec_);
    const std::vector<float> cs = rope_cos_sin_rows(rope_, fb);
    int64_t max_ctx = 0;
    for (int64_t p : fb.pos) max_ctx = std::max(max_ctx, p + 1);

    std::vector<float> x(n * h), xn(n * h), q(n * qd), k(n * kvd), v(n * kvd), att(n * qd), tmp;
    embed_tokens(ends_.embed, fb, x.data(), pool);
    for (size_t l = 0; l < layers_.size(); ++l) {
      const Layer& L = layers_[l];
      PagedKvLayer cache = kv.layer(static_cast<int64_t>(l));
      rms_norm_rows(x.data(), h, n, h, L.attn_norm, eps, xn.data(), h, pool);
      linear(L.q, xn.data(), h, n, q.data(), qd, pool);
      linear(L.k, xn.data(), h, n, k.data(), kvd, pool);
      linear(L.v, xn.data(), h, n, v.data(), kvd, pool);
      for (int64_t t = 0; t < n; ++t) {
        const float* c = cs.data() + t * rope_.rot_dim;
        apply_rope(rope_, c, q.data() + t * qd, nh, hd);
        apply_rope(rope_, c, k.data() + t * kvd, nkv, hd);
        const auto& chunk = batch.chunks[static_cast<size_t>(fb.chunk[t])];
        float* slot = kv_slot(cache, chunk.block_table, fb.pos[t]);
        std::copy(k.data() + t * kvd, k.data() + (t + 1) * kvd, slot);
        std::copy(v.data() + t * kvd, v.data() + (t + 1) * kvd, slot + kvd);
      }
      pool.parallel_for(n * nh, [&](int64_t a, int64_t b) {
        std::vector<float> scores(static_cast<size_t>(max_ctx));
        for (int64_t i = a; i < b; ++i) {
          const int64_t t = i / nh, head = i % nh;
          const auto& chunk = batch.chunks[static_cast<size_t>(fb.chunk[t])];
          attention_gqa_head(cache, chunk.block_table, fb.pos[t] + 1, q.data() + t * qd + head * hd, head, nh,
                             nkv, hd, scale, att.data() + t * qd + head * hd, scores.data());
        }
      });
      linear(L.o, att.data(), qd, n, xn.data(), h, pool);
      add_inplace(x.data(), xn.data(), n * h);
      rms_norm_rows(x.data(), h, n, h, L.mlp_norm, eps, xn.data(), h, pool);
      swiglu_mlp(L.mlp, xn.data(), n, h, xn.data() + 0, tmp, pool);
      add_inplace(x.data(), xn.data(), n * h);
    }
    lm_head_logits(ends_, spec_, fb, x.data(), logits, pool);
    return Status::ok();
  }

 private:
  ModelSpec spec_;
  RopeTable rope_;
  ModelEnds ends_;
  std::vector<Layer> layers_;
};

}  // namespace

Result<std::unique_ptr<ArchModel>> make_dense_decoder(ModelWeights& weights,
                                                      const DenseDecoderOptions& options) {
  auto m = std::make_unique<DenseDecoder>(weights.spec());
  HEARTH_RETURN_IF_ERROR(m->load(weights, options));
  return std::unique_ptr<ArchModel>(std::move(m));
}

}  // namespace hearth
