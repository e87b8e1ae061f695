#include "server/json_constraint.h"

#include <algorithm>

namespace hearth::server {

namespace {
constexpr const char* kLiterals[] = {"true", "false", "null"};
bool digit(uint8_t c) {
  return c >= '0' && c <= '9';
}
bool hex(uint8_t c) {
  return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
}  // namespace

bool JsonPrefix::whitespace(uint8_t c) {
  if (!ws(c)) return false;
  return ++ws_run_ <= kMaxWhitespaceRun;
}

void JsonPrefix::value_done() {
  if (depth_ == 0) {
    state_ = State::kDone;
  } else {
    state_ = stack_[static_cast<size_t>(depth_ - 1)] == '{' ? State::kObjectNext : State::kArrayNext;
  }
}

bool JsonPrefix::value_start(uint8_t c) {
  ws_run_ = 0;
  switch (c) {
    case '{':
    case '[':
      if (depth_ >= kMaxDepth) return false;
      stack_[static_cast<size_t>(depth_++)] = static_cast<char>(c);
      state_ = c == '{' ? State::kObjectFirst : State::kArrayFirst;
      return true;
    case '"':
      state_ = State::kString;
      is_key_ = false;
      return true;
    case 't':
    case 'f':
    case 'n':
      state_ = State::kLiteral;
      literal_ = c == 't' ? 0 : (c == 'f' ? 1 : 2);
      literal_pos_ = 1;
      return true;
    case '-':
      state_ = State::kNumber;
      num_ = Num::kMinus;
      return true;
    default:
      if (!digit(c)) return false;
      state_ = State::kNumber;
      num_ = c == '0' ? Num::kZero : Num::kInt;
      return true;
  }
}

bool JsonPrefix::after_value(uint8_t c) {
  value_done();
  return feed(c);
}

bool JsonPrefix::feed(uint8_t c) {
  switch (state_) {
    case State::kStart:
      if (c != '{') return false;
      return value_start(c);
    case State::kValue:
      if (ws(c)) return whitespace(c);
      return value_start(c);
    case State::kObjectFirst:
    case State::kObjectKey:
      if (ws(c)) return whitespace(c);
      ws_run_ = 0;
      if (c == '"') {
        state_ = State::kString;
        is_key_ = true;
        return true;
      }
      if (c == '}' && state_ == State::kObjectFirst) {
        --depth_;
        value_done();
        return true;
      }
      return false;
    case State::kColon:
      if (ws(c)) return whitespace(c);
      ws_run_ = 0;
      if (c != ':') return false;
      state_ = State::kValue;
      return true;
    case State::kObjectNext:
    case State::kArrayNext:
      if (ws(c)) return whitespace(c);
      ws_run_ = 0;
      if (c == ',') {
        state_ = state_ == State::kObjectNext ? State::kObjectKey : State::kValue;
        return true;
      }
      if ((c == '}' && state_ == State::kObjectNext) || (c == ']' && state_ == State::kArrayNext)) {
        --depth_;
        value_done();
        return true;
      }
      return false;
    case State::kArrayFirst:
      if (ws(c)) return whitespace(c);
      if (c == ']') {
        ws_run_ = 0;
        --depth_;
        value_done();
        return true;
      }
      return value_start(c);
    case State::kString:
      if (c == '"') {
        if (is_key_) {
          state_ = State::kColon;
        } else {
          value_done();
        }
        return true;
      }
      if (c == '\\') {
        state_ = State::kEscape;
        return true;
      }
      return c >= 0x20;  // control characters must be escaped; UTF-8 bytes pass
    case State::kEscape:
      if (c == 'u') {
        state_ = State::kUnicode;
        hex_left_ = 4;
        unit_ = 0;
        want_low_ = false;
        return true;
      }
      if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
        state_ = State::kString;
        return true;
      }
      return false;
    case State::kUnicode: {
      if (!hex(c)) return false;
      unit_ = static_cast<uint16_t>(unit_ * 16 + (digit(c) ? c - '0' : (c | 0x20) - 'a' + 10));
      if (--hex_left_ > 0) return true;
      // Surrogates must pair (RFC 8259 section 8.2; strict parsers refuse lone ones): a high one is followed
      // at once by the escape of a low one; a low one never stands alone.
      const bool high = unit_ >= 0xD800 && unit_ <= 0xDBFF, low = unit_ >= 0xDC00 && unit_ <= 0xDFFF;
      if (want_low_ != low) return false;
      state_ = high ? State::kLowBackslash : State::kString;
      return true;
    }
    case State::kLowBackslash:
      if (c != '\\') return false;
      state_ = State::kLowU;
      return true;
    case State::kLowU:
      if (c != 'u') return false;
      state_ = State::kUnicode;
      hex_left_ = 4;
      unit_ = 0;
      want_low_ = true;
      return true;
    case State::kLiteral: {
      const char* lit = kLiterals[literal_];
      if (c != static_cast<uint8_t>(lit[literal_pos_])) return false;
      if (lit[++literal_pos_] == '\0') value_done();
      return true;
    }
    case State::kNumber:
      switch (num_) {
        case Num::kMinus:
          if (!digit(c)) return false;
          num_ = c == '0' ? Num::kZero : Num::kInt;
          return true;
        case Num::kZero:
        case Num::kInt:
          if (digit(c) && num_ == Num::kInt) return true;
          if (c == '.') {
            num_ = Num::kDot;
            return true;
          }
          if (c == 'e' || c == 'E') {
            num_ = Num::kExp;
            return true;
          }
          return after_value(c);
        case Num::kDot:
          if (!digit(c)) return false;
          num_ = Num::kFrac;
          return true;
        case Num::kFrac:
          if (digit(c)) return true;
          if (c == 'e' || c == 'E') {
            num_ = Num::kExp;
            return true;
          }
          return after_value(c);
        case Num::kExp:
          if (c == '+' || c == '-') {
            num_ = Num::kExpSign;
            return true;
          }
          [[fallthrough]];
        case Num::kExpSign:
          if (!digit(c)) return false;
          num_ = Num::kExpInt;
          return true;
        case Num::kExpInt:
          if (digit(c)) return true;
          return after_value(c);
      }
      return false;
    case State::kDone: return false;
  }
  return false;
}

std::shared_ptr<const JsonTokenTable> JsonTokenTable::build(const tok::Tokenizer& tokenizer,
                                                            int64_t vocab_size,
                                                            std::vector<int32_t> stop_ids) {
  auto t = std::make_shared<JsonTokenTable>();
  t->bytes.resize(static_cast<size_t>(std::max<int64_t>(vocab_size, 0)));
  for (int64_t id = 0; id < vocab_size; ++id) {
    const auto i = static_cast<int32_t>(id);
    if (!tokenizer.is_valid_id(i) || tokenizer.is_special(i)) continue;
    t->bytes[static_cast<size_t>(id)] = std::string(tokenizer.token_bytes(i));
  }
  t->stop_ids = std::move(stop_ids);
  return t;
}

std::string JsonPrefix::key() const {
  std::string k;
  k.reserve(12 + static_cast<size_t>(std::max<int8_t>(depth_, 0)));
  k.push_back(static_cast<char>(state_));
  k.push_back(static_cast<char>(is_key_));
  k.push_back(static_cast<char>(num_));
  k.push_back(static_cast<char>(hex_left_));
  k.push_back(static_cast<char>(unit_ & 0xFF));
  k.push_back(static_cast<char>(unit_ >> 8));
  k.push_back(static_cast<char>(want_low_));
  k.push_back(static_cast<char>(literal_));
  k.push_back(static_cast<char>(literal_pos_));
  k.push_back(static_cast<char>(ws_run_));
  k.push_back(static_cast<char>(depth_));
  for (int8_t d = 0; d < depth_ && d < kMaxDepth; ++d) k.push_back(stack_[static_cast<size_t>(d)]);
  return k;
}

bool JsonMaskCache::lookup(const std::string& key, std::span<uint8_t> out) {
  const std::lock_guard lock(mu_);
  const auto it = index_.find(key);
  if (it == index_.end()) return false;
  lru_.splice(lru_.begin(), lru_, it->second);
  const std::vector<uint8_t>& mask = it->second->second;
  std::copy_n(mask.begin(), std::min(mask.size(), out.size()), out.begin());
  return true;
}

void JsonMaskCache::insert(const std::string& key, std::span<const uint8_t> mask) {
  if (capacity_ == 0) return;
  const std::lock_guard lock(mu_);
  if (index_.count(key) != 0) return;  // another request computed it meanwhile
  if (lru_.size() >= capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  lru_.emplace_front(key, std::vector<uint8_t>(mask.begin(), mask.end()));
  index_.emplace(key, lru_.begin());
}

size_t JsonMaskCache::size() const {
  const std::lock_guard lock(mu_);
  return lru_.size();
}

void JsonObjectConstraint::fill_allowed(std::span<uint8_t> allowed) {
  std::fill(allowed.begin(), allowed.end(), uint8_t{0});
  if (state_.complete()) {
    for (int32_t id : table_->stop_ids)
      if (id >= 0 && static_cast<size_t>(id) < allowed.size()) allowed[static_cast<size_t>(id)] = 1;
    return;
  }
  const std::string key = state_.key();
  if (table_->masks->lookup(key, allowed)) return;
  const size_t n = std::min(allowed.size(), table_->bytes.size());
  for (size_t id = 0; id < n; ++id) {
    const std::string& b = table_->bytes[id];
    if (b.empty()) continue;
    JsonPrefix trial = state_;
    allowed[id] = trial.feed(b) ? 1 : 0;
  }
  if (n == table_->bytes.size()) table_->masks->insert(key, allowed.first(n));
}

void JsonObjectConstraint::accept(int32_t id) {
  if (id < 0 || static_cast<size_t>(id) >= table_->bytes.size()) return;
  if (state_.complete()) return;  // an end-of-sequence id
  (void)state_.feed(table_->bytes[static_cast<size_t>(id)]);
}

}  // namespace hearth::server
