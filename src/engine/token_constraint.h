#pragma once
// TokenConstraint: a per-sequence rule over which token ids may come next (guided decoding). The
// engine asks it for a mask before each sample and tells it the chosen id after; everything else —
// what the rule is (a JSON grammar, a tool-call shape) — lives with whoever builds it (the server).
// One constraint belongs to one sequence and is only touched on the engine thread.
#include <cstdint>
#include <span>

namespace hearth {

class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // Sets allowed[id] to 1 for every id that may come next and 0 for the rest (allowed has the
  // model's vocab_size entries). At least one id must be allowed (an end-of-sequence id when done).
  virtual void fill_allowed(std::span<uint8_t> allowed) = 0;
  // The id the sampler chose (always one fill_allowed allowed).
  virtual void accept(int32_t id) = 0;
};

}  // namespace hearth
