// The tokenizer.* metadata of a GGUF file: what read_gguf_tokenizer exposes and what it rejects.
#include "model/gguf_tokenizer.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "model/gguf_test_bytes.h"
#include "model/gguf_writer.h"

namespace hearth {
namespace {

using testing::TempGguf;

const std::vector<std::string> kTokens{
    "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "Ġ", "h", "e", "he", "Ġhe"};

GgufWriter deepseek_like() {
  GgufWriter w;
  w.add_string("general.architecture", "deepseek2")
      .add_string("tokenizer.ggml.model", "gpt2")
      .add_string("tokenizer.ggml.pre", "deepseek-v3")
      .add_string_array("tokenizer.ggml.tokens", kTokens)
      .add_i32_array("tokenizer.ggml.token_type", std::vector<int32_t>{3, 3, 1, 1, 1, 1, 1})
      .add_string_array("tokenizer.ggml.merges", std::vector<std::string>{"h e", "Ġ he"})
      .add_u32("tokenizer.ggml.bos_token_id", 0)
      .add_u32("tokenizer.ggml.eos_token_id", 1)
      .add_u32("tokenizer.ggml.padding_token_id", 1)
      .add_bool("tokenizer.ggml.add_bos_token", true)
      .add_bool("tokenizer.ggml.add_eos_token", false)
      .add_string("tokenizer.chat_template",
                  "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}");
  return w;
}

Result<GgufTokenizerData> read(TempGguf& tmp, const GgufWriter& w) {
  auto bytes = w.to_bytes();
  if (!bytes.is_ok()) return bytes.status();
  HEARTH_ASSIGN_OR_RETURN(auto f, tmp.open(*bytes));
  return read_gguf_tokenizer(*f);
}

TEST(GgufTokenizer, ExposesEveryField) {
  TempGguf tmp;
  auto t = read(tmp, deepseek_like());
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ(t->model, "gpt2");
  EXPECT_EQ(t->pre, "deepseek-v3");
  ASSERT_EQ(t->tokens.size(), kTokens.size());
  EXPECT_EQ(t->tokens[0], kTokens[0]);
  EXPECT_EQ(t->tokens[6], "Ġhe");
  EXPECT_EQ(t->token_types, (std::vector<int32_t>{3, 3, 1, 1, 1, 1, 1}));
  ASSERT_EQ(t->merges.size(), 2u);
  EXPECT_EQ(t->merges[1], "Ġ he");
  EXPECT_TRUE(t->scores.empty());
  EXPECT_EQ(t->bos_id, 0u);
  EXPECT_EQ(t->eos_id, 1u);
  EXPECT_EQ(t->pad_id, 1u);
  EXPECT_FALSE(t->unk_id.has_value());
  EXPECT_FALSE(t->eot_id.has_value());
  EXPECT_EQ(t->add_bos_token, true);
  EXPECT_EQ(t->add_eos_token, false);
  EXPECT_NE(t->chat_template.find("bos_token"), std::string_view::npos);
}

TEST(GgufTokenizer, ViewsStayValidAfterTheCallerDropsTheFile) {
  TempGguf tmp;
  auto bytes = deepseek_like().to_bytes();
  ASSERT_TRUE(bytes.is_ok());
  GgufTokenizerData data;
  {
    auto f = GgufFile::open_memory(*bytes);
    ASSERT_TRUE(f.is_ok());
    auto t = read_gguf_tokenizer(**f);
    ASSERT_TRUE(t.is_ok());
    data = std::move(*t);
  }
  EXPECT_EQ(data.tokens[5], "he");  // `data.file` keeps the bytes alive
}

TEST(GgufTokenizer, SentencePieceScoresAreRead) {
  GgufWriter w;
  w.add_string("tokenizer.ggml.model", "llama")
      .add_string_array("tokenizer.ggml.tokens", std::vector<std::string>{"<unk>", "<s>", "▁a"})
      .add_f32_array("tokenizer.ggml.scores", std::vector<float>{0.0f, 0.0f, -1.5f})
      .add_u32("tokenizer.ggml.unknown_token_id", 0);
  TempGguf tmp;
  auto t = read(tmp, w);
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ(t->scores, (std::vector<float>{0.0f, 0.0f, -1.5f}));
  EXPECT_EQ(t->unk_id, 0u);
  EXPECT_EQ(t->pre, "");
}

TEST(GgufTokenizer, MissingTokenizerIsNotFound) {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  TempGguf tmp;
  auto t = read(tmp, w);
  EXPECT_EQ(t.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(t.status().message().find("tokenizer.ggml.model"), std::string::npos);
}

TEST(GgufTokenizer, EverySpecialTokenIdIsCheckedAgainstTheVocabulary) {
  for (const char* key :
       {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
        "tokenizer.ggml.padding_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id",
        "tokenizer.ggml.seperator_token_id", "tokenizer.ggml.mask_token_id"}) {
    GgufWriter w;
    w.add_string("tokenizer.ggml.model", "gpt2")
        .add_string_array("tokenizer.ggml.tokens", kTokens)
        .add_u32(key, static_cast<uint32_t>(kTokens.size()));
    TempGguf tmp;
    auto t = read(tmp, w);
    EXPECT_EQ(t.status().code(), ErrorCode::kOutOfRange) << key;
    EXPECT_NE(t.status().message().find(std::string(key) + " = 7 is not below the vocabulary size 7"),
              std::string::npos)
        << t.status().message();
  }
}

TEST(GgufTokenizer, NegativeOrNonIntegerTokenIdsAreRejected) {
  GgufWriter w;
  w.add_string("tokenizer.ggml.model", "gpt2")
      .add_string_array("tokenizer.ggml.tokens", kTokens)
      .add_i32("tokenizer.ggml.bos_token_id", -1)
      .add_string("tokenizer.ggml.eos_token_id", "1");
  TempGguf tmp;
  auto t = read(tmp, w);
  EXPECT_EQ(t.status().code(), ErrorCode::kOutOfRange);
  EXPECT_NE(t.status().message().find("tokenizer.ggml.bos_token_id = -1 is negative"), std::string::npos);
  GgufWriter w2;
  w2.add_string("tokenizer.ggml.model", "gpt2")
      .add_string_array("tokenizer.ggml.tokens", kTokens)
      .add_string("tokenizer.ggml.eos_token_id", "1");
  auto t2 = read(tmp, w2);
  EXPECT_EQ(t2.status().code(), ErrorCode::kCorrupt);
  EXPECT_NE(t2.status().message().find("tokenizer.ggml.eos_token_id is string, expected a token id"),
            std::string::npos)
      << t2.status().message();
}

TEST(GgufTokenizer, WrongElementTypesGiveClearErrors) {
  struct Case {
    const char* what;
    std::function<void(GgufWriter&)> add;
    const char* needle;
  };
  const std::vector<Case> cases = {
      {"tokens as u32",
       [](GgufWriter& w) { w.add_u32_array("tokenizer.ggml.tokens", std::vector<uint32_t>{1}); },
       "'tokenizer.ggml.tokens' is an array of u32, expected an array of string"},
      {"tokens as a string", [](GgufWriter& w) { w.add_string("tokenizer.ggml.tokens", "abc"); },
       "'tokenizer.ggml.tokens' is string, expected an array of string"},
      {"merges as i32",
       [](GgufWriter& w) {
         w.add_string_array("tokenizer.ggml.tokens", kTokens)
             .add_i32_array("tokenizer.ggml.merges", std::vector<int32_t>{1});
       },
       "'tokenizer.ggml.merges' is an array of i32, expected an array of string"},
      {"token_type as strings",
       [](GgufWriter& w) {
         w.add_string_array("tokenizer.ggml.tokens", kTokens)
             .add_string_array("tokenizer.ggml.token_type", kTokens);
       },
       "tokenizer.ggml.token_type is an array of string, expected integers"},
      {"scores as i32",
       [](GgufWriter& w) {
         w.add_string_array("tokenizer.ggml.tokens", kTokens)
             .add_i32_array("tokenizer.ggml.scores", std::vector<int32_t>(7));
       },
       "tokenizer.ggml.scores is an array of i32, expected an array of f32"},
      {"add_bos_token as u8",
       [](GgufWriter& w) {
         w.add_string_array("tokenizer.ggml.tokens", kTokens).add_u8("tokenizer.ggml.add_bos_token", 1);
       },
       "'tokenizer.ggml.add_bos_token' is u8, expected a bool"},
      {"chat_template as u32",
       [](GgufWriter& w) {
         w.add_string_array("tokenizer.ggml.tokens", kTokens).add_u32("tokenizer.chat_template", 1);
       },
       "'tokenizer.chat_template' is u32, expected a string"},
  };
  for (const auto& c : cases) {
    GgufWriter w;
    w.add_string("tokenizer.ggml.model", "gpt2");
    c.add(w);
    TempGguf tmp;
    auto t = read(tmp, w);
    EXPECT_EQ(t.status().code(), ErrorCode::kCorrupt) << c.what;
    EXPECT_NE(t.status().message().find(c.needle), std::string::npos)
        << c.what << ": " << t.status().message();
  }
}

TEST(GgufTokenizer, PerTokenArraysMustMatchTheVocabularyLength) {
  GgufWriter w;
  w.add_string("tokenizer.ggml.model", "gpt2")
      .add_string_array("tokenizer.ggml.tokens", kTokens)
      .add_i32_array("tokenizer.ggml.token_type", std::vector<int32_t>{1, 1});
  TempGguf tmp;
  auto t = read(tmp, w);
  EXPECT_EQ(t.status().code(), ErrorCode::kCorrupt);
  EXPECT_NE(
      t.status().message().find("tokenizer.ggml.token_type has 2 elements but tokenizer.ggml.tokens has 7"),
      std::string::npos);
}

TEST(GgufTokenizer, EmptyVocabularyIsRejected) {
  GgufWriter w;
  w.add_string("tokenizer.ggml.model", "gpt2")
      .add_string_array("tokenizer.ggml.tokens", std::vector<std::string>{});
  TempGguf tmp;
  auto t = read(tmp, w);
  EXPECT_EQ(t.status().code(), ErrorCode::kCorrupt);
}

}  // namespace
}  // namespace hearth
