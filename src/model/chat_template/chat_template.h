#pragma once
// Chat templates: the Jinja `chat_template` of a model's tokenizer_config.json, compiled once and
// rendered per request into the prompt text, byte-identical to transformers'
// apply_chat_template(tokenize=False) for the templates and features hearth supports
// (docs/chat_templates.md). Untrusted templates are safe to compile and render: every recursion,
// loop, allocation and output size is bounded by ChatTemplateLimits.
//
//   HEARTH_ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::compile(config.select(has_tools).value()));
//   ChatRenderInput in;
//   in.messages = request["messages"];
//   in.add_generation_prompt = true;
//   HEARTH_ASSIGN_OR_RETURN(std::string prompt, t.render(in));
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace hearth {

namespace jinja {
struct Program;
struct Dict;
}  // namespace jinja

struct ChatTemplateLimits {
  uint64_t max_source_bytes = 1ull << 20;     // template text
  int max_nesting_depth = 128;                // parse: nested blocks, brackets, expression depth
  int max_render_depth = 512;                 // render: recursion of statements, expressions, macro calls
  uint64_t max_output_bytes = 16ull << 20;    // the rendered prompt, and any single string value
  uint64_t max_loop_iterations = 1'000'000;   // for-loop iterations in one render
  uint64_t max_steps = 20'000'000;            // evaluation steps in one render
  uint64_t max_bytes_built = 1ull << 30;      // bytes of all strings built in one render
  uint64_t max_collection_items = 1'000'000;  // items in one list or dict built while rendering
  int64_t max_range = 100'000;                // items from one range()
  int max_input_depth = 64;                   // JSON nesting of messages, tools and extra kwargs

  Status validate() const;
};

struct ChatRenderInput {
  // Ordered JSON keeps object keys in request order, which `tojson` reproduces (Python dicts keep
  // insertion order).
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  std::optional<nlohmann::ordered_json> tools;  // absent renders as None, as transformers passes tools=None
  bool add_generation_prompt = false;
  std::optional<std::string> bos_token;  // absent: the variable is undefined
  std::optional<std::string> eos_token;
  // Further template variables (enable_thinking, date_string, ...); they override the above.
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
};

class ChatTemplate {
 public:
  // Parses the template. Errors read "chat template: line:column: what failed".
  static Result<ChatTemplate> compile(std::string_view source, const ChatTemplateLimits& limits = {});

  // Renders with the variables transformers passes: messages, tools, documents (None),
  // add_generation_prompt, bos_token, eos_token and the extra kwargs. Thread-safe.
  Result<std::string> render(const ChatRenderInput& input) const;

  // Renders with an arbitrary JSON object of variables.
  Result<std::string> render_variables(const nlohmann::ordered_json& variables) const;

  const ChatTemplateLimits& limits() const { return limits_; }

 private:
  ChatTemplate(std::shared_ptr<const jinja::Program> program, const ChatTemplateLimits& limits)
      : program_(std::move(program)), limits_(limits) {}
  Result<std::string> render_context(jinja::Dict context) const;
  std::shared_ptr<const jinja::Program> program_;
  ChatTemplateLimits limits_;
};

}  // namespace hearth
