#include <cuda_runtime.h>

#include "kernels/device_info.h"

namespace hearth::kernels {

AcceleratorReport query_accelerators() {
  AcceleratorReport r;
  r.cuda_compiled = true;
  cudaRuntimeGetVersion(&r.cuda_runtime_version);
  if (cudaDriverGetVersion(&r.cuda_driver_version) != cudaSuccess) r.cuda_driver_version = 0;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    r.error = cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error
    return r;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    GpuDeviceInfo d;
    d.index = i;
    d.name = prop.name;
    d.cc_major = prop.major;
    d.cc_minor = prop.minor;
    d.total_memory_bytes = prop.totalGlobalMem;
    r.devices.push_back(std::move(d));
  }
  if (r.devices.empty()) r.error = "no CUDA device found";
  return r;
}

}  // namespace hearth::kernels
