#pragma once
// OpenAiService: the OpenAI-compatible API over one served model. It routes HTTP exchanges, checks the
// API key, turns request JSON into typed requests (openai_request.h), renders the chat template and
// tokenizes on the I/O thread, submits SequenceRequests to the Engine, and turns the engine's token
// events back into OpenAI responses: one JSON body, or server-sent events (`data: {...}` chunks, then
// `data: [DONE]`). Output text goes through the incremental detokenizer, the stop-string matcher and
// the reasoning / tool-call parser (output_parser.h) on the connection's strand, never on the engine
// thread.
//
// Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models[/{id}], POST /tokenize,
// POST /detokenize, GET /health, GET /ready, GET /metrics (docs/api.md has every field and bound).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "model/chat_template/chat_template.h"
#include "model/generation_config.h"
#include "model/output_parser.h"
#include "model/tokenizer/tokenizer.h"
#include "server/http_server.h"
#include "server/json_constraint.h"
#include "server/openai_request.h"

namespace hearth::server {

class ServeMetrics;

// What the service serves: the engine and everything needed to talk to it in text.
struct ServedModel {
  std::string name;  // the `model` clients send (--served-model-name; default: the directory's name)
  std::string path;
  Engine* engine = nullptr;  // owned by the caller, outlives the service
  std::shared_ptr<const tok::Tokenizer> tokenizer;
  std::optional<ChatTemplate> chat_template;  // default template; absent: chat completions get 400
  std::optional<ChatTemplate> tool_template;  // the "tool_use" template, when the model has one
  std::optional<std::string> bos_token, eos_token;
  GenerationDefaults defaults;    // generation_config.json
  std::vector<int32_t> stop_ids;  // end-of-sequence ids
  int64_t max_model_len = 0;      // prompt + completion tokens one request may use
  int64_t vocab_size = 0;
  ToolCallFormat tool_format = ToolCallFormat::kNone;  // what the tokenizer's vocabulary says
  bool reasoning = false;                              // the vocabulary has <think> and </think>
  std::shared_ptr<const JsonTokenTable> json_tokens;   // response_format json_object
  int64_t created = 0;                                 // unix seconds, for /v1/models
};

// Fills the model's text side: tokenizer, chat template(s), generation defaults, stop ids, the tool-call
// and reasoning formats. `runner` gives the context and vocabulary.
Result<ServedModel> prepare_served_model(const std::string& path, std::string name, Engine& engine,
                                         int64_t max_model_len);

struct ServiceConfig {
  std::string api_key;  // "" = no authentication; otherwise `Authorization: Bearer <key>` on /v1/*
  std::string tenant_header = "x-hearth-tenant";  // overrides the `user` field as the fairness key
  RequestLimits limits;
  int retry_after_s = 1;  // Retry-After on 429 (queue full); 503 (draining) says 5
};

class OpenAiService {
 public:
  OpenAiService(ServedModel model, ServiceConfig config, ServeMetrics* metrics);
  ~OpenAiService();

  // The HttpServer handler.
  void handle(std::shared_ptr<Exchange> ex);

  // After this, generation requests get 503 and /ready reports draining.
  void set_draining() { draining_.store(true); }
  bool draining() const { return draining_.load(); }

  const ServedModel& model() const { return model_; }

  struct Impl;

 private:
  ServedModel model_;
  ServiceConfig config_;
  ServeMetrics* metrics_;
  std::atomic<bool> draining_{false};
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::server
