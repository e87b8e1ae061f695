#pragma once
// Pre-tokenization: split normalized text into pieces that BPE encodes independently.
#include <memory>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "model/tokenizer/regex.h"

namespace hearth::tok {

struct PreTokenizerStep {
  enum class Kind { kSplit, kByteLevel };
  // HF SplitDelimiterBehavior.
  enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
  Kind kind = Kind::kSplit;
  std::shared_ptr<const Regex> regex;  // kSplit; kByteLevel with use_regex: the GPT-2 pattern
  Behavior behavior = Behavior::kIsolated;
  bool invert = false;
};

// The GPT-2 pattern ByteLevel(use_regex=true) splits with.
extern const char* const kGpt2Pattern;

// Splits text into pieces (spans into text), applying the steps in order to every piece.
// `scratch` is reused between calls to avoid allocation.
Status pre_tokenize(const std::vector<PreTokenizerStep>& steps, std::string_view text,
                    std::vector<Span>* pieces, std::vector<Span>* scratch);

}  // namespace hearth::tok
