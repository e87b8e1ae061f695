// libFuzzer target for StopMatcher. Input: [split seed][stop count][len, bytes]... then the stream.
// The stream is fed in pieces cut at data-driven points; whatever the cut, the emitted text (plus
// the flush) must equal a one-shot push and the stream cut before the first stop to complete
// (earliest end; at equal ends the longer stop), and nothing may follow a stop. On valid UTF-8 the
// pieces must be whole UTF-8 and the hold-back bounded by the longest stop (+ a partial code point).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/utf8.h"
#include "fuzz_split.h"
#include "server/stop_matcher.h"

namespace {

using hearth::server::StopMatcher;
using hearth::server::StopResult;

struct Outcome {
  std::string text;
  bool stopped = false;
};

// The specification: cut before the stop that completes first.
Outcome reference(std::string_view stream, const std::vector<std::string>& stops) {
  size_t best_end = std::string_view::npos, best_start = std::string_view::npos;
  for (const auto& s : stops) {
    if (s.empty()) continue;
    const size_t p = stream.find(s);
    if (p == std::string_view::npos) continue;
    const size_t end = p + s.size();
    if (end < best_end || (end == best_end && p < best_start)) {
      best_end = end;
      best_start = p;
    }
  }
  if (best_start == std::string_view::npos) return {std::string(stream), false};
  return {std::string(stream.substr(0, best_start)), true};
}

std::vector<std::string_view> split(std::string_view s, uint8_t seed) {
  return hearth::fuzz::split_stream(s, seed, 0x9E3779B9u);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (in.size() < 2) return 0;
  const uint8_t seed = static_cast<uint8_t>(in[0]);
  const size_t count = static_cast<uint8_t>(in[1]) % 5;
  in.remove_prefix(2);
  std::vector<std::string> stops;
  size_t longest = 0;
  for (size_t i = 0; i < count && !in.empty(); ++i) {
    const size_t len = std::min<size_t>(static_cast<uint8_t>(in[0]) % 17, in.size() - 1);
    const std::string_view stop = in.substr(1, len);
    in.remove_prefix(1 + len);
    // Stops come from JSON strings, which the request parser only yields as valid UTF-8. (An invalid
    // one starting with a continuation byte makes the code-point walk-back scan the whole hold-back
    // on every push: quadratic on invalid output, so kept out of the fuzzer's time limit.)
    if (!hearth::utf8::is_valid(stop)) continue;
    stops.emplace_back(stop);
    longest = std::max(longest, len);
  }
  const std::string_view stream = in;
  const Outcome want = reference(stream, stops);
  // With a valid stream (and the stops, which are), every match lies on code-point boundaries.
  const bool valid = hearth::utf8::is_valid(stream);

  // One shot.
  {
    StopMatcher m(stops);
    StopResult r = m.push(stream);
    Outcome got{r.text, r.stopped};
    if (!r.stopped) got.text += m.flush();
    if (got.text != want.text || got.stopped != want.stopped || m.stopped() != want.stopped) std::abort();
  }

  // In pieces.
  StopMatcher m(stops);
  Outcome got;
  size_t pushed = 0;
  for (std::string_view piece : split(stream, seed)) {
    StopResult r = m.push(piece);
    pushed += piece.size();
    if (got.stopped && (r.stopped || !r.text.empty())) std::abort();  // nothing after a stop
    got.text += r.text;
    got.stopped = got.stopped || r.stopped;
    if (valid && !hearth::utf8::is_valid(r.text)) std::abort();
    // Held back: at most the longest stop minus one, widened to a code point (3 more bytes).
    if (valid && !got.stopped && pushed - got.text.size() > (longest > 0 ? longest - 1 : 0) + 3) std::abort();
  }
  const std::string rest = m.flush();
  if (got.stopped && !rest.empty()) std::abort();
  got.text += rest;
  if (got.text != want.text || got.stopped != want.stopped) std::abort();
  if (!m.push("more").text.empty() && got.stopped) std::abort();
  return 0;
}
