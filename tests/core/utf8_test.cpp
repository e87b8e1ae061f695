#include "core/utf8.h"

#include <gtest/gtest.h>

namespace hearth {
namespace {

TEST(Utf8, AcceptsValidText) {
  EXPECT_TRUE(utf8::is_valid(""));
  EXPECT_TRUE(utf8::is_valid("hello, world"));
  EXPECT_TRUE(utf8::is_valid("深度求索 🤖 👨‍👩‍👧 🇨🇳 é"));
  EXPECT_TRUE(utf8::is_valid("\xF4\x8F\xBF\xBF"));  // U+10FFFF
}

TEST(Utf8, RejectsMalformedSequences) {
  EXPECT_FALSE(utf8::is_valid("\x80"));              // lone continuation
  EXPECT_FALSE(utf8::is_valid("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(utf8::is_valid("\xE0\x80\xAF"));      // overlong
  EXPECT_FALSE(utf8::is_valid("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(utf8::is_valid("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(utf8::is_valid("abc\xE4\xB8"));       // truncated
  EXPECT_EQ(utf8::first_invalid("abcdefghij\xFFxyz"), 10u);
}

TEST(Utf8, DecodeAndAppendRoundTrip) {
  std::string s = "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80";
  size_t i = 0;
  std::string out;
  std::vector<char32_t> cps;
  while (i < s.size()) cps.push_back(utf8::decode(s, i));
  ASSERT_EQ(cps, (std::vector<char32_t>{U'a', U'\u00e9', U'\u4e2d', U'\U0001F600'}));
  for (char32_t cp : cps) utf8::append(out, cp);
  EXPECT_EQ(out, s);
}

TEST(Utf8, IncompleteTailCountsPendingBytes) {
  EXPECT_EQ(utf8::incomplete_tail("abc"), 0u);
  EXPECT_EQ(utf8::incomplete_tail("ab\xE4"), 1u);
  EXPECT_EQ(utf8::incomplete_tail("ab\xE4\xB8"), 2u);
  EXPECT_EQ(utf8::incomplete_tail("ab\xE4\xB8\xAD"), 0u);
  EXPECT_EQ(utf8::incomplete_tail("\xF0\x9F\x98"), 3u);
}

}  // namespace
}  // namespace hearth
