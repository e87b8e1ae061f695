#pragma once
// ArchModel: one architecture family's forward pass on the CPU. The registry (registry.cpp) maps a
// ModelSpec's Architecture to the family file that builds it; adding a family is one file here plus
// one registry line.
#include <memory>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "engine/forward_batch.h"
#include "engine/kv_cache.h"
#include "engine/model_weights.h"

namespace hearth {

class ArchModel {
 public:
  virtual ~ArchModel() = default;
  // What one token occupies in the KV cache per layer.
  virtual KvLayout kv_layout() const = 0;
  // Runs every chunk of `batch`, appending their K/V to `kv`, and writes batch.num_logit_rows() rows of
  // vocab_size logits (in chunk order) into `logits`.
  virtual Status forward(const ForwardBatch& batch, KvCache& kv, ThreadPool& pool,
                         std::vector<float>& logits) = 0;
};

// Binds the weights of `weights.spec().architecture`; errors name the missing or malformed tensor.
Result<std::unique_ptr<ArchModel>> make_arch_model(ModelWeights& weights);

// The family factories (one per file).
Result<std::unique_ptr<ArchModel>> make_qwen2_model(ModelWeights& weights);
Result<std::unique_ptr<ArchModel>> make_llama_model(ModelWeights& weights);
Result<std::unique_ptr<ArchModel>> make_deepseek_model(ModelWeights& weights);

}  // namespace hearth
