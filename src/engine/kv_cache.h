#pragma once
// KvCache: the storage of the paged KV cache on the CPU — per layer, num_blocks blocks of block_size
// token slots, each slot `token_floats` wide (the architecture decides what a slot holds: K and V
// heads, or MLA's latent plus rope key). BlockManager hands out the block ids; the scheduler and the
// GPU backend share this shape (block tables index the same blocks on any device).
#include <cstdint>
#include <vector>

#include "kernels/cpu/attention.h"

namespace hearth {

struct KvCacheConfig {
  int64_t block_size = 16;    // tokens per block
  int64_t num_blocks = 0;     // 0: derived from max_tokens
  int64_t max_tokens = 8192;  // capacity when num_blocks is 0
  int64_t blocks() const { return num_blocks > 0 ? num_blocks : (max_tokens + block_size - 1) / block_size; }
};

struct KvLayout {
  int64_t layers = 0;
  int64_t token_floats = 0;  // per layer
};

class KvCache {
 public:
  KvCache(const KvLayout& layout, const KvCacheConfig& config);

  PagedKvLayer layer(int64_t l) {
    return {storage_.data() + l * layer_floats_, layout_.token_floats, block_size_};
  }
  int64_t block_size() const { return block_size_; }
  int64_t num_blocks() const { return num_blocks_; }
  uint64_t bytes() const { return storage_.size() * sizeof(float); }
  const KvLayout& layout() const { return layout_; }

 private:
  KvLayout layout_;
  int64_t block_size_;
  int64_t num_blocks_;
  int64_t layer_floats_;
  std::vector<float> storage_;
};

}  // namespace hearth
