// Loading HF tokenizer.json + tokenizer_config.json into a TokenizerDefinition.
#include <nlohmann/json.hpp>

#include <filesystem>

#include "core/json_guard.h"
#include "core/mapped_file.h"
#include "model/tokenizer/byte_level.h"
#include "model/tokenizer/tokenizer.h"

namespace hearth::tok {
namespace {

using nlohmann::json;

constexpr uint64_t kMaxTokenizerJsonBytes = 256ull << 20;
constexpr uint64_t kMaxConfigJsonBytes = 16ull << 20;

Result<json> parse_json(std::string_view text, uint64_t max_bytes, std::string_view what) {
  HEARTH_RETURN_IF_ERROR(check_json_limits(text, {.max_bytes = max_bytes, .max_depth = 64}, what));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(ErrorCode::kCorrupt, "{}: not valid JSON", what);
  return j;
}

std::string type_of(const json& j) {
  return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : "";
}

Status parse_normalizer(const json& j, std::vector<NormalizerStep>* out) {
  if (j.is_null()) return Status::ok();
  if (!j.is_object()) return make_error(ErrorCode::kCorrupt, "normalizer: expected an object");
  const std::string t = type_of(j);
  if (t == "Sequence") {
    if (!j.contains("normalizers") || !j["normalizers"].is_array()) {
      return make_error(ErrorCode::kCorrupt, "normalizer Sequence: 'normalizers' must be an array");
    }
    for (const auto& n : j["normalizers"]) HEARTH_RETURN_IF_ERROR(parse_normalizer(n, out));
    return Status::ok();
  }
  NormalizerStep s;
  if (t == "NFC") {
    s.kind = NormalizerStep::Kind::kNfc;
  } else if (t == "NFD") {
    s.kind = NormalizerStep::Kind::kNfd;
  } else if (t == "NFKC") {
    s.kind = NormalizerStep::Kind::kNfkc;
  } else if (t == "NFKD") {
    s.kind = NormalizerStep::Kind::kNfkd;
  } else if (t == "Lowercase") {
    s.kind = NormalizerStep::Kind::kLowercase;
  } else if (t == "Prepend") {
    s.kind = NormalizerStep::Kind::kPrepend;
    if (!j.contains("prepend") || !j["prepend"].is_string()) {
      return make_error(ErrorCode::kCorrupt, "normalizer Prepend: 'prepend' must be a string");
    }
    s.content = j["prepend"].get<std::string>();
  } else if (t == "Replace") {
    s.kind = NormalizerStep::Kind::kReplace;
    const json* pat = j.contains("pattern") ? &j["pattern"] : nullptr;
    if (pat == nullptr || !pat->is_object() || !pat->contains("String") || !(*pat)["String"].is_string() ||
        !j.contains("content") || !j["content"].is_string()) {
      return make_error(ErrorCode::kUnsupported,
                        "normalizer Replace: only {{\"String\": ...}} patterns are supported");
    }
    s.pattern = (*pat)["String"].get<std::string>();
    s.content = j["content"].get<std::string>();
  } else {
    return make_error(
        ErrorCode::kUnsupported,
        "normalizer type '{}' is not supported (supported: Sequence, NFC, NFD, NFKC, NFKD, Lowercase, "
        "Replace, Prepend)",
        t);
  }
  out->push_back(std::move(s));
  return Status::ok();
}

Status parse_pre_tokenizer(const json& j, std::vector<PreTokenizerStep>* out, bool* saw_byte_level) {
  if (j.is_null()) return Status::ok();
  if (!j.is_object()) return make_error(ErrorCode::kCorrupt, "pre_tokenizer: expected an object");
  const std::string t = type_of(j);
  if (t == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array()) {
      return make_error(ErrorCode::kCorrupt, "pre_tokenizer Sequence: 'pretokenizers' must be an array");
    }
    for (const auto& p : j["pretokenizers"])
      HEARTH_RETURN_IF_ERROR(parse_pre_tokenizer(p, out, saw_byte_level));
    return Status::ok();
  }
  PreTokenizerStep s;
  if (t == "Split") {
    s.kind = PreTokenizerStep::Kind::kSplit;
    const json* pat = j.contains("pattern") ? &j["pattern"] : nullptr;
    if (pat == nullptr || !pat->is_object())
      return make_error(ErrorCode::kCorrupt, "pre_tokenizer Split: missing 'pattern'");
    if (pat->contains("Regex") && (*pat)["Regex"].is_string()) {
      HEARTH_ASSIGN_OR_RETURN(s.regex, Regex::compile((*pat)["Regex"].get<std::string>()));
    } else if (pat->contains("String") && (*pat)["String"].is_string()) {
      HEARTH_ASSIGN_OR_RETURN(s.regex, Regex::compile((*pat)["String"].get<std::string>(), /*literal=*/true));
    } else {
      return make_error(ErrorCode::kCorrupt,
                        "pre_tokenizer Split: pattern must be {{\"Regex\"|\"String\": string}}");
    }
    const std::string b =
        j.contains("behavior") && j["behavior"].is_string() ? j["behavior"].get<std::string>() : "";
    using B = PreTokenizerStep::Behavior;
    if (b == "Isolated") {
      s.behavior = B::kIsolated;
    } else if (b == "Removed") {
      s.behavior = B::kRemoved;
    } else if (b == "MergedWithPrevious") {
      s.behavior = B::kMergedWithPrevious;
    } else if (b == "MergedWithNext") {
      s.behavior = B::kMergedWithNext;
    } else if (b == "Contiguous") {
      s.behavior = B::kContiguous;
    } else {
      return make_error(ErrorCode::kCorrupt, "pre_tokenizer Split: unknown behavior '{}'", b);
    }
    s.invert = j.value("invert", false);
  } else if (t == "ByteLevel") {
    *saw_byte_level = true;
    if (j.value("add_prefix_space", false)) {
      return make_error(ErrorCode::kUnsupported,
                        "pre_tokenizer ByteLevel with add_prefix_space=true is not supported");
    }
    s.kind = PreTokenizerStep::Kind::kByteLevel;
    if (j.value("use_regex", true)) {
      HEARTH_ASSIGN_OR_RETURN(s.regex, Regex::compile(kGpt2Pattern));
      s.behavior = PreTokenizerStep::Behavior::kIsolated;
    }
  } else {
    return make_error(ErrorCode::kUnsupported,
                      "pre_tokenizer type '{}' is not supported (supported: Sequence, Split, ByteLevel)", t);
  }
  out->push_back(std::move(s));
  return Status::ok();
}

// Post-processor: TemplateProcessing's single template gives the ids around the sequence.
Status parse_post_processor(const json& j, TokenizerDefinition* def, bool* has_template) {
  if (j.is_null()) return Status::ok();
  if (!j.is_object()) return make_error(ErrorCode::kCorrupt, "post_processor: expected an object");
  const std::string t = type_of(j);
  if (t == "Sequence") {
    if (!j.contains("processors") || !j["processors"].is_array()) {
      return make_error(ErrorCode::kCorrupt, "post_processor Sequence: 'processors' must be an array");
    }
    for (const auto& p : j["processors"]) HEARTH_RETURN_IF_ERROR(parse_post_processor(p, def, has_template));
    return Status::ok();
  }
  if (t == "ByteLevel") return Status::ok();  // only adjusts offsets
  if (t != "TemplateProcessing") {
    return make_error(
        ErrorCode::kUnsupported,
        "post_processor type '{}' is not supported (supported: Sequence, ByteLevel, TemplateProcessing)", t);
  }
  *has_template = true;
  if (!j.contains("single") || !j["single"].is_array()) {
    return make_error(ErrorCode::kCorrupt, "post_processor TemplateProcessing: 'single' must be an array");
  }
  const json& specials = j.contains("special_tokens") ? j["special_tokens"] : json::object();
  bool after_sequence = false;
  for (const auto& item : j["single"]) {
    if (item.contains("Sequence")) {
      after_sequence = true;
      continue;
    }
    if (!item.contains("SpecialToken") || !item["SpecialToken"].contains("id") ||
        !item["SpecialToken"]["id"].is_string()) {
      return make_error(ErrorCode::kCorrupt, "post_processor TemplateProcessing: bad item in 'single'");
    }
    const std::string name = item["SpecialToken"]["id"].get<std::string>();
    if (!specials.contains(name) || !specials[name].contains("ids") || !specials[name]["ids"].is_array()) {
      return make_error(ErrorCode::kCorrupt,
                        "post_processor TemplateProcessing: special token '{}' has no ids", name);
    }
    for (const auto& id : specials[name]["ids"]) {
      if (!id.is_number_integer())
        return make_error(ErrorCode::kCorrupt, "post_processor: non-integer id for '{}'", name);
      (after_sequence ? def->suffix_ids : def->prefix_ids).push_back(id.get<int32_t>());
    }
  }
  return Status::ok();
}

// tokenizer_config.json token fields are a string or an AddedToken object {"content": ...}.
std::string token_field(const json& cfg, const char* key) {
  if (!cfg.contains(key)) return {};
  const json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return {};
}

Status parse_model(const json& model, TokenizerDefinition* def) {
  if (!model.is_object()) return make_error(ErrorCode::kCorrupt, "model: expected an object");
  const std::string t = type_of(model);
  if (!t.empty() && t != "BPE") {
    return make_error(ErrorCode::kUnsupported, "model type '{}' is not supported (supported: BPE)", t);
  }
  if (model.value("byte_fallback", false)) {
    return make_error(ErrorCode::kUnsupported,
                      "BPE with byte_fallback (SentencePiece-style) is not supported");
  }
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(k) && model[k].is_string() && !model[k].get<std::string>().empty()) {
      return make_error(ErrorCode::kUnsupported, "BPE with {} is not supported", k);
    }
  }
  if (model.contains("dropout") && !model["dropout"].is_null()) {
    return make_error(ErrorCode::kUnsupported, "BPE dropout is not supported");
  }
  def->ignore_merges = model.value("ignore_merges", false);
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    return make_error(ErrorCode::kCorrupt, "model.vocab must be an object");
  }
  const json& vocab = model["vocab"];
  def->vocab.clear();
  size_t text_only = 0;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer()) {
      return make_error(ErrorCode::kCorrupt, "model.vocab['{}'] is not an integer id", it.key());
    }
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id >= (1 << 24)) {
      return make_error(ErrorCode::kOutOfRange, "model.vocab['{}'] = {} is outside [0, 16777216)", it.key(),
                        id);
    }
    auto bytes = byte_level_to_bytes(it.key());
    if (!bytes || bytes->empty()) {
      // Not spelled in byte-level chars (e.g. DeepSeek's '<｜begin▁of▁sentence｜>' in the vocab too):
      // BPE can never produce it; it decodes to its own text.
      def->text_only_vocab.emplace_back(static_cast<int32_t>(id), it.key());
      ++text_only;
      continue;
    }
    if (static_cast<size_t>(id) >= def->vocab.size()) def->vocab.resize(static_cast<size_t>(id) + 1);
    if (!def->vocab[static_cast<size_t>(id)].empty()) {
      return make_error(ErrorCode::kCorrupt, "model.vocab: id {} is used twice", id);
    }
    def->vocab[static_cast<size_t>(id)] = std::move(*bytes);
  }
  if (text_only * 2 > vocab.size()) {
    return make_error(
        ErrorCode::kUnsupported,
        "model.vocab is not byte-level ({} of {} entries are not): only byte-level BPE is supported",
        text_only, vocab.size());
  }
  if (!model.contains("merges") || !model["merges"].is_array()) {
    return make_error(ErrorCode::kCorrupt, "model.merges must be an array");
  }
  const json& merges = model["merges"];
  def->merges.reserve(merges.size());
  size_t rank = 0;
  for (const auto& m : merges) {
    std::string a, b;
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
        return make_error(ErrorCode::kCorrupt,
                          "model.merges[{}] '{}' is not two tokens separated by one space", rank, s);
      }
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      return make_error(ErrorCode::kCorrupt, "model.merges[{}] must be \"a b\" or [\"a\", \"b\"]", rank);
    }
    auto ba = byte_level_to_bytes(a), bb = byte_level_to_bytes(b);
    if (!ba || !bb) return make_error(ErrorCode::kCorrupt, "model.merges[{}] is not byte-level", rank);
    def->merges.emplace_back(std::move(*ba), std::move(*bb));
    ++rank;
  }
  return Status::ok();
}

}  // namespace

Result<std::shared_ptr<const Tokenizer>> Tokenizer::from_json(std::string_view tokenizer_json,
                                                              std::string_view tokenizer_config_json) {
  try {
    HEARTH_ASSIGN_OR_RETURN(json j, parse_json(tokenizer_json, kMaxTokenizerJsonBytes, "tokenizer.json"));
    if (!j.is_object()) return make_error(ErrorCode::kCorrupt, "tokenizer.json: top level must be an object");
    TokenizerDefinition def;
    auto ctx = [](const Status& s) { return s.with_context("tokenizer.json"); };
    if (!j.contains("model")) return make_error(ErrorCode::kCorrupt, "tokenizer.json: missing 'model'");
    if (Status s = parse_model(j["model"], &def); !s.is_ok()) return ctx(s);
    if (Status s = parse_normalizer(j.value("normalizer", json()), &def.normalizers); !s.is_ok())
      return ctx(s);
    bool byte_level = false;
    if (Status s = parse_pre_tokenizer(j.value("pre_tokenizer", json()), &def.pre_tokenizers, &byte_level);
        !s.is_ok()) {
      return ctx(s);
    }
    if (!byte_level) {
      return make_error(ErrorCode::kUnsupported,
                        "tokenizer.json: no ByteLevel pre-tokenizer (only byte-level BPE is supported)");
    }
    bool has_template = false;
    if (Status s = parse_post_processor(j.value("post_processor", json()), &def, &has_template); !s.is_ok())
      return ctx(s);
    if (j.contains("added_tokens")) {
      if (!j["added_tokens"].is_array())
        return make_error(ErrorCode::kCorrupt, "tokenizer.json: added_tokens must be an array");
      for (const auto& a : j["added_tokens"]) {
        if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
            !a["content"].is_string()) {
          return make_error(ErrorCode::kCorrupt,
                            "tokenizer.json: added_tokens entries need an integer id and a content");
        }
        AddedToken t;
        t.id = static_cast<int32_t>(std::clamp<int64_t>(a["id"].get<int64_t>(), -1, 1 << 24));
        t.content = a["content"].get<std::string>();
        t.special = a.value("special", false);
        t.lstrip = a.value("lstrip", false);
        t.rstrip = a.value("rstrip", false);
        t.single_word = a.value("single_word", false);
        t.normalized = a.value("normalized", !t.special);
        def.added.push_back(std::move(t));
      }
    }
    json cfg = json::object();
    if (!tokenizer_config_json.empty()) {
      HEARTH_ASSIGN_OR_RETURN(
          cfg, parse_json(tokenizer_config_json, kMaxConfigJsonBytes, "tokenizer_config.json"));
      if (!cfg.is_object())
        return make_error(ErrorCode::kCorrupt, "tokenizer_config.json: top level must be an object");
    }
    def.bos_token = token_field(cfg, "bos_token");
    def.eos_token = token_field(cfg, "eos_token");
    def.pad_token = token_field(cfg, "pad_token");
    def.clean_up_tokenization_spaces = cfg.value("clean_up_tokenization_spaces", false);
    if (cfg.contains("chat_template")) {
      const json& ct = cfg["chat_template"];
      if (ct.is_string()) {
        def.chat_template = ct.get<std::string>();
      } else if (ct.is_array()) {
        for (const auto& e : ct) {
          if (e.is_object() && e.value("name", "") == "default" && e.contains("template") &&
              e["template"].is_string()) {
            def.chat_template = e["template"].get<std::string>();
          }
        }
      }
    }
    // Resolve special token ids (added tokens first, then the vocab).
    auto resolve = [&](const std::string& content) -> std::optional<int32_t> {
      if (content.empty()) return std::nullopt;
      for (const auto& a : def.added) {
        if (a.content == content) return a.id;
      }
      auto bytes = byte_level_to_bytes(content);
      if (!bytes) return std::nullopt;
      for (size_t id = 0; id < def.vocab.size(); ++id) {
        if (def.vocab[id] == *bytes) return static_cast<int32_t>(id);
      }
      return std::nullopt;
    };
    def.bos_id = resolve(def.bos_token);
    def.eos_id = resolve(def.eos_token);
    def.pad_id = resolve(def.pad_token);
    // transformers' Llama-class tokenizers add BOS/EOS from tokenizer_config when the
    // tokenizer.json post-processor does not already do it.
    if (!has_template) {
      if (cfg.value("add_bos_token", false) && def.bos_id) def.prefix_ids.push_back(*def.bos_id);
      if (cfg.value("add_eos_token", false) && def.eos_id) def.suffix_ids.push_back(*def.eos_id);
    }
    return build(std::move(def));
  } catch (const std::exception& e) {
    // nlohmann type errors on malformed documents end here, never further.
    return make_error(ErrorCode::kCorrupt, "tokenizer.json: {}", e.what());
  }
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::load_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string tj = (fs::path(dir) / "tokenizer.json").string();
  const std::string tc = (fs::path(dir) / "tokenizer_config.json").string();
  auto text = read_file(tj, kMaxTokenizerJsonBytes);
  if (!text.is_ok()) return text.status();
  std::string cfg;
  if (fs::exists(tc)) {
    HEARTH_ASSIGN_OR_RETURN(cfg, read_file(tc, kMaxConfigJsonBytes));
  }
  auto t = from_json(*text, cfg);
  if (!t.is_ok()) return t.status().with_context(dir);
  return t;
}

}  // namespace hearth::tok
