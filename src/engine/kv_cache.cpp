#include "engine/kv_cache.h"

namespace hearth {

KvCache::KvCache(const KvLayout& layout, const KvCacheConfig& config)
    : layout_(layout),
      block_size_(config.block_size),
      num_blocks_(config.blocks()),
      layer_floats_(num_blocks_ * block_size_ * layout.token_floats),
      storage_(static_cast<size_t>(layer_floats_ * layout.layers), 0.0f) {}

}  // namespace hearth
