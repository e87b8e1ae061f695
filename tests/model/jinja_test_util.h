#pragma once
// Helpers for the Jinja interpreter tests: render a template with JSON variables and get either
// the output or "ERROR: <message>".
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "model/chat_template/chat_template.h"

namespace hearth::testing {

inline std::string render(std::string_view tmpl,
                          const nlohmann::ordered_json& vars = nlohmann::ordered_json::object(),
                          const ChatTemplateLimits& limits = {}) {
  auto t = ChatTemplate::compile(tmpl, limits);
  if (!t.is_ok()) return "ERROR: " + t.status().message();
  auto out = t->render_variables(vars.is_null() ? nlohmann::ordered_json::object() : vars);
  if (!out.is_ok()) return "ERROR: " + out.status().message();
  return out.value();
}

inline bool starts_with(const std::string& s, std::string_view prefix) {
  return s.rfind(prefix, 0) == 0;
}

}  // namespace hearth::testing
