#pragma once
// The chat-template part of a Hugging Face model directory: tokenizer_config.json's chat_template
// (a string, or a list of {"name", "template"} objects) and its bos/eos tokens (a string or an
// AddedToken object {"content": ...}). A chat_template.jinja file next to it, as transformers 5
// saves templates, overrides the default template.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace hearth {

struct ChatTemplateConfig {
  std::optional<std::string> default_template;                       // chat_template (string form)
  std::vector<std::pair<std::string, std::string>> named_templates;  // list form, in file order
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::string origin;  // the file it came from, for error messages

  // Chooses the template as transformers does: `name` when given; otherwise "tool_use" when the
  // request has tools (even an empty list) and the model has one, else "default", else the
  // string-form template.
  Result<std::string> select(bool has_tools, std::string_view name = {}) const;
};

// Parses tokenizer_config.json text; `origin` names it in errors.
Result<ChatTemplateConfig> parse_chat_template_config(std::string_view json_text, std::string_view origin);

// Reads DIR/tokenizer_config.json (and DIR/chat_template.jinja when present).
Result<ChatTemplateConfig> load_chat_template_config(const std::string& dir);

}  // namespace hearth
