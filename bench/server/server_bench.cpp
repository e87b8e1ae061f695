// server_bench: what `hearth serve` itself costs apart from the model. One process runs the real
// server stack (Engine + OpenAiService + HttpServer on loopback) over a small model, driven by hearth
// bench's load generator (src/ops/bench) with N streams. The HTTP I/O threads' CPU time (their thread
// CPU clocks) divided by the tokens streamed, or by the requests answered, is the server's overhead:
// parsing, template rendering, tokenizing, detokenizing, stop/parse, JSON and SSE framing, socket
// writes. The engine thread (the model) and the client are not counted.
//
//   build/bench/server_bench [--model DIR] [--streams 1,100,1000] [--tokens 32] [--io-threads 1]
//
// Without --model it synthesizes the tiny preset into a temporary directory.
#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "engine/engine.h"
#include "engine/model_runner.h"
#include "model/synth.h"
#include "ops/bench/load_generator.h"
#include "ops/bench/report.h"
#include "server/http_server.h"
#include "server/openai_service.h"
#include "server/serve_metrics.h"

using namespace hearth;

int main(int argc, char** argv) {
  CLI::App app{"server_bench: the HTTP/OpenAI layer's CPU cost per streamed token and per request"};
  std::string model;
  std::vector<int> streams = {1, 100, 1000};
  int tokens = 32;
  int io_threads = 1;
  int engine_threads = 1;
  int requests_small = 200;
  app.add_option("--model", model, "Model directory (default: synthesize the tiny preset)");
  app.add_option("--streams", streams, "Concurrent streams to measure")->delimiter(',');
  app.add_option("--tokens", tokens, "Tokens per streamed request")->capture_default_str();
  app.add_option("--io-threads", io_threads, "Server I/O threads")->capture_default_str();
  app.add_option("--engine-threads", engine_threads, "Engine compute threads")->capture_default_str();
  app.add_option("--requests", requests_small, "Requests for the per-request measurement")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::string tmp;
  if (model.empty()) {
    tmp = (std::filesystem::temp_directory_path() / fmt::format("hearth-server-bench-{}", getpid())).string();
    SynthOptions o;
    o.preset = "tiny";
    o.out_dir = tmp;
    o.force = true;
    std::error_code ec;
    o.tokenizer_roots = tokenizer_search_roots(
        {}, std::filesystem::read_symlink("/proc/self/exe", ec).parent_path().string());
    auto r = synthesize_checkpoint(o);
    if (!r.is_ok()) {
      std::fprintf(stderr, "error: %s\n", r.status().message().c_str());
      return 1;
    }
    model = tmp;
  }
  const int max_streams = *std::max_element(streams.begin(), streams.end());
  RunnerOptions ro;
  ro.threads = engine_threads;
  ro.kv.max_tokens = static_cast<int64_t>(max_streams) * (tokens + 64) + 4096;
  ro.prefix_caching = true;
  auto runner = ModelRunner::load(model, ro);
  if (!runner.is_ok()) {
    std::fprintf(stderr, "error: %s\n", runner.status().message().c_str());
    return 1;
  }
  EngineConfig ec;
  ec.scheduler.max_num_seqs = max_streams;
  ec.scheduler.max_batched_tokens = std::max(2048, max_streams * 2);
  ec.scheduler.max_waiting = 1 << 20;
  Engine engine(**runner, ec);
  auto served = server::prepare_served_model(model, "bench", engine, 0);
  if (!served.is_ok()) {
    std::fprintf(stderr, "error: %s\n", served.status().message().c_str());
    return 1;
  }
  server::ServeMetrics metrics("bench", &engine);
  server::OpenAiService service(std::move(*served), {}, &metrics);
  server::HttpServerConfig hc;
  hc.port = 0;
  hc.io_threads = io_threads;
  auto srv = server::HttpServer::create(
      hc, [&](std::shared_ptr<server::Exchange> e) { service.handle(std::move(e)); });
  if (!srv.is_ok()) {
    std::fprintf(stderr, "error: %s\n", srv.status().message().c_str());
    return 1;
  }
  (*srv)->start();
  const uint16_t port = (*srv)->port();

  // `requests` chat requests of `out` tokens each, `n` at a time; returns the summary and the I/O CPU.
  auto run = [&](int n, int64_t requests, int64_t out, const std::string& text, double* io_cpu) {
    ops::LoadConfig c;
    c.endpoint.port = port;
    c.endpoint.model = "bench";
    c.endpoint.chat = true;
    c.concurrency = n;
    c.requests = requests;
    c.timeout_s = 600;
    ops::BenchPrompt p;
    p.text = text;
    p.output_tokens = out;
    const double io0 = (*srv)->io_cpu_seconds();
    auto r = ops::run_load(c, {p});
    *io_cpu = (*srv)->io_cpu_seconds() - io0;
    return r.is_ok() ? ops::summarize(*r, {}) : ops::BenchSummary{};
  };
  const std::string story = "Tell me a story about a lighthouse keeper.";
  double io = 0;
  run(4, 8, tokens, story, &io);  // warm-up: page in the model and the allocator

  fmt::print("server_bench: model {}, {} I/O thread(s), {} engine thread(s), {} tokens per stream\n", model,
             io_threads, engine_threads, tokens);
  fmt::print("{:>8} {:>9} {:>9} {:>8} {:>10} {:>12} {:>14}\n", "streams", "requests", "tokens", "wall s",
             "tok/s", "I/O cpu s", "us/token (I/O)");
  for (int n : streams) {
    const ops::BenchSummary r = run(n, n == 1 ? 8 : n, tokens, story, &io);
    fmt::print("{:>8} {:>9} {:>9} {:>8.2f} {:>10.0f} {:>12.4f} {:>14.2f}{}\n", n, r.completed,
               r.output_tokens, r.duration_s, r.output_tokens_per_s, io,
               r.output_tokens ? io / static_cast<double>(r.output_tokens) * 1e6 : 0.0,
               r.failed ? fmt::format("  ({} FAILED: {})", r.failed, r.first_error) : "");
  }
  // Per request: a chat request (system + user) with one output token, 4 connections in a loop.
  const ops::BenchSummary r = run(4, requests_small, 1, "Say hello.", &io);
  fmt::print(
      "per request (chat, 1 output token, streamed, 4 connections): {} requests in {:.2f} s, I/O cpu "
      "{:.1f} us/request{}\n",
      r.completed, r.duration_s, r.completed ? io / static_cast<double>(r.completed) * 1e6 : 0.0,
      r.failed ? fmt::format(" ({} FAILED: {})", r.failed, r.first_error) : "");
  (*srv)->stop();
  if (!tmp.empty()) std::filesystem::remove_all(tmp);
  return 0;
}
