// hearth serve: load a model, start the engine loop and the OpenAI-compatible HTTP API. `--demo`
// synthesizes the tiny model on first run and serves it. SIGTERM/SIGINT drain: new generation requests
// get 503, running ones finish (up to --drain-timeout), then the process exits; a second signal exits
// at once.
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "commands.h"
#include "core/log.h"
#include "engine/engine.h"
#include "engine/gpu_monitor.h"
#include "engine/model_runner.h"
#include "kernels/cpu/cpu_features.h"
#include "model/checkpoint.h"
#include "model/synth.h"
#include "server/http_server.h"
#include "server/openai_service.h"
#include "server/serve_metrics.h"

namespace hearth::app {
namespace {

struct ServeArgs {
  std::string model;
  bool demo = false;
  std::string demo_dir = "models/tiny";
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string port_file;
  std::string served_model_name;
  std::string api_key;
  DeviceFlags dev;
  std::string quantize = "none";
  bool int8_activations = false;
  int threads = 0;
  int io_threads = 2;
  TlsFlags tls;
  int64_t max_num_seqs = 0;        // 0: 64 on the CPU, 256 on a GPU
  int64_t max_batched_tokens = 0;  // 0: 512 on the CPU, 8192 on a GPU
  int64_t max_queue_requests = 1024;
  int64_t max_queue_tokens = 1 << 22;
  int64_t kv_tokens = 0;  // 0: 65536 on the CPU; on a GPU whatever --gpu-memory-utilization leaves
  int64_t max_model_len = 0;
  bool no_prefix_caching = false;
  double drain_timeout = 30;
};

int fail(const Status& st) {
  std::fprintf(stderr, "error: %s\n", st.message().c_str());
  return 1;
}

// --demo: the tiny DeepSeek-V3-shaped model, synthesized once into demo_dir.
Status ensure_demo_model(const std::string& dir) {
  std::error_code ec;
  if (std::filesystem::exists(std::filesystem::path(dir) / "config.json", ec)) {
    if (Checkpoint::open(dir).is_ok()) return Status::ok();
    std::fprintf(stderr, "serve: %s does not load; synthesizing it again\n", dir.c_str());
  }
  std::fprintf(stderr, "serve: synthesizing the tiny demo model into %s (first run only) ...\n", dir.c_str());
  SynthOptions o;
  o.preset = "tiny";
  o.out_dir = dir;
  o.force = true;
  o.tokenizer_roots = tokenizer_search_roots({}, exe_dir());
  auto report = synthesize_checkpoint(o);
  if (!report.is_ok()) return report.status().with_context("--demo: synthesizing the tiny model");
  return Status::ok();
}

int run_serve(ServeArgs a) {
  if (a.demo) {
    if (a.model.empty()) a.model = a.demo_dir;
    if (Status st = ensure_demo_model(a.model); !st.is_ok()) return fail(st);
    if (a.served_model_name.empty()) a.served_model_name = "hearth-demo";
  }
  if (a.model.empty()) {
    std::fprintf(stderr, "error: give --model PATH (a model directory or .gguf file), or --demo\n");
    return 2;
  }
  if (a.port < 0 || a.port > 65535) {
    std::fprintf(stderr, "error: --port must be in [0, 65535]\n");
    return 2;
  }
  if (a.api_key.empty()) {
    if (const char* k = std::getenv("HEARTH_API_KEY")) a.api_key = k;
  }

  // Signals are taken by a waiting thread; every other thread has them blocked.
  sigset_t sigs = block_termination_signals();

  RunnerOptions ropt;
  if (int rc = apply_device_flags(a.dev, &ropt); rc != 0) return rc;
  const bool gpu = ropt.device == RunnerDevice::kCuda;
  if (a.max_num_seqs == 0) a.max_num_seqs = gpu ? 256 : 64;
  if (a.max_batched_tokens == 0) a.max_batched_tokens = gpu ? 8192 : 512;
  ropt.threads = a.threads;
  ropt.gpu.max_seqs = a.max_num_seqs;
  ropt.gpu.max_batch_tokens = std::max(a.max_batched_tokens, a.max_num_seqs);
  if (gpu) {
    ropt.kv.num_blocks = a.kv_tokens > 0 ? (a.kv_tokens + ropt.kv.block_size - 1) / ropt.kv.block_size : 0;
  } else {
    ropt.kv.max_tokens = a.kv_tokens > 0 ? a.kv_tokens : 65536;
  }
  ropt.prefix_caching = !a.no_prefix_caching;
  ropt.weights.int8_activations = a.int8_activations;
  if (int rc = apply_quantize_flag(a.quantize, &ropt); rc != 0) return rc;
  // TLS files are checked before the (slow) model load.
  if (Status t = server::HttpServer::check_tls({a.tls.cert, a.tls.key, a.tls.min_version, a.tls.client_ca});
      !t.is_ok()) {
    std::fprintf(stderr, "error: %s\n", t.message().c_str());
    return 2;
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::fprintf(stderr, "serve: loading %s ...\n", a.model.c_str());
  auto runner = ModelRunner::load(a.model, ropt);
  if (!runner.is_ok()) return fail(runner.status());
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  EngineConfig ec;
  ec.scheduler.max_num_seqs = a.max_num_seqs;
  ec.scheduler.max_batched_tokens = a.max_batched_tokens;
  ec.scheduler.max_waiting = a.max_queue_requests;
  ec.scheduler.max_waiting_tokens = a.max_queue_tokens;
  if (Status st = ec.validate(); !st.is_ok()) return fail(st);
  Engine engine(**runner, ec);

  auto served = server::prepare_served_model(a.model, a.served_model_name, engine, a.max_model_len);
  if (!served.is_ok()) return fail(served.status());
  const std::string name = served->name;
  const int64_t max_len = served->max_model_len;

  server::ServeMetrics metrics(name, &engine);
  std::unique_ptr<GpuMonitor> gpu_monitor;
  if (gpu) {
    std::string why;
    gpu_monitor = GpuMonitor::open(ropt.gpu.device, &why);
    if (gpu_monitor != nullptr) {
      metrics.set_gpu(gpu_monitor.get());
    } else {
      std::fprintf(stderr, "serve: %s\n", why.c_str());
    }
  }
  server::ServiceConfig sc;
  sc.api_key = a.api_key;
  server::OpenAiService service(std::move(*served), sc, &metrics);

  server::HttpServerConfig hc;
  hc.host = a.host;
  hc.port = static_cast<uint16_t>(a.port);
  hc.io_threads = a.io_threads;
  hc.tls = {a.tls.cert, a.tls.key, a.tls.min_version, a.tls.client_ca};
  auto http = server::HttpServer::create(
      hc, [&service](std::shared_ptr<server::Exchange> ex) { service.handle(std::move(ex)); });
  if (!http.is_ok()) return fail(http.status());
  metrics.set_http(http->get());
  (*http)->start();
  const uint16_t port = (*http)->port();
  if (!a.port_file.empty()) write_port_file(a.port_file, port);
  std::fprintf(
      stderr,
      "serve: %s (%s, %s) loaded in %.2f s; context %lld tokens, KV cache %lld tokens\n"
      "serve: model \"%s\" at %s://%s:%u/v1 (POST /v1/chat/completions, /v1/completions; GET /v1/models, "
      "/metrics)%s\n",
      a.model.c_str(), std::string(architecture_name((*runner)->spec().architecture)).c_str(),
      describe_runner(**runner).c_str(), load_s, static_cast<long long>(max_len),
      static_cast<long long>((*runner)->kv_num_blocks() * (*runner)->kv_block_size()), name.c_str(),
      a.tls.enabled() ? "https" : "http", a.host.c_str(), port,
      a.api_key.empty() ? "" : "; API key required");
  std::fprintf(stderr, "serve: listening on %s://%s:%u%s\n", a.tls.enabled() ? "https" : "http",
               a.host.c_str(), port,
               a.tls.enabled() ? fmt::format(" (TLS >= {})", a.tls.min_version).c_str() : "");

  int sig = 0;
  sigwait(&sigs, &sig);
  std::fprintf(
      stderr,
      "serve: %s: draining (new requests get 503; up to %.0f s for running ones; again to exit now)\n",
      sig == SIGTERM ? "SIGTERM" : "SIGINT", a.drain_timeout);
  service.set_draining();
  auto drained = std::async(std::launch::async, [&engine] { engine.drain(); });
  // A second signal ends the wait early.
  std::atomic<bool> again{false};
  std::thread second([&] {
    int s2 = 0;
    sigwait(&sigs, &s2);
    again = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(a.drain_timeout);
  while (!again && std::chrono::steady_clock::now() < deadline &&
         drained.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
  }
  // Let the last responses reach their clients.
  while (!again && std::chrono::steady_clock::now() < deadline && (*http)->stats().exchanges_open > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const bool clean = drained.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  std::fprintf(stderr, "serve: %s; stopping\n", clean ? "drained" : "drain cut short");
  (*http)->stop_accepting();
  (*http)->stop();
  if (!again) pthread_kill(second.native_handle(), SIGTERM);
  second.join();
  if (!clean) std::_Exit(0);  // requests still running: the engine thread is not waited for
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, RunFn* run) {
  auto args = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand("serve", "Serve a model over the OpenAI-compatible HTTP API");
  cmd->add_option("--model", args->model, "Model directory (Hugging Face layout) or .gguf file");
  cmd->add_flag(
      "--demo", args->demo,
      "Serve the tiny synthesized demo model (synthesized into --demo-dir on first run) as 'hearth-demo'");
  cmd->add_option("--demo-dir", args->demo_dir, "Where --demo keeps its model")->capture_default_str();
  cmd->add_option("--host", args->host, "Address to listen on (0.0.0.0 for all interfaces)")
      ->capture_default_str();
  cmd->add_option("--port", args->port, "Port to listen on (0: any free port)")->capture_default_str();
  cmd->add_option("--port-file", args->port_file, "Write the bound port to this file once listening");
  cmd->add_option("--served-model-name", args->served_model_name,
                  "The model name clients send (default: the model directory's name)");
  cmd->add_option("--api-key", args->api_key,
                  "Require 'Authorization: Bearer KEY' on /v1/* (or set HEARTH_API_KEY)");
  add_device_flags(cmd, &args->dev);
  cmd->add_option("--quantize", args->quantize,
                  "Weights at load: none, q8_0 (CPU) or fp8 (CUDA: e4m3, one scale per row)")
      ->capture_default_str();
  cmd->add_flag("--int8-activations", args->int8_activations, "With Q8_0 weights: int8 activations (VNNI)");
  cmd->add_option("--threads", args->threads, "Engine compute threads (default: all cores)");
  cmd->add_option("--io-threads", args->io_threads, "HTTP I/O threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  add_tls_flags(cmd, &args->tls);
  cmd->add_option("--max-num-seqs", args->max_num_seqs, "Most sequences in one batch")->capture_default_str();
  cmd->add_option("--max-batched-tokens", args->max_batched_tokens,
                  "Tokens computed per engine step (the chunked-prefill budget)")
      ->capture_default_str();
  cmd->add_option("--max-queue-requests", args->max_queue_requests,
                  "Queued requests before 429 with Retry-After")
      ->capture_default_str();
  cmd->add_option("--max-queue-tokens", args->max_queue_tokens, "Queued prompt tokens before 429")
      ->capture_default_str();
  cmd->add_option(
      "--kv-tokens", args->kv_tokens,
      "KV-cache capacity in tokens, all sequences together (default: 65536 on the CPU; on a GPU what "
      "--gpu-memory-utilization leaves)");
  cmd->add_option(
      "--max-model-len", args->max_model_len,
      "Longest prompt + completion one request may use (default: the model's context, capped by the KV "
      "cache)");
  cmd->add_flag("--no-prefix-caching", args->no_prefix_caching,
                "Do not share KV blocks of equal prompt prefixes");
  cmd->add_option("--drain-timeout", args->drain_timeout, "Seconds SIGTERM waits for running requests")
      ->capture_default_str();
  cmd->callback([run, args] { *run = [args] { return run_serve(*args); }; });
}

}  // namespace hearth::app
