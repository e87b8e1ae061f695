#pragma once
// OpenAI request bodies -> typed, bounded requests. This is where client JSON stops: the engine only
// sees what these structs carry. Every numeric field has a documented range (docs/api.md), unknown
// fields are refused the way OpenAI refuses them, the worst-case cost (n x max_tokens x logprobs) is
// bounded before anything is allocated, and any failure is an ApiError the server turns into the
// OpenAI error object — never an exception, never a 5xx for client input.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/sampler.h"

namespace hearth::server {

// {"error": {"message", "type", "param", "code"}} with its HTTP status.
struct ApiError {
  int status = 400;
  std::string type = "invalid_request_error";
  std::string message;
  std::string param;                       // the offending field ("messages[2].content"), "" when none
  std::string code;                        // e.g. "context_length_exceeded", "" when none
  nlohmann::ordered_json to_json() const;  // keys in OpenAI's order: message, type, param, code
};

struct RequestLimits {
  size_t max_body_bytes = 16u << 20;  // 413 beyond
  int max_depth = 64;                 // JSON nesting
  size_t max_messages = 4096;
  size_t max_content_bytes = 8u << 20;  // one message's text
  int max_n = 16;
  size_t max_stop = 4;
  size_t max_stop_bytes = 256;
  int64_t max_tokens = 1 << 20;  // before the model's context narrows it
  size_t max_tools = 128;
  size_t max_user_bytes = 256;
  size_t max_prompts = 64;     // completions: a batch of prompts
  int64_t max_cost = 1 << 24;  // n x max_tokens x (top_logprobs + 1)
};

// The sampling and stopping fields shared by both endpoints.
struct GenerationFields {
  SamplingParams sampling;  // temperature, top_p, top_k, min_p, penalties, seed, top_logprobs
  // Whether the request set these (otherwise the model's generation_config.json defaults apply).
  bool has_temperature = false, has_top_p = false, has_top_k = false;
  bool logprobs = false;
  std::optional<int64_t> max_tokens;  // max_tokens / max_completion_tokens; unset: up to the context
  std::vector<std::string> stop;
  int n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::string user;            // tenant key for fairness and the prefix-cache salt
  bool ignore_eos = false;     // vLLM's extension: generate max_tokens even past end-of-sequence
  int32_t priority = 0;
};

struct ChatCompletionRequest {
  std::string model;
  // Messages as the chat template reads them (ordered keys; content a string, or null for an assistant
  // turn that only calls tools).
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  std::optional<nlohmann::ordered_json> tools;  // [{"type":"function","function":{...}}]
  std::string tool_choice = "auto";             // "none", "auto", "required" or the function's name
  bool json_object = false;                     // response_format {"type":"json_object"}
  nlohmann::ordered_json template_kwargs = nlohmann::ordered_json::object();  // chat_template_kwargs
  GenerationFields gen;
};

struct CompletionRequest {
  std::string model;
  // Each prompt is text or token ids.
  std::vector<std::variant<std::string, std::vector<int32_t>>> prompts;
  bool echo = false;
  GenerationFields gen;
};

using ChatParse = std::variant<ChatCompletionRequest, ApiError>;
using CompletionParse = std::variant<CompletionRequest, ApiError>;

ChatParse parse_chat_completion(std::string_view body, const RequestLimits& limits = {});
CompletionParse parse_completion(std::string_view body, const RequestLimits& limits = {});

}  // namespace hearth::server
