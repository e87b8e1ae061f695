// StopMatcher: incremental stop-string matching with a bounded, code-point-aligned hold-back.
#include "server/stop_matcher.h"

#include <algorithm>

#include "core/utf8.h"

namespace hearth::server {

namespace {

std::vector<size_t> kmp_failure(std::string_view s) {
  std::vector<size_t> f(s.size(), 0);
  size_t k = 0;
  for (size_t i = 1; i < s.size(); ++i) {
    while (k > 0 && s[i] != s[k]) k = f[k - 1];
    if (s[i] == s[k]) ++k;
    f[i] = k;
  }
  return f;
}

bool is_continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

}  // namespace

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  for (auto& s : stops) {
    if (s.empty()) continue;
    Pattern p;
    p.failure = kmp_failure(s);
    p.text = std::move(s);
    patterns_.push_back(std::move(p));
  }
}

StopResult StopMatcher::push(std::string_view delta) {
  StopResult out;
  if (stopped_) return out;
  const size_t base = held_.size();
  held_.append(delta);

  for (size_t j = 0; j < delta.size(); ++j) {
    const char c = delta[j];
    const Pattern* hit = nullptr;
    for (auto& p : patterns_) {
      size_t k = p.matched;
      while (k > 0 && p.text[k] != c) k = p.failure[k - 1];
      if (p.text[k] == c) ++k;
      p.matched = k;
      if (k == p.text.size() && (hit == nullptr || p.text.size() > hit->text.size())) hit = &p;
    }
    if (hit != nullptr) {
      // The match lies within the last |stop| bytes, all of which are still held (the hold-back
      // was at least the automaton state before this delta).
      const size_t end = base + j + 1;
      out.text = held_.substr(0, end - hit->text.size());
      out.stopped = true;
      stopped_ = true;
      held_.clear();
      return out;
    }
  }

  size_t hold = 0;
  for (const auto& p : patterns_) hold = std::max(hold, p.matched);
  size_t cut = held_.size() - std::min(hold, held_.size());
  // Never split a code point: move the cut back to a sequence start, and keep an incomplete
  // trailing sequence (a byte-level detokenizer may deliver one) until its remaining bytes arrive.
  // At most 3 steps: a code point has at most 3 continuation bytes (invalid text must not make this
  // rescan everything held).
  for (int step = 0; step < 3 && cut > 0 && cut < held_.size() && is_continuation(held_[cut]); ++step) --cut;
  cut = std::min(cut, held_.size() - utf8::incomplete_tail(held_));
  out.text = held_.substr(0, cut);
  held_.erase(0, cut);
  return out;
}

std::string StopMatcher::flush() {
  std::string rest;
  rest.swap(held_);
  for (auto& p : patterns_) p.matched = 0;
  return rest;
}

}  // namespace hearth::server
