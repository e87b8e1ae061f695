#pragma once
// Stop strings over streamed, detokenized text. The engine produces text in arbitrary deltas; a stop
// string may straddle any number of them. StopMatcher emits what can no longer become part of a stop
// string, holds back the rest (at most the longest stop minus one byte, widened to a code-point
// boundary), and reports the stop the moment one completes. As OpenAI does, the stop string itself
// is never emitted.
//
// Matching runs one KMP automaton per stop string over the bytes as they arrive, so a push costs
// O(delta x number of stops) amortised (O(delta x longest stop) at worst), never a rescan of the
// output so far. When several stops could match, the one that completes first (earliest end) wins —
// that is when a generating engine would stop; at equal ends the longer (earlier-starting) one wins.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::server {

struct StopResult {
  std::string text;      // safe to send now (may be empty)
  bool stopped = false;  // a stop string completed; `text` ends just before it
};

class StopMatcher {
 public:
  // Empty strings are ignored; with no stops, text passes straight through.
  explicit StopMatcher(std::vector<std::string> stops);

  // Feeds the next delta. After a stop, further pushes return nothing.
  StopResult push(std::string_view delta);

  // The held-back text at the end of the stream ("" after a stop).
  std::string flush();

  bool stopped() const { return stopped_; }

 private:
  struct Pattern {
    std::string text;
    std::vector<size_t> failure;  // KMP: longest proper border of text[0..i]
    size_t matched = 0;           // longest suffix of the stream that is a prefix of `text`
  };

  std::vector<Pattern> patterns_;
  std::string held_;  // received but not yet emitted
  bool stopped_ = false;
};

}  // namespace hearth::server
