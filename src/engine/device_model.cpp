#include "engine/device_model.h"

namespace hearth {

#if !HEARTH_ENGINE_CUDA
Result<std::unique_ptr<DeviceModel>> make_cuda_model(std::shared_ptr<const Checkpoint> /*checkpoint*/,
                                                     const DeviceModelOptions& /*options*/) {
  return make_error(ErrorCode::kUnsupported,
                    "this hearth was built without CUDA (nvcc was not found at configure time): rebuild on a "
                    "machine with the CUDA toolkit, or use --device cpu");
}
#endif

}  // namespace hearth
