// Qwen2 (DeepSeek-R1-Distill-Qwen 1.5B/7B/14B/32B): the dense GQA decoder with q/k/v biases.
#include "engine/arch/arch_model.h"
#include "engine/arch/dense_decoder.h"

namespace hearth {

Result<std::unique_ptr<ArchModel>> make_qwen2_model(ModelWeights& weights) {
  DenseDecoderOptions o;
  o.qkv_bias = true;
  return make_dense_decoder(weights, o);
}

}  // namespace hearth
