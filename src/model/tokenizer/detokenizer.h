#pragma once
// Incremental detokenizer for streaming: feed ids one at a time, get text deltas that never split a
// UTF-8 code point. The concatenation of all deltas plus finish() equals Tokenizer::decode of the same
// ids (without clean_up_tokenization_spaces, which needs look-ahead and is not applied to streams).
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "model/tokenizer/tokenizer.h"

namespace hearth::tok {

class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(std::shared_ptr<const Tokenizer> tokenizer,
                                  bool skip_special_tokens = false)
      : tokenizer_(std::move(tokenizer)), skip_special_(skip_special_tokens) {}

  // Appends the complete text the id makes available to *delta (possibly nothing, when the id ends
  // inside a multi-byte character). Fails for ids outside the vocabulary.
  Status push(int32_t id, std::string* delta);

  // Flushes bytes still held back (an incomplete character at the end becomes U+FFFD).
  std::string finish();

  // Bytes held back waiting for the rest of a character (0..3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  std::shared_ptr<const Tokenizer> tokenizer_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace hearth::tok
