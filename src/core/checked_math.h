#pragma once
// Overflow-checked size arithmetic for everything derived from untrusted files.
#include <cstdint>
#include <optional>
#include <span>

namespace hearth {

inline std::optional<uint64_t> checked_add(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// Product of dims, or nullopt on overflow.
inline std::optional<uint64_t> checked_product(std::span<const uint64_t> dims) {
  uint64_t r = 1;
  for (uint64_t d : dims) {
    if (__builtin_mul_overflow(r, d, &r)) return std::nullopt;
  }
  return r;
}

inline bool is_power_of_two(uint64_t x) {
  return x != 0 && (x & (x - 1)) == 0;
}

inline uint64_t align_up(uint64_t x, uint64_t alignment) {  // alignment: power of two, no overflow
  return (x + alignment - 1) & ~(alignment - 1);
}

}  // namespace hearth
