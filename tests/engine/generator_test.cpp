// generate(): greedy continuations equal transformers' on every fixture, and a sequence decoded alone
// or inside a batch of other sequences (different lengths, prefill chunks mixed with decode tokens)
// yields bit-identical tokens and logprobs.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "engine/generator.h"

namespace hearth {
namespace {

std::string fixture_dir(const std::string& name) {
  return std::string(HEARTH_FIXTURES_DIR) + "/engine/" + name;
}

nlohmann::json load_reference(const std::string& name) {
  std::ifstream in(fixture_dir(name) + "/reference.json");
  return nlohmann::json::parse(in);
}

std::unique_ptr<ModelRunner> load(const std::string& name, int threads = 2, int64_t kv_tokens = 1024) {
  RunnerOptions opt;
  opt.threads = threads;
  opt.kv.max_tokens = kv_tokens;
  auto r = ModelRunner::load(fixture_dir(name), opt);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? std::move(*r) : nullptr;
}

GenerateRequest greedy(std::vector<int32_t> prompt, int64_t n) {
  GenerateRequest g;
  g.prompt = std::move(prompt);
  g.max_tokens = n;
  g.sampling.temperature = 0.0f;
  g.sampling.top_logprobs = 5;
  return g;
}

class PerFamily : public ::testing::TestWithParam<const char*> {};

TEST_P(PerFamily, GreedyIdsEqualTheReference) {
  auto runner = load(GetParam());
  ASSERT_NE(runner, nullptr);
  const auto ref = load_reference(GetParam());
  std::vector<GenerateRequest> reqs;
  std::vector<std::vector<int32_t>> want;
  for (const auto& p : ref["prompts"]) {
    reqs.push_back(greedy(p["ids"].get<std::vector<int32_t>>(), static_cast<int64_t>(p["steps"].size())));
    std::vector<int32_t> ids;
    for (const auto& s : p["steps"]) ids.push_back(s["id"]);
    want.push_back(ids);
  }
  auto out = generate(*runner, reqs);  // all prompts in one batch
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ((*out)[i].ids, want[i]) << GetParam() << " prompt " << i;
    EXPECT_EQ((*out)[i].finish_reason, "length");
    ASSERT_EQ((*out)[i].steps.size(), want[i].size());
    EXPECT_NEAR((*out)[i].steps[0].logprob, ref["prompts"][i]["steps"][0]["logprob"].get<double>(), 1e-4);
  }
  EXPECT_EQ(runner->blocks().num_free(), runner->blocks().num_blocks()) << "every KV block is returned";
}

TEST_P(PerFamily, BatchInvariance) {
  auto runner = load(GetParam());
  ASSERT_NE(runner, nullptr);
  const auto ref = load_reference(GetParam());
  const auto a_prompt = ref["prompts"][0]["ids"].get<std::vector<int32_t>>();
  const std::vector<GenerateRequest> alone{greedy(a_prompt, 20)};
  auto solo = generate(*runner, alone);
  ASSERT_TRUE(solo.is_ok());

  // A in the middle of a batch: a longer prompt still prefilling in chunks of 3 while A decodes, and a
  // one-token prompt that finishes early.
  std::vector<GenerateRequest> batch;
  batch.push_back(greedy(ref["prompts"][1]["ids"].get<std::vector<int32_t>>(), 30));
  batch.push_back(greedy(a_prompt, 20));
  batch.push_back(greedy({0}, 5));
  GenerateOptions opt;
  opt.max_batched_tokens = 5;  // prompts are prefilled 5 tokens at a time while A decodes
  GenerateStats stats;
  auto mixed = generate(*runner, batch, opt, &stats);
  ASSERT_TRUE(mixed.is_ok());
  const GenerateResult& a = (*solo)[0];
  const GenerateResult& b = (*mixed)[1];
  ASSERT_EQ(a.ids, b.ids);
  for (size_t i = 0; i < a.steps.size(); ++i) {
    EXPECT_EQ(a.steps[i].logprob, b.steps[i].logprob) << "step " << i << ": bit-identical, not just close";
    ASSERT_EQ(a.steps[i].top.size(), 5u);
    for (size_t k = 0; k < 5; ++k) EXPECT_EQ(a.steps[i].top[k].id, b.steps[i].top[k].id);
  }
  EXPECT_GT(stats.steps, 10);
  // Same with a different thread count: the split of rows over threads never changes a result.
  auto one_thread = load(GetParam(), 1);
  auto solo1 = generate(*one_thread, alone);
  ASSERT_TRUE(solo1.is_ok());
  EXPECT_EQ((*solo1)[0].ids, a.ids);
  EXPECT_EQ((*solo1)[0].steps.back().logprob, a.steps.back().logprob);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PerFamily,
                         ::testing::Values("qwen2", "llama", "deepseek_v2", "deepseek_v3",
                                           "deepseek_v3_fp8"));

TEST(Generate, StopsAtAStopIdAndReportsIt) {
  auto runner = load("deepseek_v3");
  const auto ref = load_reference("deepseek_v3");
  GenerateRequest g = greedy(ref["prompts"][0]["ids"].get<std::vector<int32_t>>(), 24);
  const int32_t stop = ref["prompts"][0]["steps"][3]["id"];
  g.stop_ids = {stop};
  auto out = generate(*runner, std::span<const GenerateRequest>(&g, 1));
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ((*out)[0].finish_reason, "stop");
  ASSERT_LE((*out)[0].ids.size(), 4u);
  EXPECT_EQ((*out)[0].ids.back(), stop);
}

TEST(Generate, RejectsRequestsBeyondTheContextAndBadInput) {
  auto runner = load("qwen2");
  GenerateRequest g = greedy({0, 1, 2}, runner->max_context());
  auto out = generate(*runner, std::span<const GenerateRequest>(&g, 1));
  ASSERT_FALSE(out.is_ok());
  EXPECT_EQ(out.status().code(), ErrorCode::kOutOfRange);
  EXPECT_NE(out.status().message().find("context"), std::string::npos);

  GenerateRequest bad = greedy({0, 5000000}, 2);
  out = generate(*runner, std::span<const GenerateRequest>(&bad, 1));
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("outside the vocabulary"), std::string::npos);

  GenerateRequest empty = greedy({}, 2);
  out = generate(*runner, std::span<const GenerateRequest>(&empty, 1));
  EXPECT_FALSE(out.is_ok());
  EXPECT_EQ(runner->blocks().num_free(), runner->blocks().num_blocks());
}

TEST(Generate, KvShortageQueuesAndPreemptsButNeverFails) {
  // 3 blocks of 16 tokens; each request needs 2 blocks at its end: they cannot all run at once.
  auto runner = load("qwen2", 2, /*kv_tokens=*/48);
  std::vector<GenerateRequest> reqs{greedy({0, 1, 2, 3}, 20), greedy({0, 5, 6}, 20), greedy({0, 7}, 20)};
  GenerateStats stats;
  auto out = generate(*runner, reqs, {}, &stats);
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  for (size_t i = 0; i < reqs.size(); ++i) {
    auto alone = generate(*runner, std::span<const GenerateRequest>(&reqs[i], 1));
    ASSERT_TRUE(alone.is_ok());
    EXPECT_EQ((*out)[i].ids, (*alone)[0].ids) << "request " << i << " differs from its run alone";
  }
  EXPECT_GT(stats.preemptions, 0) << "the workload was meant to force preemption";
  EXPECT_EQ(runner->blocks().num_free(), runner->blocks().num_blocks());

  // A request that could never fit, even alone, is refused up front.
  const std::vector<GenerateRequest> huge{greedy({0, 1, 2}, 60)};
  auto refused = generate(*runner, huge);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kOutOfRange);
  EXPECT_NE(refused.status().message().find("KV blocks"), std::string::npos) << refused.status().message();
}

TEST(Generate, RepeatedPromptsHitThePrefixCache) {
  auto runner = load("deepseek_v3");
  const auto ref = load_reference("deepseek_v3");
  std::vector<int32_t> prompt = ref["prompts"][0]["ids"].get<std::vector<int32_t>>();
  prompt.insert(prompt.end(), prompt.begin(), prompt.end());  // 38 tokens: 2 full blocks
  const std::vector<GenerateRequest> one{greedy(prompt, 8)};
  auto first = generate(*runner, one);
  auto second = generate(*runner, one);
  ASSERT_TRUE(first.is_ok() && second.is_ok());
  EXPECT_EQ((*first)[0].cached_prompt_tokens, 0);
  EXPECT_EQ((*second)[0].cached_prompt_tokens, 32);
  EXPECT_EQ((*first)[0].ids, (*second)[0].ids) << "cached KV gives the same tokens";
  for (size_t i = 0; i < (*first)[0].steps.size(); ++i)
    EXPECT_EQ((*first)[0].steps[i].logprob, (*second)[0].steps[i].logprob);
}

TEST(Generate, SeededSamplingIsReproducible) {
  auto runner = load("llama");
  GenerateRequest g = greedy({0, 86, 585}, 16);
  g.sampling.temperature = 1.0f;
  g.sampling.top_p = 0.9f;
  g.sampling.seed = 42;
  auto a = generate(*runner, std::span<const GenerateRequest>(&g, 1));
  auto b = generate(*runner, std::span<const GenerateRequest>(&g, 1));
  g.sampling.seed = 43;
  auto c = generate(*runner, std::span<const GenerateRequest>(&g, 1));
  ASSERT_TRUE(a.is_ok() && b.is_ok() && c.is_ok());
  EXPECT_EQ((*a)[0].ids, (*b)[0].ids);
  EXPECT_NE((*a)[0].ids, (*c)[0].ids);
}

}  // namespace
}  // namespace hearth
