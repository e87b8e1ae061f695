#pragma once
// UTF-8 validation and decoding (strict: no overlongs, no surrogates, <= U+10FFFF).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hearth::utf8 {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is invalid or truncated.
size_t valid_sequence_length(std::string_view s, size_t i);

// True when the whole string is valid UTF-8.
bool is_valid(std::string_view s);

// Byte offset of the first invalid sequence, or npos.
size_t first_invalid(std::string_view s);

// Decodes the code point at s[i] (which must start a valid sequence); advances i.
char32_t decode(std::string_view s, size_t& i);

void append(std::string& out, char32_t cp);

// Number of bytes at the end of s that form an incomplete (but so far valid) sequence: 0..3.
size_t incomplete_tail(std::string_view s);

}  // namespace hearth::utf8
