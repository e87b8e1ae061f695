#pragma once
// Byte-pair encoding over raw bytes: vocab entries and merges are converted from their byte-level
// spelling at load, so encoding never materialises the 'Ġ'-style strings.
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/status.h"

namespace hearth::tok {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept;
};

class BpeModel {
 public:
  struct Options {
    bool ignore_merges = false;       // Llama-3: a piece that is itself a token is emitted whole
    size_t cache_capacity = 1 << 16;  // cached pieces (words); 0 disables the cache
  };

  // id_to_bytes[id] is the raw byte string of token id ("" for ids the vocab does not use).
  // merges are (left, right) raw byte strings in priority order.
  static Result<std::unique_ptr<BpeModel>> build(
      std::vector<std::string> id_to_bytes, const std::vector<std::pair<std::string, std::string>>& merges,
      const Options& options);

  // Appends the ids of one pre-token (raw bytes). Thread-safe.
  void encode(std::string_view piece, std::vector<int32_t>* out) const;

  std::optional<int32_t> token_to_id(std::string_view bytes) const;
  size_t id_space() const { return id_to_bytes_.size(); }
  const std::string& id_to_bytes(int32_t id) const { return id_to_bytes_[static_cast<size_t>(id)]; }
  bool has_id(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < id_to_bytes_.size() && used_[static_cast<size_t>(id)];
  }
  size_t merge_count() const { return merge_count_; }

 private:
  struct MergeTable {
    // Open addressing: key = left << 32 | right, value = rank << 32 | merged id.
    std::vector<uint64_t> keys;
    std::vector<uint64_t> values;
    uint64_t mask = 0;
    bool find(int32_t left, int32_t right, uint32_t* rank, int32_t* merged) const;
    void insert(int32_t left, int32_t right, uint32_t rank, int32_t merged);
  };
  struct CacheShard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
  };
  static constexpr size_t kCacheShards = 64;

  void merge_word(std::string_view piece, std::vector<int32_t>* out) const;

  Options options_;
  std::vector<std::string> id_to_bytes_;
  std::vector<bool> used_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> bytes_to_id_;
  int32_t byte_ids_[256];
  MergeTable merges_;
  size_t merge_count_ = 0;
  mutable std::unique_ptr<CacheShard[]> cache_;
  size_t shard_capacity_ = 0;
};

}  // namespace hearth::tok
