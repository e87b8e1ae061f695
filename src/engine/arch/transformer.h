#pragma once
// Building blocks shared by the architecture families: the flattened token view of a batch, embedding
// lookup, RMSNorm over rows, the SwiGLU MLP, grouped-query attention over the paged cache and the
// final norm + LM head.
#include <cstdint>
#include <optional>
#include <vector>

#include "core/thread_pool.h"
#include "engine/forward_batch.h"
#include "engine/kv_cache.h"
#include "engine/model_weights.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/weight_matrix.h"

namespace hearth {

// The batch's tokens in one flat list: token i is ids[i] of chunk chunk[i] at position pos[i].
struct FlatBatch {
  std::vector<int32_t> ids;
  std::vector<int64_t> pos;
  std::vector<int32_t> chunk;
  std::vector<int64_t> logit_tokens;  // flat index of each chunk's last token that wants logits
  int64_t n = 0;

  explicit FlatBatch(const ForwardBatch& batch);
};

struct LinearWeights {
  WeightMatrix w;
  const float* bias = nullptr;  // rows floats, optional
};

// y[t] = W x[t] (+ b) for n rows of x.
void linear(const LinearWeights& l, const float* x, int64_t x_stride, int64_t n, float* y, int64_t y_stride,
            ThreadPool& pool);

struct MlpWeights {
  LinearWeights gate, up, down;
  int64_t inter = 0;
};

// x: n rows of hidden; writes n rows of hidden into out. `tmp` is resized as needed.
void swiglu_mlp(const MlpWeights& m, const float* x, int64_t n, int64_t hidden, float* out,
                std::vector<float>& tmp, ThreadPool& pool);

// RMSNorm of each of n rows of width `dim` (stride apart) into out (same stride; may alias).
void rms_norm_rows(const float* x, int64_t stride, int64_t n, int64_t dim, const float* weight, float eps,
                   float* out, int64_t out_stride, ThreadPool& pool);

// Loads "model.layers.L.mlp.{gate,up,down}_proj" style weights under `prefix` (".bias" when `bias`).
Result<MlpWeights> load_mlp(ModelWeights& w, const std::string& prefix, int64_t hidden, int64_t inter,
                            bool bias);
Result<LinearWeights> load_linear(ModelWeights& w, const std::string& name, int64_t rows, int64_t cols,
                                  bool bias);

// The embedding, final norm and LM head every family has.
struct ModelEnds {
  WeightMatrix embed;
  const float* final_norm = nullptr;
  WeightMatrix lm_head;
};
Result<ModelEnds> load_model_ends(ModelWeights& w);
// x[i] = embed[ids[i]].
void embed_tokens(const WeightMatrix& embed, const FlatBatch& fb, float* x, ThreadPool& pool);
// Final norm of the logit tokens, then the LM head: logits is resized to rows x vocab.
void lm_head_logits(const ModelEnds& ends, const ModelSpec& spec, const FlatBatch& fb, const float* x,
                    std::vector<float>& logits, ThreadPool& pool);

// cos/sin of every token's position: n x rot_dim floats.
std::vector<float> rope_cos_sin_rows(const RopeTable& rope, const FlatBatch& fb);

}  // namespace hearth
