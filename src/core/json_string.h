#pragma once
// Appends a JSON string literal (quotes included) for text that is already valid UTF-8: the escapes
// JSON requires (quote, backslash, control characters), bytes >= 0x80 passed through. For hot paths
// that format JSON by hand (the server's per-token chunks, its fixed error bodies).
#include <string>
#include <string_view>

namespace hearth {

inline void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c >= 0x20) {
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  out += '"';
}

}  // namespace hearth
