#pragma once
// response_format {"type": "json_object"}: guided decoding that keeps the output a prefix of one JSON
// object (RFC 8259), then allows only end-of-sequence. A byte-level pushdown recognizer runs over
// each candidate token's bytes; the vocabulary's byte strings are computed once per model
// (JsonTokenTable) and shared by every request.
#include <array>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/token_constraint.h"
#include "model/tokenizer/tokenizer.h"

namespace hearth::server {

// The byte-level JSON recognizer: feed() bytes one at a time; false means the bytes so far are not a
// prefix of any JSON object. Trivially copyable (a fixed-depth stack), so trying a token is a copy.
class JsonPrefix {
 public:
  static constexpr int kMaxDepth = 32;
  static constexpr int kMaxWhitespaceRun = 32;  // a model must not pad forever

  bool feed(uint8_t c);
  bool feed(std::string_view bytes) {
    for (char c : bytes)
      if (!feed(static_cast<uint8_t>(c))) return false;
    return true;
  }
  bool complete() const { return state_ == State::kDone; }
  // The recognizer's state as bytes: equal keys accept exactly the same continuations.
  std::string key() const;

 private:
  enum class State : uint8_t {
    kStart,         // nothing yet: '{' only
    kValue,         // a value must start
    kObjectFirst,   // after '{': '"' or '}'
    kObjectKey,     // after ',' in an object: '"'
    kColon,         // after a key
    kObjectNext,    // after a member: ',' or '}'
    kArrayFirst,    // after '[': a value or ']'
    kArrayNext,     // after an element: ',' or ']'
    kString,        // inside a string (is_key_ tells which)
    kEscape,        // after '\'
    kUnicode,       // \uXXXX: hex_left_ digits to go, unit_ so far
    kLowBackslash,  // after a high surrogate: the backslash of the low one's escape
    kLowU,          // ... then its 'u'
    kNumber,        // num_ says where in the number
    kLiteral,       // true / false / null: literal_ and literal_pos_
    kDone,
  };
  enum class Num : uint8_t { kMinus, kZero, kInt, kDot, kFrac, kExp, kExpSign, kExpInt };

  bool value_start(uint8_t c);
  bool after_value(uint8_t c);  // the value just ended; c belongs to the container
  void value_done();
  static bool ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
  bool whitespace(uint8_t c);

  State state_ = State::kStart;
  bool is_key_ = false;
  Num num_ = Num::kInt;
  uint8_t hex_left_ = 0;
  uint16_t unit_ = 0;      // the UTF-16 code unit being read
  bool want_low_ = false;  // the unit being read must be a low surrogate (DC00-DFFF)
  uint8_t literal_ = 0;    // 0 true, 1 false, 2 null
  uint8_t literal_pos_ = 0;
  uint8_t ws_run_ = 0;
  int8_t depth_ = 0;
  std::array<char, kMaxDepth> stack_{};
};

// Masks of recently seen recognizer states (least recently used out first), shared by every request of a
// model: JSON output revisits few states (inside a string, between members), so most steps copy a mask
// instead of running the recognizer over the whole vocabulary. Thread-safe.
class JsonMaskCache {
 public:
  explicit JsonMaskCache(size_t capacity) : capacity_(capacity) {}
  // Copies the mask of `key` into `out` (its first min(sizes) entries); false when it is not cached.
  bool lookup(const std::string& key, std::span<uint8_t> out);
  void insert(const std::string& key, std::span<const uint8_t> mask);
  size_t size() const;

 private:
  using Entry = std::pair<std::string, std::vector<uint8_t>>;
  mutable std::mutex mu_;
  size_t capacity_;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

// Per model: every id's bytes as the detokenizer would emit them, which ids end a sequence, and the mask
// cache.
struct JsonTokenTable {
  static constexpr size_t kCachedMasks = 64;
  std::vector<std::string> bytes;  // "" for ids that can never appear in JSON text (special tokens)
  std::vector<int32_t> stop_ids;
  std::shared_ptr<JsonMaskCache> masks = std::make_shared<JsonMaskCache>(kCachedMasks);
  static std::shared_ptr<const JsonTokenTable> build(const tok::Tokenizer& tokenizer, int64_t vocab_size,
                                                     std::vector<int32_t> stop_ids);
};

class JsonObjectConstraint final : public TokenConstraint {
 public:
  explicit JsonObjectConstraint(std::shared_ptr<const JsonTokenTable> table) : table_(std::move(table)) {}
  void fill_allowed(std::span<uint8_t> allowed) override;
  void accept(int32_t id) override;
  const JsonPrefix& state() const { return state_; }

 private:
  std::shared_ptr<const JsonTokenTable> table_;
  JsonPrefix state_;
};

}  // namespace hearth::server
