// OutputParser: the streaming state machine that splits model output into reasoning, content and
// tool calls (formats in output_parser.h).
#include "model/output_parser.h"

#include <algorithm>
#include <array>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/json_guard.h"

namespace hearth {

namespace {

constexpr std::string_view kThinkOpen = "<think>";
constexpr std::string_view kThinkClose = "</think>";

// DeepSeek-V3/R1 special tokens (U+FF5C FULLWIDTH VERTICAL LINE, U+2581 LOWER ONE EIGHTH BLOCK).
constexpr std::string_view kDsCallsBegin = "<｜tool▁calls▁begin｜>";
constexpr std::string_view kDsCallsEnd = "<｜tool▁calls▁end｜>";
constexpr std::string_view kDsCallBegin = "<｜tool▁call▁begin｜>";
constexpr std::string_view kDsCallEnd = "<｜tool▁call▁end｜>";
constexpr std::string_view kDsSep = "<｜tool▁sep｜>";

constexpr std::string_view kQwenCallBegin = "<tool_call>";
constexpr std::string_view kQwenCallEnd = "</tool_call>";

// Whitespace allowed before a leading <think>; beyond this much, the output is plainly content.
constexpr size_t kMaxLeadingWhitespace = 64;

// Tool-call arguments are model output fed to a JSON parser: bound their nesting.
constexpr JsonLimits kArgumentLimits{.max_bytes = 16ull << 20, .max_depth = 64};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

size_t leading_spaces(std::string_view s) {
  size_t n = 0;
  while (n < s.size() && is_space(s[n])) ++n;
  return n;
}

std::string_view trim(std::string_view s) {
  s.remove_prefix(leading_spaces(s));
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool has_non_space(std::string_view s) {
  return leading_spaces(s) != s.size();
}

// True when s is shorter than marker and could still grow into it.
bool is_proper_prefix(std::string_view s, std::string_view marker) {
  return s.size() < marker.size() && marker.starts_with(s);
}

// Length of the longest suffix of `text` that is a proper prefix of one of `markers`: the bytes
// that must wait for the next delta. Costs O(longest marker^2), independent of |text|.
template <size_t N>
size_t partial_marker_suffix(std::string_view text, const std::array<std::string_view, N>& markers) {
  size_t longest = 0;
  for (auto m : markers) longest = std::max(longest, m.size());
  for (size_t k = std::min(longest - 1, text.size()); k > 0; --k) {
    const std::string_view tail = text.substr(text.size() - k);
    for (auto m : markers) {
      if (is_proper_prefix(tail, m)) return k;
    }
  }
  return 0;
}

struct MarkerHit {
  size_t pos = std::string_view::npos;
  std::string_view marker;
};

// The earliest occurrence of any of `markers` in `text`.
template <size_t N>
MarkerHit find_first(std::string_view text, const std::array<std::string_view, N>& markers) {
  MarkerHit hit;
  for (auto m : markers) {
    const size_t p = text.find(m);
    if (p < hit.pos) hit = {p, m};
  }
  return hit;
}

// `text` if it is a JSON document within the limits.
std::optional<nlohmann::json> parse_json(std::string_view text) {
  if (text.empty() || !check_json_limits(text, kArgumentLimits, "tool call").is_ok()) return std::nullopt;
  auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

bool valid_name(std::string_view name) {
  return !name.empty() && std::none_of(name.begin(), name.end(), [](char c) { return is_space(c); });
}

// Arguments as DeepSeek writes them, optionally fenced: "```json\n{...}\n```".
std::optional<std::string> deepseek_arguments(std::string_view text) {
  text = trim(text);
  if (text.starts_with("```")) {
    text.remove_prefix(3);
    if (text.starts_with("json")) text.remove_prefix(4);
    if (!text.ends_with("```")) return std::nullopt;
    text.remove_suffix(3);
    text = trim(text);
  }
  if (!parse_json(text)) return std::nullopt;
  return std::string(text);
}

// The body between <｜tool▁call▁begin｜> and <｜tool▁call▁end｜>, in either DeepSeek form.
std::optional<ToolCall> parse_deepseek_call(std::string_view body) {
  const size_t sep = body.find(kDsSep);
  if (sep == std::string_view::npos) return std::nullopt;
  const std::string_view head = trim(body.substr(0, sep));
  const std::string_view tail = body.substr(sep + kDsSep.size());
  // V3/R1: "function<sep>NAME\n```json\nARGS\n```".
  if (head == "function") {
    const size_t nl = tail.find('\n');
    if (nl != std::string_view::npos) {
      const std::string_view name = trim(tail.substr(0, nl));
      auto args = deepseek_arguments(tail.substr(nl + 1));
      if (valid_name(name) && args) return ToolCall{std::string(name), std::move(*args)};
    }
  }
  // V3-0324/V3.1: "NAME<sep>ARGS" (also a function that happens to be called "function").
  auto args = deepseek_arguments(tail);
  if (!valid_name(head) || !args) return std::nullopt;
  return ToolCall{std::string(head), std::move(*args)};
}

// The body between <tool_call> and </tool_call>: {"name": "...", "arguments": {...} or "..."}.
std::optional<ToolCall> parse_qwen_call(std::string_view body) {
  const auto j = parse_json(trim(body));
  if (!j || !j->is_object()) return std::nullopt;
  const auto name = j->find("name");
  if (name == j->end() || !name->is_string()) return std::nullopt;
  ToolCall call;
  call.name = name->get<std::string>();
  if (!valid_name(call.name)) return std::nullopt;
  auto args = j->find("arguments");
  if (args == j->end()) args = j->find("parameters");  // some Hermes-style fine-tunes
  if (args == j->end() || args->is_null()) {
    call.arguments = "{}";
  } else if (args->is_string()) {
    call.arguments = args->get<std::string>();
    if (!parse_json(call.arguments)) return std::nullopt;
  } else {
    call.arguments = args->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return call;
}

}  // namespace

OutputParser::OutputParser(OutputParserConfig config) : config_(config) {
  if (!config_.reasoning) {
    state_ = State::kContent;
  } else {
    state_ = config_.starts_in_reasoning ? State::kReasoningStart : State::kLeading;
  }
}

ParsedDelta OutputParser::push(std::string_view text) {
  ParsedDelta out;
  if (finished_) return out;
  pending_.append(text);
  run(out, /*at_end=*/false);
  return out;
}

ParsedDelta OutputParser::finish() {
  ParsedDelta out;
  if (finished_) return out;
  run(out, /*at_end=*/true);
  finished_ = true;
  return out;
}

void OutputParser::run(ParsedDelta& out, bool at_end) {
  pos_ = 0;
  while (step(out, at_end)) {
  }
  pending_.erase(0, pos_);
  pos_ = 0;
}

void OutputParser::emit_content(ParsedDelta& out, std::string_view s) {
  out.content.append(s);
  content_.append(s);
}

void OutputParser::emit_reasoning(ParsedDelta& out, std::string_view s) {
  out.reasoning.append(s);
  reasoning_.append(s);
}

bool OutputParser::step(ParsedDelta& out, bool at_end) {
  std::string_view rest = std::string_view(pending_).substr(pos_);
  const bool deepseek = config_.tools == ToolCallFormat::kDeepSeek;

  switch (state_) {
    case State::kLeading: {
      const size_t ws = leading_spaces(rest);
      const std::string_view r = rest.substr(ws);
      if (ws > kMaxLeadingWhitespace) {
        state_ = State::kContent;
        return true;
      }
      if (r.starts_with(kThinkOpen)) {
        pos_ += ws + kThinkOpen.size();  // whitespace before <think> is not content
        state_ = State::kReasoningStart;
        return true;
      }
      const bool undecided = r.empty() || is_proper_prefix(r, kThinkOpen);
      if (undecided && !at_end) return false;
      state_ = State::kContent;  // no <think>: everything, whitespace included, is content
      return true;
    }

    case State::kReasoningStart:
      if (rest.empty()) return false;
      if (rest[0] == '\n') ++pos_;
      state_ = State::kReasoning;
      return true;

    case State::kReasoning: {
      const size_t close = rest.find(kThinkClose);
      if (close != std::string_view::npos) {
        std::string_view r = rest.substr(0, close);
        if (r.ends_with('\n')) r.remove_suffix(1);
        emit_reasoning(out, r);
        pos_ += close + kThinkClose.size();
        state_ = State::kContentStart;
        return true;
      }
      size_t n = rest.size();
      if (!at_end) {
        n -= partial_marker_suffix(rest, std::array{kThinkClose});
        if (n > 0 && rest[n - 1] == '\n') --n;  // might be the "\n" right before </think>
      }
      emit_reasoning(out, rest.substr(0, n));
      pos_ += n;
      return false;
    }

    case State::kContentStart:
      if (rest.empty()) return false;
      if (rest[0] == '\n') {
        if (rest.size() == 1 && !at_end) return false;  // a second "\n" may follow
        pos_ += rest.size() >= 2 && rest[1] == '\n' ? 2 : 1;
      }
      state_ = State::kContent;
      return true;

    case State::kContent: {
      if (config_.tools == ToolCallFormat::kNone) {
        emit_content(out, rest);
        pos_ += rest.size();
        return false;
      }
      const MarkerHit hit = deepseek ? find_first(rest, std::array{kDsCallsBegin, kDsCallBegin})
                                     : find_first(rest, std::array{kQwenCallBegin});
      if (hit.pos != std::string_view::npos) {
        emit_content(out, rest.substr(0, hit.pos));
        pos_ += hit.pos + hit.marker.size();
        raw_.assign(hit.marker);
        body_.clear();
        state_ = hit.marker == kDsCallsBegin ? State::kToolSection : State::kToolCall;
        return true;
      }
      size_t n = rest.size();
      if (!at_end) {
        n -= deepseek ? partial_marker_suffix(rest, std::array{kDsCallsBegin, kDsCallBegin})
                      : partial_marker_suffix(rest, std::array{kQwenCallBegin});
      }
      emit_content(out, rest.substr(0, n));
      pos_ += n;
      return false;
    }

    case State::kToolSection: {
      const size_t ws = leading_spaces(rest);
      raw_.append(rest.substr(0, ws));
      pos_ += ws;
      rest.remove_prefix(ws);
      if (rest.starts_with(kDsCallBegin)) {
        raw_.append(kDsCallBegin);
        pos_ += kDsCallBegin.size();
        body_.clear();
        state_ = State::kToolCall;
        return true;
      }
      if (rest.starts_with(kDsCallsEnd)) {
        pos_ += kDsCallsEnd.size();
        raw_.clear();
        state_ = State::kAfterTools;
        return true;
      }
      if (at_end && rest.empty()) {
        // An unclosed section: harmless after complete calls, verbatim content before any.
        if (has_non_space(raw_)) emit_content(out, raw_);
        raw_.clear();
        return false;
      }
      if (!at_end &&
          (rest.empty() || is_proper_prefix(rest, kDsCallBegin) || is_proper_prefix(rest, kDsCallsEnd))) {
        return false;
      }
      // Something else inside the section: it was not a well-formed call list after all.
      emit_content(out, raw_);
      raw_.clear();
      state_ = State::kContent;
      return true;
    }

    case State::kToolCall: {
      const std::string_view end = deepseek ? kDsCallEnd : kQwenCallEnd;
      const size_t close = rest.find(end);
      if (close != std::string_view::npos) {
        body_.append(rest.substr(0, close));
        raw_.append(rest.substr(0, close + end.size()));
        pos_ += close + end.size();
        complete_call(out);
        return true;
      }
      if (at_end) {  // unterminated: give the text back as content
        raw_.append(rest);
        pos_ += rest.size();
        emit_content(out, raw_);
        raw_.clear();
        body_.clear();
        state_ = State::kContent;
        return false;
      }
      const size_t n = rest.size() - partial_marker_suffix(rest, std::array{end});
      body_.append(rest.substr(0, n));
      raw_.append(rest.substr(0, n));
      pos_ += n;
      return false;
    }

    case State::kAfterTools: {
      const size_t ws = leading_spaces(rest);
      pos_ += ws;
      if (ws == rest.size()) return false;
      state_ = State::kContent;
      return true;
    }
  }
  return false;
}

void OutputParser::complete_call(ParsedDelta& out) {
  const bool deepseek = config_.tools == ToolCallFormat::kDeepSeek;
  std::optional<ToolCall> call = deepseek ? parse_deepseek_call(body_) : parse_qwen_call(body_);
  body_.clear();
  if (!call) {
    emit_content(out, raw_);
    raw_.clear();
    state_ = State::kContent;
    return;
  }
  raw_.clear();
  out.tool_calls.emplace_back(static_cast<int>(tool_calls_.size()), *call);
  tool_calls_.push_back(std::move(*call));
  state_ = deepseek ? State::kToolSection : State::kAfterTools;
}

}  // namespace hearth
