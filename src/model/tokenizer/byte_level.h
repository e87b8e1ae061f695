#pragma once
// GPT-2 byte-level mapping: each byte is shown as a printable code point in vocab files
// (e.g. ' ' -> 'Ġ', '\n' -> 'Ċ'). hearth keeps raw bytes internally and converts only at load time.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hearth::tok {

// Code point that represents byte b in byte-level vocab strings.
char32_t byte_to_char(uint8_t b);

// Inverse mapping; nullopt for code points outside the 256 used ones.
std::optional<uint8_t> char_to_byte(char32_t c);

// Converts a byte-level vocab string to raw bytes; nullopt if some code point is not a byte char
// or the string is not valid UTF-8.
std::optional<std::string> byte_level_to_bytes(std::string_view s);

// Raw bytes -> byte-level string (for showing tokens and writing vocab files).
std::string bytes_to_byte_level(std::string_view bytes);

}  // namespace hearth::tok
