#pragma once
// The serving-side files of a model, found from the path a user gives (a Hugging Face directory or a
// .gguf file): its tokenizer and its chat-template configuration. Shared by the CLI commands and
// `hearth serve`.
#include <memory>
#include <string>

#include "core/status.h"
#include "model/chat_template/template_config.h"
#include "model/tokenizer/tokenizer.h"

namespace hearth {

// A model directory (tokenizer.json), a tokenizer.json path, or a .gguf file (its tokenizer metadata).
Result<std::shared_ptr<const tok::Tokenizer>> load_tokenizer_for(const std::string& path);

// A model directory's tokenizer_config.json (+ chat_template.jinja), or a GGUF file's
// tokenizer.chat_template with the tokenizer's BOS/EOS spelling.
Result<ChatTemplateConfig> load_chat_template_for(const std::string& path, const tok::Tokenizer& tokenizer);

}  // namespace hearth
