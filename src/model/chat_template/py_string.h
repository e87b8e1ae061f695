#pragma once
// Python str semantics over UTF-8 std::string: code point lengths, whitespace as str.isspace()
// defines it, strip/split/splitlines, case mappings (Unicode simple case mapping via utf8proc;
// Python's full mapping differs for a few characters such as 'ß'.upper()).
// Inputs must be valid UTF-8 (the interpreter only ever holds valid UTF-8).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::jinja::pystr {

std::u32string decode(std::string_view s);
std::string encode(std::u32string_view s);
size_t length(std::string_view s);  // in code points
bool is_ascii(std::string_view s);

bool is_space(char32_t c);  // str.isspace()
bool is_alpha(char32_t c);
bool is_decimal(char32_t c);
bool is_digit(char32_t c);
bool is_numeric(char32_t c);
bool is_alnum(char32_t c);
bool is_lower(char32_t c);
bool is_upper(char32_t c);
bool is_cased(char32_t c);
bool is_word(char32_t c);  // regex \w: alphanumeric or '_'

// strip/lstrip/rstrip: chars == nullopt strips whitespace, otherwise any of the given characters.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// str.split / str.rsplit; sep == nullopt splits on whitespace runs. sep must not be empty.
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> splitlines(std::string_view s, bool keepends);
// str.replace; count < 0 replaces all.
std::string replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count);
int64_t count(std::string_view s, std::string_view sub);
// Code point index of the first/last occurrence, or -1.
int64_t find(std::string_view s, std::string_view sub);
int64_t rfind(std::string_view s, std::string_view sub);

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string swapcase(std::string_view s);
std::string capitalize(std::string_view s);   // str.capitalize()
std::string title(std::string_view s);        // str.title()
std::string jinja_title(std::string_view s);  // Jinja's `title` filter (words split at -, space, ( { [ <)

}  // namespace hearth::jinja::pystr
