#include "ops/bench/prompts.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <random>

#include "core/json_guard.h"

namespace hearth::ops {

namespace {

// Common English words: one token each (with their leading space) in the byte-level BPE vocabularies
// of DeepSeek, Qwen, Llama-3 and GPT, so a prompt of N words is close to N tokens without a tokenizer.
constexpr const char* kWords[] = {
    "the",   "of",    "and",    "to",    "in",    "is",    "that",  "for",   "it",    "as",     "was",
    "with",  "be",    "by",     "on",    "not",   "he",    "this",  "are",   "or",    "his",    "from",
    "at",    "which", "but",    "have",  "an",    "had",   "they",  "you",   "were",  "their",  "one",
    "all",   "we",    "can",    "her",   "has",   "there", "been",  "if",    "more",  "when",   "will",
    "would", "who",   "so",     "no",    "time",  "world", "city",  "water", "light", "house",  "river",
    "night", "story", "music",  "small", "great", "new",   "old",   "first", "last",  "long",   "high",
    "good",  "young", "life",   "day",   "year",  "way",   "place", "work",  "part",  "school", "power",
    "money", "table", "window", "paper", "road",  "tree",  "stone"};

int64_t draw_len(std::mt19937_64& rng, int64_t len, double range) {
  if (range <= 0) return len;
  const int64_t lo =
      std::max<int64_t>(1, static_cast<int64_t>(std::floor(static_cast<double>(len) * (1 - range))));
  const int64_t hi =
      std::max<int64_t>(lo, static_cast<int64_t>(std::ceil(static_cast<double>(len) * (1 + range))));
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

}  // namespace

Result<std::vector<BenchPrompt>> synthetic_prompts(const SyntheticSpec& spec) {
  if (spec.input_len < 1 || spec.output_len < 1)
    return make_error(ErrorCode::kInvalidArgument, "--input-len and --output-len must be >= 1");
  if (spec.input_range < 0 || spec.input_range >= 1 || spec.output_range < 0 || spec.output_range >= 1)
    return make_error(ErrorCode::kInvalidArgument, "length ranges must be in [0, 1)");
  if (spec.token_ids && spec.tokenizer == nullptr)
    return make_error(ErrorCode::kInvalidArgument, "token-id prompts need a tokenizer (--tokenizer)");
  std::mt19937_64 rng(spec.seed ^ 0x9e3779b97f4a7c15ull);
  std::uniform_int_distribution<size_t> word(0, std::size(kWords) - 1);
  std::vector<BenchPrompt> out;
  out.reserve(static_cast<size_t>(spec.count));
  for (int64_t i = 0; i < spec.count; ++i) {
    BenchPrompt p;
    const int64_t in = draw_len(rng, spec.input_len, spec.input_range);
    p.output_tokens = draw_len(rng, spec.output_len, spec.output_range);
    std::string text;
    auto add_words = [&](int64_t n) {
      for (int64_t k = 0; k < n; ++k) {
        if (!text.empty()) text += ' ';
        text += kWords[word(rng)];
      }
    };
    add_words(in);
    if (spec.tokenizer != nullptr) {
      auto ids = spec.tokenizer->encode(text, {.add_special_tokens = false});
      if (!ids.is_ok()) return ids.status();
      while (static_cast<int64_t>(ids->size()) < in) {  // rare: a word merged with its neighbour
        add_words(in - static_cast<int64_t>(ids->size()));
        ids = spec.tokenizer->encode(text, {.add_special_tokens = false});
        if (!ids.is_ok()) return ids.status();
      }
      ids->resize(static_cast<size_t>(in));
      if (spec.token_ids) {
        p.token_ids = std::move(*ids);
      } else {
        auto t = spec.tokenizer->decode(*ids);
        if (!t.is_ok()) return t.status();
        text = std::move(*t);
      }
    }
    p.text = std::move(text);
    p.input_tokens = in;
    out.push_back(std::move(p));
  }
  return out;
}

Result<std::vector<BenchPrompt>> load_dataset(const std::string& path, int64_t default_output_len,
                                              size_t max_prompts, bool chat) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "--dataset {}: cannot open", path);
  std::vector<BenchPrompt> out;
  std::string line;
  size_t lineno = 0;
  while (out.size() < max_prompts && std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", path, lineno);
    HEARTH_RETURN_IF_ERROR(check_json_limits(line, {.max_bytes = 8u << 20, .max_depth = 32}, where));
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object()) return make_error(ErrorCode::kInvalidArgument, "{}: not a JSON object", where);
    BenchPrompt p;
    p.output_tokens = default_output_len;
    for (const char* k : {"output_len", "max_tokens"}) {
      if (j.contains(k)) {
        if (!j[k].is_number_integer() || j[k].get<int64_t>() < 1)
          return make_error(ErrorCode::kInvalidArgument, "{}: '{}' must be a positive integer", where, k);
        p.output_tokens = j[k].get<int64_t>();
      }
    }
    if (j.contains("prompt") && j["prompt"].is_string()) {
      p.text = j["prompt"].get<std::string>();
    } else if (j.contains("messages") && j["messages"].is_array()) {
      if (!chat)
        return make_error(ErrorCode::kInvalidArgument, "{}: 'messages' needs --endpoint chat", where);
      p.messages_json = j["messages"].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else if (j.contains("conversations") && j["conversations"].is_array()) {
      for (const auto& turn : j["conversations"]) {  // ShareGPT: the first human turn
        if (turn.is_object() && turn.value("from", "") == "human" && turn.contains("value") &&
            turn["value"].is_string()) {
          p.text = turn["value"].get<std::string>();
          break;
        }
      }
      if (p.text.empty()) continue;
    } else {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: expected \"prompt\", \"messages\" or \"conversations\"", where);
    }
    out.push_back(std::move(p));
  }
  if (out.empty()) return make_error(ErrorCode::kInvalidArgument, "--dataset {}: no prompts", path);
  return out;
}

}  // namespace hearth::ops
