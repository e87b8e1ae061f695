#include "model/tokenizer/added_vocab.h"

#include <utf8proc.h>

#include "core/utf8.h"

namespace hearth::tok {
namespace {

// Rust's char::is_whitespace (Unicode White_Space).
bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

bool is_word_char(char32_t c) {
  if (c == '_') return true;
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
         (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

// The code point that ends just before byte offset i (text is valid UTF-8).
char32_t prev_char(std::string_view text, size_t i, size_t* start) {
  size_t j = i;
  do {
    --j;
  } while (j > 0 && (static_cast<uint8_t>(text[j]) & 0xC0) == 0x80);
  *start = j;
  size_t k = j;
  return utf8::decode(text, k);
}

}  // namespace

int32_t AddedVocab::child(int32_t node, uint8_t b) const {
  for (int32_t c = nodes_[static_cast<size_t>(node)].first_child; c >= 0;
       c = nodes_[static_cast<size_t>(c)].next_sibling) {
    if (nodes_[static_cast<size_t>(c)].byte == b) return c;
  }
  return -1;
}

void AddedVocab::build(std::vector<AddedToken> tokens) {
  tokens_ = std::move(tokens);
  nodes_.assign(1, Node{});
  for (auto& f : first_byte_) f = false;
  for (size_t t = 0; t < tokens_.size(); ++t) {
    const std::string& s = tokens_[t].content;
    if (s.empty()) continue;
    first_byte_[static_cast<uint8_t>(s[0])] = true;
    int32_t node = 0;
    for (unsigned char b : s) {
      int32_t c = child(node, b);
      if (c < 0) {
        Node n;
        n.byte = b;
        n.next_sibling = nodes_[static_cast<size_t>(node)].first_child;
        nodes_.push_back(n);
        c = static_cast<int32_t>(nodes_.size() - 1);
        nodes_[static_cast<size_t>(node)].first_child = c;
      }
      node = c;
    }
    // Two tokens with the same content: the first registered wins.
    if (nodes_[static_cast<size_t>(node)].token < 0)
      nodes_[static_cast<size_t>(node)].token = static_cast<int32_t>(t);
  }
}

void AddedVocab::find(std::string_view text, bool include_special, std::vector<AddedMatch>* out) const {
  out->clear();
  if (tokens_.empty()) return;
  const size_t n = text.size();
  size_t i = 0;
  size_t floor = 0;  // matches may not extend (lstrip) before the end of the previous match
  while (i < n) {
    if (!first_byte_[static_cast<uint8_t>(text[i])]) {
      ++i;
      continue;
    }
    // Longest token starting at i.
    int32_t node = 0, best = -1;
    size_t best_end = 0;
    for (size_t j = i; j < n; ++j) {
      node = child(node, static_cast<uint8_t>(text[j]));
      if (node < 0) break;
      int32_t t = nodes_[static_cast<size_t>(node)].token;
      if (t >= 0 && (include_special || !tokens_[static_cast<size_t>(t)].special)) {
        best = t;
        best_end = j + 1;
      }
    }
    if (best < 0) {
      ++i;
      continue;
    }
    const AddedToken& tok = tokens_[static_cast<size_t>(best)];
    if (tok.single_word) {
      bool ok = true;
      if (i > 0) {
        size_t ps;
        ok = !is_word_char(prev_char(text, i, &ps));
      }
      if (ok && best_end < n && utf8::valid_sequence_length(text, best_end) > 0) {
        size_t k = best_end;
        ok = !is_word_char(utf8::decode(text, k));
      }
      if (!ok) {
        ++i;
        continue;
      }
    }
    size_t b = i, e = best_end;
    if (tok.lstrip) {
      while (b > floor) {
        size_t ps;
        char32_t c = prev_char(text, b, &ps);
        if (!is_white_space(c) || ps < floor) break;
        b = ps;
      }
    }
    if (tok.rstrip) {
      while (e < n) {
        size_t k = e;
        if (utf8::valid_sequence_length(text, k) == 0) break;
        char32_t c = utf8::decode(text, k);
        if (!is_white_space(c)) break;
        e = k;
      }
    }
    out->push_back({static_cast<uint32_t>(b), static_cast<uint32_t>(e), tok.id});
    i = e;
    floor = e;
  }
}

}  // namespace hearth::tok
