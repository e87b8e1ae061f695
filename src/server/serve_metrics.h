#pragma once
// The metrics `hearth serve` exports at /metrics: vLLM's metric names under a `hearth:` prefix (so
// dashboards built for vLLM work with a rename), labelled with model_name. Engine gauges and counters
// are read at scrape time from Engine::stats(); latencies are observed by the service as requests run.
#include <memory>
#include <string>
#include <string_view>

namespace hearth {
class Engine;
class GpuMonitor;
}  // namespace hearth

namespace hearth::server {

class HttpServer;

class ServeMetrics {
 public:
  ServeMetrics(std::string model_name, const Engine* engine);
  ~ServeMetrics();
  void set_http(const HttpServer* http);
  // Adds the GPU gauges (utilisation, memory, power, temperature), the energy counter and the energy per
  // generated token, read from `gpu` at scrape time. `gpu` must outlive this object.
  void set_gpu(GpuMonitor* gpu);

  void observe_ttft(double seconds);
  void observe_itl(double seconds);
  void observe_e2e(double seconds);
  void observe_queue(double seconds);
  // One finished request (each choice counts as a request, as in vLLM).
  void request_finished(std::string_view finish_reason, int64_t prompt_tokens, int64_t generation_tokens);
  void http_response(int status);
  void request_rejected(std::string_view why);  // "queue_full", "draining", ...

  std::string render() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::server
