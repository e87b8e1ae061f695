// Tokenizer building blocks and behaviour on small hand-made tokenizer.json documents.
#include "model/tokenizer/tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/tokenizer/byte_level.h"
#include "model/tokenizer/regex.h"

namespace hearth::tok {
namespace {

using nlohmann::json;

// A tiny byte-level BPE: all 256 bytes, merges building "hello", " world", "ab".
json tiny_tokenizer_json() {
  json vocab = json::object();
  int id = 0;
  for (int b = 0; b < 256; ++b) vocab[bytes_to_byte_level(std::string(1, static_cast<char>(b)))] = id++;
  json merges = json::array();
  auto add_merge = [&](const std::string& a, const std::string& b) {
    merges.push_back(bytes_to_byte_level(a) + " " + bytes_to_byte_level(b));
    vocab[bytes_to_byte_level(a + b)] = id++;
  };
  add_merge("h", "e");      // 256
  add_merge("l", "l");      // 257
  add_merge("he", "ll");    // 258
  add_merge("hell", "o");   // 259
  add_merge(" ", "w");      // 260
  add_merge("o", "r");      // 261
  add_merge(" w", "or");    // 262
  add_merge("l", "d");      // 263
  add_merge(" wor", "ld");  // 264
  add_merge("a", "b");      // 265
  return json{
      {"version", "1.0"},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         json::array(
             {{{"type", "Split"},
               {"pattern", {{"Regex", "\\p{N}{1,3}| ?\\p{L}+|\\s+(?!\\S)|\\s+| ?[^\\s\\p{L}\\p{N}]+"}}},
               {"behavior", "Isolated"},
               {"invert", false}},
              {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}}},
      {"post_processor", {{"type", "ByteLevel"}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"added_tokens",
       json::array(
           {{{"id", 300}, {"content", "<s>"}, {"special", true}},
            {{"id", 301}, {"content", "<tool>"}, {"special", false}},
            {{"id", 302}, {"content", "<tool_call>"}, {"special", false}},
            {{"id", 303}, {"content", "[R]"}, {"special", true}, {"rstrip", true}, {"lstrip", true}}})},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
}

std::shared_ptr<const Tokenizer> make(const json& tj, const json& cfg = json::object()) {
  auto t = Tokenizer::from_json(tj.dump(), cfg.dump());
  EXPECT_TRUE(t.is_ok()) << t.status().to_string();
  return t.is_ok() ? *t : nullptr;
}

TEST(ByteLevel, MapsEveryByteAndBack) {
  EXPECT_EQ(bytes_to_byte_level(" "), "\xC4\xA0");   // 'Ġ'
  EXPECT_EQ(bytes_to_byte_level("\n"), "\xC4\x8A");  // 'Ċ'
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  EXPECT_EQ(byte_level_to_bytes(bytes_to_byte_level(all)), all);
  EXPECT_FALSE(byte_level_to_bytes("\xEF\xBD\x9C").has_value());  // '｜' is not a byte char
}

TEST(Regex, WhitespaceMeansUnicodeWhiteSpaceAsInOniguruma) {
  auto re = Regex::compile("\\s+");
  ASSERT_TRUE(re.is_ok());
  std::vector<Span> m;
  // U+0085 (NEL) is White_Space; U+FEFF and U+180E are not.
  std::string s =
      "a\xC2\x85"
      "b\xEF\xBB\xBF"
      "c\xE1\xA0\x8E"
      "d";
  ASSERT_TRUE((*re)->find_all(s, 0, static_cast<uint32_t>(s.size()), &m).is_ok());
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].begin, 1u);
  EXPECT_EQ(m[0].end, 3u);
  EXPECT_EQ(
      *rewrite_hf_pattern("[^\\s\\p{L}]"),
      "[^\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
      "\\x{205F}\\x{3000}\\p{L}]");
  EXPECT_FALSE(rewrite_hf_pattern("[\\S]").is_ok());
  EXPECT_FALSE(Regex::compile("(unclosed").is_ok());
}

TEST(Regex, LookaheadStopsAtThePieceEdge) {
  auto re = Regex::compile("\\s+(?!\\S)");
  ASSERT_TRUE(re.is_ok());
  std::vector<Span> m;
  std::string s = "a   b";
  // Matching only inside [1, 4): "   " is followed by the piece end, so the whole run matches.
  ASSERT_TRUE((*re)->find_all(s, 1, 4, &m).is_ok());
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].end, 4u);
}

TEST(PreTokenizer, SplitBehaviorsMatchHuggingFace) {
  auto re = Regex::compile("-");
  ASSERT_TRUE(re.is_ok());
  auto run = [&](PreTokenizerStep::Behavior b, bool invert = false) {
    std::vector<PreTokenizerStep> steps(1);
    steps[0].regex = *re;
    steps[0].behavior = b;
    steps[0].invert = invert;
    std::vector<Span> pieces, scratch;
    std::string text = "the-final--countdown";
    EXPECT_TRUE(pre_tokenize(steps, text, &pieces, &scratch).is_ok());
    std::vector<std::string> out;
    for (auto p : pieces) out.push_back(text.substr(p.begin, p.end - p.begin));
    return out;
  };
  using B = PreTokenizerStep::Behavior;
  using V = std::vector<std::string>;
  // The examples of HF's SplitDelimiterBehavior documentation.
  EXPECT_EQ(run(B::kRemoved), (V{"the", "final", "countdown"}));
  EXPECT_EQ(run(B::kIsolated), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(run(B::kMergedWithPrevious), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(run(B::kMergedWithNext), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(run(B::kContiguous), (V{"the", "-", "final", "--", "countdown"}));
}

TEST(Tokenizer, AppliesMergesByRank) {
  auto t = make(tiny_tokenizer_json());
  ASSERT_TRUE(t);
  auto ids = t->encode("hello world", {.add_special_tokens = false});
  ASSERT_TRUE(ids.is_ok());
  EXPECT_EQ(*ids, (std::vector<int32_t>{259, 264}));
  EXPECT_EQ(*t->decode(*ids), "hello world");
  // "abab" -> ab ab; unknown pairs stay bytes.
  EXPECT_EQ(*t->encode("abab xyz", {.add_special_tokens = false}),
            (std::vector<int32_t>{265, 265, ' ', 'x', 'y', 'z'}));
}

TEST(Tokenizer, LongWordsUseTheHeapPathWithIdenticalResults) {
  auto t = make(tiny_tokenizer_json());
  ASSERT_TRUE(t);
  std::string word;
  for (int i = 0; i < 200; ++i) word += "ab";
  auto ids = t->encode(word, {.add_special_tokens = false});
  ASSERT_TRUE(ids.is_ok());
  EXPECT_EQ(ids->size(), 200u);
  for (int32_t id : *ids) EXPECT_EQ(id, 265);
}

TEST(Tokenizer, IgnoreMergesEmitsWholeVocabWords) {
  json tj = tiny_tokenizer_json();
  // Give "hel" an id but no merge path: with ignore_merges it is used directly.
  tj["model"]["vocab"][bytes_to_byte_level("hel")] = 299;
  auto plain = make(tj);
  tj["model"]["ignore_merges"] = true;
  auto ignoring = make(tj);
  ASSERT_TRUE(plain && ignoring);
  EXPECT_EQ(*plain->encode("hel", {.add_special_tokens = false}), (std::vector<int32_t>{256, 'l'}));
  EXPECT_EQ(*ignoring->encode("hel", {.add_special_tokens = false}), (std::vector<int32_t>{299}));
}

TEST(Tokenizer, AddedTokensMatchLeftmostLongestBeforePreTokenization) {
  auto t = make(tiny_tokenizer_json());
  ASSERT_TRUE(t);
  EXPECT_EQ(*t->encode("<tool_call>hello", {.add_special_tokens = false}), (std::vector<int32_t>{302, 259}));
  EXPECT_EQ(*t->encode("<tool>hello<s>", {.add_special_tokens = false}),
            (std::vector<int32_t>{301, 259, 300}));
  // lstrip/rstrip swallow the surrounding whitespace.
  EXPECT_EQ(*t->encode("hello  [R]  hello", {.add_special_tokens = false}),
            (std::vector<int32_t>{259, 303, 259}));
  // parse_special=false: special tokens are text, non-special added tokens still match.
  auto ids = t->encode("<s><tool>", {.add_special_tokens = false, .parse_special = false});
  ASSERT_TRUE(ids.is_ok());
  EXPECT_EQ(ids->back(), 301);
  EXPECT_EQ(ids->front(), '<');
}

TEST(Tokenizer, PostProcessorTemplateAndConfigBosAreAdded) {
  json tj = tiny_tokenizer_json();
  auto cfg = json{{"bos_token", {{"content", "<s>"}, {"__type", "AddedToken"}}}, {"add_bos_token", true}};
  auto t = make(tj, cfg);
  ASSERT_TRUE(t);
  EXPECT_EQ(*t->encode("hello"), (std::vector<int32_t>{300, 259}));
  EXPECT_EQ(*t->encode("hello", {.add_special_tokens = false}), (std::vector<int32_t>{259}));
  tj["post_processor"] = {{"type", "TemplateProcessing"},
                          {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                                  {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                                  {{"SpecialToken", {{"id", "[R]"}, {"type_id", 0}}}}})},
                          {"special_tokens",
                           {{"<s>", {{"id", "<s>"}, {"ids", {300}}, {"tokens", {"<s>"}}}},
                            {"[R]", {{"id", "[R]"}, {"ids", {303}}, {"tokens", {"[R]"}}}}}}};
  auto t2 = make(tj, cfg);  // the template wins over add_bos_token
  ASSERT_TRUE(t2);
  EXPECT_EQ(*t2->encode("hello"), (std::vector<int32_t>{300, 259, 303}));
}

TEST(Tokenizer, DecodeRepairsInvalidUtf8AndSkipsSpecials) {
  auto t = make(tiny_tokenizer_json());
  ASSERT_TRUE(t);
  // 0xE4 0xB8 alone (a truncated 3-byte char) -> one U+FFFD, then 'A'.
  EXPECT_EQ(*t->decode(std::vector<int32_t>{0xE4, 0xB8, 'A'}),
            "\xEF\xBF\xBD"
            "A");
  // 0xFF is never valid: one U+FFFD per byte.
  EXPECT_EQ(*t->decode(std::vector<int32_t>{0xFF, 0xFF}), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(*t->decode(std::vector<int32_t>{300, 259}, {.skip_special_tokens = true}), "hello");
  EXPECT_EQ(*t->decode(std::vector<int32_t>{300, 259}), "<s>hello");
}

TEST(Tokenizer, CleanUpTokenizationSpacesIsOptInAsInHuggingFace) {
  EXPECT_EQ(clean_up_tokenization("Hello , world ! I 'm here . Is n't it ?"),
            "Hello, world! I'm here. Isn't it?");
  auto t = make(tiny_tokenizer_json(), json{{"clean_up_tokenization_spaces", true}});
  ASSERT_TRUE(t);
  auto ids = *t->encode("hello !", {.add_special_tokens = false});
  EXPECT_TRUE(t->clean_up_tokenization_spaces());  // the config's value is kept for callers
  EXPECT_EQ(*t->decode(ids), "hello !");           // HF tokenizers / transformers 5: no clean-up for BPE
  EXPECT_EQ(*t->decode(ids, {.clean_up_tokenization_spaces = true}), "hello!");
}

TEST(Tokenizer, RejectsInvalidUtf8InputNamingTheOffset) {
  auto t = make(tiny_tokenizer_json());
  ASSERT_TRUE(t);
  auto r = t->encode("abc\xFFxyz");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("byte offset 3"), std::string::npos);
}

TEST(Tokenizer, RejectsIdsOutsideTheVocabulary) {
  auto t = make(tiny_tokenizer_json());
  ASSERT_TRUE(t);
  for (int32_t bad : {-1, 304, 1 << 30}) {
    auto r = t->decode(std::vector<int32_t>{259, bad});
    ASSERT_FALSE(r.is_ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kOutOfRange);
    EXPECT_NE(r.status().message().find("position 1"), std::string::npos);
  }
  EXPECT_FALSE(t->is_valid_id(299));  // a gap in the id space
}

TEST(TokenizerJson, MalformedDocumentsGiveClearErrors) {
  struct Case {
    std::string name;
    std::function<void(json&)> mutate;
    std::string expect;
  };
  std::vector<Case> cases = {
      {"not json", nullptr, "not valid JSON"},
      {"model type", [](json& j) { j["model"]["type"] = "Unigram"; },
       "model type 'Unigram' is not supported"},
      {"merge shape", [](json& j) { j["model"]["merges"][0] = "a b c"; }, "merges[0]"},
      {"merge unknown", [](json& j) { j["model"]["merges"].push_back("q z"); }, "not in the vocab"},
      {"vocab id", [](json& j) { j["model"]["vocab"]["zz"] = 1 << 25; }, "outside [0, 16777216)"},
      {"vocab type", [](json& j) { j["model"]["vocab"]["zz"] = "x"; }, "not an integer id"},
      {"pre tokenizer",
       [](json& j) {
         j["pre_tokenizer"] = {{"type", "Whitespace"}};
       },
       "'Whitespace' is not supported"},
      {"bad regex", [](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(("; },
       "cannot compile regex"},
      {"added id", [](json& j) { j["added_tokens"][0]["id"] = -5; }, "outside [0, 16777216)"},
      {"bos beyond vocab",
       [](json& j) {
         j["post_processor"] = {{"type", "TemplateProcessing"},
                                {"single", json::array({{{"SpecialToken", {{"id", "X"}}}}})},
                                {"special_tokens", {{"X", {{"ids", {999999}}}}}}};
       },
       "outside the vocabulary"},
      {"deep nesting", [](json& j) { j["x"] = json::parse(std::string(100, '[') + std::string(100, ']')); },
       "nesting deeper"},
  };
  for (const auto& c : cases) {
    std::string doc;
    if (c.mutate) {
      json j = tiny_tokenizer_json();
      c.mutate(j);
      doc = j.dump();
    } else {
      doc = "{\"model\": [";
    }
    auto t = Tokenizer::from_json(doc, "");
    ASSERT_FALSE(t.is_ok()) << c.name;
    EXPECT_NE(t.status().message().find(c.expect), std::string::npos)
        << c.name << ": " << t.status().message();
  }
}

}  // namespace
}  // namespace hearth::tok
