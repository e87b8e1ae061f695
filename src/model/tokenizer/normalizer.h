#pragma once
// Text normalizers of HF tokenizer.json that byte-level BPE models use.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace hearth::tok {

struct NormalizerStep {
  enum class Kind { kNfc, kNfd, kNfkc, kNfkd, kLowercase, kReplace, kPrepend };
  Kind kind = Kind::kNfc;
  std::string pattern;  // kReplace: literal to find
  std::string content;  // kReplace: replacement; kPrepend: prefix
};

// Applies the steps in order. `in` is valid UTF-8; the output is too.
Status normalize(const std::vector<NormalizerStep>& steps, std::string_view in, std::string* out);

}  // namespace hearth::tok
