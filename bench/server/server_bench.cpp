// server_bench: what `hearth serve` itself costs apart from the model. One process runs the real
// server stack (Engine + OpenAiService + HttpServer on loopback) over a small model and an Asio client
// that keeps N streams open. The HTTP I/O threads' CPU time (their thread CPU clocks) divided by the
// tokens streamed, or by the requests answered, is the server's overhead: parsing, template rendering,
// tokenizing, detokenizing, stop/parse, JSON and SSE framing, socket writes. The engine thread (the
// model) and the client are measured apart and not counted.
//
//   build/bench/server_bench [--model DIR] [--streams 1,100,1000] [--tokens 32] [--io-threads 1]
//
// Without --model it synthesizes the tiny preset into a temporary directory.
#include <fmt/format.h>
#include <time.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <thread>

#include "engine/engine.h"
#include "engine/model_runner.h"
#include "model/synth.h"
#include "server/http_server.h"
#include "server/openai_service.h"
#include "server/serve_metrics.h"

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using namespace hearth;

namespace {

double thread_cpu_seconds(std::thread& t) {
  clockid_t c{};
  if (pthread_getcpuclockid(t.native_handle(), &c) != 0) return 0;
  timespec ts{};
  clock_gettime(c, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct ClientTotals {
  std::atomic<int64_t> requests{0};
  std::atomic<int64_t> tokens{0};  // completion tokens reported by usage
  std::atomic<int64_t> failures{0};
  std::atomic<int64_t> events{0};  // SSE data lines received
};

// One client connection: `count` requests in a row on a keep-alive connection.
net::awaitable<void> client(uint16_t port, std::string body, int count, ClientTotals& totals, bool stream) {
  auto ex = co_await net::this_coro::executor;
  beast::tcp_stream s(ex);
  try {
    co_await s.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), net::use_awaitable);
    beast::flat_buffer buf;
    for (int i = 0; i < count; ++i) {
      http::request<http::string_body> req(http::verb::post, "/v1/chat/completions", 11);
      req.set(http::field::host, "127.0.0.1");
      req.set(http::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
      co_await http::async_write(s, req, net::use_awaitable);
      http::response_parser<http::string_body> parser;
      parser.body_limit(1u << 30);
      co_await http::async_read(s, buf, parser, net::use_awaitable);
      auto& res = parser.get();
      if (res.result_int() != 200) {
        totals.failures++;
        continue;
      }
      const std::string& b = res.body();
      int64_t toks = 0;
      if (stream) {
        // The usage chunk (include_usage) carries completion_tokens.
        size_t pos = 0;
        int64_t events = 0;
        while ((pos = b.find("data: ", pos)) != std::string::npos) {
          ++events;
          pos += 6;
        }
        totals.events += events;
        const size_t u = b.rfind("\"completion_tokens\":");
        if (u != std::string::npos) toks = std::strtoll(b.c_str() + u + 20, nullptr, 10);
      } else {
        const auto j = nlohmann::json::parse(b, nullptr, false);
        if (j.is_object() && j.contains("usage")) toks = j["usage"].value("completion_tokens", 0);
      }
      totals.tokens += toks;
      totals.requests++;
    }
  } catch (const std::exception& e) {
    totals.failures++;
    std::fprintf(stderr, "client: %s\n", e.what());
  }
  beast::error_code ignored;
  s.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

struct RunResult {
  int streams = 0;
  int64_t requests = 0, tokens = 0, failures = 0, events = 0;
  double wall = 0, io_cpu = 0, engine_cpu = 0, client_cpu = 0;
};

}  // namespace

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

  auto run = [&](int n, int per_conn, const std::string& body, bool stream) {
    ClientTotals totals;
    net::io_context ioc(1);
    for (int i = 0; i < n; ++i)
      net::co_spawn(ioc, client(port, body, per_conn, totals, stream), net::detached);
    const double io0 = (*srv)->io_cpu_seconds();
    const double p0 = process_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    std::thread ct([&] { ioc.run(); });
    const double c0 = thread_cpu_seconds(ct);
    ct.join();
    RunResult r;
    r.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.io_cpu = (*srv)->io_cpu_seconds() - io0;
    (void)c0;
    r.engine_cpu =
        process_cpu_seconds() - p0 - r.io_cpu;  // engine + client + pool: not the server's overhead
    r.streams = n;
    r.requests = totals.requests;
    r.tokens = totals.tokens;
    r.failures = totals.failures;
    r.events = totals.events;
    return r;
  };

  const std::string chat_body = fmt::format(
      R"({{"model":"bench","messages":[{{"role":"user","content":"Tell me a story about a lighthouse keeper."}}],"max_tokens":{},"temperature":0,"ignore_eos":true,"stream":true,"stream_options":{{"include_usage":true}}}})",
      tokens);
  // Warm-up: page in the model and the allocator.
  run(4, 2, chat_body, true);

  fmt::print("server_bench: model {}, {} I/O thread(s), {} engine thread(s), {} tokens per stream\n", model,
             io_threads, engine_threads, tokens);
  fmt::print("{:>8} {:>9} {:>9} {:>8} {:>10} {:>12} {:>14} {:>12}\n", "streams", "requests", "tokens",
             "wall s", "tok/s", "I/O cpu s", "us/token (I/O)", "SSE events");
  for (int n : streams) {
    const int per = n == 1 ? 8 : 1;
    RunResult r = run(n, per, chat_body, true);
    fmt::print("{:>8} {:>9} {:>9} {:>8.2f} {:>10.0f} {:>12.4f} {:>14.2f} {:>12}{}\n", n, r.requests, r.tokens,
               r.wall, static_cast<double>(r.tokens) / r.wall, r.io_cpu,
               r.tokens ? r.io_cpu / static_cast<double>(r.tokens) * 1e6 : 0.0, r.events,
               r.failures ? fmt::format("  ({} FAILED)", r.failures) : "");
  }
  // Per request: a chat request with one output token, not streamed, 4 connections in a loop.
  const std::string one =
      R"({"model":"bench","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello."}],"max_tokens":1,"temperature":0})";
  {
    const int conns = 4;
    ClientTotals totals;
    const int per = std::max(1, requests_small / conns);
    RunResult r;
    net::io_context ioc2(1);
    for (int i = 0; i < conns; ++i) net::co_spawn(ioc2, client(port, one, per, totals, false), net::detached);
    const double io0 = (*srv)->io_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    ioc2.run();
    r.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.io_cpu = (*srv)->io_cpu_seconds() - io0;
    fmt::print(
        "per request (chat, 1 output token, not streamed, {} connections): {} requests in {:.2f} s, I/O cpu "
        "{:.1f} us/request{}\n",
        conns, totals.requests.load(), r.wall,
        totals.requests ? r.io_cpu / static_cast<double>(totals.requests) * 1e6 : 0.0,
        totals.failures ? fmt::format(" ({} FAILED)", totals.failures.load()) : "");
  }
  (*srv)->stop();
  if (!tmp.empty()) std::filesystem::remove_all(tmp);
  return 0;
}
