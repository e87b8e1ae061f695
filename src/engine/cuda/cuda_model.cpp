// Picks the CUDA implementation of a checkpoint's architecture family.
#include "engine/device_model.h"

namespace hearth {

Result<std::unique_ptr<DeviceModel>> make_cuda_dense_model(std::shared_ptr<const Checkpoint> checkpoint,
                                                           const DeviceModelOptions& options);
Result<std::unique_ptr<DeviceModel>> make_cuda_deepseek_model(std::shared_ptr<const Checkpoint> checkpoint,
                                                              const DeviceModelOptions& options);

Result<std::unique_ptr<DeviceModel>> make_cuda_model(std::shared_ptr<const Checkpoint> checkpoint,
                                                     const DeviceModelOptions& options) {
  switch (checkpoint->spec().architecture) {
    case Architecture::kQwen2:
    case Architecture::kLlama: return make_cuda_dense_model(std::move(checkpoint), options);
    case Architecture::kDeepseekV2:
    case Architecture::kDeepseekV3: return make_cuda_deepseek_model(std::move(checkpoint), options);
  }
  return make_error(ErrorCode::kUnsupported, "{} has no CUDA implementation",
                    architecture_name(checkpoint->spec().architecture));
}

}  // namespace hearth
