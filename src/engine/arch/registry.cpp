#include "engine/arch/arch_model.h"

namespace hearth {

Result<std::unique_ptr<ArchModel>> make_arch_model(ModelWeights& weights) {
  switch (weights.spec().architecture) {
    case Architecture::kQwen2: return make_qwen2_model(weights);
    case Architecture::kLlama: return make_llama_model(weights);
    case Architecture::kDeepseekV2:
    case Architecture::kDeepseekV3: return make_deepseek_model(weights);
  }
  return make_error(ErrorCode::kUnsupported, "architecture {} has no CPU implementation",
                    architecture_name(weights.spec().architecture));
}

}  // namespace hearth
