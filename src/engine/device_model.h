#pragma once
// DeviceModel: an architecture's forward pass on an accelerator. It owns the weights on the device,
// the device KV pool (paged: the same block ids as the host's BlockManager) and the step's buffers;
// ModelRunner drives it exactly as it drives the CPU ArchModel. The CUDA implementation lives in
// engine/cuda/ and is built when nvcc is present; without it make_cuda_model() says so.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/forward_batch.h"
#include "model/checkpoint.h"

namespace hearth {

// What the GPU computes in: kAuto is f32 for f32 checkpoints (parity runs) and bf16 for everything else
// (bf16, f16, FP8 — FP8 is dequantized to bf16 at load).
enum class GpuPrecision : uint8_t { kAuto, kF32, kBF16 };

struct DeviceModelOptions {
  int device = 0;  // CUDA device index
  GpuPrecision precision = GpuPrecision::kAuto;
  bool fp8_weights = false;             // quantize linear weights to FP8 e4m3 (one scale per row) at load
  int64_t block_size = 16;              // KV tokens per block
  int64_t num_blocks = 0;               // 0: as many as gpu_memory_utilization leaves room for
  double gpu_memory_utilization = 0.9;  // fraction of the card's memory this process may hold
  int64_t max_batch_tokens = 8192;      // tokens in one step (activation buffers are sized for it)
  int64_t max_seqs = 256;               // sequences (chunks) in one step
  bool cuda_graphs = true;              // replay captured decode steps
};

// The device's answer for a logit row of a chunk marked device_sample: the token chosen under the chunk's
// DeviceSampling, its raw log-softmax value, and the top_logprobs highest raw entries (highest first).
struct DeviceLogprob {
  int32_t id = 0;
  float logprob = 0.0f;
};
struct DeviceToken {
  static constexpr int kMaxTop = 20;
  int32_t id = 0;
  float logprob = 0.0f;
  int32_t num_top = 0;
  std::array<DeviceLogprob, kMaxTop> top{};
};

struct DeviceMemoryReport {
  uint64_t weight_bytes = 0;
  uint64_t kv_bytes = 0;
  uint64_t activation_bytes = 0;
  uint64_t total_bytes = 0;  // the card's memory
  std::string device_name;
};

class DeviceModel {
 public:
  virtual ~DeviceModel() = default;
  virtual int64_t kv_num_blocks() const = 0;
  virtual int64_t kv_block_size() const = 0;
  virtual DeviceMemoryReport memory() const = 0;
  virtual int64_t max_batch_tokens() const = 0;
  virtual int64_t max_seqs() const = 0;
  // Runs `batch` (validated by ModelRunner). `tokens` gets num_logit_rows() entries: for rows of chunks
  // marked device_sample the token chosen on the device, for the others the argmax; `logits` gets
  // num_logit_rows() x vocab floats of which only the rows of chunks not marked device_sample are filled
  // (the others cost no copy).
  virtual Status forward(const ForwardBatch& batch, std::vector<float>& logits,
                         std::vector<DeviceToken>& tokens) = 0;
};

Result<std::unique_ptr<DeviceModel>> make_cuda_model(std::shared_ptr<const Checkpoint> checkpoint,
                                                     const DeviceModelOptions& options);

}  // namespace hearth
