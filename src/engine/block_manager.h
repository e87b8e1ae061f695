#pragma once
// BlockManager: bookkeeping of the paged KV cache's blocks (which are free, who holds which). Pure
// mechanism: the scheduler decides who gets blocks; this only allocates and frees them. Blocks carry a
// reference count so that a later prefix cache can share them between sequences.
#include <cstdint>
#include <vector>

#include "core/status.h"

namespace hearth {

class BlockManager {
 public:
  explicit BlockManager(int64_t num_blocks);

  int64_t num_blocks() const { return static_cast<int64_t>(ref_.size()); }
  int64_t num_free() const { return static_cast<int64_t>(free_.size()); }

  // Appends n fresh blocks (ref count 1) to `table`; on shortage nothing changes and the error says
  // how many were needed and free.
  Status allocate(int64_t n, std::vector<int32_t>& table);
  // Grows `table` to cover `tokens` positions of `block_size`.
  Status ensure_capacity(std::vector<int32_t>& table, int64_t tokens, int64_t block_size);
  // Drops one reference to each block of `table` and clears it.
  void release(std::vector<int32_t>& table);
  int32_t ref_count(int32_t block) const { return ref_[static_cast<size_t>(block)]; }

 private:
  std::vector<int32_t> ref_;
  std::vector<int32_t> free_;  // a stack: the most recently freed block is reused first (warm in cache)
};

}  // namespace hearth
