// mock_upstream: an OpenAI-shaped upstream that costs (almost) nothing, for measuring what the gateway adds.
// POST /v1/completions and /v1/chat/completions stream `--tokens` SSE events, the first at once and the
// rest `--itl-ms` apart (a model's pace, so connections stay open as in real traffic), then the usage chunk
// when stream_options.include_usage is set, then [DONE]; non-streamed requests get one JSON completion.
// GET /v1/models lists "mock". Prints nothing; writes its port to --port-file.
//
//   build/bench/mock_upstream --port-file F [--tokens 16] [--itl-ms 10] [--threads 1]
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <fstream>
#include <mutex>
#include <queue>
#include <thread>

#include "server/http_server.h"

using namespace hearth;
using Clock = std::chrono::steady_clock;

namespace {

struct Pending {
  Clock::time_point due;
  std::shared_ptr<server::Exchange> ex;
  int left = 0;
  bool usage = false;
  bool chat = false;
  bool operator>(const Pending& o) const { return due > o.due; }
};

std::string chunk(bool chat, int i) {
  return chat ? "data: "
                "{\"id\":\"m\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"mock\","
                "\"choices\":[{"
                "\"index\":0,\"delta\":{\"content\":\" tok" +
                    std::to_string(i) + "\"},\"finish_reason\":null}]}\n\n"
              : "data: "
                "{\"id\":\"m\",\"object\":\"text_completion\",\"created\":1,\"model\":\"mock\",\"choices\":[{"
                "\"index\":0,\"text\":\" tok" +
                    std::to_string(i) + "\",\"finish_reason\":null}]}\n\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mock_upstream: a near-free OpenAI-shaped upstream for gateway benchmarks"};
  std::string port_file;
  int tokens = 16, threads = 1;
  double itl_ms = 10;
  app.add_option("--port-file", port_file, "Write the bound port here")->required();
  app.add_option("--tokens", tokens, "Tokens (SSE events) per request")->capture_default_str();
  app.add_option("--itl-ms", itl_ms, "Milliseconds between tokens")->capture_default_str();
  app.add_option("--threads", threads, "I/O threads")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::mutex mu;
  std::condition_variable cv;
  std::priority_queue<Pending, std::vector<Pending>, std::greater<>> q;
  const auto itl =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(itl_ms));
  std::thread pacer([&] {
    std::unique_lock lk(mu);
    for (;;) {
      if (q.empty()) {
        cv.wait(lk);
        continue;
      }
      if (q.top().due > Clock::now()) {
        cv.wait_until(lk, q.top().due);
        continue;
      }
      Pending p = q.top();
      q.pop();
      lk.unlock();
      const int i = tokens - p.left;
      std::string out = chunk(p.chat, i);
      if (p.left == 1) {
        if (p.usage)
          out +=
              "data: "
              "{\"id\":\"m\",\"object\":\"chunk\",\"created\":1,\"model\":\"mock\",\"choices\":[],\"usage\":{"
              "\"prompt_tokens\":8,\"completion_tokens\":" +
              std::to_string(tokens) + ",\"total_tokens\":" + std::to_string(tokens + 8) + "}}\n\n";
        out += "data: [DONE]\n\n";
        p.ex->send_chunk(std::move(out));
        p.ex->end_stream();
        lk.lock();
        continue;
      }
      p.ex->send_chunk(std::move(out));
      --p.left;
      p.due += itl;
      lk.lock();
      q.push(std::move(p));
    }
  });

  server::HttpServerConfig hc;
  hc.port = 0;
  hc.io_threads = threads;
  auto http = server::HttpServer::create(hc, [&](std::shared_ptr<server::Exchange> ex) {
    if (ex->path() == "/v1/models") {
      ex->respond(200, "application/json", R"({"object":"list","data":[{"id":"mock","object":"model"}]})");
      return;
    }
    nlohmann::json j = nlohmann::json::parse(ex->request().body(), nullptr, false);
    const bool chat = ex->path() == "/v1/chat/completions";
    if (j.is_discarded() || !j.is_object()) {
      ex->respond(400, "application/json",
                  R"({"error":{"message":"bad json","type":"invalid_request_error"}})");
      return;
    }
    if (!j.value("stream", false)) {
      ex->respond(
          200, "application/json",
          R"({"id":"m","object":"text_completion","model":"mock","choices":[{"index":0,"text":"x","finish_reason":"length"}],"usage":{"prompt_tokens":8,"completion_tokens":1,"total_tokens":9}})");
      return;
    }
    bool usage = false;
    if (auto so = j.find("stream_options"); so != j.end() && so->is_object())
      usage = so->value("include_usage", false);
    ex->start_stream(200, "text/event-stream");
    std::lock_guard lk(mu);
    q.push({Clock::now(), ex, tokens, usage, chat});
    cv.notify_one();
  });
  if (!http.is_ok()) {
    std::fprintf(stderr, "mock_upstream: %s\n", http.status().to_string().c_str());
    return 1;
  }
  (*http)->start();
  std::ofstream(port_file + ".tmp") << (*http)->port() << "\n";
  std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGINT);
  pthread_sigmask(SIG_BLOCK, &s, nullptr);
  int sig = 0;
  sigwait(&s, &sig);
  std::_Exit(0);
}
