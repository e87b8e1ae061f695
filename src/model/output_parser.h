#pragma once
// Streamed model output text -> OpenAI chat fields: `content`, `reasoning_content` and `tool_calls`.
//
// The engine hands over detokenized UTF-8 in arbitrary deltas, so any marker may arrive split
// ("<thi" + "nk>"). OutputParser is a small state machine over that stream: text that could still
// be the start of a marker is held back (at most the longest marker), everything else is classified
// and returned at once. Every byte is looked at a bounded number of times, so the cost is linear in
// the output, whatever the delta sizes; feeding the same text whole or in pieces gives the same
// totals.
//
// Formats understood:
//  - Reasoning (DeepSeek-R1, Qwen3): "<think>\n ... \n</think>\n\n content". Only a <think> at the
//    very start of the output (after optional whitespace) opens reasoning; with starts_in_reasoning
//    the prompt already ended with "<think>" and the output begins inside it. One "\n" is stripped
//    after <think>, one before </think> and up to two after it. A missing </think> leaves
//    everything as reasoning (the budget ran out while thinking).
//  - DeepSeek-V3/R1 tool calls:
//      <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>
//      ... <｜tool▁calls▁end｜>
//    and the V3-0324/V3.1 form <｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜>.
//  - Qwen / Hermes tool calls: <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>.
//
// A tool call is returned whole once its end marker arrives, with its arguments checked to be JSON.
// A call that does not parse, or is still open at finish(), goes out verbatim as content: model
// output is never dropped, and nothing here throws.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth {

enum class ToolCallFormat { kNone, kDeepSeek, kQwen };

struct OutputParserConfig {
  bool reasoning = false;            // split <think>...</think> into reasoning
  bool starts_in_reasoning = false;  // the rendered prompt ended inside <think> (needs `reasoning`)
  ToolCallFormat tools = ToolCallFormat::kNone;
};

struct ToolCall {
  std::string name;
  std::string arguments;  // a JSON text (OpenAI's `function.arguments` string)
};

// What one push()/finish() produced.
struct ParsedDelta {
  std::string content;
  std::string reasoning;
  std::vector<std::pair<int, ToolCall>> tool_calls;  // (index in the choice's tool_calls, complete call)
  bool empty() const { return content.empty() && reasoning.empty() && tool_calls.empty(); }
};

class OutputParser {
 public:
  explicit OutputParser(OutputParserConfig config);

  // Feeds the next delta of output text. After finish(), returns nothing.
  ParsedDelta push(std::string_view text);

  // The end of the output: releases whatever was held back, as whatever it turned out to be.
  ParsedDelta finish();

  // Totals so far (the sums of every delta returned).
  const std::string& content() const { return content_; }
  const std::string& reasoning() const { return reasoning_; }
  const std::vector<ToolCall>& tool_calls() const { return tool_calls_; }
  bool in_reasoning() const { return state_ == State::kReasoningStart || state_ == State::kReasoning; }

 private:
  enum class State {
    kLeading,         // before any output: whitespace, then maybe <think>
    kReasoningStart,  // just inside <think>: drop one "\n"
    kReasoning,       // inside <think>, looking for </think>
    kContentStart,    // just after </think>: drop up to two "\n"
    kContent,         // plain content, looking for a tool-call opener
    kToolSection,     // DeepSeek: between calls inside <｜tool▁calls▁begin｜>
    kToolCall,        // inside one call, collecting its body up to the end marker
    kAfterTools,      // after a call section: drop whitespace
  };

  // Consumes pending_ as far as it can be classified; at_end: nothing more will come.
  void run(ParsedDelta& out, bool at_end);
  // One state's worth of work on pending_[pos_..]; false when it needs more input.
  bool step(ParsedDelta& out, bool at_end);
  void complete_call(ParsedDelta& out);
  void emit_content(ParsedDelta& out, std::string_view s);
  void emit_reasoning(ParsedDelta& out, std::string_view s);

  OutputParserConfig config_;
  State state_;
  bool finished_ = false;
  std::string pending_;  // received, not yet classified (held back)
  size_t pos_ = 0;       // classified prefix of pending_ during run()
  std::string body_;     // the current tool call's text between its markers
  std::string raw_;      // verbatim text of the unfinished tool-call section, for the fallback
  std::string content_;
  std::string reasoning_;
  std::vector<ToolCall> tool_calls_;
};

}  // namespace hearth
