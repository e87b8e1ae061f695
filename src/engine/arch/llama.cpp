// Llama (DeepSeek-R1-Distill-Llama 8B/70B): the dense GQA decoder; biases only when the config asks
// (attention_bias: q/k/v/o, mlp_bias: gate/up/down); Llama-3 RoPE scaling comes from the RopeTable.
#include "engine/arch/arch_model.h"
#include "engine/arch/dense_decoder.h"

namespace hearth {

Result<std::unique_ptr<ArchModel>> make_llama_model(ModelWeights& weights) {
  const ModelSpec& s = weights.spec();
  DenseDecoderOptions o;
  o.qkv_bias = s.attention_bias;
  o.o_bias = s.attention_bias;
  o.mlp_bias = s.mlp_bias;
  return make_dense_decoder(weights, o);
}

}  // namespace hearth
