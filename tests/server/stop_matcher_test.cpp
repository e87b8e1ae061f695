// StopMatcher as a specification: the text before the first stop string to complete is emitted,
// the stop itself never is, and how the stream is cut into deltas changes nothing but timing.
#include "server/stop_matcher.h"

#include <gtest/gtest.h>

#include "core/utf8.h"

namespace hearth::server {
namespace {

struct Outcome {
  std::string text;
  bool stopped = false;
  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << "{\"" << o.text << "\", stopped=" << o.stopped << "}";
}

// Feeds `pieces` in order, then flushes unless stopped. Every emitted piece must be whole UTF-8.
Outcome feed(const std::vector<std::string>& stops, const std::vector<std::string_view>& pieces) {
  StopMatcher m(stops);
  Outcome o;
  for (auto piece : pieces) {
    StopResult r = m.push(piece);
    EXPECT_TRUE(utf8::is_valid(r.text)) << "split code point in \"" << r.text << "\"";
    if (o.stopped) {
      EXPECT_TRUE(r.text.empty() && !r.stopped) << "output after the stop";
    }
    o.text += r.text;
    o.stopped = o.stopped || r.stopped;
  }
  const std::string rest = m.flush();
  if (o.stopped) {
    EXPECT_EQ(rest, "");
  }
  o.text += rest;
  return o;
}

// The outcome of `text` fed whole, split in two at every byte, and byte by byte — all must agree.
Outcome feed_every_way(const std::vector<std::string>& stops, std::string_view text) {
  const Outcome whole = feed(stops, {text});
  for (size_t i = 0; i <= text.size(); ++i) {
    EXPECT_EQ(feed(stops, {text.substr(0, i), text.substr(i)}), whole) << "split at " << i;
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < text.size(); ++i) bytes.push_back(text.substr(i, 1));
  EXPECT_EQ(feed(stops, bytes), whole) << "byte by byte";
  return whole;
}

TEST(StopMatcher, TextBeforeTheStopIsEmittedAndTheStopIsNot) {
  EXPECT_EQ(feed_every_way({"STOP"}, "hello STOP world"), (Outcome{"hello ", true}));
}

TEST(StopMatcher, WithoutAStopEverythingComesOut) {
  EXPECT_EQ(feed_every_way({"STOP"}, "hello STO world ST"), (Outcome{"hello STO world ST", false}));
}

TEST(StopMatcher, AStopAtTheVeryStartEmitsNothing) {
  EXPECT_EQ(feed_every_way({"###"}, "### and more"), (Outcome{"", true}));
}

TEST(StopMatcher, OverlappingPrefixesAreNotLost) {
  EXPECT_EQ(feed_every_way({"aab"}, "aaab"), (Outcome{"a", true}));
  EXPECT_EQ(feed_every_way({"abab"}, "abaabababx"), (Outcome{"aba", true}));
  EXPECT_EQ(feed_every_way({"aab"}, "aaaa"), (Outcome{"aaaa", false}));
}

TEST(StopMatcher, TheFirstStopToCompleteWins) {
  EXPECT_EQ(feed_every_way({"x", "yz"}, "ayzbx"), (Outcome{"a", true}));
  EXPECT_EQ(feed_every_way({"yz", "x"}, "axbyz"), (Outcome{"a", true}));
  // "bc" completes before "abcd" could, which is when generation would stop.
  EXPECT_EQ(feed_every_way({"abcd", "bc"}, "xabcd"), (Outcome{"xa", true}));
  // Completing together: the longer one started earlier.
  EXPECT_EQ(feed_every_way({"cd", "bcd"}, "abcd"), (Outcome{"a", true}));
}

TEST(StopMatcher, Utf8StopsAndText) {
  EXPECT_EQ(feed_every_way({"。"}, "你好。世界"), (Outcome{"你好", true}));
  EXPECT_EQ(feed_every_way({"停止"}, "继续停下停止了"), (Outcome{"继续停下", true}));
  // A stop sharing a code point's leading bytes with the text must not split the text's code point.
  EXPECT_EQ(feed_every_way({"\xE4\xBD\xA0好"},
                           "a\xE4\xBD\xA1"
                           "b"),
            (Outcome{"a\xE4\xBD\xA1"
                     "b",
                     false}));
}

TEST(StopMatcher, HoldsBackOnlyAPossibleStopPrefix) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.push("foo ST").text, "foo ");
  EXPECT_EQ(m.push("OX").text, "STOX");
  EXPECT_EQ(m.push("bar").text, "bar");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, HoldBackMovesToACodePointStart) {
  // The stop begins with the last two bytes of "好" (E5 A5 BD): those may not be emitted alone.
  StopMatcher m({"\xA5\xBD!"});
  const StopResult r = m.push("你好");
  EXPECT_EQ(r.text, "你");
  EXPECT_EQ(m.flush(), "好");
}

TEST(StopMatcher, NoStopsPassesThroughImmediately) {
  StopMatcher m({});
  EXPECT_EQ(m.push("hello").text, "hello");
  EXPECT_EQ(m.push(" world").text, " world");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, EmptyStopStringsAreIgnored) {
  StopMatcher m({"", ""});
  EXPECT_EQ(m.push("abc").text, "abc");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(feed_every_way({"", "c"}, "abcd"), (Outcome{"ab", true}));
}

TEST(StopMatcher, AnIncompleteCodePointWaitsForItsLastBytes) {
  StopMatcher m({});
  EXPECT_EQ(m.push("a\xE4\xBD").text, "a");
  EXPECT_EQ(m.push("\xA0").text, "你");
}

TEST(StopMatcher, NothingAfterTheStop) {
  StopMatcher m({"\n\n"});
  StopResult r = m.push("line\n");
  EXPECT_EQ(r.text, "line");
  r = m.push("\nmore");  // completes the held-back "\n": neither newline is emitted
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "");
  EXPECT_TRUE(m.stopped());
  r = m.push("again");
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, LongStreamsByteByByte) {
  // Quadratic rescanning would make this crawl; the automaton keeps it linear.
  std::string text(200000, 'a');
  text += "aab";
  StopMatcher m({"aab", "zz"});
  std::string out;
  bool stopped = false;
  for (char c : text) {
    StopResult r = m.push(std::string_view(&c, 1));
    out += r.text;
    stopped = stopped || r.stopped;
  }
  EXPECT_TRUE(stopped);
  EXPECT_EQ(out, std::string(200000, 'a'));
}

}  // namespace
}  // namespace hearth::server
