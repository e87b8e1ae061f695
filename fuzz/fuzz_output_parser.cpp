// libFuzzer target for OutputParser. Input: [split seed] then model output text. The text goes
// through every configuration (reasoning off/on/starting inside <think>, each tool-call format),
// once whole and once in pieces cut at data-driven points. Checked: the deltas add up to the totals,
// tool calls are numbered in order with a name and JSON arguments, the split and whole runs agree,
// nothing follows finish(), and with every feature off the text passes through unchanged.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_split.h"
#include "model/output_parser.h"

namespace {

using hearth::OutputParser;
using hearth::OutputParserConfig;
using hearth::ParsedDelta;
using hearth::ToolCall;
using hearth::ToolCallFormat;

std::vector<std::string_view> split(std::string_view s, uint8_t seed) {
  return hearth::fuzz::split_stream(s, seed, 0x85EBCA6Bu);
}

struct Totals {
  std::string content;
  std::string reasoning;
  std::vector<ToolCall> calls;
};

bool same_calls(const std::vector<ToolCall>& a, const std::vector<ToolCall>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].arguments != b[i].arguments) return false;
  }
  return true;
}

void add(Totals& t, const ParsedDelta& d) {
  t.content += d.content;
  t.reasoning += d.reasoning;
  for (const auto& [index, call] : d.tool_calls) {
    if (index != static_cast<int>(t.calls.size())) std::abort();  // numbered in order, no gaps
    if (call.name.empty() || call.name.find_first_of(" \t\r\n") != std::string::npos) std::abort();
    if (!nlohmann::json::accept(call.arguments)) std::abort();
    t.calls.push_back(call);
  }
}

Totals run(const OutputParserConfig& config, const std::vector<std::string_view>& pieces) {
  OutputParser p(config);
  Totals t;
  for (std::string_view piece : pieces) add(t, p.push(piece));
  add(t, p.finish());
  if (!p.push("x").empty() || !p.finish().empty()) std::abort();  // nothing after finish()
  if (t.content != p.content() || t.reasoning != p.reasoning() || !same_calls(t.calls, p.tool_calls()))
    std::abort();
  if (!config.reasoning && !t.reasoning.empty()) std::abort();
  if (config.tools == ToolCallFormat::kNone && !t.calls.empty()) std::abort();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t seed = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::vector<std::string_view> pieces = split(text, seed);
  for (ToolCallFormat tools : {ToolCallFormat::kNone, ToolCallFormat::kDeepSeek, ToolCallFormat::kQwen}) {
    for (int mode = 0; mode < 4; ++mode) {
      OutputParserConfig config;
      config.tools = tools;
      config.reasoning = (mode & 1) != 0;
      config.starts_in_reasoning = (mode & 2) != 0;  // ignored without `reasoning`
      const Totals whole = run(config, {text});
      const Totals parts = run(config, pieces);
      if (whole.content != parts.content || whole.reasoning != parts.reasoning ||
          !same_calls(whole.calls, parts.calls))
        std::abort();
      if (!config.reasoning && tools == ToolCallFormat::kNone && whole.content != text) std::abort();
    }
  }
  return 0;
}
