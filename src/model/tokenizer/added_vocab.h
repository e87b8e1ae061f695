#pragma once
// Added tokens (special and not) are found in raw text before normalization and pre-tokenization,
// leftmost-longest, as HF's AddedVocabulary does.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::tok {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;
};

struct AddedMatch {
  uint32_t begin;  // after lstrip/rstrip extension
  uint32_t end;
  int32_t id;
};

class AddedVocab {
 public:
  void build(std::vector<AddedToken> tokens);
  const std::vector<AddedToken>& tokens() const { return tokens_; }
  bool empty() const { return tokens_.empty(); }

  // Finds the added tokens in text, left to right, non-overlapping. `special_only` skips
  // non-special tokens (unused by default), `include_special=false` skips special ones
  // (HF split_special_tokens=True).
  void find(std::string_view text, bool include_special, std::vector<AddedMatch>* out) const;

 private:
  struct Node {
    int32_t first_child = -1;
    int32_t next_sibling = -1;
    int32_t token = -1;  // index into tokens_ when a token ends here
    uint8_t byte = 0;
  };
  int32_t child(int32_t node, uint8_t b) const;

  std::vector<AddedToken> tokens_;
  std::vector<Node> nodes_;  // trie; node 0 is the root
  bool first_byte_[256] = {};
};

}  // namespace hearth::tok
