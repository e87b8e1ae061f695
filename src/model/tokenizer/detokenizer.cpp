#include "model/tokenizer/detokenizer.h"

#include "core/utf8.h"

namespace hearth::tok {

Status IncrementalDetokenizer::push(int32_t id, std::string* delta) {
  if (!tokenizer_->is_valid_id(id)) {
    return make_error(ErrorCode::kOutOfRange, "token id {} is outside the vocabulary", id);
  }
  if (skip_special_ && tokenizer_->is_special(id)) return Status::ok();
  pending_ += tokenizer_->token_bytes(id);
  // Hold back a trailing prefix of a character that may still be completed; everything before it
  // is final (lossy repair of a maximal invalid subpart never depends on later bytes).
  const size_t hold = utf8::incomplete_tail(pending_);
  const size_t ready = pending_.size() - hold;
  if (ready == 0) return Status::ok();
  *delta += utf8_lossy(std::string_view(pending_).substr(0, ready));
  pending_.erase(0, ready);
  return Status::ok();
}

std::string IncrementalDetokenizer::finish() {
  std::string out = utf8_lossy(pending_);
  pending_.clear();
  return out;
}

}  // namespace hearth::tok
