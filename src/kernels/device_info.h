#pragma once
// What accelerators this build can use, and which are present.
#include <cstdint>
#include <string>
#include <vector>

namespace hearth::kernels {

struct GpuDeviceInfo {
  int index = 0;
  std::string name;
  int cc_major = 0;
  int cc_minor = 0;
  uint64_t total_memory_bytes = 0;
};

struct AcceleratorReport {
  bool cuda_compiled = false;    // this binary contains CUDA kernels
  int cuda_runtime_version = 0;  // e.g. 13000
  int cuda_driver_version = 0;   // 0 when no driver is installed
  std::string error;             // why no device is usable, when none is
  std::vector<GpuDeviceInfo> devices;
};

AcceleratorReport query_accelerators();

// Dequantizes DeepSeek-V3 style FP8 e4m3 weights with 128x128 block scales to bf16 on the GPU.
// Returns false with `error` set when CUDA is unavailable or fails. rows x cols row-major;
// scale_inv is ceil(rows/128) x ceil(cols/128) f32.
bool cuda_fp8_block_dequant_to_bf16(const uint8_t* weight_host, const float* scale_inv_host, uint64_t rows,
                                    uint64_t cols, uint16_t* out_host, std::string* error);

}  // namespace hearth::kernels
