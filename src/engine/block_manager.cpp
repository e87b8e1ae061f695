#include "engine/block_manager.h"

#include <cassert>

namespace hearth {

BlockManager::BlockManager(int64_t num_blocks) : ref_(static_cast<size_t>(num_blocks), 0) {
  free_.reserve(ref_.size());
  for (int64_t b = num_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

Status BlockManager::allocate(int64_t n, std::vector<int32_t>& table) {
  if (n < 0 || n > num_free()) {
    return make_error(ErrorCode::kResourceExhausted, "KV cache: {} blocks needed, {} of {} free", n,
                      num_free(), num_blocks());
  }
  for (int64_t i = 0; i < n; ++i) {
    const int32_t b = free_.back();
    free_.pop_back();
    ref_[static_cast<size_t>(b)] = 1;
    table.push_back(b);
  }
  return Status::ok();
}

Status BlockManager::ensure_capacity(std::vector<int32_t>& table, int64_t tokens, int64_t block_size) {
  const int64_t need = (tokens + block_size - 1) / block_size - static_cast<int64_t>(table.size());
  return need > 0 ? allocate(need, table) : Status::ok();
}

void BlockManager::release(std::vector<int32_t>& table) {
  for (int32_t b : table) {
    int32_t& r = ref_[static_cast<size_t>(b)];
    assert(r > 0 && "releasing a free KV block");
    if (--r == 0) free_.push_back(b);
  }
  table.clear();
}

}  // namespace hearth
