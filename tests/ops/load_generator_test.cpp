// The load generator against a scripted OpenAI-shaped server (hearth's own HttpServer with a handler
// that streams a known number of chunks, or fails in a chosen way): counts, token accounting from
// usage, error classes, closed and open loops, model discovery.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "ops/bench/load_generator.h"
#include "ops/bench/report.h"
#include "server/http_server.h"

namespace hearth::ops {
namespace {

class FakeOpenAi {
 public:
  FakeOpenAi() {
    server::HttpServerConfig c;
    c.port = 0;
    c.io_threads = 2;
    auto s = server::HttpServer::create(
        c, [this](std::shared_ptr<server::Exchange> ex) { handle(std::move(ex)); });
    EXPECT_TRUE(s.is_ok());
    server_ = std::move(*s);
    server_->start();
  }
  ~FakeOpenAi() {
    for (auto& t : workers_) t.join();  // before the server: they still call into its exchanges
    server_->stop();
  }
  uint16_t port() const { return server_->port(); }
  std::atomic<int> requests{0};

 private:
  void handle(std::shared_ptr<server::Exchange> ex) {
    if (ex->path() == "/v1/models") {
      ex->respond(200, "application/json",
                  R"({"object":"list","data":[{"id":"fake-model","object":"model"}]})");
      return;
    }
    ++requests;
    const auto j = nlohmann::json::parse(ex->request().body(), nullptr, false);
    const std::string prompt = j.value("prompt", "");
    const int n = j.value("max_tokens", 1);
    if (prompt == "fail429") {
      ex->respond(429, "application/json",
                  R"({"error":{"message":"busy","type":"rate_limit_error","param":null,"code":null}})");
      return;
    }
    if (prompt == "fail500") {
      ex->respond(500, "application/json", R"({"error":{"message":"boom"}})");
      return;
    }
    ex->start_stream(200, "text/event-stream");
    if (prompt == "slow") {  // one chunk every 20 ms from another thread, as an engine would
      std::lock_guard<std::mutex> lock(mu_);
      workers_.emplace_back([ex, n] {
        for (int i = 0; i < n; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          ex->send_chunk(R"(data: {"choices":[{"index":0,"text":"t","finish_reason":null}]})"
                         "\n\n");
        }
        ex->send_chunk(
            fmt::format(R"(data: {{"choices":[],"usage":{{"prompt_tokens":3,"completion_tokens":{}}}}})"
                        "\n\ndata: [DONE]\n\n",
                        n));
        ex->end_stream();
      });
      return;
    }
    for (int i = 0; i < n; ++i) {
      ex->send_chunk(
          R"(data: {"id":"c","object":"text_completion","choices":[{"index":0,"text":"tok","finish_reason":null}]})"
          "\n\n");
    }
    if (prompt == "broken") {
      ex->end_stream();  // no usage, no [DONE]
      return;
    }
    ex->send_chunk(
        fmt::format(R"(data: {{"id":"c","choices":[],"usage":{{"prompt_tokens":3,"completion_tokens":{}}}}})"
                    "\n\ndata: [DONE]\n\n",
                    n));
    ex->end_stream();
  }
  std::unique_ptr<server::HttpServer> server_;
  std::mutex mu_;
  std::vector<std::thread> workers_;
};

LoadConfig config_for(const FakeOpenAi& f) {
  LoadConfig c;
  c.endpoint.port = f.port();
  c.endpoint.model = "fake-model";
  c.timeout_s = 30;
  return c;
}

BenchPrompt prompt(std::string text, int64_t out) {
  BenchPrompt p;
  p.text = std::move(text);
  p.output_tokens = out;
  p.input_tokens = 3;
  return p;
}

TEST(LoadGenerator, ClosedLoopCountsTokensFromUsage) {
  FakeOpenAi f;
  LoadConfig c = config_for(f);
  c.concurrency = 4;
  c.requests = 20;
  c.warmup_requests = 2;
  auto r = run_load(c, {prompt("hello", 7)});
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->warmup_done, 2);
  ASSERT_EQ(r->records.size(), 20u);
  EXPECT_EQ(f.requests.load(), 22);
  const BenchSummary s = summarize(*r, {});
  EXPECT_EQ(s.completed, 20);
  EXPECT_EQ(s.failed, 0);
  EXPECT_EQ(s.output_tokens, 140);
  EXPECT_EQ(s.input_tokens, 60);
  for (const auto& rec : r->records) {
    EXPECT_GT(rec.ttft, 0);
    EXPECT_GE(rec.e2e, rec.ttft);
    EXPECT_LE(rec.itl.size(), 6u);  // 7 text chunks, possibly coalesced into fewer reads
  }
}

TEST(LoadGenerator, TimingFollowsTheStream) {
  FakeOpenAi f;
  LoadConfig c = config_for(f);
  c.requests = 2;
  auto r = run_load(c, {prompt("slow", 5)});
  ASSERT_TRUE(r.is_ok());
  for (const auto& rec : r->records) {
    ASSERT_TRUE(rec.ok) << rec.error_detail;
    EXPECT_EQ(rec.output_tokens, 5);
    // Chunks 20 ms apart: TTFT >= 20 ms, four gaps of about 20 ms each, E2E >= 100 ms. Lower bounds only
    // (a loaded machine makes them longer, never shorter).
    EXPECT_GE(rec.ttft, 0.015);
    ASSERT_EQ(rec.itl.size(), 4u);
    for (double g : rec.itl) EXPECT_GE(g, 0.010);
    EXPECT_GE(rec.e2e, rec.ttft + 0.06);
  }
}

TEST(LoadGenerator, ErrorsAreClassified) {
  FakeOpenAi f;
  LoadConfig c = config_for(f);
  c.concurrency = 2;
  c.requests = 8;
  auto r = run_load(c, {prompt("fail429", 3), prompt("fail500", 3), prompt("broken", 3), prompt("fine", 3)});
  ASSERT_TRUE(r.is_ok());
  const BenchSummary s = summarize(*r, {});
  EXPECT_EQ(s.completed, 2);
  EXPECT_EQ(s.failed, 6);
  EXPECT_EQ(s.errors.at("http_4xx"), 2);
  EXPECT_EQ(s.errors.at("http_5xx"), 2);
  EXPECT_EQ(s.errors.at("broken_stream"), 2);
}

TEST(LoadGenerator, ConnectionRefusedIsAConnectError) {
  LoadConfig c;
  c.endpoint.port = 1;  // nothing listens on port 1
  c.endpoint.model = "m";
  c.requests = 3;
  auto r = run_load(c, {prompt("x", 1)});
  ASSERT_TRUE(r.is_ok());
  const BenchSummary s = summarize(*r, {});
  EXPECT_EQ(s.failed, 3);
  EXPECT_EQ(s.errors.at("connect"), 3);
}

TEST(LoadGenerator, OpenLoopSendsEveryRequest) {
  FakeOpenAi f;
  LoadConfig c = config_for(f);
  c.rate = 400.0;
  c.concurrency = 0;
  c.requests = 40;
  c.threads = 2;
  auto r = run_load(c, {prompt("a", 2), prompt("b", 4)});
  ASSERT_TRUE(r.is_ok());
  const BenchSummary s = summarize(*r, {});
  EXPECT_EQ(s.completed, 40);
  EXPECT_EQ(s.output_tokens, 120);
}

TEST(LoadGenerator, DiscoversTheModel) {
  FakeOpenAi f;
  Endpoint e;
  e.port = f.port();
  auto m = discover_model(e);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  EXPECT_EQ(*m, "fake-model");
}

TEST(LoadGenerator, RefusesRunsWithoutABound) {
  LoadConfig c;
  c.endpoint.port = 1;
  EXPECT_FALSE(run_load(c, {prompt("x", 1)}).is_ok());
  c.requests = 1;
  EXPECT_FALSE(run_load(c, {}).is_ok());
}

}  // namespace
}  // namespace hearth::ops
