// Engine: the serving loop on its own thread. Requests submitted from many threads at once each get
// exactly the tokens they get alone; cancellation frees the KV cache within a step; a full queue and
// impossible requests are refused synchronously; drain() finishes what was accepted.
#include "engine/engine.h"

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "engine/generator.h"

namespace hearth {
namespace {

std::unique_ptr<ModelRunner> load(const std::string& name, int64_t kv_tokens = 2048, int threads = 2) {
  RunnerOptions opt;
  opt.threads = threads;
  opt.kv.max_tokens = kv_tokens;
  auto r = ModelRunner::load(std::string(HEARTH_FIXTURES_DIR) + "/engine/" + name, opt);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? std::move(*r) : nullptr;
}

SequenceRequest greedy(std::vector<int32_t> prompt, int64_t n, std::string tenant = "") {
  SequenceRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = n;
  r.sampling.temperature = 0;
  r.tenant = std::move(tenant);
  return r;
}

// Collects one request's events (called on the engine thread).
struct Collector {
  std::mutex mu;
  std::vector<int32_t> ids;
  std::promise<EngineEvent> done;
  EngineCallback callback() {
    return [this](const EngineEvent& e) {
      std::lock_guard<std::mutex> lock(mu);
      if (e.token) ids.push_back(e.token->id);
      if (e.finished) done.set_value(e);
    };
  }
};

TEST(Engine, ConcurrentRequestsGetWhatTheyGetAlone) {
  auto runner = load("deepseek_v3");
  ASSERT_NE(runner, nullptr);
  constexpr int kRequests = 32;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < kRequests; ++i) {
    std::vector<int32_t> p = {0};
    for (int k = 0; k <= i % 7; ++k) p.push_back(static_cast<int32_t>(20 + (i * 37 + k * 11) % 900));
    prompts.push_back(p);
  }
  std::vector<std::vector<int32_t>> want;
  for (int i = 0; i < kRequests; ++i) {
    GenerateRequest g;
    g.prompt = prompts[i];
    g.max_tokens = 6 + i % 5;
    g.sampling.temperature = 0;
    auto out = generate(*runner, std::span<const GenerateRequest>(&g, 1));
    ASSERT_TRUE(out.is_ok());
    want.push_back((*out)[0].ids);
  }
  EngineConfig cfg;
  cfg.scheduler.max_batched_tokens = 24;
  Engine engine(*runner, cfg);
  std::vector<Collector> got(kRequests);
  std::vector<std::thread> clients;
  for (int i = 0; i < kRequests; ++i) {
    clients.emplace_back([&, i] {
      auto id = engine.submit(greedy(prompts[i], 6 + i % 5, i % 2 ? "a" : "b"), got[i].callback());
      EXPECT_TRUE(id.is_ok()) << id.status().to_string();
    });
  }
  for (auto& c : clients) c.join();
  for (int i = 0; i < kRequests; ++i) {
    const EngineEvent last = got[i].done.get_future().get();
    EXPECT_EQ(last.reason, FinishReason::kLength);
    EXPECT_EQ(last.completion_tokens, static_cast<int64_t>(want[i].size()));
    EXPECT_EQ(last.prompt_tokens, static_cast<int64_t>(prompts[i].size()));
    std::lock_guard<std::mutex> lock(got[i].mu);
    EXPECT_EQ(got[i].ids, want[i]) << "request " << i;
  }
  engine.drain();
  const EngineStats s = engine.stats();
  EXPECT_EQ(s.running, 0);
  EXPECT_EQ(s.waiting, 0);
  EXPECT_GT(s.generation_tokens, 0u);
  EXPECT_EQ(runner->blocks().num_used(), 0);
}

// Sampled rows are drawn on the runner's pool, several at once: each request still gets exactly the tokens
// it gets alone (its own seeded sampler), whatever the thread count.
TEST(Engine, SampledRowsDrawnInParallelMatchAlone) {
  constexpr int kRequests = 24;
  auto request = [](int i) {
    SequenceRequest r;
    r.prompt = {0, static_cast<int32_t>(30 + i * 13), static_cast<int32_t>(400 + i)};
    r.max_tokens = 8;
    r.sampling.temperature = 0.9f;
    r.sampling.top_p = i % 2 ? 0.9f : 1.0f;
    r.sampling.top_k = i % 3 == 0 ? 40 : 0;
    r.sampling.top_logprobs = i % 4 == 0 ? 2 : 0;
    r.sampling.seed = 1000 + i;
    return r;
  };
  std::vector<std::vector<int32_t>> want;
  {
    auto runner = load("qwen2", 2048, 1);
    ASSERT_NE(runner, nullptr);
    for (int i = 0; i < kRequests; ++i) {
      GenerateRequest g;
      g.prompt = request(i).prompt;
      g.max_tokens = 8;
      g.sampling = request(i).sampling;
      auto out = generate(*runner, std::span<const GenerateRequest>(&g, 1));
      ASSERT_TRUE(out.is_ok());
      want.push_back((*out)[0].ids);
    }
  }
  auto runner = load("qwen2", 2048, 4);
  ASSERT_NE(runner, nullptr);
  Engine engine(*runner, EngineConfig{});
  std::vector<Collector> got(kRequests);
  for (int i = 0; i < kRequests; ++i) ASSERT_TRUE(engine.submit(request(i), got[i].callback()).is_ok());
  for (int i = 0; i < kRequests; ++i) {
    got[i].done.get_future().get();
    std::lock_guard<std::mutex> lock(got[i].mu);
    EXPECT_EQ(got[i].ids, want[i]) << "request " << i;
  }
  std::set<std::vector<int32_t>> distinct(want.begin(), want.end());
  EXPECT_GT(distinct.size(), 1u) << "the seeds should give different samples";
}

TEST(Engine, CancelEndsARequestAndFreesItsBlocks) {
  auto runner = load("qwen2");
  Engine engine(*runner, {});
  std::promise<void> first_token;
  std::atomic<bool> seen{false};
  std::promise<EngineEvent> done;
  auto id = engine.submit(greedy({0, 5, 6, 7}, 400), [&](const EngineEvent& e) {
    if (e.token && !seen.exchange(true)) first_token.set_value();
    if (e.finished) done.set_value(e);
  });
  ASSERT_TRUE(id.is_ok());
  first_token.get_future().wait();
  engine.cancel(*id);
  const EngineEvent last = done.get_future().get();
  EXPECT_EQ(last.reason, FinishReason::kCancelled);
  EXPECT_LT(last.completion_tokens, 400);
  engine.drain();
  EXPECT_EQ(runner->blocks().num_used(), 0) << "cancelled blocks are freed";
}

TEST(Engine, RefusesSynchronouslyWhatCannotBeServed) {
  auto runner = load("qwen2", /*kv_tokens=*/64);
  EngineConfig cfg;
  cfg.scheduler.max_waiting = 0;  // nothing may wait: only what the engine admits at once
  Engine engine(*runner, cfg);
  auto r = engine.submit(greedy({0, 1}, 4), [](const EngineEvent&) {});
  EXPECT_EQ(r.status().code(), ErrorCode::kResourceExhausted) << "queue bound";
  Engine open(*runner, {});
  EXPECT_EQ(open.submit(greedy({}, 4), [](const EngineEvent&) {}).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(open.submit(greedy({0, 99999}, 4), [](const EngineEvent&) {}).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(open.submit(greedy({0, 1}, 100), [](const EngineEvent&) {}).status().code(),
            ErrorCode::kOutOfRange)
      << "more than the KV cache holds";
  SequenceRequest bad = greedy({0, 1}, 4);
  bad.sampling.top_p = 2.0f;
  EXPECT_EQ(open.submit(bad, [](const EngineEvent&) {}).status().code(), ErrorCode::kInvalidArgument);
  open.drain();
  EXPECT_EQ(open.submit(greedy({0, 1}, 4), [](const EngineEvent&) {}).status().code(),
            ErrorCode::kResourceExhausted)
      << "draining";
}

TEST(Engine, DestroyingTheEngineEndsEveryRequest) {
  auto runner = load("qwen2");
  std::atomic<int> finished{0};
  {
    Engine engine(*runner, {});
    for (int i = 0; i < 4; ++i)
      ASSERT_TRUE(engine
                      .submit(greedy({0, static_cast<int32_t>(i + 3)}, 300),
                              [&](const EngineEvent& e) {
                                if (e.finished) ++finished;
                              })
                      .is_ok());
  }
  EXPECT_EQ(finished.load(), 4);
  EXPECT_EQ(runner->blocks().num_used(), 0);
}

}  // namespace
}  // namespace hearth

namespace hearth {
namespace {

// Allows one id at a time, walking a fixed script; records what the engine accepted.
class ScriptConstraint final : public TokenConstraint {
 public:
  explicit ScriptConstraint(std::vector<int32_t> script) : script_(std::move(script)) {}
  void fill_allowed(std::span<uint8_t> allowed) override {
    std::fill(allowed.begin(), allowed.end(), uint8_t{0});
    allowed[static_cast<size_t>(script_[std::min(pos_, script_.size() - 1)])] = 1;
  }
  void accept(int32_t id) override {
    accepted.push_back(id);
    ++pos_;
  }
  std::vector<int32_t> accepted;

 private:
  std::vector<int32_t> script_;
  size_t pos_ = 0;
};

TEST(Engine, AConstraintDecidesWhatMaySampleAndHearsTheChoice) {
  auto runner = load("deepseek_v3");
  ASSERT_NE(runner, nullptr);
  Engine engine(*runner, EngineConfig{});
  const std::vector<int32_t> script = {7, 300, 42, 42, 5};
  auto constraint = std::make_shared<ScriptConstraint>(script);
  SequenceRequest r = greedy({0, 100, 200}, 5);
  r.sampling.temperature = 1.0f;  // sampling too must stay inside the mask
  r.sampling.seed = 3;
  r.constraint = constraint;
  Collector c;
  ASSERT_TRUE(engine.submit(std::move(r), c.callback()).is_ok());
  const EngineEvent last = c.done.get_future().get();
  EXPECT_TRUE(last.error.is_ok());
  EXPECT_EQ(c.ids, script);
  EXPECT_EQ(constraint->accepted, script);
}

}  // namespace
}  // namespace hearth
