// Fuzz target: arbitrary bytes as a chat template, compiled and rendered against a fixed small
// conversation (system/user/assistant turns, tool calls and results, tools, thinking flags).
// Compiling and rendering must fail cleanly or succeed; never crash, hang or leak. Limits are
// tighter than the defaults so each input stays fast; the code paths are the same.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "model/chat_template/chat_template.h"

namespace {

const hearth::ChatRenderInput& input() {
  static const hearth::ChatRenderInput in = [] {
    hearth::ChatRenderInput r;
    r.messages = nlohmann::ordered_json::parse(R"([
      {"role": "system", "content": "You are helpful."},
      {"role": "user", "content": "Weather in Paris? 你好 👩‍👩‍👧"},
      {"role": "assistant", "content": null, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
        {"id": "c2", "type": "function", "function": {"name": "get_time", "arguments": {"tz": "CET"}}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "21C"},
      {"role": "tool", "tool_call_id": "c2", "content": "12:00"},
      {"role": "assistant", "content": "<think>\nok\n</think>\n\nIt is 21C.", "reasoning_content": "r"},
      {"role": "user", "content": ""}])");
    r.tools = nlohmann::ordered_json::parse(R"([{"type": "function", "function": {"name": "get_weather",
      "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"},
      "n": {"type": "number", "default": 1.5}}, "required": ["city"]}}}])");
    r.add_generation_prompt = true;
    r.bos_token = "<s>";
    r.eos_token = "</s>";
    r.extra = {{"enable_thinking", false}, {"date_string", "26 Jul 2024"}};
    return r;
  }();
  return in;
}

hearth::ChatTemplateLimits limits() {
  hearth::ChatTemplateLimits l;
  l.max_source_bytes = 64 << 10;
  l.max_output_bytes = 256 << 10;
  l.max_loop_iterations = 20000;
  l.max_steps = 200000;
  l.max_bytes_built = 8 << 20;
  l.max_collection_items = 20000;
  l.max_range = 5000;
  return l;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const hearth::ChatTemplateLimits kLimits = limits();
  std::string_view source(reinterpret_cast<const char*>(data), size);
  auto t = hearth::ChatTemplate::compile(source, kLimits);
  if (!t.is_ok()) return 0;
  (void)t->render(input());
  return 0;
}
