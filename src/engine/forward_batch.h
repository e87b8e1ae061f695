#pragma once
// ForwardBatch: what one engine step computes. Each entry is one sequence's chunk of new tokens —
// a prefill chunk or a single decode token — at positions [start_pos, start_pos + tokens.size()),
// whose K/V go into the blocks of its block table; earlier positions are already cached there.
// Sequences of different lengths and kinds mix freely in one batch.
#include <cstdint>
#include <span>
#include <vector>

namespace hearth {

// How a device backend may pick a chunk's token itself instead of returning its logits row: the
// sequence's sampling parameters (no penalties: they need the host's counts), this step's random key drawn
// from the sequence's own generator, and for guided decoding the mask of ids that may be chosen.
struct DeviceSampling {
  float temperature = 0.0f;  // 0: argmax
  int32_t top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  int32_t top_logprobs = 0;
  uint64_t seed = 0;
  const uint8_t* allowed = nullptr;  // vocab entries in host memory (non-zero: may be chosen), or none
};

struct SequenceChunk {
  std::span<const int32_t> tokens;       // new tokens (>= 1)
  int64_t start_pos = 0;                 // tokens already in the KV cache
  std::span<const int32_t> block_table;  // covers start_pos + tokens.size() positions
  bool want_logits = true;               // logits of the chunk's last token
  bool device_sample = false;            // a device backend may answer with a token (below), not logits
  DeviceSampling sampling;               // with device_sample
};

struct ForwardBatch {
  std::vector<SequenceChunk> chunks;

  int64_t num_tokens() const {
    int64_t n = 0;
    for (const auto& c : chunks) n += static_cast<int64_t>(c.tokens.size());
    return n;
  }
  int64_t num_logit_rows() const {
    int64_t n = 0;
    for (const auto& c : chunks) n += c.want_logits ? 1 : 0;
    return n;
  }
};

}  // namespace hearth
