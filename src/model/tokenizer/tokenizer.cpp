#include "model/tokenizer/tokenizer.h"

#include <algorithm>

#include "core/utf8.h"
#include "model/tokenizer/byte_level.h"

namespace hearth::tok {

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    size_t len = utf8::valid_sequence_length(s, i);
    if (len > 0) {
      out.append(s, i, len);
      i += len;
      continue;
    }
    // Maximal subpart of an ill-formed sequence -> one U+FFFD.
    const auto b0 = static_cast<uint8_t>(s[i]);
    size_t need = (b0 >= 0xC2 && b0 <= 0xDF)   ? 1
                  : (b0 >= 0xE0 && b0 <= 0xEF) ? 2
                  : (b0 >= 0xF0 && b0 <= 0xF4) ? 3
                                               : 0;
    size_t k = 0;
    while (k < need && i + 1 + k < n) {
      const auto b = static_cast<uint8_t>(s[i + 1 + k]);
      uint8_t lo = 0x80, hi = 0xBF;
      if (k == 0) {
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
      }
      if (b < lo || b > hi) break;
      ++k;
    }
    out += "\xEF\xBF\xBD";
    i += 1 + k;
  }
  return out;
}

std::string clean_up_tokenization(std::string_view text) {
  static constexpr std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  std::string cur(text), next;
  for (const auto& [from, to] : kRules) {
    if (cur.find(from) == std::string::npos) continue;
    next.clear();
    size_t pos = 0;
    for (size_t hit; (hit = cur.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
      next.append(cur, pos, hit - pos);
      next += to;
    }
    next.append(cur, pos, std::string::npos);
    cur.swap(next);
  }
  return cur;
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::build(TokenizerDefinition def) {
  auto t = std::shared_ptr<Tokenizer>(new Tokenizer());
  // Ids: the union of the model vocab and the added tokens.
  size_t id_space = def.vocab.size();
  for (const auto& [id, text] : def.text_only_vocab) {
    if (id < 0 || id >= (1 << 24)) return make_error(ErrorCode::kOutOfRange, "vocab id {} out of range", id);
    id_space = std::max(id_space, static_cast<size_t>(id) + 1);
  }
  for (const auto& a : def.added) {
    if (a.id < 0 || a.id >= (1 << 24)) {
      return make_error(ErrorCode::kOutOfRange, "added token '{}' has id {} outside [0, 16777216)", a.content,
                        a.id);
    }
    if (a.content.empty()) return make_error(ErrorCode::kCorrupt, "added token with id {} is empty", a.id);
    id_space = std::max(id_space, static_cast<size_t>(a.id) + 1);
  }
  t->decoded_.assign(id_space, std::string());
  t->special_.assign(id_space, 0);
  for (size_t id = 0; id < def.vocab.size(); ++id) t->decoded_[id] = def.vocab[id];
  for (const auto& [id, text] : def.text_only_vocab) t->decoded_[static_cast<size_t>(id)] = text;
  for (const auto& a : def.added) {
    // HF ByteLevel decoder: a token whose every char is a byte-level char decodes to those bytes,
    // otherwise to its UTF-8 text.
    auto bytes = byte_level_to_bytes(a.content);
    t->decoded_[static_cast<size_t>(a.id)] = bytes ? *bytes : a.content;
    t->special_[static_cast<size_t>(a.id)] = a.special ? 1 : 0;
  }
  auto check_id = [&](const std::optional<int32_t>& id, const char* what) -> Status {
    if (id && (*id < 0 || static_cast<size_t>(*id) >= id_space)) {
      return make_error(ErrorCode::kOutOfRange, "{} id {} is outside the vocabulary of {} ids", what, *id,
                        id_space);
    }
    return Status::ok();
  };
  HEARTH_RETURN_IF_ERROR(check_id(def.bos_id, "bos_token"));
  HEARTH_RETURN_IF_ERROR(check_id(def.eos_id, "eos_token"));
  HEARTH_RETURN_IF_ERROR(check_id(def.pad_id, "pad_token"));
  for (int32_t id : def.prefix_ids) HEARTH_RETURN_IF_ERROR(check_id(id, "post-processor special token"));
  for (int32_t id : def.suffix_ids) HEARTH_RETURN_IF_ERROR(check_id(id, "post-processor special token"));

  BpeModel::Options bo;
  bo.ignore_merges = def.ignore_merges;
  HEARTH_ASSIGN_OR_RETURN(t->bpe_, BpeModel::build(std::move(def.vocab), def.merges, bo));
  def.vocab.clear();
  def.merges.clear();
  def.merges.shrink_to_fit();
  t->added_.build(def.added);
  t->def_ = std::move(def);
  return std::shared_ptr<const Tokenizer>(std::move(t));
}

Status Tokenizer::encode_segment(std::string_view segment, std::vector<int32_t>* out) const {
  if (segment.empty()) return Status::ok();
  std::string normalized;
  std::string_view text = segment;
  if (!def_.normalizers.empty()) {
    HEARTH_RETURN_IF_ERROR(normalize(def_.normalizers, segment, &normalized));
    text = normalized;
  }
  std::vector<Span> pieces, scratch;
  HEARTH_RETURN_IF_ERROR(pre_tokenize(def_.pre_tokenizers, text, &pieces, &scratch));
  for (const Span& p : pieces) bpe_->encode(text.substr(p.begin, p.end - p.begin), out);
  return Status::ok();
}

Result<std::vector<int32_t>> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  if (text.size() > 0xFFFFFFF0u)
    return make_error(ErrorCode::kOutOfRange, "text of {} bytes is too long", text.size());
  size_t bad = utf8::first_invalid(text);
  if (bad != std::string_view::npos) {
    return make_error(ErrorCode::kInvalidArgument, "text is not valid UTF-8 (byte offset {})", bad);
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (options.add_special_tokens) ids.insert(ids.end(), def_.prefix_ids.begin(), def_.prefix_ids.end());
  std::vector<AddedMatch> matches;
  added_.find(text, options.parse_special, &matches);
  size_t pos = 0;
  for (const AddedMatch& m : matches) {
    HEARTH_RETURN_IF_ERROR(encode_segment(text.substr(pos, m.begin - pos), &ids));
    ids.push_back(m.id);
    pos = m.end;
  }
  HEARTH_RETURN_IF_ERROR(encode_segment(text.substr(pos), &ids));
  if (options.add_special_tokens) ids.insert(ids.end(), def_.suffix_ids.begin(), def_.suffix_ids.end());
  return ids;
}

Result<std::string> Tokenizer::decode(std::span<const int32_t> ids, const DecodeOptions& options) const {
  std::string bytes;
  bytes.reserve(ids.size() * 4);
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (!is_valid_id(id)) {
      return make_error(ErrorCode::kOutOfRange,
                        "token id {} at position {} is not in the vocabulary (ids 0..{})", id, i,
                        decoded_.size() - 1);
    }
    if (options.skip_special_tokens && special_[static_cast<size_t>(id)]) continue;
    bytes += decoded_[static_cast<size_t>(id)];
  }
  std::string text = utf8_lossy(bytes);
  if (options.clean_up_tokenization_spaces) {
    text = clean_up_tokenization(text);
  }
  return text;
}

std::string_view Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= decoded_.size()) return {};
  return decoded_[static_cast<size_t>(id)];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < special_.size() && special_[static_cast<size_t>(id)] != 0;
}

bool Tokenizer::is_valid_id(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= decoded_.size()) return false;
  return bpe_->has_id(id) || !decoded_[static_cast<size_t>(id)].empty();
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  for (const auto& a : added_.tokens()) {
    if (a.content == token) return a.id;
  }
  auto bytes = byte_level_to_bytes(token);
  if (!bytes) return std::nullopt;
  return bpe_->token_to_id(*bytes);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  for (const auto& a : added_.tokens()) {
    if (a.id == id) return a.content;
  }
  if (!bpe_->has_id(id)) return {};
  return bytes_to_byte_level(bpe_->id_to_bytes(id));
}

}  // namespace hearth::tok
