#pragma once
// ModelRunner: a loaded model ready to run batches — the checkpoint, the architecture's forward pass on
// the CPU (weights, KV cache, thread pool) or on a GPU (a DeviceModel owning its weights and KV pool),
// and the block manager of the paged KV cache. One engine thread owns it; it is not thread-safe.
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "engine/arch/arch_model.h"
#include "engine/block_manager.h"
#include "engine/device_model.h"
#include "engine/forward_batch.h"
#include "engine/kv_cache.h"
#include "engine/model_weights.h"

namespace hearth {

enum class RunnerDevice : uint8_t { kCpu, kCuda };

struct RunnerOptions {
  RunnerDevice device = RunnerDevice::kCpu;
  int threads = 0;             // 0: all hardware threads
  KvCacheConfig kv;            // CUDA: num_blocks 0 sizes the pool from gpu_memory_utilization
  DeviceModelOptions gpu;      // CUDA only (its block_size/num_blocks come from kv)
  bool prefix_caching = true;  // share KV blocks of equal prompt prefixes (per tenant)
  WeightLoadOptions weights;

  Status validate() const;
};

class ModelRunner {
 public:
  // `path`: a Hugging Face model directory or a .gguf file (as Checkpoint::open).
  static Result<std::unique_ptr<ModelRunner>> load(const std::string& path, const RunnerOptions& options);

  const ModelSpec& spec() const { return weights_->spec(); }
  const Checkpoint& checkpoint() const { return *checkpoint_; }
  const ModelWeights& weights() const { return *weights_; }
  BlockManager& blocks() { return blocks_; }
  const BlockManager& blocks() const { return blocks_; }
  RunnerDevice device() const { return device_ != nullptr ? RunnerDevice::kCuda : RunnerDevice::kCpu; }
  const DeviceModel* device_model() const { return device_.get(); }
  int64_t kv_block_size() const { return block_size_; }
  int64_t kv_num_blocks() const { return num_blocks_; }
  uint64_t kv_bytes() const;
  // The CPU KV cache (empty on a GPU runner).
  KvCache& kv() { return kv_; }
  const KvCache& kv() const { return kv_; }
  ThreadPool& pool() { return *pool_; }
  const ThreadPool& pool() const { return *pool_; }
  int64_t max_context() const;  // positions the model accepts (max_position_embeddings)

  // Runs one batch; logits receives batch.num_logit_rows() x vocab_size floats. Checks that every
  // chunk's block table covers its positions and that positions stay within max_context().
  // With `tokens` on a GPU runner, chunks marked device_sample get their token in tokens[row] and no
  // logits row (CPU runners leave tokens empty and fill every row).
  Status forward(const ForwardBatch& batch, std::vector<float>& logits,
                 std::vector<DeviceToken>* tokens = nullptr);

 private:
  ModelRunner(std::shared_ptr<const Checkpoint> checkpoint, std::unique_ptr<ThreadPool> pool,
              std::unique_ptr<ModelWeights> weights, std::unique_ptr<ArchModel> arch,
              const RunnerOptions& options);
  ModelRunner(std::shared_ptr<const Checkpoint> checkpoint, std::unique_ptr<ThreadPool> pool,
              std::unique_ptr<ModelWeights> weights, std::unique_ptr<DeviceModel> device,
              const RunnerOptions& options);

  std::shared_ptr<const Checkpoint> checkpoint_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<ModelWeights> weights_;
  std::unique_ptr<ArchModel> arch_;      // CPU
  std::unique_ptr<DeviceModel> device_;  // GPU
  KvCache kv_;
  int64_t block_size_;
  int64_t num_blocks_;
  BlockManager blocks_;
  std::vector<DeviceToken> token_scratch_;
};

}  // namespace hearth
