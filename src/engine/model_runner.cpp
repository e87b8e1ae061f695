#include "engine/model_runner.h"

namespace hearth {

Status RunnerOptions::validate() const {
  if (threads < 0 || threads > 1024)
    return make_error(ErrorCode::kInvalidArgument, "threads must be in [0, 1024], got {}", threads);
  if (kv.block_size < 1 || kv.block_size > 1024) {
    return make_error(ErrorCode::kInvalidArgument, "KV block size must be in [1, 1024], got {}",
                      kv.block_size);
  }
  if (kv.blocks() < 1 || kv.blocks() > (int64_t{1} << 24)) {
    return make_error(ErrorCode::kInvalidArgument, "KV cache must have between 1 and 2^24 blocks, got {}",
                      kv.blocks());
  }
  return Status::ok();
}

ModelRunner::ModelRunner(std::shared_ptr<const Checkpoint> checkpoint, std::unique_ptr<ThreadPool> pool,
                         std::unique_ptr<ModelWeights> weights, std::unique_ptr<ArchModel> arch,
                         const RunnerOptions& options)
    : checkpoint_(std::move(checkpoint)),
      pool_(std::move(pool)),
      weights_(std::move(weights)),
      arch_(std::move(arch)),
      kv_(arch_->kv_layout(), options.kv),
      blocks_(kv_.num_blocks(), kv_.block_size(), options.prefix_caching) {}

Result<std::unique_ptr<ModelRunner>> ModelRunner::load(const std::string& path,
                                                       const RunnerOptions& options) {
  HEARTH_RETURN_IF_ERROR(options.validate());
  HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<Checkpoint> ckpt, Checkpoint::open(path));
  auto pool = std::make_unique<ThreadPool>(options.threads);
  auto weights = std::make_unique<ModelWeights>(ckpt, options.weights, pool.get());
  HEARTH_ASSIGN_OR_RETURN(std::unique_ptr<ArchModel> arch, make_arch_model(*weights));
  return std::unique_ptr<ModelRunner>(
      new ModelRunner(std::move(ckpt), std::move(pool), std::move(weights), std::move(arch), options));
}

int64_t ModelRunner::max_context() const {
  return spec().max_position_embeddings;
}

Status ModelRunner::forward(const ForwardBatch& batch, std::vector<float>& logits) {
  if (batch.chunks.empty()) {
    logits.clear();
    return Status::ok();
  }
  for (size_t i = 0; i < batch.chunks.size(); ++i) {
    const SequenceChunk& c = batch.chunks[i];
    const int64_t end = c.start_pos + static_cast<int64_t>(c.tokens.size());
    if (c.tokens.empty() || c.start_pos < 0) {
      return make_error(ErrorCode::kInvalidArgument, "batch chunk {}: no tokens or a negative position", i);
    }
    if (end > max_context()) {
      return make_error(ErrorCode::kOutOfRange,
                        "batch chunk {}: position {} exceeds the model's context of {}", i, end - 1,
                        max_context());
    }
    if (static_cast<int64_t>(c.block_table.size()) * kv_.block_size() < end) {
      return make_error(ErrorCode::kInternal, "batch chunk {}: block table covers {} positions, needs {}", i,
                        static_cast<int64_t>(c.block_table.size()) * kv_.block_size(), end);
    }
    for (int32_t b : c.block_table)
      if (b < 0 || b >= kv_.num_blocks())
        return make_error(ErrorCode::kInternal, "batch chunk {}: bad block id {}", i, b);
    for (int32_t t : c.tokens)
      if (t < 0 || t >= spec().vocab_size) {
        return make_error(ErrorCode::kInvalidArgument, "token id {} is outside the vocabulary [0, {})", t,
                          spec().vocab_size);
      }
  }
  return arch_->forward(batch, kv_, *pool_, logits);
}

}  // namespace hearth
