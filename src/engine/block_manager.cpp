#include "engine/block_manager.h"

#include <cassert>

namespace hearth {

namespace {
// 64-bit mixing (splitmix64 finaliser) over a running value.
inline uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}
}  // namespace

BlockManager::BlockManager(int64_t num_blocks, int64_t block_size, bool prefix_caching)
    : block_size_(block_size), prefix_caching_(prefix_caching), blocks_(static_cast<size_t>(num_blocks)) {
  free_.reserve(blocks_.size());
  for (int64_t b = num_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

uint64_t BlockManager::salt_hash(std::string_view salt) {
  uint64_t h = 0x6865617274680001ULL;  // "hearth"
  for (unsigned char c : salt) h = mix(h, c);
  return mix(h, salt.size());
}

uint64_t BlockManager::chain_hash(uint64_t parent, std::span<const int32_t> tokens) {
  uint64_t h = mix(parent, tokens.size());
  for (int32_t t : tokens) h = mix(h, static_cast<uint32_t>(t));
  return h;
}

void BlockManager::uncache(int32_t b) {
  Block& blk = blocks_[static_cast<size_t>(b)];
  if (!blk.cached) return;
  auto it = hash_to_block_.find(blk.hash);
  if (it != hash_to_block_.end() && it->second == b) hash_to_block_.erase(it);
  blk.cached = false;
  blk.tokens.clear();
}

int32_t BlockManager::take_block() {
  int32_t b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else {
    b = lru_.front();
    lru_.pop_front();
    blocks_[static_cast<size_t>(b)].in_lru = false;
    uncache(b);
    ++stats_.evictions;
  }
  blocks_[static_cast<size_t>(b)].ref = 1;
  return b;
}

Status BlockManager::allocate(int64_t n, std::vector<int32_t>& table) {
  if (n < 0 || n > num_free()) {
    return make_error(ErrorCode::kResourceExhausted, "KV cache: {} blocks needed, {} of {} free", n,
                      num_free(), num_blocks());
  }
  for (int64_t i = 0; i < n; ++i) table.push_back(take_block());
  return Status::ok();
}

Status BlockManager::ensure_capacity(std::vector<int32_t>& table, int64_t tokens) {
  const int64_t need = (tokens + block_size_ - 1) / block_size_ - static_cast<int64_t>(table.size());
  return need > 0 ? allocate(need, table) : Status::ok();
}

void BlockManager::release(std::vector<int32_t>& table) {
  // Later blocks first: when the LRU evicts, the tail of a prefix goes before its head.
  for (auto it = table.rbegin(); it != table.rend(); ++it) {
    Block& blk = blocks_[static_cast<size_t>(*it)];
    assert(blk.ref > 0 && "releasing a free KV block");
    if (--blk.ref > 0) continue;
    if (blk.cached) {
      blk.lru_pos = lru_.insert(lru_.end(), *it);
      blk.in_lru = true;
    } else {
      free_.push_back(*it);
    }
  }
  table.clear();
}

PrefixMatch BlockManager::match_prefix(std::span<const int32_t> tokens, std::string_view salt,
                                       int64_t max_tokens) {
  PrefixMatch m;
  if (!prefix_caching_) return m;
  const int64_t full = std::min<int64_t>(static_cast<int64_t>(tokens.size()), max_tokens) / block_size_;
  stats_.queries += static_cast<uint64_t>(full * block_size_);
  uint64_t h = salt_hash(salt);
  for (int64_t i = 0; i < full; ++i) {
    const auto chunk = tokens.subspan(static_cast<size_t>(i * block_size_), static_cast<size_t>(block_size_));
    const uint64_t parent = h;
    h = chain_hash(h, chunk);
    auto it = hash_to_block_.find(h);
    if (it == hash_to_block_.end()) break;
    Block& blk = blocks_[static_cast<size_t>(it->second)];
    if (blk.parent != parent || !std::equal(chunk.begin(), chunk.end(), blk.tokens.begin(), blk.tokens.end()))
      break;
    if (blk.in_lru) {
      lru_.erase(blk.lru_pos);
      blk.in_lru = false;
    }
    ++blk.ref;
    m.blocks.push_back(it->second);
  }
  m.tokens = static_cast<int64_t>(m.blocks.size()) * block_size_;
  stats_.hits += static_cast<uint64_t>(m.tokens);
  // h went one block past the match when the loop broke on a miss: recompute the chain at the match.
  uint64_t chain = salt_hash(salt);
  for (size_t i = 0; i < m.blocks.size(); ++i) chain = blocks_[static_cast<size_t>(m.blocks[i])].hash;
  m.chain = chain;
  return m;
}

void BlockManager::commit(std::span<const int32_t> table, std::span<const int32_t> tokens, int64_t computed,
                          std::string_view salt, PrefixChain& chain) {
  if (!prefix_caching_) return;
  if (!chain.started) {
    chain.started = true;
    chain.blocks = 0;
    chain.hash = salt_hash(salt);
  }
  const int64_t full = std::min<int64_t>(computed / block_size_, static_cast<int64_t>(table.size()));
  for (int64_t i = chain.blocks; i < full; ++i) {
    const auto chunk = tokens.subspan(static_cast<size_t>(i * block_size_), static_cast<size_t>(block_size_));
    const uint64_t parent = chain.hash;
    chain.hash = chain_hash(parent, chunk);
    chain.blocks = i + 1;
    const int32_t b = table[static_cast<size_t>(i)];
    Block& blk = blocks_[static_cast<size_t>(b)];
    if (blk.cached) continue;                             // shared from the cache, or committed before
    if (hash_to_block_.count(chain.hash) != 0) continue;  // another block holds this prefix: keep that one
    blk.cached = true;
    blk.hash = chain.hash;
    blk.parent = parent;
    blk.tokens.assign(chunk.begin(), chunk.end());
    hash_to_block_.emplace(chain.hash, b);
  }
}

}  // namespace hearth
