// response_format json_object: the byte-level JSON prefix recognizer (every prefix of a valid object is
// accepted, anything else refused at the first bad byte) and the token mask built from it.
#include <gtest/gtest.h>

#include <string>

#include "server/json_constraint.h"

namespace hearth::server {
namespace {

bool accepts(std::string_view text, bool* complete = nullptr) {
  JsonPrefix p;
  const bool ok = p.feed(text);
  if (complete) *complete = p.complete();
  return ok;
}

TEST(JsonPrefix, EveryPrefixOfValidObjectsIsAccepted) {
  const char* docs[] = {
      "{}",
      R"({"a":1})",
      R"({ "a" : [1, -2.5e+3, 0, 0.25E-1, true, false, null, "x\"\\\/\b\f\n\r\t\u00e9"], "b": {"c": {}} })",
      "{\n  \"key\": \"\xe4\xbd\xa0\xe5\xa5\xbd\",\n  \"n\": [[], [[]], {}]\n}",
      R"({"":""})",
  };
  for (const char* d : docs) {
    const std::string doc(d);
    for (size_t i = 0; i <= doc.size(); ++i) EXPECT_TRUE(accepts(doc.substr(0, i))) << doc.substr(0, i);
    bool complete = false;
    EXPECT_TRUE(accepts(doc, &complete));
    EXPECT_TRUE(complete) << doc;
    EXPECT_FALSE(accepts(doc + " ")) << "nothing may follow the object";
  }
}

TEST(JsonPrefix, InvalidBytesAreRefused) {
  for (const char* bad : {" {}",
                          "[]",
                          "\"x\"",
                          "1",
                          "{a",
                          "{\"a\"1",
                          "{\"a\":}",
                          "{\"a\":01",
                          "{\"a\":-}",
                          "{\"a\":1.}",
                          "{\"a\":1e}",
                          "{\"a\":tru3",
                          "{\"a\":nul}",
                          "{\"a\":\"\x01\"}",
                          "{\"a\":\"\\x\"}",
                          "{\"a\":\"\\u12G\"}",
                          "{,}",
                          "{\"a\":1,}",
                          "{\"a\":[1,]}",
                          "{\"a\":[1 2]}",
                          "{}}",
                          "{\"a\":1]"}) {
    EXPECT_FALSE(accepts(bad)) << bad;
  }
}

// Found by fuzz_json_constraint: a lone surrogate escape is valid by RFC 8259's grammar but refused by strict
// parsers (nlohmann, Python's json with surrogatepass off, browsers' TextDecoder on the result), so the
// recognizer demands pairs.
TEST(JsonPrefix, SurrogateEscapesMustPair) {
  bool complete = false;
  EXPECT_TRUE(accepts(R"({"a":"\ud83d\ude00 \uD83D\uDE00"})", &complete));
  EXPECT_TRUE(complete);
  EXPECT_TRUE(accepts(R"({"a":"\ud83d)"));           // a prefix: the low half may still come
  EXPECT_FALSE(accepts(R"({"a":"\udddd"})"));        // a low surrogate alone
  EXPECT_FALSE(accepts(R"({"a":"\ud83d"})"));        // a high one not followed by an escape
  EXPECT_FALSE(accepts(R"({"a":"\ud83d\n"})"));      // ... nor by another escape
  EXPECT_FALSE(accepts(R"({"a":"\ud83d\u0041"})"));  // ... nor by a non-surrogate
}

TEST(JsonPrefix, DepthAndWhitespaceAreBounded) {
  std::string deep = "{\"a\":";
  for (int i = 0; i < JsonPrefix::kMaxDepth - 1; ++i) deep += "[";
  EXPECT_TRUE(accepts(deep));
  EXPECT_FALSE(accepts(deep + "["));
  EXPECT_TRUE(accepts("{" + std::string(JsonPrefix::kMaxWhitespaceRun, ' ')));
  EXPECT_FALSE(accepts("{" + std::string(JsonPrefix::kMaxWhitespaceRun + 1, ' ')));
  // Inside a string whitespace is text, not padding.
  EXPECT_TRUE(accepts("{\"" + std::string(200, ' ')));
}

TEST(JsonObjectConstraint, MaskFollowsTheGrammarThenOnlyStops) {
  auto table = std::make_shared<JsonTokenTable>();
  // id: 0 "{", 1 "}", 2 "\"", 3 "a", 4 ":", 5 "1", 6 " ", 7 "{}", 8 "" (special), 9 "<eos>" (special)
  table->bytes = {"{", "}", "\"", "a", ":", "1", " ", "{}", "", ""};
  table->stop_ids = {9};
  JsonObjectConstraint c(table);
  std::vector<uint8_t> allowed(10);
  auto allowed_ids = [&] {
    c.fill_allowed(allowed);
    std::vector<int> ids;
    for (size_t i = 0; i < allowed.size(); ++i)
      if (allowed[i]) ids.push_back(static_cast<int>(i));
    return ids;
  };
  EXPECT_EQ(allowed_ids(), (std::vector<int>{0, 7}));  // only an object may start
  c.accept(0);
  EXPECT_EQ(allowed_ids(), (std::vector<int>{1, 2, 6}));  // '}', a key, whitespace
  c.accept(2);
  EXPECT_EQ(allowed_ids(), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));  // any text in a key
  c.accept(3);
  c.accept(2);
  EXPECT_EQ(allowed_ids(), (std::vector<int>{4, 6}));
  c.accept(4);
  c.accept(5);
  EXPECT_EQ(allowed_ids(), (std::vector<int>{1, 5, 6}));  // more digits, '}', whitespace
  c.accept(1);
  EXPECT_TRUE(c.state().complete());
  EXPECT_EQ(allowed_ids(), (std::vector<int>{9}));  // done: only end-of-sequence
}

// The shared mask cache: a constraint reading cached masks gives, at every step of a document, exactly the
// mask computed from scratch; states that differ only in their enclosing containers never share a mask.
TEST(JsonObjectConstraint, CachedMasksEqualComputedOnes) {
  const std::vector<std::string> vocab = {"{",  "}",  "\"", "a",     ":",   "1",  " ",  "{}",
                                          "[",  "]",  ",",  "\"a\"", "tr",  "ue", "\\", "u00",
                                          "e9", "\n", "-",  "0.5",   "\"}", "]}", "",   ""};
  auto cached = std::make_shared<JsonTokenTable>();
  cached->bytes = vocab;
  cached->stop_ids = {23};
  auto fresh = std::make_shared<JsonTokenTable>(*cached);
  fresh->masks = std::make_shared<JsonMaskCache>(0);  // never caches
  // Two documents walked by token: the second revisits the first's states and new ones.
  const std::vector<std::vector<int32_t>> docs = {
      {0, 11, 4, 8, 5, 10, 12, 13, 10, 2, 14, 15, 16, 3, 2, 9, 10, 11, 4, 0, 1, 1},
      {0, 17, 11, 4, 0, 11, 4, 8, 18, 19, 9, 10, 11, 4, 2, 3, 20, 1},
  };
  for (int pass = 0; pass < 2; ++pass) {  // the second pass reads every mask from the cache
    for (const auto& doc : docs) {
      JsonObjectConstraint a(cached), b(fresh);
      std::vector<uint8_t> ma(vocab.size()), mb(vocab.size());
      for (size_t step = 0; step <= doc.size(); ++step) {
        a.fill_allowed(ma);
        b.fill_allowed(mb);
        ASSERT_EQ(ma, mb) << "pass " << pass << " step " << step;
        if (step == doc.size()) break;
        ASSERT_EQ(ma[static_cast<size_t>(doc[step])], 1) << "the document's token " << step << " is refused";
        a.accept(doc[step]);
        b.accept(doc[step]);
      }
      EXPECT_TRUE(a.state().complete());
    }
  }
  EXPECT_GT(cached->masks->size(), 10u);
  EXPECT_EQ(fresh->masks->size(), 0u);
}

TEST(JsonMaskCache, EvictsTheLeastRecentlyUsed) {
  JsonMaskCache cache(2);
  const std::vector<uint8_t> m1 = {1, 0}, m2 = {0, 1}, m3 = {1, 1};
  std::vector<uint8_t> out(2);
  cache.insert("a", m1);
  cache.insert("b", m2);
  ASSERT_TRUE(cache.lookup("a", out));  // "a" is now the most recent
  EXPECT_EQ(out, m1);
  cache.insert("c", m3);  // evicts "b"
  EXPECT_FALSE(cache.lookup("b", out));
  ASSERT_TRUE(cache.lookup("c", out));
  EXPECT_EQ(out, m3);
  ASSERT_TRUE(cache.lookup("a", out));
  EXPECT_EQ(cache.size(), 2u);
}

}  // namespace
}  // namespace hearth::server
