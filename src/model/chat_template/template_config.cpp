#include "model/chat_template/template_config.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/json_guard.h"
#include "core/mapped_file.h"
#include "core/utf8.h"

namespace hearth {
namespace {

constexpr uint64_t kMaxConfigBytes = 64ull << 20;
constexpr uint64_t kMaxTemplateFileBytes = 1ull << 20;

Result<std::optional<std::string>> token_field(const nlohmann::json& config, const char* key,
                                               std::string_view origin) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::optional<std::string>();
  if (it->is_string()) return std::optional<std::string>(it->get<std::string>());
  if (it->is_object()) {
    auto content = it->find("content");
    if (content != it->end() && content->is_string())
      return std::optional<std::string>(content->get<std::string>());
  }
  return make_error(ErrorCode::kCorrupt,
                    "{}: field '{}' must be a string or an object with a string 'content'", origin, key);
}

}  // namespace

Result<std::string> ChatTemplateConfig::select(bool has_tools, std::string_view name) const {
  auto named = [&](std::string_view n) -> const std::string* {
    for (const auto& [k, v] : named_templates) {
      if (k == n) return &v;
    }
    return nullptr;
  };
  if (!name.empty()) {
    if (const std::string* t = named(name)) return *t;
    return make_error(ErrorCode::kNotFound, "{}: no chat template named '{}'", origin, name);
  }
  if (!named_templates.empty()) {
    if (has_tools) {
      if (const std::string* t = named("tool_use")) return *t;
    }
    if (const std::string* t = named("default")) return *t;
    if (!default_template) {
      return make_error(ErrorCode::kNotFound,
                        "{}: the model has several chat templates and none is named 'default'", origin);
    }
  }
  if (!default_template)
    return make_error(ErrorCode::kNotFound, "{}: the model has no chat_template", origin);
  return *default_template;
}

Result<ChatTemplateConfig> parse_chat_template_config(std::string_view json_text, std::string_view origin) {
  HEARTH_RETURN_IF_ERROR(
      check_json_limits(json_text, JsonLimits{.max_bytes = kMaxConfigBytes, .max_depth = 64}, origin));
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::kCorrupt, "{}: invalid JSON: {}", origin, e.what());
  }
  if (!config.is_object()) return make_error(ErrorCode::kCorrupt, "{}: expected a JSON object", origin);
  ChatTemplateConfig out;
  out.origin = std::string(origin);
  HEARTH_ASSIGN_OR_RETURN(out.bos_token, token_field(config, "bos_token", origin));
  HEARTH_ASSIGN_OR_RETURN(out.eos_token, token_field(config, "eos_token", origin));
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return out;
  if (it->is_string()) {
    out.default_template = it->get<std::string>();
    return out;
  }
  if (!it->is_array()) {
    return make_error(ErrorCode::kCorrupt,
                      "{}: chat_template must be a string or a list of {{\"name\", \"template\"}} objects",
                      origin);
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const auto& entry = (*it)[i];
    if (!entry.is_object() || !entry.contains("name") || !entry.contains("template") ||
        !entry["name"].is_string() || !entry["template"].is_string()) {
      return make_error(ErrorCode::kCorrupt,
                        "{}: chat_template[{}] must be an object with string 'name' and 'template'", origin,
                        i);
    }
    out.named_templates.emplace_back(entry["name"].get<std::string>(), entry["template"].get<std::string>());
  }
  return out;
}

Result<ChatTemplateConfig> load_chat_template_config(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string config_path = (fs::path(dir) / "tokenizer_config.json").string();
  const std::string jinja_path = (fs::path(dir) / "chat_template.jinja").string();
  std::error_code ec;
  const bool has_config = fs::exists(config_path, ec);
  const bool has_jinja = fs::exists(jinja_path, ec);
  if (!has_config && !has_jinja) {
    return make_error(ErrorCode::kNotFound, "{}: no tokenizer_config.json or chat_template.jinja", dir);
  }
  ChatTemplateConfig out;
  if (has_config) {
    HEARTH_ASSIGN_OR_RETURN(std::string text, read_file(config_path, kMaxConfigBytes));
    HEARTH_ASSIGN_OR_RETURN(out, parse_chat_template_config(text, config_path));
  } else {
    out.origin = jinja_path;
  }
  if (has_jinja) {
    HEARTH_ASSIGN_OR_RETURN(std::string text, read_file(jinja_path, kMaxTemplateFileBytes));
    if (!utf8::is_valid(text)) return make_error(ErrorCode::kCorrupt, "{}: not valid UTF-8", jinja_path);
    out.default_template = std::move(text);  // the file overrides the config's default template
    std::erase_if(out.named_templates, [](const auto& kv) { return kv.first == "default"; });
    out.origin = jinja_path;
  }
  return out;
}

}  // namespace hearth
