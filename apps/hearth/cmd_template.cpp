// hearth template: renders a model's chat template for a conversation read as JSON on stdin and
// prints the prompt text (no trailing newline), as transformers' apply_chat_template(tokenize=False).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "core/json_guard.h"
#include "core/mapped_file.h"
#include "model/chat_template/chat_template.h"
#include "model/chat_template/template_config.h"

namespace hearth::app {
namespace {

struct TemplateArgs {
  std::string model;
  std::string template_file;
  std::string name;
};

int fail(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return 1;
}

// {"messages": [...], "add_generation_prompt": bool, "tools": [...] or null, other keys: variables}.
Result<ChatRenderInput> parse_request(const std::string& text) {
  HEARTH_RETURN_IF_ERROR(check_json_limits(text, {.max_bytes = 64ull << 20, .max_depth = 64}, "stdin"));
  nlohmann::ordered_json req = nlohmann::ordered_json::parse(text, nullptr, false);
  if (req.is_discarded()) return make_error(ErrorCode::kInvalidArgument, "stdin: invalid JSON");
  if (!req.is_object()) return make_error(ErrorCode::kInvalidArgument, "stdin: expected a JSON object");
  ChatRenderInput in;
  for (auto it = req.begin(); it != req.end(); ++it) {
    const std::string& key = it.key();
    const auto& v = it.value();
    if (key == "messages") {
      if (!v.is_array()) return make_error(ErrorCode::kInvalidArgument, "stdin: 'messages' must be an array");
      in.messages = v;
    } else if (key == "add_generation_prompt") {
      if (!v.is_boolean()) {
        return make_error(ErrorCode::kInvalidArgument,
                          "stdin: 'add_generation_prompt' must be true or false");
      }
      in.add_generation_prompt = v.get<bool>();
    } else if (key == "tools") {
      if (!v.is_array() && !v.is_null()) {
        return make_error(ErrorCode::kInvalidArgument, "stdin: 'tools' must be an array or null");
      }
      if (v.is_array()) in.tools = v;
    } else {
      in.extra[key] = v;
    }
  }
  if (!req.contains("messages")) return make_error(ErrorCode::kInvalidArgument, "stdin: missing 'messages'");
  return in;
}

int run_template(const TemplateArgs& a) {
  if (a.model.empty() && a.template_file.empty()) return fail("give --model DIR and/or --template FILE");
  ChatTemplateConfig config;
  if (!a.model.empty()) {
    auto c = load_chat_template_config(a.model);
    if (!c.is_ok()) return fail(c.status().message());
    config = std::move(c).value();
  }
  std::string text = read_stdin();
  auto request = parse_request(text);
  if (!request.is_ok()) return fail(request.status().message());
  ChatRenderInput in = std::move(request).value();
  in.bos_token = config.bos_token;
  in.eos_token = config.eos_token;

  std::string source;
  if (!a.template_file.empty()) {
    auto file = read_file(a.template_file, ChatTemplateLimits{}.max_source_bytes);
    if (!file.is_ok()) return fail(file.status().message());
    source = std::move(file).value();
  } else {
    auto selected = config.select(in.tools.has_value(), a.name);
    if (!selected.is_ok()) return fail(selected.status().message());
    source = std::move(selected).value();
  }
  auto tmpl = ChatTemplate::compile(source);
  if (!tmpl.is_ok()) {
    const std::string origin = a.template_file.empty() ? config.origin : a.template_file;
    return fail(origin + ": " + tmpl.status().message());
  }
  auto prompt = tmpl->render(in);
  if (!prompt.is_ok()) return fail(prompt.status().message());
  std::fwrite(prompt->data(), 1, prompt->size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace

void add_template_command(CLI::App& app, RunFn* run) {
  auto* cmd = app.add_subcommand(
      "template",
      "Render a model's chat template. Reads {\"messages\": [...], \"add_generation_prompt\": true, "
      "\"tools\": [...], ...} on stdin (other keys, e.g. enable_thinking, become template variables) and "
      "prints the prompt text");
  auto args = std::make_shared<TemplateArgs>();
  cmd->add_option("--model", args->model,
                  "Model directory with tokenizer_config.json (and/or chat_template.jinja)");
  cmd->add_option("--template", args->template_file, "Jinja template file to use instead of the model's");
  cmd->add_option("--name", args->name, "Named template to use when the model has several (e.g. tool_use)");
  cmd->callback([run, args] { *run = [args] { return run_template(*args); }; });
}

}  // namespace hearth::app
