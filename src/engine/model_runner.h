#pragma once
// ModelRunner: a loaded model ready to run batches on the CPU — the checkpoint, its weights, the
// architecture's forward pass, the paged KV cache with its block manager, and the thread pool. One
// engine thread owns it; it is not thread-safe.
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "engine/arch/arch_model.h"
#include "engine/block_manager.h"
#include "engine/forward_batch.h"
#include "engine/kv_cache.h"
#include "engine/model_weights.h"

namespace hearth {

struct RunnerOptions {
  int threads = 0;  // 0: all hardware threads
  KvCacheConfig kv;
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
  KvCache& kv() { return kv_; }
  const KvCache& kv() const { return kv_; }
  ThreadPool& pool() { return *pool_; }
  int64_t max_context() const;  // positions the model accepts (max_position_embeddings)

  // Runs one batch; logits receives batch.num_logit_rows() x vocab_size floats. Checks that every
  // chunk's block table covers its positions and that positions stay within max_context().
  Status forward(const ForwardBatch& batch, std::vector<float>& logits);

 private:
  ModelRunner(std::shared_ptr<const Checkpoint> checkpoint, std::unique_ptr<ThreadPool> pool,
              std::unique_ptr<ModelWeights> weights, std::unique_ptr<ArchModel> arch,
              const RunnerOptions& options);

  std::shared_ptr<const Checkpoint> checkpoint_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<ModelWeights> weights_;
  std::unique_ptr<ArchModel> arch_;
  KvCache kv_;
  BlockManager blocks_;
};

}  // namespace hearth
