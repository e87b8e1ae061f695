#include "gateway/decode_filter.h"

#include <nlohmann/json.hpp>

#include "core/json_guard.h"

namespace hearth::gateway {

std::optional<Rejection> DecodeFilter::on_request(RequestContext& ctx) {
  RequestInfo& info = ctx.info;
  if (info.method != "POST" || ctx.body.empty()) return std::nullopt;  // GET /v1/models and the like
  auto bad = [](std::string message) {
    Rejection r;
    r.status = 400;
    r.message = std::move(message);
    return r;
  };
  JsonLimits limits;
  limits.max_bytes = static_cast<uint64_t>(config_.max_body_bytes);
  if (Status s = check_json_limits(ctx.body, limits, "request body"); !s.is_ok()) return bad(s.message());
  nlohmann::json j = nlohmann::json::parse(ctx.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return bad("the request body is not a JSON object");
  if (auto it = j.find("model"); it != j.end() && it->is_string()) info.model = it->get<std::string>();
  if (auto it = j.find("stream"); it != j.end() && it->is_boolean()) info.stream = it->get<bool>();
  bool has_max = false;
  for (const char* k : {"max_completion_tokens", "max_tokens"}) {
    if (auto it = j.find(k); it != j.end() && it->is_number_integer()) {
      info.max_tokens = std::max<int64_t>(0, it->get<int64_t>());
      has_max = true;
      break;
    }
  }
  int64_t n = 1;
  if (auto it = j.find("n"); it != j.end() && it->is_number_integer())
    n = std::clamp<int64_t>(it->get<int64_t>(), 1, 128);
  bool rewrite = false;
  if (!has_max) {
    info.max_tokens = config_.default_max_tokens;
    j[ctx.info.path.find("chat") != std::string::npos ? "max_completion_tokens" : "max_tokens"] =
        config_.default_max_tokens;
    rewrite = true;
  }
  info.max_tokens *= n;
  // Tokens are at least one byte of text each: the body's size bounds the prompt (quota reserves it).
  info.prompt_estimate = static_cast<int64_t>(ctx.body.size());
  if (info.stream) {
    // Read without value()/operator[] on foreign types: they throw on a body like {"stream_options": 6}.
    auto so = j.find("stream_options");
    if (so != j.end() && !so->is_object() && !so->is_null()) return bad("stream_options must be an object");
    if (so != j.end() && so->is_object()) {
      auto iu = so->find("include_usage");
      info.client_wants_usage = iu != so->end() && iu->is_boolean() && iu->get<bool>();
    }
    if (!info.client_wants_usage) {
      if (so == j.end() || !so->is_object()) j["stream_options"] = nlohmann::json::object();
      j["stream_options"]["include_usage"] = true;
      rewrite = true;
    }
  }
  if (rewrite) ctx.body = j.dump();
  return std::nullopt;
}

}  // namespace hearth::gateway
