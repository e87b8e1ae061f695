#include "engine/model_runner.h"

namespace hearth {

Status RunnerOptions::validate() const {
  if (threads < 0 || threads > 1024)
    return make_error(ErrorCode::kInvalidArgument, "threads must be in [0, 1024], got {}", threads);
  if (kv.block_size < 1 || kv.block_size > 1024) {
    return make_error(ErrorCode::kInvalidArgument, "KV block size must be in [1, 1024], got {}",
                      kv.block_size);
  }
  if (device == RunnerDevice::kCuda) {
    if (gpu.gpu_memory_utilization <= 0.0 || gpu.gpu_memory_utilization > 1.0) {
      return make_error(ErrorCode::kInvalidArgument, "--gpu-memory-utilization must be in (0, 1], got {}",
                        gpu.gpu_memory_utilization);
    }
    if (gpu.max_seqs < 1 || gpu.max_batch_tokens < gpu.max_seqs) {
      return make_error(ErrorCode::kInvalidArgument,
                        "the GPU step limits need 1 <= max sequences ({}) <= max batch tokens ({})",
                        gpu.max_seqs, gpu.max_batch_tokens);
    }
    if (kv.num_blocks < 0 || kv.num_blocks > (int64_t{1} << 24))
      return make_error(ErrorCode::kInvalidArgument, "KV cache blocks must be in [0, 2^24], got {}",
                        kv.num_blocks);
    return Status::ok();
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
      block_size_(kv_.block_size()),
      num_blocks_(kv_.num_blocks()),
      blocks_(num_blocks_, block_size_, options.prefix_caching) {}

ModelRunner::ModelRunner(std::shared_ptr<const Checkpoint> checkpoint, std::unique_ptr<ThreadPool> pool,
                         std::unique_ptr<ModelWeights> weights, std::unique_ptr<DeviceModel> device,
                         const RunnerOptions& options)
    : checkpoint_(std::move(checkpoint)),
      pool_(std::move(pool)),
      weights_(std::move(weights)),
      device_(std::move(device)),
      kv_(KvLayout{0, 0}, KvCacheConfig{device_->kv_block_size(), 1, 0}),
      block_size_(device_->kv_block_size()),
      num_blocks_(device_->kv_num_blocks()),
      blocks_(num_blocks_, block_size_, options.prefix_caching) {}

uint64_t ModelRunner::kv_bytes() const {
  return device_ != nullptr ? device_->memory().kv_bytes : kv_.bytes();
}

Result<std::unique_ptr<ModelRunner>> ModelRunner::load(const std::string& path,
                                                       const RunnerOptions& options) {
  HEARTH_RETURN_IF_ERROR(options.validate());
  HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<Checkpoint> ckpt, Checkpoint::open(path));
  auto pool = std::make_unique<ThreadPool>(options.threads);
  auto weights = std::make_unique<ModelWeights>(ckpt, options.weights, pool.get());
  if (options.device == RunnerDevice::kCuda) {
    DeviceModelOptions g = options.gpu;
    g.block_size = options.kv.block_size;
    g.num_blocks = options.kv.num_blocks;
    HEARTH_ASSIGN_OR_RETURN(std::unique_ptr<DeviceModel> dev, make_cuda_model(ckpt, g));
    return std::unique_ptr<ModelRunner>(
        new ModelRunner(std::move(ckpt), std::move(pool), std::move(weights), std::move(dev), options));
  }
  HEARTH_ASSIGN_OR_RETURN(std::unique_ptr<ArchModel> arch, make_arch_model(*weights));
  return std::unique_ptr<ModelRunner>(
      new ModelRunner(std::move(ckpt), std::move(pool), std::move(weights), std::move(arch), options));
}

int64_t ModelRunner::max_context() const {
  return spec().max_position_embeddings;
}

Status ModelRunner::forward(const ForwardBatch& batch, std::vector<float>& logits,
                            std::vector<DeviceToken>* tokens) {
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
    if (static_cast<int64_t>(c.block_table.size()) * block_size_ < end) {
      return make_error(ErrorCode::kInternal, "batch chunk {}: block table covers {} positions, needs {}", i,
                        static_cast<int64_t>(c.block_table.size()) * block_size_, end);
    }
    for (int32_t b : c.block_table)
      if (b < 0 || b >= num_blocks_)
        return make_error(ErrorCode::kInternal, "batch chunk {}: bad block id {}", i, b);
    for (int32_t t : c.tokens)
      if (t < 0 || t >= spec().vocab_size) {
        return make_error(ErrorCode::kInvalidArgument, "token id {} is outside the vocabulary [0, {})", t,
                          spec().vocab_size);
      }
  }
  if (device_ != nullptr) {
    if (tokens != nullptr) return device_->forward(batch, logits, *tokens);
    // No consumer of device tokens: every row's logits are wanted.
    ForwardBatch all = batch;
    for (SequenceChunk& c : all.chunks) c.device_sample = false;
    return device_->forward(all, logits, token_scratch_);
  }
  if (tokens != nullptr) tokens->clear();
  return arch_->forward(batch, kv_, *pool_, logits);
}

}  // namespace hearth
