#pragma once
// The tokenizer stored in a GGUF file's `tokenizer.*` metadata, validated and exposed as views into
// the file (which `file` keeps alive). Turning it into a working tokenizer is src/model/tokenizer's job.
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "model/gguf.h"

namespace hearth {

struct GgufTokenizerData {
  std::shared_ptr<const GgufFile> file;  // owner of every view below

  std::string_view model;  // tokenizer.ggml.model: "gpt2" (byte-level BPE), "llama" (SentencePiece), ...
  std::string_view pre;    // tokenizer.ggml.pre: "deepseek-v3", "qwen2", "llama-bpe", ... ("" if absent)
  std::vector<std::string_view> tokens;  // tokenizer.ggml.tokens; id = index
  std::vector<int32_t> token_types;      // tokenizer.ggml.token_type; empty or tokens.size()
  std::vector<std::string_view> merges;  // tokenizer.ggml.merges ("a b"); empty if absent
  std::vector<float> scores;             // tokenizer.ggml.scores; empty or tokens.size()

  // Special token ids, each checked < tokens.size().
  std::optional<uint32_t> bos_id;   // tokenizer.ggml.bos_token_id
  std::optional<uint32_t> eos_id;   // tokenizer.ggml.eos_token_id
  std::optional<uint32_t> unk_id;   // tokenizer.ggml.unknown_token_id
  std::optional<uint32_t> sep_id;   // tokenizer.ggml.seperator_token_id (sic, as llama.cpp spells it)
  std::optional<uint32_t> pad_id;   // tokenizer.ggml.padding_token_id
  std::optional<uint32_t> mask_id;  // tokenizer.ggml.mask_token_id
  std::optional<uint32_t> eot_id;   // tokenizer.ggml.eot_token_id
  std::optional<uint32_t> eom_id;   // tokenizer.ggml.eom_token_id

  std::optional<bool> add_bos_token;  // tokenizer.ggml.add_bos_token
  std::optional<bool> add_eos_token;  // tokenizer.ggml.add_eos_token
  std::string_view chat_template;     // tokenizer.chat_template ("" if absent)
};

// token_type values (llama.cpp's llama_token_type).
enum class GgufTokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// kNotFound when the file has no tokenizer.ggml.model/tokens; kCorrupt (naming the key) for wrong
// types, mismatched array lengths; kOutOfRange for a special token id >= the vocabulary size.
Result<GgufTokenizerData> read_gguf_tokenizer(const GgufFile& file);

}  // namespace hearth
