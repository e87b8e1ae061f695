#include "engine/arch/transformer.h"

#include <fmt/format.h>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops.h"

namespace hearth {

FlatBatch::FlatBatch(const ForwardBatch& batch) {
  for (size_t c = 0; c < batch.chunks.size(); ++c) {
    const SequenceChunk& ch = batch.chunks[c];
    for (size_t i = 0; i < ch.tokens.size(); ++i) {
      ids.push_back(ch.tokens[i]);
      pos.push_back(ch.start_pos + static_cast<int64_t>(i));
      chunk.push_back(static_cast<int32_t>(c));
    }
    if (ch.want_logits && !ch.tokens.empty()) logit_tokens.push_back(static_cast<int64_t>(ids.size()) - 1);
  }
  n = static_cast<int64_t>(ids.size());
}

void linear(const LinearWeights& l, const float* x, int64_t x_stride, int64_t n, float* y, int64_t y_stride,
            ThreadPool& pool) {
  matmul(l.w, x, x_stride, n, y, y_stride, &pool);
  if (l.bias != nullptr)
    for (int64_t t = 0; t < n; ++t) add_bias(y + t * y_stride, l.bias, l.w.rows);
}

void swiglu_mlp(const MlpWeights& m, const float* x, int64_t n, int64_t hidden, float* out,
                std::vector<float>& tmp, ThreadPool& pool) {
  const int64_t f = m.inter;
  tmp.resize(static_cast<size_t>(2 * n * f));
  float* g = tmp.data();
  float* u = tmp.data() + n * f;
  linear(m.gate, x, hidden, n, g, f, pool);
  linear(m.up, x, hidden, n, u, f, pool);
  silu_mul(g, u, n * f);
  linear(m.down, g, f, n, out, hidden, pool);
}

void rms_norm_rows(const float* x, int64_t stride, int64_t n, int64_t dim, const float* weight, float eps,
                   float* out, int64_t out_stride, ThreadPool& pool) {
  auto work = [&](int64_t a, int64_t b) {
    for (int64_t t = a; t < b; ++t) rms_norm(x + t * stride, weight, dim, eps, out + t * out_stride);
  };
  if (n * dim < (1 << 14)) {
    work(0, n);
  } else {
    pool.parallel_for(n, work);
  }
}

Result<LinearWeights> load_linear(ModelWeights& w, const std::string& name, int64_t rows, int64_t cols,
                                  bool bias) {
  LinearWeights l;
  HEARTH_ASSIGN_OR_RETURN(l.w, w.matrix(name + ".weight", rows, cols));
  if (bias) {
    HEARTH_ASSIGN_OR_RETURN(l.bias, w.vector(name + ".bias", rows));
  }
  return l;
}

Result<MlpWeights> load_mlp(ModelWeights& w, const std::string& prefix, int64_t hidden, int64_t inter,
                            bool bias) {
  MlpWeights m;
  m.inter = inter;
  HEARTH_ASSIGN_OR_RETURN(m.gate, load_linear(w, prefix + ".gate_proj", inter, hidden, bias));
  HEARTH_ASSIGN_OR_RETURN(m.up, load_linear(w, prefix + ".up_proj", inter, hidden, bias));
  HEARTH_ASSIGN_OR_RETURN(m.down, load_linear(w, prefix + ".down_proj", hidden, inter, bias));
  return m;
}

Result<ModelEnds> load_model_ends(ModelWeights& w) {
  const ModelSpec& s = w.spec();
  ModelEnds e;
  HEARTH_ASSIGN_OR_RETURN(e.embed, w.embedding("model.embed_tokens.weight", s.vocab_size, s.hidden_size));
  HEARTH_ASSIGN_OR_RETURN(e.final_norm, w.vector("model.norm.weight", s.hidden_size));
  if (s.tie_word_embeddings && w.checkpoint().find("lm_head.weight") == nullptr) {
    e.lm_head = e.embed;
  } else {
    HEARTH_ASSIGN_OR_RETURN(e.lm_head, w.matrix("lm_head.weight", s.vocab_size, s.hidden_size));
  }
  return e;
}

void embed_tokens(const WeightMatrix& embed, const FlatBatch& fb, float* x, ThreadPool& pool) {
  const int64_t h = embed.cols;
  auto work = [&](int64_t a, int64_t b) {
    for (int64_t t = a; t < b; ++t) decode_row(embed, fb.ids[t], x + t * h);
  };
  pool.parallel_for(fb.n, work, 8);
}

void lm_head_logits(const ModelEnds& ends, const ModelSpec& spec, const FlatBatch& fb, const float* x,
                    std::vector<float>& logits, ThreadPool& pool) {
  const int64_t h = spec.hidden_size;
  const int64_t rows = static_cast<int64_t>(fb.logit_tokens.size());
  std::vector<float> normed(static_cast<size_t>(rows * h));
  for (int64_t r = 0; r < rows; ++r)
    rms_norm(x + fb.logit_tokens[r] * h, ends.final_norm, h, static_cast<float>(spec.rms_norm_eps),
             normed.data() + r * h);
  logits.resize(static_cast<size_t>(rows * spec.vocab_size));
  matmul(ends.lm_head, normed.data(), h, rows, logits.data(), spec.vocab_size, &pool);
}

std::vector<float> rope_cos_sin_rows(const RopeTable& rope, const FlatBatch& fb) {
  std::vector<float> cs(static_cast<size_t>(fb.n * rope.rot_dim));
  for (int64_t t = 0; t < fb.n; ++t) rope_cos_sin(rope, fb.pos[t], cs.data() + t * rope.rot_dim);
  return cs;
}

}  // namespace hearth
