#pragma once
// BlockManager: bookkeeping of the paged KV cache's blocks, with a hash-chained prefix cache. Pure
// mechanism: the scheduler decides who gets blocks; this allocates, shares and frees them.
//
// Prefix cache (vLLM's design): a full block of `block_size` tokens is identified by the hash of
// (parent block's hash, its tokens), the chain starting from a per-tenant salt, so that equal prompt
// prefixes of the same tenant share blocks and different tenants never do (RELIABILITY.md: no
// cross-tenant timing channel). A hit is verified against the block's stored tokens, so a hash
// collision can never serve wrong KV. Blocks carry reference counts; a cached block whose count drops
// to zero stays cached in an LRU list and is evicted only when a fresh block is needed.
#include <cstdint>
#include <list>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"

namespace hearth {

struct PrefixMatch {
  std::vector<int32_t> blocks;  // shared blocks (ref counts taken), in order
  int64_t tokens = 0;           // tokens they hold (blocks.size() * block_size)
  uint64_t chain = 0;           // the hash chain after the last matched block (the salt's root if none)
};

// Where a sequence's registration in the prefix cache stands, so that commit() hashes each block once.
struct PrefixChain {
  int64_t blocks = 0;  // leading full blocks already registered (or matched)
  uint64_t hash = 0;   // the chain hash after them
  bool started = false;
};

struct PrefixCacheStats {
  uint64_t queries = 0;    // tokens looked up (full blocks of prompts)
  uint64_t hits = 0;       // of them found cached
  uint64_t evictions = 0;  // cached blocks reused for new data
};

class BlockManager {
 public:
  explicit BlockManager(int64_t num_blocks, int64_t block_size = 16, bool prefix_caching = true);

  int64_t num_blocks() const { return static_cast<int64_t>(blocks_.size()); }
  int64_t block_size() const { return block_size_; }
  // Blocks that an allocation can take: never used, freed, or cached with no holder (evictable).
  int64_t num_free() const { return static_cast<int64_t>(free_.size() + lru_.size()); }
  int64_t num_used() const { return num_blocks() - num_free(); }
  bool prefix_caching() const { return prefix_caching_; }
  const PrefixCacheStats& stats() const { return stats_; }

  // Appends n fresh blocks (ref count 1) to `table`; on shortage nothing changes and the error says
  // how many were needed and free.
  Status allocate(int64_t n, std::vector<int32_t>& table);
  // Grows `table` to cover `tokens` positions.
  Status ensure_capacity(std::vector<int32_t>& table, int64_t tokens);
  // Drops one reference to each block of `table` and clears it.
  void release(std::vector<int32_t>& table);
  int32_t ref_count(int32_t block) const { return blocks_[static_cast<size_t>(block)].ref; }

  // The longest run of cached full blocks holding tokens[0 .. k * block_size) for `salt`, at most
  // `max_tokens` tokens. Takes a reference on each returned block.
  PrefixMatch match_prefix(std::span<const int32_t> tokens, std::string_view salt, int64_t max_tokens);
  // Registers the full blocks of `table` whose KV now holds tokens[0 .. computed) as cached, so later
  // prompts with the same prefix (and salt) can share them. `chain` carries the progress between calls
  // (each block is hashed once); a fresh PrefixChain starts from the salt.
  void commit(std::span<const int32_t> table, std::span<const int32_t> tokens, int64_t computed,
              std::string_view salt, PrefixChain& chain);

  // A salt's root hash (exposed for tests).
  static uint64_t salt_hash(std::string_view salt);

 private:
  struct Block {
    int32_t ref = 0;
    bool cached = false;  // in hash_to_block_
    uint64_t hash = 0;
    uint64_t parent = 0;
    std::vector<int32_t> tokens;  // the block's tokens, to verify hits
    std::list<int32_t>::iterator lru_pos;
    bool in_lru = false;
  };
  static uint64_t chain_hash(uint64_t parent, std::span<const int32_t> tokens);
  int32_t take_block();  // a free block, else the least recently used cached one (evicted)
  void uncache(int32_t b);

  int64_t block_size_;
  bool prefix_caching_;
  std::vector<Block> blocks_;
  std::vector<int32_t> free_;  // never-cached free blocks (a stack: recently freed reused first)
  std::list<int32_t> lru_;     // cached blocks with ref 0, least recently used first
  std::unordered_map<uint64_t, int32_t> hash_to_block_;
  PrefixCacheStats stats_;
};

}  // namespace hearth
