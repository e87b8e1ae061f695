#include "model/chat_template/chat_template.h"

#include "model/chat_template/interpreter.h"
#include "model/chat_template/parser.h"

namespace hearth {

Status ChatTemplateLimits::validate() const {
  if (max_source_bytes == 0 || max_output_bytes == 0 || max_steps == 0 || max_bytes_built == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "chat template limits: byte and step budgets must be positive");
  }
  if (max_nesting_depth < 1 || max_nesting_depth > 1024) {
    return make_error(ErrorCode::kInvalidArgument,
                      "chat template limits: max_nesting_depth must be in [1, 1024]");
  }
  if (max_render_depth < 1 || max_render_depth > 4096) {
    return make_error(ErrorCode::kInvalidArgument,
                      "chat template limits: max_render_depth must be in [1, 4096]");
  }
  if (max_input_depth < 1 || max_input_depth > jinja::kMaxValueDepth - 2) {
    return make_error(ErrorCode::kInvalidArgument, "chat template limits: max_input_depth must be in [1, {}]",
                      jinja::kMaxValueDepth - 2);
  }
  if (max_range < 0)
    return make_error(ErrorCode::kInvalidArgument, "chat template limits: max_range must be >= 0");
  return Status::ok();
}

Result<ChatTemplate> ChatTemplate::compile(std::string_view source, const ChatTemplateLimits& limits) {
  HEARTH_RETURN_IF_ERROR(limits.validate());
  if (source.size() > limits.max_source_bytes) {
    return make_error(ErrorCode::kOutOfRange, "chat template: {} bytes exceeds max_source_bytes ({})",
                      source.size(), limits.max_source_bytes);
  }
  jinja::ParseOptions options;
  options.max_nesting_depth = limits.max_nesting_depth;
  auto program = jinja::parse_template(source, options);
  if (!program.is_ok()) return program.status().with_context("chat template");
  return ChatTemplate(std::move(program).value(), limits);
}

namespace {

Result<jinja::Value> convert(const nlohmann::ordered_json& j, int max_depth, std::string_view what) {
  auto v = jinja::from_json(j, max_depth);
  if (!v.is_ok()) return v.status().with_context(what).with_context("chat template");
  return v;
}

}  // namespace

Result<std::string> ChatTemplate::render_context(jinja::Dict context) const {
  jinja::RenderLimits rl;
  rl.max_output_bytes = limits_.max_output_bytes;
  rl.max_loop_iterations = limits_.max_loop_iterations;
  rl.max_steps = limits_.max_steps;
  rl.max_bytes_built = limits_.max_bytes_built;
  rl.max_collection_items = limits_.max_collection_items;
  rl.max_render_depth = limits_.max_render_depth;
  rl.max_range = limits_.max_range;
  jinja::Interpreter interpreter(*program_, rl);
  auto out = interpreter.render(jinja::Value::dict(std::move(context)));
  if (!out.is_ok()) return out.status().with_context("chat template");
  return out;
}

Result<std::string> ChatTemplate::render_variables(const nlohmann::ordered_json& variables) const {
  if (!variables.is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "chat template: variables must be a JSON object");
  }
  jinja::Dict context;
  for (auto it = variables.begin(); it != variables.end(); ++it) {
    HEARTH_ASSIGN_OR_RETURN(jinja::Value v, convert(it.value(), limits_.max_input_depth, it.key()));
    context.set(jinja::Value::string(it.key()), std::move(v));
  }
  return render_context(std::move(context));
}

Result<std::string> ChatTemplate::render(const ChatRenderInput& input) const {
  if (!input.messages.is_array()) {
    return make_error(ErrorCode::kInvalidArgument, "chat template: messages must be a JSON array");
  }
  if (!input.extra.is_null() && !input.extra.is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "chat template: extra variables must be a JSON object");
  }
  jinja::Dict context;
  HEARTH_ASSIGN_OR_RETURN(jinja::Value messages,
                          convert(input.messages, limits_.max_input_depth, "messages"));
  context.set(jinja::Value::string("messages"), std::move(messages));
  jinja::Value tools = jinja::Value::none();
  if (input.tools) {
    HEARTH_ASSIGN_OR_RETURN(tools, convert(*input.tools, limits_.max_input_depth, "tools"));
  }
  context.set(jinja::Value::string("tools"), std::move(tools));
  context.set(jinja::Value::string("documents"), jinja::Value::none());
  context.set(jinja::Value::string("add_generation_prompt"),
              jinja::Value::boolean(input.add_generation_prompt));
  if (input.bos_token) context.set(jinja::Value::string("bos_token"), jinja::Value::string(*input.bos_token));
  if (input.eos_token) context.set(jinja::Value::string("eos_token"), jinja::Value::string(*input.eos_token));
  if (input.extra.is_object()) {
    for (auto it = input.extra.begin(); it != input.extra.end(); ++it) {
      HEARTH_ASSIGN_OR_RETURN(jinja::Value v, convert(it.value(), limits_.max_input_depth, it.key()));
      context.set(jinja::Value::string(it.key()), std::move(v));
    }
  }
  return render_context(std::move(context));
}

}  // namespace hearth
