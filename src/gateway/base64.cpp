#include "gateway/base64.h"

#include <cstdint>

namespace hearth::gateway {
namespace {

// The 6-bit value of ch in the alphabet whose last two characters are c62 and c63, or -1.
int sextet(char ch, char c62, char c63) {
  if (ch >= 'A' && ch <= 'Z') return ch - 'A';
  if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9') return ch - '0' + 52;
  if (ch == c62) return 62;
  if (ch == c63) return 63;
  return -1;
}

bool decode(std::string_view in, std::string& out, char c62, char c63) {
  out.clear();
  if (in.size() % 4 == 1) return false;
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    const int v = sextet(ch, c62, c63);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // Canonical only: the bits past the last byte must be zero, or "...Q" and "...R" would both decode to the
  // same bytes and a credential would have several valid spellings.
  return bits == 0 || (acc & ((1u << bits) - 1)) == 0;
}

}  // namespace

bool base64url_decode(std::string_view in, std::string& out) {
  return decode(in, out, '-', '_');
}

bool base64_decode(std::string_view in, std::string& out) {
  out.clear();
  if (in.size() % 4 != 0) return false;
  size_t pad = 0;
  while (pad < 2 && pad < in.size() && in[in.size() - 1 - pad] == '=') ++pad;
  return decode(in.substr(0, in.size() - pad), out, '+', '/');
}

std::string base64url_encode(std::string_view in) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(a[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(a[(acc << (6 - bits)) & 63]);
  return out;
}

}  // namespace hearth::gateway
