#pragma once
// RAII device and pinned host memory, and CUDA runtime errors as Status. Allocation failures name what
// was being allocated and how much memory the card has left, so an out-of-memory load is a clear error.
#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"

namespace hearth {

inline Status cuda_error(cudaError_t e, const char* what) {
  return make_error(ErrorCode::kInternal, "CUDA {} failed: {} ({})", what, cudaGetErrorName(e),
                    cudaGetErrorString(e));
}

#define HEARTH_CUDA(call, what)                                                               \
  do {                                                                                        \
    const cudaError_t hearth_cuda_err_ = (call);                                              \
    if (hearth_cuda_err_ != cudaSuccess) return ::hearth::cuda_error(hearth_cuda_err_, what); \
  } while (0)

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) {
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }

  Status allocate(uint64_t bytes, const char* what) {
    reset();
    if (bytes == 0) return Status::ok();
    const cudaError_t e = cudaMalloc(&ptr_, bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();
      ptr_ = nullptr;
      size_t free = 0, total = 0;
      cudaMemGetInfo(&free, &total);
      return make_error(
          ErrorCode::kResourceExhausted,
          "out of GPU memory allocating {:.3f} GiB for {} ({:.3f} of {:.3f} GiB free): use a smaller "
          "model or precision, a lower --max-batch-tokens, or a larger GPU",
          static_cast<double>(bytes) / (1 << 30), what, static_cast<double>(free) / (1 << 30),
          static_cast<double>(total) / (1 << 30));
    }
    bytes_ = bytes;
    return Status::ok();
  }
  void reset() {
    if (ptr_ != nullptr) cudaFree(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }
  void* ptr() const { return ptr_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  uint64_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  uint64_t bytes_ = 0;
};

class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() {
    if (ptr_ != nullptr) cudaFreeHost(ptr_);
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  Status allocate(uint64_t bytes, const char* what) {
    if (ptr_ != nullptr) cudaFreeHost(ptr_);
    ptr_ = nullptr;
    HEARTH_CUDA(cudaMallocHost(&ptr_, bytes), what);
    bytes_ = bytes;
    return Status::ok();
  }
  void* ptr() const { return ptr_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  uint64_t bytes_ = 0;
};

}  // namespace hearth
