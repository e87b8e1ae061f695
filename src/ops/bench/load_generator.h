#pragma once
// The load generator behind `hearth bench`: drives any OpenAI-compatible endpoint (hearth, vLLM,
// SGLang, DeepSeek's API) with streamed requests over HTTP/1.1 keep-alive connections, on Asio
// coroutines (one thread holds thousands of streams), and records per-request timings the way vLLM's
// benchmark_serving defines them (docs/bench.md):
//   TTFT   request sent -> first streamed chunk with text
//   ITL    gaps between consecutive chunks with text
//   TPOT   (e2e - TTFT) / (output tokens - 1), per request
//   E2E    request sent -> end of the stream
// Closed loop (`concurrency` workers, each sending its next request when the last one ends) or open
// loop (Poisson arrivals at `rate` requests/s, optionally capped by `concurrency`).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace hearth::ops {

// One request to send: its JSON body is built from these.
struct BenchPrompt {
  std::string text;                // completions prompt text, or the user message for chat
  std::vector<int32_t> token_ids;  // completions: when non-empty, sent instead of text (exact length)
  std::string messages_json;       // chat: a JSON array of messages (datasets); overrides text
  int64_t input_tokens = 0;        // what the prompt was built to be (0: unknown)
  int64_t output_tokens = 0;       // max_tokens
};

struct Endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string base_path = "/v1";  // from --url http://HOST:PORT/v1
  std::string api_key;
  std::string model;
  bool chat = false;       // /chat/completions instead of /completions
  bool ignore_eos = true;  // vLLM/hearth extension; off for servers that refuse unknown fields
  double temperature = 0.0;
  std::string tenant;  // x-hearth-tenant header ("" = none)
};

// Parses http://HOST[:PORT][/PATH]; PATH defaults to /v1. Only plain http (put TLS in front with the
// gateway, or bench the upstream directly).
Result<Endpoint> parse_url(const std::string& url);

enum class ErrorClass : uint8_t { kNone, kHttp4xx, kHttp5xx, kTimeout, kConnect, kBrokenStream };
std::string_view error_class_name(ErrorClass c);

struct RequestRecord {
  bool ok = false;
  ErrorClass error = ErrorClass::kNone;
  int status = 0;
  std::string error_detail;  // first 200 bytes of an error body or the socket error
  double start = 0;          // seconds since the run started
  double ttft = 0;           // seconds
  double e2e = 0;
  std::vector<double> itl;    // seconds between text chunks
  int64_t input_tokens = 0;   // usage.prompt_tokens when reported, else what was asked for
  int64_t output_tokens = 0;  // usage.completion_tokens when reported, else chunks with text
  bool warmup = false;
};

struct LoadConfig {
  Endpoint endpoint;
  int concurrency = 1;          // closed loop: workers; open loop: a cap on requests in flight (0 = none)
  std::optional<double> rate;   // open loop: Poisson arrivals per second
  int64_t requests = 0;         // stop after this many (0: only --duration bounds the run)
  double duration_s = 0;        // stop sending after this long (0: only --requests bounds it)
  int64_t warmup_requests = 0;  // sent first, not measured
  double timeout_s = 600;       // per request
  uint64_t seed = 0;            // arrivals and prompt choice
  int threads = 1;              // client I/O threads
  std::function<void(int64_t done, int64_t failed, int64_t tokens, double elapsed)> progress;  // ~2x/s
};

struct LoadResult {
  std::vector<RequestRecord> records;  // measured requests (warm-up excluded), in completion order
  double duration_s = 0;               // first measured send -> last measured completion
  int64_t warmup_done = 0;
};

// Runs the load. `prompts` are used round-robin (shuffled by seed); at least one is needed.
Result<LoadResult> run_load(const LoadConfig& config, const std::vector<BenchPrompt>& prompts);

// Asks GET {base}/models for the first model id (when --model is absent).
Result<std::string> discover_model(const Endpoint& endpoint, double timeout_s = 10);

}  // namespace hearth::ops
