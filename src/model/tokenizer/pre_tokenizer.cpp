#include "model/tokenizer/pre_tokenizer.h"

namespace hearth::tok {

const char* const kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

namespace {

// Splits one piece by the step's matches, appending the resulting pieces to out. Mirrors HF's
// NormalizedString::split: the piece becomes a list of (span, is_match) covering it, then the
// behavior decides what is kept and what is merged.
Status split_piece(const PreTokenizerStep& step, std::string_view text, Span piece,
                   std::vector<Span>* matches, std::vector<Span>* out) {
  matches->clear();
  HEARTH_RETURN_IF_ERROR(step.regex->find_all(text, piece.begin, piece.end, matches));
  if (step.behavior == PreTokenizerStep::Behavior::kIsolated && !step.invert) {
    // Every tokenizer hearth targets uses this form: matches and the gaps between them, in order.
    uint32_t pos = piece.begin;
    for (const Span& m : *matches) {
      if (m.begin > pos) out->push_back({pos, m.begin});
      out->push_back(m);
      pos = m.end;
    }
    if (pos < piece.end) out->push_back({pos, piece.end});
    return Status::ok();
  }
  struct Part {
    Span span;
    bool is_match;
  };
  std::vector<Part> parts;
  parts.reserve(matches->size() * 2 + 1);
  uint32_t pos = piece.begin;
  for (const Span& m : *matches) {
    if (m.begin > pos) parts.push_back({{pos, m.begin}, false});
    parts.push_back({m, true});
    pos = m.end;
  }
  if (pos < piece.end) parts.push_back({{pos, piece.end}, false});
  if (step.invert) {
    for (auto& p : parts) p.is_match = !p.is_match;
  }
  using B = PreTokenizerStep::Behavior;
  const size_t first = out->size();
  bool previous_match = false;
  switch (step.behavior) {
    case B::kRemoved:
      for (const auto& p : parts) {
        if (!p.is_match) out->push_back(p.span);
      }
      break;
    case B::kIsolated:
      for (const auto& p : parts) out->push_back(p.span);
      break;
    case B::kMergedWithPrevious:
      for (const auto& p : parts) {
        if (p.is_match && !previous_match && out->size() > first) {
          out->back().end = p.span.end;
        } else {
          out->push_back(p.span);
        }
        previous_match = p.is_match;
      }
      break;
    case B::kMergedWithNext: {
      std::vector<Span> rev;
      for (size_t i = parts.size(); i-- > 0;) {
        const auto& p = parts[i];
        if (p.is_match && !previous_match && !rev.empty()) {
          rev.back().begin = p.span.begin;
        } else {
          rev.push_back(p.span);
        }
        previous_match = p.is_match;
      }
      out->insert(out->end(), rev.rbegin(), rev.rend());
      break;
    }
    case B::kContiguous:
      for (const auto& p : parts) {
        if (p.is_match == previous_match && out->size() > first) {
          out->back().end = p.span.end;
        } else {
          out->push_back(p.span);
        }
        previous_match = p.is_match;
      }
      break;
  }
  return Status::ok();
}

}  // namespace

Status pre_tokenize(const std::vector<PreTokenizerStep>& steps, std::string_view text,
                    std::vector<Span>* pieces, std::vector<Span>* scratch) {
  pieces->clear();
  if (text.empty()) return Status::ok();
  pieces->push_back({0, static_cast<uint32_t>(text.size())});
  std::vector<Span> next;
  for (const auto& step : steps) {
    if (!step.regex) continue;  // ByteLevel without regex only maps bytes: nothing to split
    next.clear();
    next.reserve(pieces->size() * 2);
    for (const Span& p : *pieces) HEARTH_RETURN_IF_ERROR(split_piece(step, text, p, scratch, &next));
    pieces->swap(next);
  }
  return Status::ok();
}

}  // namespace hearth::tok
