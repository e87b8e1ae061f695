// FP8 e4m3 (128x128 block-scaled, DeepSeek-V3's native layout) -> bf16.
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <string>

#include "kernels/device_info.h"

namespace hearth::kernels {
namespace {

constexpr int kBlock = 128;

__global__ void fp8_block_dequant_kernel(const __nv_fp8_e4m3* __restrict__ w,
                                         const float* __restrict__ scale_inv, uint64_t rows, uint64_t cols,
                                         __nv_bfloat16* __restrict__ out) {
  const uint64_t scale_cols = (cols + kBlock - 1) / kBlock;
  for (uint64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    for (uint64_t c = blockIdx.x * blockDim.x + threadIdx.x; c < cols;
         c += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
      const float s = scale_inv[(r / kBlock) * scale_cols + c / kBlock];
      out[r * cols + c] = __float2bfloat16(static_cast<float>(w[r * cols + c]) * s);
    }
  }
}

bool check(cudaError_t e, const char* what, std::string* error) {
  if (e == cudaSuccess) return true;
  *error = std::string(what) + ": " + cudaGetErrorString(e);
  return false;
}

}  // namespace

bool cuda_fp8_block_dequant_to_bf16(const uint8_t* weight_host, const float* scale_inv_host, uint64_t rows,
                                    uint64_t cols, uint16_t* out_host, std::string* error) {
  const uint64_t n = rows * cols;
  const uint64_t scale_n = ((rows + kBlock - 1) / kBlock) * ((cols + kBlock - 1) / kBlock);
  void *dw = nullptr, *ds = nullptr, *dout = nullptr;
  bool ok = check(cudaMalloc(&dw, n), "cudaMalloc", error) &&
            check(cudaMalloc(&ds, scale_n * sizeof(float)), "cudaMalloc", error) &&
            check(cudaMalloc(&dout, n * 2), "cudaMalloc", error) &&
            check(cudaMemcpy(dw, weight_host, n, cudaMemcpyHostToDevice), "cudaMemcpy", error) &&
            check(cudaMemcpy(ds, scale_inv_host, scale_n * sizeof(float), cudaMemcpyHostToDevice),
                  "cudaMemcpy", error);
  if (ok && rows > 0 && cols > 0) {
    dim3 grid(static_cast<unsigned>((cols + 255) / 256 > 1024 ? 1024 : (cols + 255) / 256),
              static_cast<unsigned>(rows > 65535 ? 65535 : rows));
    fp8_block_dequant_kernel<<<grid, 256>>>(static_cast<const __nv_fp8_e4m3*>(dw),
                                            static_cast<const float*>(ds), rows, cols,
                                            static_cast<__nv_bfloat16*>(dout));
    ok = check(cudaGetLastError(), "fp8_block_dequant_kernel launch", error) &&
         check(cudaMemcpy(out_host, dout, n * 2, cudaMemcpyDeviceToHost), "cudaMemcpy", error);
  }
  cudaFree(dw);
  cudaFree(ds);
  cudaFree(dout);
  return ok;
}

}  // namespace hearth::kernels
