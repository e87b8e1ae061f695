#pragma once
// DenseDecoder: the pre-norm GQA transformer that Qwen2 and Llama share (RMSNorm, RoPE on q/k,
// grouped-query attention over the paged cache, SwiGLU MLP). The family files decide which biases
// exist and build it; everything else is identical.
#include <memory>

#include "engine/arch/arch_model.h"

namespace hearth {

struct DenseDecoderOptions {
  bool qkv_bias = false;  // Qwen2: always; Llama: attention_bias
  bool o_bias = false;    // Llama: attention_bias
  bool mlp_bias = false;  // Llama: mlp_bias
};

Result<std::unique_ptr<ArchModel>> make_dense_decoder(ModelWeights& weights,
                                                      const DenseDecoderOptions& options);

}  // namespace hearth
