#pragma once
// Splitting a fuzz input into stream deltas at data-driven points (shared by the streaming-parser
// fuzzers): piece lengths 0..max from a xorshift sequence seeded by `seed` and the input's length.
#include <algorithm>
#include <cstdint>
#include <string_view>
#include <vector>

namespace hearth::fuzz {

inline std::vector<std::string_view> split_stream(std::string_view s, uint8_t seed, uint32_t salt) {
  std::vector<std::string_view> pieces;
  uint32_t x = salt ^ (static_cast<uint32_t>(seed) * 0x01000193u) ^ static_cast<uint32_t>(s.size());
  const uint32_t max = 1 + (seed & 15u) * ((seed & 0x80u) ? 8u : 1u);
  while (!s.empty()) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    const size_t n = std::min<size_t>(s.size(), x % (max + 1));
    pieces.push_back(s.substr(0, n));
    s.remove_prefix(n);
  }
  return pieces;
}

}  // namespace hearth::fuzz
