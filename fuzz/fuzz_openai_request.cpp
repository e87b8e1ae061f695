// libFuzzer target for OpenAI request bodies: arbitrary bytes through the chat and completions parsers.
// Every input must give either a request within the documented bounds or an ApiError with a 4xx status
// and a message — never a crash, an exception or an out-of-range value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/openai_request.h"

namespace {
void check_error(const hearth::server::ApiError& e) {
  if (e.status < 400 || e.status > 499 || e.message.empty()) std::abort();
  (void)e.to_json().dump();
}
void check_gen(const hearth::server::GenerationFields& g, const hearth::server::RequestLimits& l) {
  if (g.n < 1 || g.n > l.max_n || g.stop.size() > l.max_stop) std::abort();
  if (g.max_tokens && (*g.max_tokens < 1 || *g.max_tokens > l.max_tokens)) std::abort();
  if (!g.sampling.validate().is_ok()) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hearth::server;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  RequestLimits limits;
  limits.max_body_bytes = 1 << 16;
  const ChatParse chat = parse_chat_completion(body, limits);
  if (const auto* e = std::get_if<ApiError>(&chat)) {
    check_error(*e);
  } else {
    const auto& r = std::get<ChatCompletionRequest>(chat);
    check_gen(r.gen, limits);
    if (r.messages.empty() || r.messages.size() > limits.max_messages) std::abort();
    for (const auto& m : r.messages)
      if (!m["content"].is_string() && !(m["content"].is_null() && m["role"] == "assistant")) std::abort();
  }
  const CompletionParse comp = parse_completion(body, limits);
  if (const auto* e = std::get_if<ApiError>(&comp)) {
    check_error(*e);
  } else {
    const auto& r = std::get<CompletionRequest>(comp);
    check_gen(r.gen, limits);
    if (r.prompts.empty() || r.prompts.size() > limits.max_prompts) std::abort();
  }
  return 0;
}
