// OutputParser as a specification: model output text -> reasoning, content and tool calls, the same
// whether it arrives whole, split at any byte, or byte by byte.
#include "model/output_parser.h"

#include <gtest/gtest.h>

#include "core/utf8.h"

namespace hearth {
namespace {

using Call = std::pair<std::string, std::string>;  // name, arguments

struct Totals {
  std::string reasoning;
  std::string content;
  std::vector<Call> calls;
  bool operator==(const Totals&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Totals& t) {
  os << "{reasoning=\"" << t.reasoning << "\", content=\"" << t.content << "\", calls=[";
  for (const auto& [name, args] : t.calls) os << name << "(" << args << ") ";
  return os << "]}";
}

constexpr OutputParserConfig kPlain{};
constexpr OutputParserConfig kR1{
    .reasoning = true, .starts_in_reasoning = true, .tools = ToolCallFormat::kDeepSeek};
constexpr OutputParserConfig kQwen3{.reasoning = true, .tools = ToolCallFormat::kQwen};
constexpr OutputParserConfig kV3{.tools = ToolCallFormat::kDeepSeek};
constexpr OutputParserConfig kQwen{.tools = ToolCallFormat::kQwen};

// Feeds the pieces then finishes; the deltas must add up to the parser's own totals.
Totals feed(const OutputParserConfig& config, const std::vector<std::string_view>& pieces) {
  OutputParser p(config);
  Totals sum;
  auto add = [&](const ParsedDelta& d) {
    sum.reasoning += d.reasoning;
    sum.content += d.content;
    for (const auto& [index, call] : d.tool_calls) {
      EXPECT_EQ(index, static_cast<int>(sum.calls.size())) << "tool call indices run 0, 1, ...";
      sum.calls.emplace_back(call.name, call.arguments);
    }
  };
  for (auto piece : pieces) add(p.push(piece));
  add(p.finish());
  EXPECT_TRUE(p.push("late").empty()) << "push after finish";

  Totals own{p.reasoning(), p.content(), {}};
  for (const auto& c : p.tool_calls()) own.calls.emplace_back(c.name, c.arguments);
  EXPECT_EQ(sum, own) << "deltas and totals disagree";
  return sum;
}

// Whole, split in two at every byte, byte by byte and code point by code point: all must agree.
Totals parse(const OutputParserConfig& config, std::string_view text) {
  const Totals whole = feed(config, {text});
  for (size_t i = 0; i <= text.size(); ++i) {
    EXPECT_EQ(feed(config, {text.substr(0, i), text.substr(i)}), whole) << "split at " << i;
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < text.size(); ++i) bytes.push_back(text.substr(i, 1));
  EXPECT_EQ(feed(config, bytes), whole) << "byte by byte";
  std::vector<std::string_view> chars;
  for (size_t i = 0; i < text.size();) {
    const size_t n = std::max<size_t>(1, utf8::valid_sequence_length(text, i));
    chars.push_back(text.substr(i, n));
    i += n;
  }
  EXPECT_EQ(feed(config, chars), whole) << "code point by code point";
  return whole;
}

// ---- reasoning ---------------------------------------------------------------------------------

TEST(OutputParser, R1PromptEndsInsideThink) {
  EXPECT_EQ(parse(kR1, "\nFirst, 2+2.\nSo 4.\n</think>\n\nThe answer is 4."),
            (Totals{"First, 2+2.\nSo 4.", "The answer is 4.", {}}));
  // The template's "\n" after <think> was already in the prompt.
  EXPECT_EQ(parse(kR1, "Hmm.\n</think>\nOK"), (Totals{"Hmm.", "OK", {}}));
}

TEST(OutputParser, R1ThinkingThatNeverEndsIsAllReasoning) {
  EXPECT_EQ(parse(kR1, "still thinking\n\nabout </thi"), (Totals{"still thinking\n\nabout </thi", "", {}}));
}

TEST(OutputParser, Qwen3ModelOpensThinkItself) {
  EXPECT_EQ(parse(kQwen3, "<think>\nThe user greets me.\n</think>\n\nHello!"),
            (Totals{"The user greets me.", "Hello!", {}}));
  EXPECT_EQ(parse(kQwen3, " \n<think>\nx\n</think>\n\n\ny"), (Totals{"x", "\ny", {}}));
  EXPECT_EQ(parse(kQwen3, "<think>\n\n</think>\n\nNo thoughts."), (Totals{"", "No thoughts.", {}}));
}

TEST(OutputParser, ThinkOnlyOpensReasoningAtTheStart) {
  EXPECT_EQ(parse(kQwen3, "Hi <think>not reasoning</think>"),
            (Totals{"", "Hi <think>not reasoning</think>", {}}));
  EXPECT_EQ(parse(kQwen3, "\n\n<thin"), (Totals{"", "\n\n<thin", {}}));
  EXPECT_EQ(parse(kQwen3, "  "), (Totals{"", "  ", {}}));
}

TEST(OutputParser, ReasoningOffIsAllContent) {
  EXPECT_EQ(parse(kPlain, "<think>\nx\n</think>\n\ny"), (Totals{"", "<think>\nx\n</think>\n\ny", {}}));
}

TEST(OutputParser, InReasoningFollowsTheStream) {
  OutputParser p(kQwen3);
  EXPECT_FALSE(p.in_reasoning());
  p.push("<think>\nabc");
  EXPECT_TRUE(p.in_reasoning());
  p.push("</think>x");
  EXPECT_FALSE(p.in_reasoning());
}

// ---- DeepSeek tool calls -----------------------------------------------------------------------

constexpr std::string_view kTwoV3Calls =
    "Let me check.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n"
    "```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜>\n"
    "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{\"tz\": \"CET\"}\n```"
    "<｜tool▁call▁end｜><｜tool▁calls▁end｜>";

TEST(OutputParser, DeepSeekTwoCallsAfterContent) {
  EXPECT_EQ(
      parse(kV3, kTwoV3Calls),
      (Totals{
          "", "Let me check.", {{"get_weather", R"({"city": "Paris"})"}, {"get_time", R"({"tz": "CET"})"}}}));
}

TEST(OutputParser, R1ReasoningThenToolCalls) {
  const std::string text = "I need the weather.\n</think>\n\n" + std::string(kTwoV3Calls);
  const Totals t = parse(kR1, text);
  EXPECT_EQ(t.reasoning, "I need the weather.");
  EXPECT_EQ(t.content, "Let me check.");
  ASSERT_EQ(t.calls.size(), 2u);
}

TEST(OutputParser, DeepSeekV31CallWithoutFunctionOrFence) {
  EXPECT_EQ(parse(kV3,
                  "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>search<｜tool▁sep｜>{\"q\": \"hearth\"}"
                  "<｜tool▁call▁end｜><｜tool▁call▁begin｜>fetch<｜tool▁sep｜>{\"url\": \"x\"}"
                  "<｜tool▁call▁end｜><｜tool▁calls▁end｜>"),
            (Totals{"", "", {{"search", R"({"q": "hearth"})"}, {"fetch", R"({"url": "x"})"}}}));
}

TEST(OutputParser, DeepSeekTextAfterTheCallsIsContent) {
  EXPECT_EQ(parse(kV3,
                  "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{}<｜tool▁call▁end｜>"
                  "<｜tool▁calls▁end｜>\n\nDone."),
            (Totals{"", "Done.", {{"f", "{}"}}}));
}

TEST(OutputParser, DeepSeekInvalidArgumentsFallBackToContent) {
  const std::string bad =
      "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{city: Paris}\n```"
      "<｜tool▁call▁end｜>";
  EXPECT_EQ(parse(kV3, "Hi" + bad + "<｜tool▁calls▁end｜>"),
            (Totals{"", "Hi" + bad + "<｜tool▁calls▁end｜>", {}}));
  // A well-formed call after the broken one is still a call.
  EXPECT_EQ(
      parse(kV3, bad + "\n<｜tool▁call▁begin｜>g<｜tool▁sep｜>[1]<｜tool▁call▁end｜><｜tool▁calls▁end｜>"),
      (Totals{"", bad + "\n", {{"g", "[1]"}}}));
}

TEST(OutputParser, DeepSeekUnterminatedCallIsContentAtFinish) {
  const std::string text =
      "Sure.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{\"a\": 1";
  EXPECT_EQ(parse(kV3, text), (Totals{"", text, {}}));
  EXPECT_EQ(parse(kV3, "x<｜tool▁calls▁begin｜>"), (Totals{"", "x<｜tool▁calls▁begin｜>", {}}));
  // An unclosed section after complete calls loses nothing.
  EXPECT_EQ(parse(kV3, "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{}<｜tool▁call▁end｜>\n"),
            (Totals{"", "", {{"f", "{}"}}}));
}

TEST(OutputParser, DeepSeekSectionWithStrayText) {
  EXPECT_EQ(parse(kV3, "<｜tool▁calls▁begin｜>oops"), (Totals{"", "<｜tool▁calls▁begin｜>oops", {}}));
}

TEST(OutputParser, DeeplyNestedArgumentsAreRefusedNotRecursedInto) {
  const std::string args = std::string(5000, '[') + std::string(5000, ']');
  const std::string text = "<｜tool▁call▁begin｜>f<｜tool▁sep｜>" + args + "<｜tool▁call▁end｜>";
  const Totals t = feed(kV3, {text});
  EXPECT_EQ(t.content, text);
  EXPECT_TRUE(t.calls.empty());
}

// ---- Qwen / Hermes tool calls ------------------------------------------------------------------

TEST(OutputParser, QwenTwoCalls) {
  EXPECT_EQ(parse(kQwen,
                  "I'll look.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1, \"s\": "
                  "\"é\"}}\n</tool_call>\n"
                  "<tool_call>\n{\"name\": \"b\", \"arguments\": \"{\\\"y\\\": 2}\"}\n</tool_call>"),
            (Totals{"", "I'll look.\n", {{"a", R"({"s":"é","x":1})"}, {"b", R"({"y": 2})"}}}));
}

TEST(OutputParser, Qwen3ReasoningThenCall) {
  EXPECT_EQ(
      parse(kQwen3,
            "<think>\nCall it.\n</think>\n\n<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>"),
      (Totals{"Call it.", "", {{"f", "{}"}}}));
}

TEST(OutputParser, QwenInvalidCallsFallBackToContent) {
  for (std::string_view body : {"{\"name\": \"a\", \"arguments\": {\"x\": }", "{\"arguments\": {}}", "[1, 2]",
                                "{\"name\": \"a\", \"arguments\": \"not json\"}", ""}) {
    const std::string text = "<tool_call>\n" + std::string(body) + "\n</tool_call>";
    EXPECT_EQ(parse(kQwen, text), (Totals{"", text, {}})) << body;
  }
}

TEST(OutputParser, QwenUnterminatedCallIsContentAtFinish) {
  const std::string text = "Sure<tool_call>\n{\"name\": \"a\", \"argu";
  EXPECT_EQ(parse(kQwen, text), (Totals{"", text, {}}));
}

TEST(OutputParser, QwenMissingArgumentsMeansEmptyObject) {
  EXPECT_EQ(parse(kQwen, "<tool_call>{\"name\": \"now\"}</tool_call>"), (Totals{"", "", {{"now", "{}"}}}));
}

TEST(OutputParser, ToolsOffLeavesMarkersInContent) {
  EXPECT_EQ(parse(kPlain, "<tool_call>{\"name\": \"a\"}</tool_call>"),
            (Totals{"", "<tool_call>{\"name\": \"a\"}</tool_call>", {}}));
}

// ---- streaming: what is held back --------------------------------------------------------------

TEST(OutputParser, PlainTextPassesThroughAtOnce) {
  OutputParser p(kV3);
  EXPECT_EQ(p.push("Hello, world").content, "Hello, world");
  EXPECT_EQ(p.push(" a <").content, " a ");  // "<" may open a marker
  EXPECT_EQ(p.push("b").content, "<b");
  EXPECT_EQ(p.push("x<\xEF\xBD").content, "x");  // "<" and half of "｜"
  EXPECT_TRUE(p.push("\x9C").empty());           // "<｜": still possibly a marker
  EXPECT_EQ(p.push("y").content, "<｜y");
  EXPECT_EQ(p.push("<tool_call>").content, "<tool_call>");  // the other format's marker is text
  EXPECT_EQ(p.push("<｜tool▁ca").content, "");
  EXPECT_EQ(p.finish().content, "<｜tool▁ca");
  EXPECT_EQ(p.content(), "Hello, world a <bx<｜y<tool_call><｜tool▁ca");
}

TEST(OutputParser, QwenHoldsOnlyAPossibleOpener) {
  OutputParser p(kQwen);
  EXPECT_EQ(p.push("2 < 3 and <tool").content, "2 < 3 and ");
  EXPECT_EQ(p.push("s>").content, "<tools>");
}

TEST(OutputParser, ReasoningStreamsAtOnce) {
  OutputParser p(kR1);
  EXPECT_EQ(p.push("abc").reasoning, "abc");
  EXPECT_EQ(p.push(" def\n").reasoning, " def");  // the "\n" may precede </think>
  const ParsedDelta d = p.push("</think>\n\nHi");
  EXPECT_EQ(d.reasoning, "");
  EXPECT_EQ(d.content, "Hi");
}

TEST(OutputParser, ACallIsEmittedWholeWhenItsEndArrives) {
  OutputParser p(kQwen);
  EXPECT_TRUE(p.push("<tool_call>{\"name\": \"f\", ").empty());
  EXPECT_TRUE(p.push("\"arguments\": {\"a\": 1}}</tool_").empty());
  const ParsedDelta d = p.push("call>");
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_EQ(d.tool_calls[0].first, 0);
  EXPECT_EQ(d.tool_calls[0].second.name, "f");
  EXPECT_EQ(d.tool_calls[0].second.arguments, R"({"a":1})");
}

TEST(OutputParser, LongOutputByteByByte) {
  // Rescanning the accumulated text per push would make this quadratic.
  std::string text =
      "<｜tool▁call▁begin｜>f<｜tool▁sep｜>{\"s\": \"" + std::string(200000, 'x') + "\"}<｜tool▁call▁end｜>";
  text += std::string(200000, '<');
  OutputParser p(kV3);
  for (char c : text) p.push(std::string_view(&c, 1));
  p.finish();
  ASSERT_EQ(p.tool_calls().size(), 1u);
  EXPECT_EQ(p.content().size(), 200000u);
}

}  // namespace
}  // namespace hearth
