// Building a Tokenizer from the tokenizer stored in GGUF metadata (llama.cpp's convert_hf_to_gguf
// layout). GGUF keeps only a pre-tokenizer *name*; the regexes for each name are those of the
// original tokenizer.json, so encoding matches Hugging Face exactly.
#include <string>

#include "model/gguf_tokenizer.h"
#include "model/tokenizer/byte_level.h"
#include "model/tokenizer/tokenizer.h"

namespace hearth::tok {
namespace {

constexpr const char* kQwen2Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";
constexpr const char* kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kDeepseekV3Patterns[] = {
    "\\p{N}{1,3}",
    "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
    "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
};

Status add_split(const char* pattern, std::vector<PreTokenizerStep>* out) {
  PreTokenizerStep s;
  s.kind = PreTokenizerStep::Kind::kSplit;
  s.behavior = PreTokenizerStep::Behavior::kIsolated;
  HEARTH_ASSIGN_OR_RETURN(s.regex, Regex::compile(pattern));
  out->push_back(std::move(s));
  return Status::ok();
}

Status pre_tokenizer_for(std::string_view pre, TokenizerDefinition* def) {
  if (pre == "deepseek-v3") {
    for (const char* p : kDeepseekV3Patterns) HEARTH_RETURN_IF_ERROR(add_split(p, &def->pre_tokenizers));
    return Status::ok();
  }
  if (pre == "qwen2" || pre == "deepseek-r1-qwen") {
    def->normalizers.push_back({NormalizerStep::Kind::kNfc, "", ""});  // as Qwen's tokenizer.json
    return add_split(kQwen2Pattern, &def->pre_tokenizers);
  }
  if (pre == "llama-bpe" || pre == "llama3") {
    def->ignore_merges = true;
    return add_split(kLlama3Pattern, &def->pre_tokenizers);
  }
  if (pre == "gpt2" || pre == "default" || pre.empty()) return add_split(kGpt2Pattern, &def->pre_tokenizers);
  return make_error(
      ErrorCode::kUnsupported,
      "GGUF tokenizer.ggml.pre '{}' is not supported (supported: deepseek-v3, qwen2, deepseek-r1-qwen, "
      "llama-bpe, llama3, gpt2, default)",
      pre);
}

}  // namespace

std::string_view gguf_pre_name_for(std::span<const std::string> split_patterns) {
  if (split_patterns.size() == std::size(kDeepseekV3Patterns)) {
    bool same = true;
    for (size_t i = 0; i < split_patterns.size(); ++i)
      same = same && split_patterns[i] == kDeepseekV3Patterns[i];
    if (same) return "deepseek-v3";
  }
  if (split_patterns.size() == 1) {
    if (split_patterns[0] == kQwen2Pattern) return "qwen2";
    if (split_patterns[0] == kLlama3Pattern) return "llama-bpe";
    if (split_patterns[0] == kGpt2Pattern) return "gpt2";
  }
  return {};
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::from_gguf(const GgufTokenizerData& data) {
  if (data.model != "gpt2") {
    return make_error(
        ErrorCode::kUnsupported,
        "GGUF tokenizer.ggml.model '{}' is not supported (supported: gpt2, i.e. byte-level BPE)", data.model);
  }
  TokenizerDefinition def;
  HEARTH_RETURN_IF_ERROR(pre_tokenizer_for(data.pre, &def));
  const size_t n = data.tokens.size();
  def.vocab.assign(n, std::string());
  for (size_t id = 0; id < n; ++id) {
    const int32_t type =
        data.token_types.empty() ? static_cast<int32_t>(GgufTokenType::kNormal) : data.token_types[id];
    const std::string_view text = data.tokens[id];
    if (type == static_cast<int32_t>(GgufTokenType::kControl) ||
        type == static_cast<int32_t>(GgufTokenType::kUserDefined)) {
      if (text.empty()) continue;
      AddedToken a;
      a.id = static_cast<int32_t>(id);
      a.content = std::string(text);
      a.special = type == static_cast<int32_t>(GgufTokenType::kControl);
      def.added.push_back(std::move(a));
      continue;
    }
    if (type == static_cast<int32_t>(GgufTokenType::kUnused) || text.empty()) continue;
    auto bytes = byte_level_to_bytes(text);
    if (bytes && !bytes->empty()) {
      def.vocab[id] = std::move(*bytes);
    } else {
      def.text_only_vocab.emplace_back(static_cast<int32_t>(id), std::string(text));
    }
  }
  def.merges.reserve(data.merges.size());
  for (size_t i = 0; i < data.merges.size(); ++i) {
    std::string_view m = data.merges[i];
    size_t sp = m.find(' ');
    if (sp == std::string_view::npos || m.find(' ', sp + 1) != std::string_view::npos) {
      return make_error(ErrorCode::kCorrupt,
                        "tokenizer.ggml.merges[{}] is not two tokens separated by one space", i);
    }
    auto a = byte_level_to_bytes(m.substr(0, sp));
    auto b = byte_level_to_bytes(m.substr(sp + 1));
    if (!a || !b) return make_error(ErrorCode::kCorrupt, "tokenizer.ggml.merges[{}] is not byte-level", i);
    def.merges.emplace_back(std::move(*a), std::move(*b));
  }
  auto tok_text = [&](std::optional<uint32_t> id) -> std::string {
    return id ? std::string(data.tokens[*id]) : std::string();
  };
  if (data.bos_id) def.bos_id = static_cast<int32_t>(*data.bos_id);
  if (data.eos_id) def.eos_id = static_cast<int32_t>(*data.eos_id);
  if (data.pad_id) def.pad_id = static_cast<int32_t>(*data.pad_id);
  def.bos_token = tok_text(data.bos_id);
  def.eos_token = tok_text(data.eos_id);
  def.pad_token = tok_text(data.pad_id);
  if (data.add_bos_token.value_or(false) && def.bos_id) def.prefix_ids.push_back(*def.bos_id);
  if (data.add_eos_token.value_or(false) && def.eos_id) def.suffix_ids.push_back(*def.eos_id);
  def.chat_template = std::string(data.chat_template);
  auto t = build(std::move(def));
  if (!t.is_ok()) return t.status().with_context("GGUF tokenizer");
  return t;
}

}  // namespace hearth::tok
