// Fallbacks used when the binary is built without CUDA.
#include "kernels/device_info.h"

#ifndef HEARTH_KERNELS_CUDA
namespace hearth::kernels {

AcceleratorReport query_accelerators() {
  AcceleratorReport r;
  r.cuda_compiled = false;
  r.error = "built without CUDA (nvcc was not found at configure time)";
  return r;
}

bool cuda_fp8_block_dequant_to_bf16(const uint8_t*, const float*, uint64_t, uint64_t, uint16_t*,
                                    std::string* error) {
  *error = "built without CUDA";
  return false;
}

}  // namespace hearth::kernels
#endif
