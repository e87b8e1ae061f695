#include "server/serve_metrics.h"

#include "engine/gpu_monitor.h"

#include <cstdlib>
#include <string>

#include "core/log.h"
#include "core/metrics.h"
#include "engine/engine.h"
#include "server/http_server.h"

namespace hearth::server {

namespace {
// Registration happens once at start-up with constant names: a failure is a bug in this file.
template <typename T>
T* must(Result<T*> r) {
  if (!r.is_ok()) {
    HEARTH_LOG_ERROR("metrics: {}", r.status().message());
    std::abort();
  }
  return *r;
}
}  // namespace

struct ServeMetrics::Impl {
  std::string model;
  const Engine* engine;
  const HttpServer* http = nullptr;
  Registry reg;
  Histogram* ttft = nullptr;
  Histogram* itl = nullptr;
  Histogram* e2e = nullptr;
  Histogram* queue = nullptr;
  CounterFamily* success = nullptr;
  CounterFamily* http_responses = nullptr;
  CounterFamily* rejected = nullptr;
  HistogramFamily* prompt_hist = nullptr;
  HistogramFamily* gen_hist = nullptr;

  Impl(std::string m, const Engine* e) : model(std::move(m)), engine(e) {
    const std::vector<std::string> L = {"model_name"};
    const std::vector<std::string> V = {model};
    auto engine_gauge = [&](const char* name, const char* help, double (*get)(const EngineStats&)) {
      CallbackFamily* f = must(reg.callback_gauge(name, help, L));
      (void)f->add(V, [this, get] { return get(engine->stats()); });
    };
    auto engine_counter = [&](const char* name, const char* help, double (*get)(const EngineStats&)) {
      CallbackFamily* f = must(reg.callback_counter(name, help, L));
      (void)f->add(V, [this, get] { return get(engine->stats()); });
    };
    engine_gauge("hearth:num_requests_running", "Number of requests in the running batch.",
                 [](const EngineStats& s) { return static_cast<double>(s.running); });
    engine_gauge("hearth:num_requests_waiting", "Number of requests waiting to be scheduled.",
                 [](const EngineStats& s) { return static_cast<double>(s.waiting); });
    engine_gauge("hearth:kv_cache_usage_perc",
                 "KV-cache usage: 1 means 100 percent of the blocks are in use.",
                 [](const EngineStats& s) { return s.kv_usage; });
    engine_gauge("hearth:kv_cache_fragmentation_perc",
                 "Unused fraction of the KV slots held by running requests (partly filled last blocks).",
                 [](const EngineStats& s) { return s.kv_fragmentation; });
    engine_counter("hearth:prefix_cache_queries", "Prefix-cache queries, in tokens.",
                   [](const EngineStats& s) { return static_cast<double>(s.prefix_queries); });
    engine_counter("hearth:prefix_cache_hits", "Prefix-cache hits, in tokens.",
                   [](const EngineStats& s) { return static_cast<double>(s.prefix_hits); });
    engine_counter("hearth:num_preemptions", "Cumulative number of preemptions (recompute) by the scheduler.",
                   [](const EngineStats& s) { return static_cast<double>(s.preemptions); });
    engine_counter("hearth:prompt_tokens", "Number of prefill tokens processed.",
                   [](const EngineStats& s) { return static_cast<double>(s.prompt_tokens); });
    engine_counter("hearth:generation_tokens", "Number of generation tokens processed.",
                   [](const EngineStats& s) { return static_cast<double>(s.generation_tokens); });
    engine_counter("hearth:engine_steps", "Engine steps (batches) run.",
                   [](const EngineStats& s) { return static_cast<double>(s.steps); });
    engine_counter("hearth:engine_schedule_seconds", "Engine thread time scheduling and building batches.",
                   [](const EngineStats& s) { return s.schedule_seconds; });
    engine_counter("hearth:engine_forward_seconds",
                   "Engine thread time in the model's forward (incl. device sync).",
                   [](const EngineStats& s) { return s.forward_seconds; });
    engine_counter("hearth:engine_sample_seconds",
                   "Engine thread time sampling on the host (non-greedy rows, logprobs, guided decoding).",
                   [](const EngineStats& s) { return s.sample_seconds; });
    engine_counter("hearth:engine_emit_seconds",
                   "Engine thread time handing tokens out and finishing requests.",
                   [](const EngineStats& s) { return s.emit_seconds; });
    success = must(reg.counter("hearth:request_success", "Count of successfully processed requests.",
                               {"model_name", "finished_reason"}));
    rejected = must(reg.counter("hearth:request_rejected",
                                "Requests refused before they ran (queue full, draining).",
                                {"model_name", "reason"}));
    ttft =
        &must(reg.histogram("hearth:time_to_first_token_seconds",
                            "Histogram of time to first token in seconds (request received to first token).",
                            buckets::time_to_first_token(), L))
             ->labels(V);
    itl = &must(reg.histogram("hearth:inter_token_latency_seconds",
                              "Histogram of inter-token latency in seconds.", buckets::inter_token_latency(),
                              L))
               ->labels(V);
    e2e = &must(reg.histogram("hearth:e2e_request_latency_seconds",
                              "Histogram of end-to-end request latency in seconds.",
                              buckets::request_latency(), L))
               ->labels(V);
    queue = &must(reg.histogram("hearth:request_queue_time_seconds",
                                "Histogram of time spent waiting in the queue in seconds.",
                                buckets::request_latency(), L))
                 ->labels(V);
    static const double kTokenBuckets[] = {1,    2,    5,    10,    20,    50,    100,    200,   500,
                                           1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000};
    prompt_hist = must(reg.histogram("hearth:request_prompt_tokens", "Number of prefill tokens per request.",
                                     kTokenBuckets, L));
    gen_hist = must(reg.histogram("hearth:request_generation_tokens",
                                  "Number of generation tokens per request.", kTokenBuckets, L));
    http_responses = must(reg.counter("hearth:http_responses", "HTTP responses by status code.", {"code"}));
    CallbackFamily* io = must(
        reg.callback_counter("hearth:http_io_cpu_seconds", "CPU seconds used by the HTTP I/O threads.", {}));
    (void)io->add({}, [this] { return http ? http->io_cpu_seconds() : 0.0; });
    CallbackFamily* conns =
        must(reg.callback_gauge("hearth:http_connections_open", "Open client connections.", {}));
    (void)conns->add({}, [this] { return http ? static_cast<double>(http->stats().connections_open) : 0.0; });
  }
};

ServeMetrics::ServeMetrics(std::string model_name, const Engine* engine)
    : impl_(std::make_unique<Impl>(std::move(model_name), engine)) {}
ServeMetrics::~ServeMetrics() = default;

void ServeMetrics::set_gpu(GpuMonitor* gpu) {
  Registry& reg = impl_->reg;
  const std::vector<std::string> L = {"gpu", "gpu_name"};
  const std::vector<std::string> V = {std::to_string(gpu->index()), gpu->name()};
  auto gauge = [&](const char* name, const char* help, double (*get)(const GpuSample&)) {
    CallbackFamily* f = must(reg.callback_gauge(name, help, L));
    (void)f->add(V, [gpu, get] { return get(gpu->sample()); });
  };
  gauge("hearth:gpu_utilization", "Fraction of the last NVML sample period in which a kernel ran (0 to 1).",
        [](const GpuSample& s) { return s.utilization; });
  gauge("hearth:gpu_memory_used_bytes", "GPU memory in use (all processes).",
        [](const GpuSample& s) { return static_cast<double>(s.memory_used_bytes); });
  gauge("hearth:gpu_memory_total_bytes", "GPU memory.",
        [](const GpuSample& s) { return static_cast<double>(s.memory_total_bytes); });
  gauge("hearth:gpu_power_watts", "GPU power draw.", [](const GpuSample& s) { return s.power_watts; });
  gauge("hearth:gpu_temperature_celsius", "GPU die temperature.",
        [](const GpuSample& s) { return s.temperature_celsius; });
  CallbackFamily* energy = must(reg.callback_counter(
      "hearth:gpu_energy_joules", "GPU energy used since the server started (NVML total energy).", L));
  (void)energy->add(V, [gpu] { return gpu->sample().energy_joules; });
  const Engine* engine = impl_->engine;
  CallbackFamily* per_token = must(reg.callback_gauge(
      "hearth:energy_per_generated_token_joules",
      "GPU energy since start divided by the tokens generated since start (the cost model's J/token).", L));
  (void)per_token->add(V, [gpu, engine] {
    const double tokens = static_cast<double>(engine->stats().generation_tokens);
    return tokens > 0 ? gpu->sample().energy_joules / tokens : 0.0;
  });
}
void ServeMetrics::set_http(const HttpServer* http) {
  impl_->http = http;
}

void ServeMetrics::observe_ttft(double s) {
  impl_->ttft->observe(s);
}
void ServeMetrics::observe_itl(double s) {
  impl_->itl->observe(s);
}
void ServeMetrics::observe_e2e(double s) {
  impl_->e2e->observe(s);
}
void ServeMetrics::observe_queue(double s) {
  impl_->queue->observe(s);
}

void ServeMetrics::request_finished(std::string_view reason, int64_t prompt_tokens,
                                    int64_t generation_tokens) {
  impl_->success->labels(std::vector<std::string>{impl_->model, std::string(reason)}).inc();
  impl_->prompt_hist->labels(std::vector<std::string>{impl_->model})
      .observe(static_cast<double>(prompt_tokens));
  impl_->gen_hist->labels(std::vector<std::string>{impl_->model})
      .observe(static_cast<double>(generation_tokens));
}

void ServeMetrics::http_response(int status) {
  impl_->http_responses->labels(std::vector<std::string>{std::to_string(status)}).inc();
}

void ServeMetrics::request_rejected(std::string_view why) {
  impl_->rejected->labels(std::vector<std::string>{impl_->model, std::string(why)}).inc();
}

std::string ServeMetrics::render() const {
  return impl_->reg.render();
}

}  // namespace hearth::server
