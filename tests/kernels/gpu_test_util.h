#pragma once
// Shared by the kernels' GPU tests: whether a CUDA device is usable (tests skip, not fail, without one) and
// device buffers from / to host vectors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/device_info.h"

#if HEARTH_KERNELS_CUDA
#include <cuda_runtime.h>
#endif

namespace hearth::testing {

inline bool have_gpu() {
  const auto r = kernels::query_accelerators();
  return r.cuda_compiled && !r.devices.empty();
}

#if HEARTH_KERNELS_CUDA

// A device copy of v (at least one element allocated); free with cudaFree.
template <typename T>
T* to_device(const std::vector<T>& v) {
  T* d = nullptr;
  EXPECT_EQ(cudaMalloc(&d, std::max<size_t>(1, v.size()) * sizeof(T)), cudaSuccess);
  cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice);
  return d;
}

// n elements of T from the device.
template <typename T>
std::vector<T> to_host(const T* d, size_t n) {
  std::vector<T> v(n);
  cudaMemcpy(v.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost);
  return v;
}

#endif

}  // namespace hearth::testing
