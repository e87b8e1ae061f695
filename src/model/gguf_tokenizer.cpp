#include "model/gguf_tokenizer.h"

#include <limits>

namespace hearth {
namespace {

// An optional array of strings.
Status read_strings(const GgufFile& f, std::string_view key, std::vector<std::string_view>* out) {
  if (f.find(key) == nullptr) return Status::ok();
  HEARTH_ASSIGN_OR_RETURN(GgufValue v, f.get_array(key, GgufType::kString));
  auto s = v.strings();
  out->assign(s.begin(), s.end());
  return Status::ok();
}

Status check_length(const GgufFile& f, std::string_view key, uint64_t n, uint64_t n_tokens) {
  if (n == n_tokens) return Status::ok();
  return make_error(ErrorCode::kCorrupt, "{}: {} has {} elements but tokenizer.ggml.tokens has {}", f.path(),
                    key, n, n_tokens);
}

Status read_token_types(const GgufFile& f, uint64_t n_tokens, std::vector<int32_t>* out) {
  constexpr std::string_view kKey = "tokenizer.ggml.token_type";
  if (f.find(kKey) == nullptr) return Status::ok();
  HEARTH_ASSIGN_OR_RETURN(GgufValue v, f.get_array(kKey));
  HEARTH_RETURN_IF_ERROR(check_length(f, kKey, v.size(), n_tokens));
  out->reserve(v.size());
  for (uint64_t i = 0; i < v.size(); ++i) {
    auto x = v.element(i).as_i64();
    if (!x) {
      return make_error(ErrorCode::kCorrupt, "{}: {} is an array of {}, expected integers (i32)", f.path(),
                        kKey, gguf_type_name(v.element_type()));
    }
    if (*x < std::numeric_limits<int32_t>::min() || *x > std::numeric_limits<int32_t>::max()) {
      return make_error(ErrorCode::kOutOfRange, "{}: {} element {} ({}) does not fit in i32", f.path(), kKey,
                        i, *x);
    }
    out->push_back(static_cast<int32_t>(*x));
  }
  return Status::ok();
}

Status read_scores(const GgufFile& f, uint64_t n_tokens, std::vector<float>* out) {
  constexpr std::string_view kKey = "tokenizer.ggml.scores";
  if (f.find(kKey) == nullptr) return Status::ok();
  HEARTH_ASSIGN_OR_RETURN(GgufValue v, f.get_array(kKey));
  if (v.element_type() != GgufType::kF32 && v.element_type() != GgufType::kF64) {
    return make_error(ErrorCode::kCorrupt, "{}: {} is an array of {}, expected an array of f32", f.path(),
                      kKey, gguf_type_name(v.element_type()));
  }
  HEARTH_RETURN_IF_ERROR(check_length(f, kKey, v.size(), n_tokens));
  out->reserve(v.size());
  for (uint64_t i = 0; i < v.size(); ++i) out->push_back(static_cast<float>(*v.element(i).as_f64()));
  return Status::ok();
}

Status read_token_id(const GgufFile& f, std::string_view key, uint64_t n_tokens,
                     std::optional<uint32_t>* out) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return Status::ok();
  auto id = v->as_i64();
  if (!id) {
    if (v->as_u64()) {
      return make_error(ErrorCode::kOutOfRange, "{}: {} = {} is not below the vocabulary size {}", f.path(),
                        key, *v->as_u64(), n_tokens);
    }
    return make_error(ErrorCode::kCorrupt, "{}: {} is {}, expected a token id (u32)", f.path(), key,
                      v->is_array() ? "an array" : gguf_type_name(v->type()));
  }
  if (*id < 0) {
    return make_error(ErrorCode::kOutOfRange, "{}: {} = {} is negative, not a token id", f.path(), key, *id);
  }
  if (static_cast<uint64_t>(*id) >= n_tokens) {
    return make_error(ErrorCode::kOutOfRange, "{}: {} = {} is not below the vocabulary size {}", f.path(),
                      key, *id, n_tokens);
  }
  *out = static_cast<uint32_t>(*id);
  return Status::ok();
}

Status read_bool(const GgufFile& f, std::string_view key, std::optional<bool>* out) {
  if (f.find(key) == nullptr) return Status::ok();
  HEARTH_ASSIGN_OR_RETURN(*out, f.get_bool(key));
  return Status::ok();
}

Status read_optional_string(const GgufFile& f, std::string_view key, std::string_view* out) {
  if (f.find(key) == nullptr) return Status::ok();
  HEARTH_ASSIGN_OR_RETURN(*out, f.get_string(key));
  return Status::ok();
}

}  // namespace

Result<GgufTokenizerData> read_gguf_tokenizer(const GgufFile& f) {
  GgufTokenizerData d;
  d.file = f.shared_from_this();
  HEARTH_ASSIGN_OR_RETURN(d.model, f.get_string("tokenizer.ggml.model"));
  HEARTH_RETURN_IF_ERROR(read_optional_string(f, "tokenizer.ggml.pre", &d.pre));
  HEARTH_ASSIGN_OR_RETURN(GgufValue tokens, f.get_array("tokenizer.ggml.tokens", GgufType::kString));
  if (tokens.size() == 0) {
    return make_error(ErrorCode::kCorrupt, "{}: tokenizer.ggml.tokens is empty", f.path());
  }
  if (tokens.size() > std::numeric_limits<uint32_t>::max()) {
    return make_error(ErrorCode::kOutOfRange, "{}: tokenizer.ggml.tokens has {} entries, more than 2^32-1",
                      f.path(), tokens.size());
  }
  auto token_views = tokens.strings();
  d.tokens.assign(token_views.begin(), token_views.end());
  const uint64_t n = d.tokens.size();
  HEARTH_RETURN_IF_ERROR(read_token_types(f, n, &d.token_types));
  HEARTH_RETURN_IF_ERROR(read_strings(f, "tokenizer.ggml.merges", &d.merges));
  HEARTH_RETURN_IF_ERROR(read_scores(f, n, &d.scores));
  HEARTH_RETURN_IF_ERROR(read_token_id(f, "tokenizer.ggml.bos_token_id", n, &d.bos_id));
  HEARTH_RETURN_IF_ERROR(read_token_id(f, "tokenizer.ggml.eos_token_id", n, &d.eos_id));
  HEARTH_RETURN_IF_ERROR(read_token_id(f, "tokenizer.ggml.unknown_token_id", n, &d.unk_id));
  HEARTH_RETURN_IF_ERROR(read_token_id(f, "tokenizer.ggml.seperator_token_id", n, &d.sep_id));
  HEARTH_RETURN_IF_ERROR(read_token_id(f, "tokenizer.ggml.padding_token_id", n, &d.pad_id));
  HEARTH_RETURN_IF_ERROR(read_token_id(f, "tokenizer.ggml.mask_token_id", n, &d.mask_id));
  HEARTH_RETURN_IF_ERROR(read_token_id(f, "tokenizer.ggml.eot_token_id", n, &d.eot_id));
  HEARTH_RETURN_IF_ERROR(read_token_id(f, "tokenizer.ggml.eom_token_id", n, &d.eom_id));
  HEARTH_RETURN_IF_ERROR(read_bool(f, "tokenizer.ggml.add_bos_token", &d.add_bos_token));
  HEARTH_RETURN_IF_ERROR(read_bool(f, "tokenizer.ggml.add_eos_token", &d.add_eos_token));
  HEARTH_RETURN_IF_ERROR(read_optional_string(f, "tokenizer.chat_template", &d.chat_template));
  return d;
}

}  // namespace hearth
