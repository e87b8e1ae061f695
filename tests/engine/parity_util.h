#pragma once
// Teacher-forced parity against the HF reference fixtures (tests/fixtures/engine/<name>/reference.json),
// shared by the CPU parity test and the CUDA test: the prompt is prefilled, then the reference's greedy
// tokens are fed one by one, and at every step the engine's argmax must be the reference's token and
// its top-5 log-probabilities must match within the tolerance.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "engine/model_runner.h"

namespace hearth::testing {

inline std::vector<double> log_softmax(const float* logits, int64_t n) {
  double mx = logits[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max<double>(mx, logits[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(logits[i] - mx);
  std::vector<double> out(n);
  for (int64_t i = 0; i < n; ++i) out[i] = logits[i] - mx - std::log(sum);
  return out;
}

inline std::string fixture_dir(const char* name) {
  return std::string(HEARTH_FIXTURES_DIR) + "/engine/" + name;
}

// Prefills the prompt, then feeds the reference's tokens one by one: the logits of every step.
inline std::vector<std::vector<float>> teacher_forced_logits(ModelRunner& r, const nlohmann::json& prompt) {
  std::vector<int32_t> tokens = prompt["ids"].get<std::vector<int32_t>>();
  std::vector<int32_t> blocks;
  EXPECT_TRUE(r.blocks().ensure_capacity(blocks, tokens.size() + prompt["steps"].size()).is_ok());
  std::vector<std::vector<float>> out;
  int64_t computed = 0;
  for (const auto& s : prompt["steps"]) {
    ForwardBatch b;
    SequenceChunk c;
    c.tokens = std::span<const int32_t>(tokens).subspan(computed);
    c.start_pos = computed;
    c.block_table = blocks;
    b.chunks.push_back(c);
    std::vector<float> logits;
    const Status st = r.forward(b, logits);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    out.push_back(std::move(logits));
    computed = static_cast<int64_t>(tokens.size());
    tokens.push_back(s["id"].get<int32_t>());
  }
  r.blocks().release(blocks);
  return out;
}

// Checks every prompt of `dir`/reference.json; returns the largest |logprob error| over the top-5.
inline double check_teacher_forced_parity(ModelRunner& r, const std::string& dir, double tolerance,
                                          const std::string& name) {
  std::ifstream in(dir + "/reference.json");
  const auto ref = nlohmann::json::parse(in);
  const int64_t vocab = r.spec().vocab_size;
  double worst = 0;
  for (const auto& p : ref["prompts"]) {
    const auto logits = teacher_forced_logits(r, p);
    EXPECT_EQ(logits.size(), p["steps"].size());
    for (size_t step = 0; step < logits.size() && step < p["steps"].size(); ++step) {
      EXPECT_EQ(static_cast<int64_t>(logits[step].size()), vocab);
      if (static_cast<int64_t>(logits[step].size()) != vocab) return 1e9;
      const auto lp = log_softmax(logits[step].data(), vocab);
      const auto& s = p["steps"][step];
      const int32_t got = static_cast<int32_t>(std::max_element(lp.begin(), lp.end()) - lp.begin());
      // A different argmax is only acceptable when the reference's top two are tied within tolerance.
      const double gap = s["top"][0][1].get<double>() - s["top"][1][1].get<double>();
      if (gap > tolerance) {
        EXPECT_EQ(got, s["id"].get<int32_t>()) << name << " prompt " << p["prompt"] << " step " << step;
      }
      for (const auto& t : s["top"]) {
        const double d = std::abs(lp[t[0].get<int32_t>()] - t[1].get<double>());
        worst = std::max(worst, d);
        EXPECT_LE(d, tolerance) << name << " prompt " << p["prompt"] << " step " << step << " id " << t[0];
      }
    }
  }
  return worst;
}

}  // namespace hearth::testing
