// client_bench: can hearth bench's load generator keep up? A scripted OpenAI-shaped server (hearth's
// HttpServer streaming `--tokens` SSE events per request as fast as it can, `--burst` events per write)
// is driven by the load generator with `--streams` concurrent streams; the client's received tokens/s
// and its own CPU time per token are reported. Both share this machine's cores, so the figure is a
// lower bound of what the client alone can take.
//
//   build/bench/client_bench [--streams 2000] [--tokens 256] [--burst 8] [--client-threads 1]
#include <fmt/format.h>
#include <pthread.h>
#include <sys/resource.h>
#include <time.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>

#include "ops/bench/load_generator.h"
#include "ops/bench/report.h"
#include "server/http_server.h"

using namespace hearth;

int main(int argc, char** argv) {
  CLI::App app{"client_bench: hearth bench's load generator against a scripted fast server"};
  int streams = 2000, tokens = 256, burst = 8, client_threads = 1, server_threads = 1;
  int64_t requests = 0;
  app.add_option("--streams", streams, "Concurrent streams")->capture_default_str();
  app.add_option("--tokens", tokens, "Tokens (SSE events) per request")->capture_default_str();
  app.add_option("--burst", burst, "Events per server write")->capture_default_str();
  app.add_option("--requests", requests, "Requests in all (default: 2 x streams)");
  app.add_option("--client-threads", client_threads, "Load generator threads")->capture_default_str();
  app.add_option("--server-threads", server_threads, "Scripted server threads")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (requests <= 0) requests = 2LL * streams;

  server::HttpServerConfig hc;
  hc.port = 0;
  hc.io_threads = server_threads;
  hc.max_connections = streams + 100;
  std::string event =
      R"(data: {"id":"cmpl-1","object":"text_completion","created":0,"model":"m","choices":[{"index":0,"text":" token","logprobs":null,"finish_reason":null}]})";
  event += "\n\n";
  auto srv = server::HttpServer::create(hc, [&](std::shared_ptr<server::Exchange> ex) {
    const auto j = nlohmann::json::parse(ex->request().body(), nullptr, false);
    const int n = j.is_object() ? j.value("max_tokens", tokens) : tokens;
    ex->start_stream(200, "text/event-stream");
    std::string group;
    for (int i = 0; i < n; ++i) {
      group += event;
      if ((i + 1) % burst == 0 || i + 1 == n) {
        ex->send_chunk(std::move(group));
        group.clear();
      }
    }
    ex->send_chunk(fmt::format(
        "data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":8,\"completion_tokens\":{}}}}}\n\ndata: "
        "[DONE]\n\n",
        n));
    ex->end_stream();
  });
  if (!srv.is_ok()) {
    std::fprintf(stderr, "error: %s\n", srv.status().message().c_str());
    return 1;
  }
  (*srv)->start();
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < static_cast<rlim_t>(streams) * 2 + 100) {
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, static_cast<rlim_t>(streams) * 2 + 100);
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  ops::LoadConfig c;
  c.endpoint.port = (*srv)->port();
  c.endpoint.model = "m";
  c.concurrency = streams;
  c.requests = requests;
  c.threads = client_threads;
  c.timeout_s = 120;
  ops::BenchPrompt p;
  p.text = "hello";
  p.output_tokens = tokens;
  timespec c0{}, c1{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
  const double server0 = (*srv)->io_cpu_seconds();
  auto r = ops::run_load(c, {p});
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
  const double server_cpu = (*srv)->io_cpu_seconds() - server0;
  (*srv)->stop();
  if (!r.is_ok()) {
    std::fprintf(stderr, "error: %s\n", r.status().message().c_str());
    return 1;
  }
  const ops::BenchSummary s = ops::summarize(*r, {});
  const double total_cpu =
      (static_cast<double>(c1.tv_sec - c0.tv_sec) + static_cast<double>(c1.tv_nsec - c0.tv_nsec) * 1e-9);
  const double client_cpu = total_cpu - server_cpu;
  fmt::print("client_bench: {} streams, {} requests x {} tokens, {} events per write, {} client thread(s)\n",
             streams, requests, tokens, burst, client_threads);
  fmt::print("completed {} failed {} in {:.2f} s: {:.0f} received tokens/s, {:.1f} requests/s\n", s.completed,
             s.failed, s.duration_s, s.output_tokens_per_s, s.requests_per_s);
  fmt::print("client CPU {:.2f} s ({:.2f} us/token), scripted server CPU {:.2f} s\n", client_cpu,
             s.output_tokens ? client_cpu / static_cast<double>(s.output_tokens) * 1e6 : 0.0, server_cpu);
  if (s.failed > 0) fmt::print("first error: {}\n", s.first_error);
  return s.failed == 0 ? 0 : 1;
}
