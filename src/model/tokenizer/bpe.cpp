#include "model/tokenizer/bpe.h"

#include <algorithm>
#include <limits>
#include <queue>

namespace hearth::tok {

size_t StringHash::operator()(std::string_view s) const noexcept {
  // FNV-1a over 8-byte words then the tail: fast for the short strings hashed here.
  uint64_t h = 0xcbf29ce484222325ULL;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    __builtin_memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0x100000001b3ULL;
    h ^= h >> 29;
  }
  for (; i < s.size(); ++i) h = (h ^ static_cast<uint8_t>(s[i])) * 0x100000001b3ULL;
  return static_cast<size_t>(h ^ (h >> 32));
}

namespace {
inline uint64_t mix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  return k;
}
constexpr uint64_t kEmpty = std::numeric_limits<uint64_t>::max();
}  // namespace

bool BpeModel::MergeTable::find(int32_t left, int32_t right, uint32_t* rank, int32_t* merged) const {
  const uint64_t key =
      (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  for (uint64_t slot = mix(key) & mask;; slot = (slot + 1) & mask) {
    if (keys[slot] == key) {
      *rank = static_cast<uint32_t>(values[slot] >> 32);
      *merged = static_cast<int32_t>(values[slot] & 0xFFFFFFFFu);
      return true;
    }
    if (keys[slot] == kEmpty) return false;
  }
}

void BpeModel::MergeTable::insert(int32_t left, int32_t right, uint32_t rank, int32_t merged) {
  const uint64_t key =
      (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  for (uint64_t slot = mix(key) & mask;; slot = (slot + 1) & mask) {
    if (keys[slot] == key) return;  // duplicate merge: the first (lowest rank) wins
    if (keys[slot] == kEmpty) {
      keys[slot] = key;
      values[slot] = (static_cast<uint64_t>(rank) << 32) | static_cast<uint32_t>(merged);
      return;
    }
  }
}

Result<std::unique_ptr<BpeModel>> BpeModel::build(
    std::vector<std::string> id_to_bytes, const std::vector<std::pair<std::string, std::string>>& merges,
    const Options& options) {
  if (id_to_bytes.size() > (1u << 24)) {
    return make_error(ErrorCode::kOutOfRange, "vocab has {} ids, more than the 16777216 supported",
                      id_to_bytes.size());
  }
  auto m = std::unique_ptr<BpeModel>(new BpeModel());
  m->options_ = options;
  m->used_.assign(id_to_bytes.size(), false);
  m->bytes_to_id_.reserve(id_to_bytes.size() * 2);
  for (size_t id = 0; id < id_to_bytes.size(); ++id) {
    if (id_to_bytes[id].empty()) continue;
    m->used_[id] = true;
    // Two ids with the same bytes: keep the lower one for encoding (HF keeps the last inserted;
    // byte-level vocabs never have such duplicates, and a later check rejects them).
    auto [it, inserted] = m->bytes_to_id_.emplace(id_to_bytes[id], static_cast<int32_t>(id));
    if (!inserted) {
      return make_error(ErrorCode::kCorrupt, "vocab ids {} and {} spell the same token", it->second, id);
    }
  }
  m->id_to_bytes_ = std::move(id_to_bytes);
  for (int b = 0; b < 256; ++b) {
    auto it = m->bytes_to_id_.find(std::string_view(reinterpret_cast<const char*>(&b), 1));
    m->byte_ids_[b] = it == m->bytes_to_id_.end() ? -1 : it->second;
  }
  size_t cap = 16;
  while (cap < merges.size() * 2 + 16) cap <<= 1;
  m->merges_.keys.assign(cap, kEmpty);
  m->merges_.values.assign(cap, 0);
  m->merges_.mask = cap - 1;
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    auto ia = m->bytes_to_id_.find(a);
    auto ib = m->bytes_to_id_.find(b);
    if (ia == m->bytes_to_id_.end() || ib == m->bytes_to_id_.end()) {
      return make_error(ErrorCode::kCorrupt, "merge #{} uses a token that is not in the vocab", rank);
    }
    joined.assign(a).append(b);
    auto ij = m->bytes_to_id_.find(joined);
    if (ij == m->bytes_to_id_.end()) {
      return make_error(ErrorCode::kCorrupt, "merge #{} produces a token that is not in the vocab", rank);
    }
    m->merges_.insert(ia->second, ib->second, static_cast<uint32_t>(rank), ij->second);
  }
  m->merge_count_ = merges.size();
  if (options.cache_capacity > 0) {
    m->cache_ = std::make_unique<CacheShard[]>(kCacheShards);
    m->shard_capacity_ = std::max<size_t>(1, options.cache_capacity / kCacheShards);
  }
  return m;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view bytes) const {
  auto it = bytes_to_id_.find(bytes);
  if (it == bytes_to_id_.end()) return std::nullopt;
  return it->second;
}

void BpeModel::encode(std::string_view piece, std::vector<int32_t>* out) const {
  if (piece.empty()) return;
  if (piece.size() == 1) {
    int32_t id = byte_ids_[static_cast<uint8_t>(piece[0])];
    if (id >= 0) out->push_back(id);
    return;
  }
  if (options_.ignore_merges) {
    auto it = bytes_to_id_.find(piece);
    if (it != bytes_to_id_.end()) {
      out->push_back(it->second);
      return;
    }
  }
  constexpr size_t kMaxCachedPiece = 256;
  if (!cache_ || piece.size() > kMaxCachedPiece) {
    merge_word(piece, out);
    return;
  }
  CacheShard& shard = cache_[StringHash{}(piece) % kCacheShards];
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.map.find(piece);
    if (it != shard.map.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t before = out->size();
  merge_word(piece, out);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.map.size() < shard_capacity_) {
    shard.map.emplace(std::string(piece),
                      std::vector<int32_t>(out->begin() + static_cast<ptrdiff_t>(before), out->end()));
  }
}

void BpeModel::merge_word(std::string_view piece, std::vector<int32_t>* out) const {
  // Symbols start as single bytes. Bytes missing from the vocab are dropped (HF without unk).
  constexpr size_t kShort = 48;
  if (piece.size() <= kShort) {
    // Short words (nearly all): repeated scan for the lowest-rank adjacent pair (leftmost on
    // ties), in a stack array. No heap, no allocation.
    int32_t ids[kShort];
    size_t len = 0;
    for (unsigned char c : piece) {
      if (byte_ids_[c] >= 0) ids[len++] = byte_ids_[c];
    }
    while (len > 1) {
      uint32_t best_rank = std::numeric_limits<uint32_t>::max();
      size_t best_i = 0;
      int32_t best_id = -1;
      for (size_t i = 0; i + 1 < len; ++i) {
        uint32_t rank;
        int32_t merged;
        if (merges_.find(ids[i], ids[i + 1], &rank, &merged) && rank < best_rank) {
          best_rank = rank;
          best_i = i;
          best_id = merged;
        }
      }
      if (best_id < 0) break;
      ids[best_i] = best_id;
      for (size_t i = best_i + 1; i + 1 < len; ++i) ids[i] = ids[i + 1];
      --len;
    }
    out->insert(out->end(), ids, ids + len);
    return;
  }
  struct Sym {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  std::vector<Sym> syms;
  syms.reserve(piece.size());
  for (unsigned char c : piece) {
    int32_t id = byte_ids_[c];
    if (id < 0) continue;
    syms.push_back({id, static_cast<int32_t>(syms.size()) - 1, static_cast<int32_t>(syms.size()) + 1});
  }
  if (syms.empty()) return;
  syms.back().next = -1;
  const size_t n = syms.size();

  // Long words: a min-heap of candidate merges (rank, position) over a linked list of symbols;
  // stale entries are skipped when popped. O(n log n).
  struct Cand {
    uint32_t rank;
    int32_t pos;
    int32_t left_id;
    int32_t right_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<>> heap;
  auto push = [&](int32_t pos) {
    int32_t nx = syms[static_cast<size_t>(pos)].next;
    if (nx < 0) return;
    uint32_t rank;
    int32_t merged;
    if (merges_.find(syms[static_cast<size_t>(pos)].id, syms[static_cast<size_t>(nx)].id, &rank, &merged)) {
      heap.push({rank, pos, syms[static_cast<size_t>(pos)].id, syms[static_cast<size_t>(nx)].id});
    }
  };
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    Sym& left = syms[static_cast<size_t>(c.pos)];
    if (left.id != c.left_id || left.next < 0) continue;  // stale
    Sym& right = syms[static_cast<size_t>(left.next)];
    if (right.id != c.right_id) continue;  // stale
    uint32_t rank = 0;
    int32_t merged = -1;
    merges_.find(left.id, right.id, &rank, &merged);
    left.id = merged;
    right.id = -1;  // removed
    left.next = right.next;
    if (right.next >= 0) syms[static_cast<size_t>(right.next)].prev = c.pos;
    if (left.prev >= 0) push(left.prev);
    push(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = syms[static_cast<size_t>(i)].next)
    out->push_back(syms[static_cast<size_t>(i)].id);
}

}  // namespace hearth::tok
