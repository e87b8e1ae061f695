#include "model/generation_config.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/json_guard.h"

namespace hearth {

Result<GenerationDefaults> parse_generation_config(std::string_view text, std::string_view origin) {
  HEARTH_RETURN_IF_ERROR(check_json_limits(text, {.max_bytes = 1 << 20, .max_depth = 8}, origin));
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return make_error(ErrorCode::kInvalidArgument, "{}: not a JSON object", origin);
  GenerationDefaults d;
  if (j.contains("do_sample") && j["do_sample"].is_boolean() && !j["do_sample"].get<bool>()) d.greedy = true;
  if (j.contains("temperature") && j["temperature"].is_number())
    d.temperature = j["temperature"].get<float>();
  if (j.contains("top_p") && j["top_p"].is_number()) d.top_p = j["top_p"].get<float>();
  if (j.contains("top_k") && j["top_k"].is_number_integer()) {
    const int64_t k = j["top_k"].get<int64_t>();
    if (k >= 0 && k <= INT32_MAX) d.top_k = static_cast<int32_t>(k);
  }
  if (j.contains("eos_token_id")) {
    const auto& e = j["eos_token_id"];
    auto add = [&](const nlohmann::json& x) {
      if (x.is_number_integer() && x.get<int64_t>() >= 0 && x.get<int64_t>() <= INT32_MAX)
        d.eos.push_back(x.get<int32_t>());
    };
    if (e.is_array()) {
      for (const auto& x : e) add(x);
    } else {
      add(e);
    }
  }
  return d;
}

Result<GenerationDefaults> load_generation_config(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p = fs::path(path) / "generation_config.json";
  if (!fs::is_directory(path, ec) || !fs::is_regular_file(p, ec)) return GenerationDefaults{};
  std::ifstream in(p, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "{}: cannot open", p.string());
  std::stringstream buf;
  buf << in.rdbuf();
  return parse_generation_config(buf.str(), p.string());
}

}  // namespace hearth
