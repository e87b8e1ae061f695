#pragma once
// Byte-level BPE tokenizer, identical to Hugging Face `tokenizers` for the DeepSeek-V3/R1, Qwen2/2.5/3
// and Llama-3 families. Loaded from tokenizer.json (+ tokenizer_config.json) or GGUF metadata.
// Immutable after load; encode/decode are thread-safe.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "model/tokenizer/added_vocab.h"
#include "model/tokenizer/bpe.h"
#include "model/tokenizer/normalizer.h"
#include "model/tokenizer/pre_tokenizer.h"

namespace hearth {
struct GgufTokenizerData;
}

namespace hearth::tok {

struct EncodeOptions {
  bool add_special_tokens = true;  // BOS/EOS per post-processor or tokenizer_config (as transformers)
  bool parse_special = true;       // special tokens written in the text become their ids
};

struct DecodeOptions {
  bool skip_special_tokens = false;
  // transformers' clean_up_tokenization (" ." -> "."). Off by default: transformers 5 and HF
  // `tokenizers` do not apply it to BPE tokenizers (it corrupts text); tokenizer_config's value is
  // available as Tokenizer::clean_up_tokenization_spaces() for callers that want transformers 4.
  bool clean_up_tokenization_spaces = false;
};

// Everything a tokenizer is built from; filled by the tokenizer.json and GGUF loaders.
struct TokenizerDefinition {
  std::vector<NormalizerStep> normalizers;
  std::vector<PreTokenizerStep> pre_tokenizers;
  std::vector<std::string> vocab;                                // id -> raw bytes ("" where unused)
  std::vector<std::pair<int32_t, std::string>> text_only_vocab;  // vocab entries not spelled in bytes
  std::vector<std::pair<std::string, std::string>> merges;       // raw bytes
  bool ignore_merges = false;
  std::vector<AddedToken> added;
  std::vector<int32_t> prefix_ids;  // added by add_special_tokens
  std::vector<int32_t> suffix_ids;
  std::optional<int32_t> bos_id, eos_id, pad_id;
  std::string bos_token, eos_token, pad_token;
  bool clean_up_tokenization_spaces = false;
  std::string chat_template;  // default template, if the source had one
};

class Tokenizer {
 public:
  // A directory with tokenizer.json and (optionally) tokenizer_config.json.
  static Result<std::shared_ptr<const Tokenizer>> load_dir(const std::string& dir);
  // The two documents' text; `tokenizer_config_json` may be empty.
  static Result<std::shared_ptr<const Tokenizer>> from_json(std::string_view tokenizer_json,
                                                            std::string_view tokenizer_config_json);
  static Result<std::shared_ptr<const Tokenizer>> from_gguf(const GgufTokenizerData& data);
  static Result<std::shared_ptr<const Tokenizer>> build(TokenizerDefinition def);

  // Fails only on invalid UTF-8 (names the byte offset).
  Result<std::vector<int32_t>> encode(std::string_view text, const EncodeOptions& options = {}) const;
  // Fails on ids outside the vocabulary (names the id and position).
  Result<std::string> decode(std::span<const int32_t> ids, const DecodeOptions& options = {}) const;

  // Raw bytes an id contributes to decoded text (before UTF-8 repair). Empty for unknown ids.
  std::string_view token_bytes(int32_t id) const;
  bool is_special(int32_t id) const;
  bool is_valid_id(int32_t id) const;
  // Number of ids (max id + 1): the lower bound for a model's vocab_size.
  size_t id_space() const { return decoded_.size(); }
  std::optional<int32_t> token_to_id(std::string_view token) const;  // byte-level spelling or added content
  std::string id_to_token(int32_t id) const;                         // byte-level spelling or added content

  std::optional<int32_t> bos_id() const { return def_.bos_id; }
  std::optional<int32_t> eos_id() const { return def_.eos_id; }
  const std::string& bos_token() const { return def_.bos_token; }
  const std::string& eos_token() const { return def_.eos_token; }
  const std::string& chat_template() const { return def_.chat_template; }
  bool clean_up_tokenization_spaces() const { return def_.clean_up_tokenization_spaces; }
  const std::vector<AddedToken>& added_tokens() const { return added_.tokens(); }

 private:
  Tokenizer() = default;
  Status encode_segment(std::string_view segment, std::vector<int32_t>* out) const;

  TokenizerDefinition def_;  // vocab/merges moved out after building bpe_
  std::unique_ptr<BpeModel> bpe_;
  AddedVocab added_;
  std::vector<std::string> decoded_;  // id -> bytes for decoding
  std::vector<uint8_t> special_;      // id -> is special
};

// The GGUF tokenizer.ggml.pre name whose pre-tokenizer is exactly these Split regexes (in order):
// "deepseek-v3", "qwen2", "llama-bpe", "gpt2"; empty when none is.
std::string_view gguf_pre_name_for(std::span<const std::string> split_patterns);

// Replaces maximal invalid UTF-8 subsequences with U+FFFD (as Rust's from_utf8_lossy and WHATWG).
std::string utf8_lossy(std::string_view bytes);

// transformers' clean_up_tokenization: " ." -> "." etc.
std::string clean_up_tokenization(std::string_view text);

}  // namespace hearth::tok
