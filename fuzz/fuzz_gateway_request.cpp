// libFuzzer target for what the gateway reads from a client before forwarding: the Authorization header
// (bearer_token, the API key format check) and the request body (DecodeFilter: JSON limits, model, stream,
// max_tokens, stream_options, the rewrite for metering). Input: [header length][header][body]. Checks: no
// crash, a token is a substring of the header, a key prefix is a prefix of the key, a rewritten body is
// still a JSON object, and the reservation is never negative. The header bytes also go through the query
// helpers of the gateway's own endpoints (a decoded value is never longer than the raw one).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "gateway/authn_filter.h"
#include "gateway/decode_filter.h"
#include "gateway/http_query.h"
#include "store/store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t hlen = std::min<size_t>(data[0], size - 1);
  const std::string header(reinterpret_cast<const char*>(data + 1), hlen);
  const std::string body(reinterpret_cast<const char*>(data + 1 + hlen), size - 1 - hlen);

  const std::string_view token = hearth::gateway::AuthnFilter::bearer_token(header);
  if (!token.empty() && header.find(token) == std::string::npos) __builtin_trap();
  if (hearth::store::looks_like_api_key(token)) {
    const std::string prefix = hearth::store::api_key_prefix(token);
    if (prefix.empty() || token.substr(0, prefix.size()) != prefix) __builtin_trap();
  }

  for (const char* key : {"tenant", "start", ""}) {
    const std::string raw = hearth::gateway::query_param(header, key);
    std::string decoded;
    if (raw.size() > header.size()) __builtin_trap();
    if (hearth::gateway::url_decode(raw, decoded) && decoded.size() > raw.size()) __builtin_trap();
  }

  for (const char* path : {"/v1/chat/completions", "/v1/completions"}) {
    hearth::gateway::RequestContext ctx;
    ctx.info.method = "POST";
    ctx.info.path = path;
    ctx.body = body;
    hearth::gateway::DecodeFilter decode({});
    if (!decode.on_request(ctx)) {
      if (ctx.info.max_tokens < 0 || ctx.info.prompt_estimate < 0) __builtin_trap();
      if (ctx.body != body) {
        auto j = nlohmann::json::parse(ctx.body, nullptr, false);
        if (j.is_discarded() || !j.is_object()) __builtin_trap();
      }
    }
  }
  return 0;
}
