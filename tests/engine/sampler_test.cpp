#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <numeric>

#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace hearth {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// log_softmax({1, 2, 3}): x - 3 - log(1 + e^-1 + e^-2).
constexpr float kLp123[3] = {-2.40760596f, -1.40760596f, -0.40760596f};

SamplingParams seeded(uint64_t seed) {
  SamplingParams p;
  p.seed = seed;
  return p;
}

SamplingParams greedy_params() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

std::vector<int32_t> draw_ids(Sampler& s, const std::vector<float>& logits, int n) {
  std::vector<int32_t> ids;
  for (int i = 0; i < n; ++i) ids.push_back(s.sample(logits).id);
  return ids;
}

std::vector<double> frequencies(Sampler& s, const std::vector<float>& logits, int n) {
  std::vector<double> f(logits.size(), 0.0);
  for (int32_t id : draw_ids(s, logits, n)) f[static_cast<size_t>(id)] += 1.0 / n;
  return f;
}

std::vector<double> softmax(const std::vector<float>& logits, double temperature) {
  double max = -1e300, sum = 0.0;
  for (float x : logits) max = std::max(max, static_cast<double>(x));
  std::vector<double> p;
  for (float x : logits) p.push_back(std::exp((x - max) / temperature));
  for (double v : p) sum += v;
  for (double& v : p) v /= sum;
  return p;
}

std::set<int32_t> distinct(const std::vector<int32_t>& ids) {
  return {ids.begin(), ids.end()};
}

// Probabilities {0.5, 0.3, 0.15, 0.05} as logits.
const std::vector<float> kFourWay{std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};

// ---- SamplingParams::validate ---------------------------------------------------------------

TEST(SamplingParams, DefaultsAndBoundsAreValid) {
  EXPECT_TRUE(SamplingParams{}.validate().is_ok());
  SamplingParams p;
  p.temperature = 100.0f;
  p.top_k = 1'000'000;  // the vocab bound is the sampler's business: top_k >= vocab is "off"
  p.top_p = 1.0f;
  p.min_p = 1.0f;
  p.repetition_penalty = 10.0f;
  p.frequency_penalty = -2.0f;
  p.presence_penalty = 2.0f;
  p.top_logprobs = 20;
  EXPECT_TRUE(p.validate().is_ok()) << p.validate().message();
  p.temperature = 0.0f;
  p.min_p = 0.0f;
  p.frequency_penalty = 2.0f;
  p.presence_penalty = -2.0f;
  p.top_logprobs = 0;
  EXPECT_TRUE(p.validate().is_ok()) << p.validate().message();
  EXPECT_TRUE(p.greedy());
}

TEST(SamplingParams, ValidateRejectsEachBadFieldByName) {
  struct Case {
    void (*mutate)(SamplingParams&);
    std::string message;
  };
  const Case cases[] = {
      {[](SamplingParams& p) { p.temperature = -0.5f; }, "temperature must be in [0, 100], got -0.5"},
      {[](SamplingParams& p) { p.temperature = 100.5f; }, "temperature must be in [0, 100], got 100.5"},
      {[](SamplingParams& p) { p.temperature = kNaN; }, "temperature must be in [0, 100], got nan"},
      {[](SamplingParams& p) { p.top_k = -1; }, "top_k must be >= 0, got -1"},
      {[](SamplingParams& p) { p.top_p = 1.5f; }, "top_p must be in (0, 1], got 1.5"},
      {[](SamplingParams& p) { p.top_p = 0.0f; }, "top_p must be in (0, 1], got 0"},
      {[](SamplingParams& p) { p.min_p = -0.25f; }, "min_p must be in [0, 1], got -0.25"},
      {[](SamplingParams& p) { p.min_p = 1.25f; }, "min_p must be in [0, 1], got 1.25"},
      {[](SamplingParams& p) { p.repetition_penalty = 0.0f; },
       "repetition_penalty must be in (0, 10], got 0"},
      {[](SamplingParams& p) { p.repetition_penalty = 10.5f; },
       "repetition_penalty must be in (0, 10], got 10.5"},
      {[](SamplingParams& p) { p.frequency_penalty = -2.5f; },
       "frequency_penalty must be in [-2, 2], got -2.5"},
      {[](SamplingParams& p) { p.frequency_penalty = kInf; },
       "frequency_penalty must be in [-2, 2], got inf"},
      {[](SamplingParams& p) { p.presence_penalty = 2.5f; }, "presence_penalty must be in [-2, 2], got 2.5"},
      {[](SamplingParams& p) { p.top_logprobs = -1; }, "top_logprobs must be in [0, 20], got -1"},
      {[](SamplingParams& p) { p.top_logprobs = 21; }, "top_logprobs must be in [0, 20], got 21"},
      {[](SamplingParams& p) {
         p.logit_bias = {{3, 100.5f}};
       },
       "logit_bias must be in [-100, 100], got 100.5"},
      {[](SamplingParams& p) {
         p.logit_bias = {{-2, 1.0f}};
       },
       "logit_bias: token id -2 is negative"},
      {[](SamplingParams& p) {
         p.logit_bias.assign(1025, {1, 1.0f});
       },
       "logit_bias: more than 1024 entries"},
  };
  for (const Case& c : cases) {
    SamplingParams p;
    c.mutate(p);
    const Status s = p.validate();
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << c.message;
    EXPECT_EQ(s.message(), c.message);
  }
}

// ---- greedy -----------------------------------------------------------------------------------

TEST(Sampler, GreedyPicksArgmaxWithTiesToLowestId) {
  Sampler s(greedy_params(), 5);
  EXPECT_EQ(s.sample(std::vector<float>{0.1f, 2.0f, -1.0f, 1.9f, 0.0f}).id, 1);
  EXPECT_EQ(s.sample(std::vector<float>{0.1f, 2.0f, -1.0f, 3.0f, 3.0f}).id, 3);
  EXPECT_EQ(s.sample(std::vector<float>{7.0f, 7.0f, 7.0f, 7.0f, 7.0f}).id, 0);
}

TEST(Sampler, GreedyReportsRawLogprobAndTopAlternatives) {
  SamplingParams p = greedy_params();
  p.top_logprobs = 2;
  Sampler s(p, 3);
  const SampledToken t = s.sample(std::vector<float>{1.0f, 2.0f, 3.0f});
  EXPECT_EQ(t.id, 2);
  EXPECT_NEAR(t.logprob, kLp123[2], 1e-6);
  ASSERT_EQ(t.top.size(), 2u);
  EXPECT_EQ(t.top[0].id, 2);
  EXPECT_NEAR(t.top[0].logprob, kLp123[2], 1e-6);
  EXPECT_EQ(t.top[1].id, 1);
  EXPECT_NEAR(t.top[1].logprob, kLp123[1], 1e-6);
}

TEST(Sampler, TopLogprobsAreClampedToVocabAndOffByDefault) {
  SamplingParams p = seeded(1);
  p.top_logprobs = 20;
  Sampler wide(p, 3);
  const SampledToken t = wide.sample(std::vector<float>{1.0f, 1.0f, 3.0f});
  ASSERT_EQ(t.top.size(), 3u);
  EXPECT_EQ(t.top[0].id, 2);
  EXPECT_EQ(t.top[1].id, 0);  // tie: lower id first
  EXPECT_EQ(t.top[2].id, 1);
  Sampler none(seeded(1), 3);
  EXPECT_TRUE(none.sample(std::vector<float>{1.0f, 1.0f, 3.0f}).top.empty());
}

// ---- reproducibility --------------------------------------------------------------------------

TEST(Sampler, FixedSeedReproducesTheSequenceAndSeedsDiffer) {
  const std::vector<float> logits(16, 0.0f);  // uniform: every draw is informative
  Sampler a(seeded(42), 16), b(seeded(42), 16), c(seeded(43), 16);
  const std::vector<int32_t> sa = draw_ids(a, logits, 64);
  EXPECT_EQ(sa, draw_ids(b, logits, 64));
  EXPECT_NE(sa, draw_ids(c, logits, 64));
  EXPECT_GT(distinct(sa).size(), 8u);
}

TEST(Sampler, UnseededSamplersDrawValidIds) {
  Sampler s(SamplingParams{}, 4);
  for (int32_t id : draw_ids(s, kFourWay, 100)) {
    EXPECT_GE(id, 0);
    EXPECT_LT(id, 4);
  }
}

// ---- truncation -------------------------------------------------------------------------------

TEST(Sampler, TopKOneEqualsGreedy) {
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  SamplingParams p = seeded(5);
  p.temperature = 1.3f;
  p.top_k = 1;
  Sampler top1(p, 100), greedy(greedy_params(), 100);
  for (int step = 0; step < 50; ++step) {
    std::vector<float> logits(100);
    for (float& x : logits) x = normal(gen);
    EXPECT_EQ(top1.sample(logits).id, greedy.sample(logits).id) << "step " << step;
  }
}

TEST(Sampler, TopKRenormalisesOverTheKBest) {
  SamplingParams p = seeded(11);
  p.top_k = 2;
  Sampler s(p, 4);
  const std::vector<double> f = frequencies(s, kFourWay, 20000);
  EXPECT_NEAR(f[0], 0.5 / 0.8, 0.02);
  EXPECT_NEAR(f[1], 0.3 / 0.8, 0.02);
  EXPECT_EQ(f[2], 0.0);
  EXPECT_EQ(f[3], 0.0);
}

TEST(Sampler, SmallTopPKeepsOnlyTheBestToken) {
  SamplingParams p = seeded(3);
  p.top_p = 0.01f;
  Sampler s(p, 4);
  // The best token is not id 0, so an off-by-one in the ordering would show.
  const std::vector<float> logits{0.0f, 0.1f, 0.3f, 0.2f};
  EXPECT_EQ(distinct(draw_ids(s, logits, 500)), (std::set<int32_t>{2}));
}

TEST(Sampler, TopPKeepsTheSmallestPrefixReachingP) {
  SamplingParams p = seeded(9);
  p.top_p = 0.75f;  // 0.5 < 0.75 <= 0.5 + 0.3: ids 0 and 1
  Sampler s(p, 4);
  const std::vector<double> f = frequencies(s, kFourWay, 20000);
  EXPECT_NEAR(f[0], 0.5 / 0.8, 0.02);
  EXPECT_NEAR(f[1], 0.3 / 0.8, 0.02);
  EXPECT_EQ(f[2] + f[3], 0.0);
}

TEST(Sampler, TopPOverALargeVocabCutsAtTheRightRank) {
  // Rank r (ids shuffled) has weight e^(-0.02 r), r < 2000. The smallest prefix holding 90% of the
  // mass is ranks 0..115 (e^-2.30 > 0.1 >= e^-2.32), two selection chunks deep; rank 116 would be
  // drawn ~11 times in 5000 draws if it were kept.
  constexpr int kVocab = 2000;
  std::vector<int32_t> id_to_rank(kVocab);
  std::vector<float> logits(kVocab);
  for (int r = 0; r < kVocab; ++r) {
    const int32_t id = (r * 7 + 3) % kVocab;  // 7 is coprime to 2000: a permutation
    id_to_rank[id] = r;
    logits[id] = -0.02f * static_cast<float>(r);
  }
  SamplingParams p = seeded(31);
  p.top_p = 0.9f;
  Sampler s(p, kVocab);
  int max_rank = 0;
  for (int32_t id : draw_ids(s, logits, 5000)) max_rank = std::max(max_rank, id_to_rank[id]);
  EXPECT_LE(max_rank, 115);
  EXPECT_GE(max_rank, 100);
}

TEST(Sampler, TopPOnAFlatVocabOfDeepSeeksSizeKeepsTheRightIds) {
  // 129,280 nearly equal logits with many ties (an undertrained model, or a high temperature): the nucleus
  // is a large part of the vocabulary, found without sorting it. Every id drawn lies within the nucleus a
  // full sort (weight desc, id asc) keeps, and the draws reach near its edge.
  constexpr int kVocab = 129280;
  std::vector<float> logits(kVocab);
  for (int i = 0; i < kVocab; ++i)
    logits[i] = -1e-4f * static_cast<float>(i % 97) - 2e-3f * static_cast<float>(i / 1000);
  SamplingParams p = seeded(41);
  p.top_p = 0.5f;
  // The reference: sort everything by (weight desc, id asc), keep the shortest prefix reaching 50%.
  std::vector<double> w(kVocab);
  const float mx = *std::max_element(logits.begin(), logits.end());
  double total = 0;
  for (int i = 0; i < kVocab; ++i)
    total += (w[i] = std::exp(static_cast<double>(logits[i] - mx) / p.temperature));
  std::vector<int32_t> order(kVocab);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return w[a] > w[b] || (w[a] == w[b] && a < b); });
  std::vector<uint8_t> in(kVocab, 0);
  double cum = 0;
  size_t kept = 0;
  for (int32_t id : order) {
    in[id] = 1;
    ++kept;
    if ((cum += w[id]) >= 0.5 * total) break;
  }
  std::vector<size_t> rank(kVocab);
  for (size_t r = 0; r < order.size(); ++r) rank[order[r]] = r;
  Sampler s(p, kVocab);
  int outside = 0;
  size_t max_rank = 0;
  for (int32_t id : draw_ids(s, logits, 500)) {
    outside += in[id] == 0;
    max_rank = std::max(max_rank, rank[id]);
  }
  EXPECT_EQ(outside, 0) << "of 500 draws, outside the nucleus of " << kept << " ids";
  EXPECT_GT(max_rank, kept * 9 / 10);
  EXPECT_GT(kept, 20000u);  // the test is meaningful: a large nucleus
}

TEST(Sampler, TopPReachesIntoAFlatTail) {
  // One token of weight 1 (id 999) and 999 tied tokens of weight 1/1000: the nucleus needs the
  // tail (most of it lies far below the best token), and among equal logits the lower ids come
  // first. 1 + k / 1000 >= 0.9 * 1.999 first holds at k = 800: ids 0..799 are kept, 800..998 are
  // not (they would be ~10% of the draws).
  std::vector<float> logits(1000, -std::log(1000.0f));
  logits[999] = 0.0f;
  SamplingParams p = seeded(37);
  p.top_p = 0.9f;
  Sampler s(p, 1000);
  int tail = 0, max_tail_id = -1;
  for (int32_t id : draw_ids(s, logits, 1000)) {
    if (id == 999) continue;
    ++tail;
    max_tail_id = std::max(max_tail_id, id);
  }
  EXPECT_GT(tail, 300);  // ~44%
  EXPECT_LE(max_tail_id, 799);
  EXPECT_GE(max_tail_id, 700);
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheBest) {
  SamplingParams p = seeded(13);
  p.min_p = 0.2f;  // threshold 0.1: drops only the 0.05 token
  Sampler s(p, 4);
  EXPECT_EQ(distinct(draw_ids(s, kFourWay, 2000)), (std::set<int32_t>{0, 1, 2}));
  p.min_p = 0.5f;  // threshold 0.25: keeps 0.5 and 0.3
  Sampler s2(p, 4);
  const std::vector<double> f = frequencies(s2, kFourWay, 20000);
  EXPECT_NEAR(f[0], 0.5 / 0.8, 0.02);
  EXPECT_NEAR(f[1], 0.3 / 0.8, 0.02);
  EXPECT_EQ(f[2] + f[3], 0.0);
}

TEST(Sampler, MinPIsAppliedAfterTemperature) {
  // At T = 0.5 the probabilities are squared before renormalising: 0.05^2 / 0.5^2 = 0.01 and
  // 0.15^2 / 0.5^2 = 0.09, so min_p = 0.05 drops only id 3 (it would keep everything at T = 1).
  SamplingParams p = seeded(17);
  p.temperature = 0.5f;
  p.min_p = 0.05f;
  Sampler s(p, 4);
  EXPECT_EQ(distinct(draw_ids(s, kFourWay, 5000)), (std::set<int32_t>{0, 1, 2}));
  p.temperature = 1.0f;
  Sampler at_one(p, 4);
  EXPECT_EQ(distinct(draw_ids(at_one, kFourWay, 5000)), (std::set<int32_t>{0, 1, 2, 3}));
}

// ---- the distribution itself ----------------------------------------------------------------

TEST(Sampler, EmpiricalFrequenciesMatchSoftmaxOverTemperature) {
  const std::vector<float> logits{1.0f, 2.0f, 0.5f, -1.0f};
  for (float temperature : {0.7f, 1.0f, 1.8f}) {
    SamplingParams p = seeded(2024);
    p.temperature = temperature;
    Sampler s(p, 4);
    const std::vector<double> f = frequencies(s, logits, 20000);
    const std::vector<double> expected = softmax(logits, temperature);
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_NEAR(f[i], expected[i], 0.02) << "T=" << temperature << " id " << i;
    }
  }
}

// ---- penalties --------------------------------------------------------------------------------

TEST(Sampler, FrequencyPenaltyGrowsWithEachRepeat) {
  // Greedy: 1.0 - 0.1 * count stays above 0.75 for two repeats, drops below on the third.
  SamplingParams p = greedy_params();
  p.frequency_penalty = 0.1f;
  Sampler s(p, 2);
  EXPECT_EQ(draw_ids(s, {1.0f, 0.75f}, 4), (std::vector<int32_t>{0, 0, 0, 1}));
  Sampler plain(greedy_params(), 2);
  EXPECT_EQ(draw_ids(plain, {1.0f, 0.75f}, 4), (std::vector<int32_t>{0, 0, 0, 0}));
}

TEST(Sampler, LogitBiasSteersTheChoiceNotTheReportedLogprob) {
  SamplingParams p = greedy_params();
  p.top_logprobs = 1;
  p.logit_bias = {{0, 1.5f}, {2, -100.0f}, {99, 50.0f}};  // id 99 is past this vocabulary: ignored
  Sampler s(p, 3);
  EXPECT_FALSE(s.device_samplable());  // the bias is applied on the host
  const SampledToken t = s.sample(std::vector<float>{1.0f, 2.0f, 3.0f});
  EXPECT_EQ(t.id, 0);                       // 1 + 1.5 beats 2, and 3 - 100
  EXPECT_NEAR(t.logprob, kLp123[0], 1e-6);  // the raw distribution's
  ASSERT_EQ(t.top.size(), 1u);
  EXPECT_EQ(t.top[0].id, 2);
  SamplingParams sampled = p;
  sampled.temperature = 1.0f;
  sampled.seed = 7;
  sampled.logit_bias = {{1, -100.0f}, {2, -100.0f}};
  Sampler banned(sampled, 3);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(banned.sample(std::vector<float>{1.0f, 2.0f, 3.0f}).id, 0);
}

TEST(Sampler, PresencePenaltyIsFlat) {
  // 1.0 - 0.2 = 0.8 > 0.75 no matter how often id 0 repeats; 0.3 flips it at once.
  SamplingParams p = greedy_params();
  p.presence_penalty = 0.2f;
  Sampler mild(p, 2);
  EXPECT_EQ(draw_ids(mild, {1.0f, 0.75f}, 4), (std::vector<int32_t>{0, 0, 0, 0}));
  p.presence_penalty = 0.3f;
  Sampler strong(p, 2);
  // After id 0 and id 1 have both appeared both are penalised equally: back to id 0.
  EXPECT_EQ(draw_ids(strong, {1.0f, 0.75f}, 3), (std::vector<int32_t>{0, 1, 0}));
}

TEST(Sampler, RepetitionPenaltyCoversPromptTokensOfEitherSign) {
  SamplingParams p = greedy_params();
  p.repetition_penalty = 1.5f;
  Sampler pos(p, 3);
  pos.add_prompt(std::vector<int32_t>{0, 2});
  EXPECT_EQ(pos.sample(std::vector<float>{2.0f, 1.5f, -3.0f}).id, 1);  // 2 / 1.5 < 1.5
  Sampler neg(p, 3);
  neg.add_prompt(std::vector<int32_t>{0});
  EXPECT_EQ(neg.sample(std::vector<float>{-1.0f, -1.2f, -5.0f}).id, 1);  // -1 * 1.5 < -1.2
  Sampler plain(greedy_params(), 3);
  plain.add_prompt(std::vector<int32_t>{0});
  EXPECT_EQ(plain.sample(std::vector<float>{-1.0f, -1.2f, -5.0f}).id, 0);
}

TEST(Sampler, RepetitionPenaltyCoversOutputTokens) {
  SamplingParams p = greedy_params();
  p.repetition_penalty = 2.0f;
  Sampler s(p, 2);
  EXPECT_EQ(draw_ids(s, {2.0f, 1.5f}, 3), (std::vector<int32_t>{0, 1, 0}));  // 1.0 < 1.5; 1.0 > 0.75
}

TEST(Sampler, PromptIdsOutsideTheVocabAreIgnored) {
  SamplingParams p = greedy_params();
  p.repetition_penalty = 3.0f;
  Sampler s(p, 2);
  s.add_prompt(std::vector<int32_t>{-1, 2, 1000});
  EXPECT_EQ(s.sample(std::vector<float>{2.0f, 1.0f}).id, 0);
}

TEST(Sampler, PenaltiesAlsoSteerSampling) {
  // At T = 0.02 every step is all but deterministic (logit gaps of 0.5 become 25 nats), so the
  // sequence is decided by the presence penalty alone: 0, then 1 (0 is penalised), then 0 again
  // (both are penalised, -1.0 > -1.5).
  SamplingParams p = seeded(21);
  p.temperature = 0.02f;
  p.presence_penalty = 2.0f;
  Sampler s(p, 3);
  EXPECT_EQ(draw_ids(s, {1.0f, 0.5f, -10.0f}, 3), (std::vector<int32_t>{0, 1, 0}));
}

// ---- logprobs are raw -------------------------------------------------------------------------

TEST(Sampler, LogprobIsTheRawLogSoftmaxDespiteTemperatureAndPenalties) {
  SamplingParams p = seeded(99);
  p.temperature = 0.5f;
  p.repetition_penalty = 2.0f;
  p.frequency_penalty = 0.5f;
  p.top_k = 2;
  p.top_logprobs = 3;
  Sampler s(p, 3);
  s.add_prompt(std::vector<int32_t>{2});
  std::set<int32_t> seen;
  for (int i = 0; i < 50; ++i) {
    const SampledToken t = s.sample(std::vector<float>{1.0f, 2.0f, 3.0f});
    seen.insert(t.id);
    EXPECT_NEAR(t.logprob, kLp123[t.id], 1e-6);
    ASSERT_EQ(t.top.size(), 3u);
    for (int r = 0; r < 3; ++r) {
      EXPECT_EQ(t.top[r].id, 2 - r);
      EXPECT_NEAR(t.top[r].logprob, kLp123[2 - r], 1e-6);
    }
  }
  EXPECT_GT(seen.size(), 1u);  // the penalties really moved the choice around

  SamplingParams g = greedy_params();
  g.repetition_penalty = 2.0f;
  Sampler gs(g, 3);
  gs.add_prompt(std::vector<int32_t>{2});
  const SampledToken t = gs.sample(std::vector<float>{1.0f, 2.0f, 3.0f});
  EXPECT_EQ(t.id, 1);  // 3 / 2 < 2
  EXPECT_NEAR(t.logprob, kLp123[1], 1e-6);
}

// ---- non-finite logits ------------------------------------------------------------------------

TEST(Sampler, NanAndMinusInfLogitsAreNeverDrawn) {
  const std::vector<float> logits{kNaN, -kInf, 1.0f, kNaN, 0.5f};
  SamplingParams p = seeded(4);
  p.temperature = 2.0f;
  p.top_logprobs = 5;
  Sampler s(p, 5);
  const std::vector<double> f = frequencies(s, logits, 20000);
  const std::vector<double> expected = softmax({1.0f, 0.5f}, 2.0);
  EXPECT_EQ(f[0] + f[1] + f[3], 0.0);
  EXPECT_NEAR(f[2], expected[0], 0.02);
  EXPECT_NEAR(f[4], expected[1], 0.02);

  const SampledToken t = s.sample(logits);
  ASSERT_EQ(t.top.size(), 5u);
  EXPECT_EQ(t.top[0].id, 2);
  EXPECT_EQ(t.top[1].id, 4);
  for (int r = 2; r < 5; ++r) EXPECT_EQ(t.top[r].logprob, -kInf);

  Sampler g(greedy_params(), 5);
  EXPECT_EQ(g.sample(std::vector<float>{kNaN, 0.0f, kNaN, -1.0f, kNaN}).id, 1);
}

TEST(Sampler, AllNonFiniteRowGivesIdZeroWithMinusInfLogprob) {
  const std::vector<float> logits{-kInf, kNaN, -kInf, kNaN};
  SamplingParams sampled = seeded(8);
  sampled.top_k = 2;
  sampled.top_p = 0.5f;
  sampled.min_p = 0.1f;
  sampled.frequency_penalty = 1.0f;
  sampled.top_logprobs = 2;
  for (const SamplingParams& p : {sampled, greedy_params(), seeded(8)}) {
    Sampler s(p, 4);
    for (int i = 0; i < 3; ++i) {
      const SampledToken t = s.sample(logits);
      EXPECT_EQ(t.id, 0);
      EXPECT_EQ(t.logprob, -kInf);
    }
  }
}

TEST(Sampler, PlusInfLogitsShareAllTheMass) {
  const std::vector<float> logits{0.0f, kInf, 100.0f, kInf};
  SamplingParams p = seeded(6);
  p.temperature = 0.01f;
  Sampler s(p, 4);
  const std::vector<double> f = frequencies(s, logits, 20000);
  EXPECT_NEAR(f[1], 0.5, 0.02);
  EXPECT_NEAR(f[3], 0.5, 0.02);
  EXPECT_NEAR(s.sample(logits).logprob, -std::log(2.0f), 1e-6);
  Sampler g(greedy_params(), 4);
  EXPECT_EQ(g.sample(logits).id, 1);
}

TEST(Sampler, TinyTemperatureDoesNotOverflow) {
  // (x / T) alone would overflow float for these logits; the sampler must still pick the best.
  SamplingParams p = seeded(12);
  p.temperature = 1e-6f;
  Sampler s(p, 3);
  EXPECT_EQ(distinct(draw_ids(s, {3e33f, 2.9e33f, -3e33f}, 200)), (std::set<int32_t>{0}));
}

TEST(Sampler, DeviceSamplingCarriesTheParametersAndASeededKey) {
  SamplingParams p = seeded(77);
  p.temperature = 0.6f;
  p.top_k = 12;
  p.top_p = 0.8f;
  p.min_p = 0.05f;
  p.top_logprobs = 4;
  Sampler a(p, 10), b(p, 10);
  ASSERT_TRUE(a.device_samplable());
  const DeviceSampling d1 = a.device_sampling(), d2 = a.device_sampling();
  EXPECT_EQ(d1.temperature, 0.6f);
  EXPECT_EQ(d1.top_k, 12);
  EXPECT_EQ(d1.top_p, 0.8f);
  EXPECT_EQ(d1.min_p, 0.05f);
  EXPECT_EQ(d1.top_logprobs, 4);
  EXPECT_NE(d1.seed, d2.seed);                   // a new key per step
  EXPECT_EQ(b.device_sampling().seed, d1.seed);  // the same seed gives the same keys
  SamplingParams g = greedy_params();
  Sampler greedy(g, 10);
  EXPECT_EQ(greedy.device_sampling().seed, 0u);  // greedy draws nothing from the generator
  p.frequency_penalty = 0.5f;
  EXPECT_FALSE(Sampler(p, 10).device_samplable());  // penalties need the host's counts
}

TEST(Sampler, AcceptRecordsTheDeviceTokenForPenalties) {
  SamplingParams p = greedy_params();
  p.presence_penalty = 2.0f;
  Sampler s(p, 3);
  DeviceToken t;
  t.id = 2;
  t.logprob = -0.1f;
  t.num_top = 2;
  t.top[0] = {2, -0.1f};
  t.top[1] = {0, -2.5f};
  const SampledToken got = s.accept(t);
  EXPECT_EQ(got.id, 2);
  EXPECT_EQ(got.logprob, -0.1f);
  ASSERT_EQ(got.top.size(), 2u);
  EXPECT_EQ(got.top[1].id, 0);
  EXPECT_EQ(got.top[1].logprob, -2.5f);
  // Token 2 was output once: the presence penalty now prefers token 1.
  const std::vector<float> logits = {0.0f, 1.0f, 2.5f};
  EXPECT_EQ(s.sample(logits).id, 1);
}

}  // namespace
}  // namespace hearth
