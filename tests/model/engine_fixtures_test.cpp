// The engine reference fixtures (tests/fixtures/engine/, made by tools/reference/make_engine_fixtures.py
// with transformers 5.17) must open as checkpoints, and their recorded prompt ids must be what hearth's
// tokenizer produces, so the engine parity tests of issue #3 start from agreed inputs.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "model/checkpoint.h"
#include "model/tokenizer/tokenizer.h"

namespace hearth {
namespace {

struct Fixture {
  const char* name;
  Architecture arch;
  bool fp8;
};

class EngineFixture : public ::testing::TestWithParam<Fixture> {};

TEST_P(EngineFixture, OpensAndItsPromptIdsMatchHeartsTokenizer) {
  const Fixture f = GetParam();
  const std::string dir = std::string(HEARTH_FIXTURES_DIR) + "/engine/" + f.name;
  auto ckpt = Checkpoint::open(dir);
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  EXPECT_EQ((*ckpt)->spec().architecture, f.arch);
  EXPECT_EQ((*ckpt)->spec().quantization.method == QuantMethod::kFp8, f.fp8);
  EXPECT_TRUE((*ckpt)->unexpected_tensors().empty());

  auto tok = tok::Tokenizer::load_dir(dir);
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  std::ifstream in(dir + "/reference.json");
  auto ref = nlohmann::json::parse(in);
  ASSERT_GE(ref["prompts"].size(), 3u);
  for (const auto& p : ref["prompts"]) {
    auto ids = (*tok)->encode(p["prompt"].get<std::string>());  // BOS + text, as the reference
    ASSERT_TRUE(ids.is_ok());
    EXPECT_EQ(*ids, p["ids"].get<std::vector<int32_t>>()) << p["prompt"];
    ASSERT_GE(p["steps"].size(), 24u);
    for (const auto& s : p["steps"]) {
      const int32_t id = s["id"];
      EXPECT_TRUE((*tok)->is_valid_id(id) || id < (*ckpt)->spec().vocab_size);
      ASSERT_EQ(s["top"].size(), 5u);
      EXPECT_EQ(s["top"][0][0].get<int32_t>(), id);  // greedy = top-1
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, EngineFixture,
                         ::testing::Values(Fixture{"qwen2", Architecture::kQwen2, false},
                                           Fixture{"llama", Architecture::kLlama, false},
                                           Fixture{"deepseek_v2", Architecture::kDeepseekV2, false},
                                           Fixture{"deepseek_v3", Architecture::kDeepseekV3, false},
                                           Fixture{"deepseek_v3_fp8", Architecture::kDeepseekV3, true}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace hearth
