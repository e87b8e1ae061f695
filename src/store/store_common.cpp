#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <unistd.h>
#include <cerrno>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <utility>

#include "store/store_internal.h"

namespace hearth::store {
namespace {

constexpr std::string_view kKeyPrefix = "hk_";
constexpr size_t kPrefixChars = 8;
constexpr size_t kSecretChars = 43;  // 43 base62 digits > 256 bits
constexpr std::string_view kBase62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

std::string hex(const unsigned char* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = d[p[i] >> 4];
    s[2 * i + 1] = d[p[i] & 15];
  }
  return s;
}

// Uniform base62 characters from the OS CSPRNG (rejection sampling: no modulo bias).
Result<std::string> random_base62(size_t n) {
  std::string out;
  while (out.size() < n) {
    std::array<unsigned char, 64> buf{};
    if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1)
      return make_error(ErrorCode::kInternal, "the system's random generator failed (RAND_bytes)");
    for (unsigned char b : buf) {
      if (b >= 248) continue;  // 248 = 4 * 62
      out.push_back(kBase62[b % 62]);
      if (out.size() == n) break;
    }
  }
  return out;
}

// The key file's first line; created when absent with 32 random bytes, 0600, all or nothing: written to a
// private temporary file, then link()ed into place, so processes starting together agree on one key and
// none reads a half-written file.
Result<std::string> read_or_create_key_file(const std::string& path) {
  auto read = [&]() -> Result<std::string> {
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line))
      return make_error(ErrorCode::kIo, "cannot read the audit key file {}", path);
    return line;
  };
  if (::access(path.c_str(), F_OK) == 0) return read();
  std::array<unsigned char, 32> k{};
  if (RAND_bytes(k.data(), static_cast<int>(k.size())) != 1)
    return make_error(ErrorCode::kInternal, "the system's random generator failed (RAND_bytes)");
  const std::string line = hex(k.data(), k.size()) + "\n";
  std::string tmp = path + ".XXXXXX";
  const int fd = ::mkstemp(tmp.data());  // 0600
  if (fd < 0) return make_error(ErrorCode::kIo, "cannot create the audit key file {}", path);
  const bool ok =
      ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  const bool linked = ok && ::link(tmp.c_str(), path.c_str()) == 0;
  const int link_errno = errno;
  ::unlink(tmp.c_str());
  if (!ok) return make_error(ErrorCode::kIo, "cannot write the audit key file {}", path);
  if (!linked && link_errno != EEXIST)
    return make_error(ErrorCode::kIo, "cannot create the audit key file {}", path);
  return read();  // ours, or the one another process linked first
}

}  // namespace

bool looks_like_api_key(std::string_view s) {
  if (s.size() != kKeyPrefix.size() + kPrefixChars + 1 + kSecretChars ||
      s.substr(0, kKeyPrefix.size()) != kKeyPrefix)
    return false;
  if (s[kKeyPrefix.size() + kPrefixChars] != '_') return false;
  for (size_t i = kKeyPrefix.size(); i < s.size(); ++i) {
    if (i == kKeyPrefix.size() + kPrefixChars) continue;
    if (kBase62.find(s[i]) == std::string_view::npos) return false;
  }
  return true;
}

std::string api_key_prefix(std::string_view key) {
  if (!looks_like_api_key(key)) return {};
  return std::string(key.substr(0, kKeyPrefix.size() + kPrefixChars));
}

std::string credential_hash(std::string_view credential) {
  return detail::sha256_hex(credential);
}

namespace detail {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status validate_tenant(const std::string& name, const TenantLimits& l) {
  if (name.empty() || name.size() > 128 || std::any_of(name.begin(), name.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
      }))
    return make_error(ErrorCode::kInvalidArgument,
                      "tenant name must be 1-128 characters without control characters");
  if (l.rpm < 0 || l.tpm < 0 || l.budget_tokens < 0 || l.budget_tokens_day < 0 || l.budget_tokens_month < 0 ||
      l.budget_money_day < 0 || l.budget_money_month < 0)
    return make_error(ErrorCode::kInvalidArgument, "tenant limits must be >= 0 (0 = unlimited)");
  if (l.models.size() > 1024)
    return make_error(ErrorCode::kInvalidArgument, "a tenant's model list holds at most 1024 models");
  for (const std::string& m : l.models) {
    if (m.empty() || m.size() > 256 || std::any_of(m.begin(), m.end(), [](char c) {
          return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
        }))
      return make_error(ErrorCode::kInvalidArgument,
                        "model names must be 1-256 characters without control characters, got '{}'", m);
  }
  return Status::ok();
}

Status validate_admin(const AdminAccount& a) {
  if (a.name.empty() || a.name.size() > 64 || std::any_of(a.name.begin(), a.name.end(), [](char c) {
        return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
      }))
    return make_error(ErrorCode::kInvalidArgument,
                      "an administrator needs a name of 1-64 characters without spaces");
  if (a.role != "system" && a.role != "security" && a.role != "audit")
    return make_error(ErrorCode::kInvalidArgument, "role must be system, security or audit, got '{}'",
                      a.role);
  if (a.password_hash.empty())
    return make_error(ErrorCode::kInvalidArgument, "an administrator needs a password");
  if (a.name.find(':') != std::string::npos && a.password_hash != kExternalAdminPassword)
    return make_error(
        ErrorCode::kInvalidArgument,
        "administrator names with ':' are reserved for identity-provider accounts (oidc:, ldap:)");
  return Status::ok();
}

Status validate_tier(const Tier& t) {
  if (t.name.empty() || t.name.size() > 64 || std::any_of(t.name.begin(), t.name.end(), [](char c) {
        return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
      }))
    return make_error(ErrorCode::kInvalidArgument, "a tier needs a name of 1-64 characters without spaces");
  constexpr int64_t kMax = 1'000'000'000'000'000;
  if (t.base_fee_micros < 0 || t.per_call_micros < 0 || t.included_calls < 0 || t.base_fee_micros > kMax ||
      t.per_call_micros > kMax)
    return make_error(ErrorCode::kInvalidArgument, "tier fees and included calls must be >= 0");
  return Status::ok();
}

Status validate_price(const Price& p) {
  if (p.model.empty() || p.model.size() > 256 || std::any_of(p.model.begin(), p.model.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
      }))
    return make_error(ErrorCode::kInvalidArgument, "a priced model needs a name of 1-256 characters");
  if (p.currency.size() != 3 ||
      !std::all_of(p.currency.begin(), p.currency.end(), [](char c) { return c >= 'A' && c <= 'Z'; }))
    return make_error(ErrorCode::kInvalidArgument,
                      "currency '{}' is not an ISO 4217 code (e.g. USD, CNY, EUR)", p.currency);
  constexpr int64_t kMax = 1'000'000'000'000;
  for (int64_t v : {p.input_micros, p.cached_micros, p.output_micros, p.request_micros})
    if (v < 0 || v > kMax)
      return make_error(ErrorCode::kInvalidArgument, "prices must be in [0, 1,000,000] currency units");
  return Status::ok();
}

std::string join_models(const std::vector<std::string>& models) {
  std::string out;
  for (const std::string& m : models) {
    if (!out.empty()) out.push_back('\n');
    out += m;
  }
  return out;
}

std::vector<std::string> split_models(std::string_view stored) {
  std::vector<std::string> out;
  while (!stored.empty()) {
    const size_t nl = stored.find('\n');
    if (nl != 0) out.emplace_back(stored.substr(0, nl));
    if (nl == std::string_view::npos) break;
    stored.remove_prefix(nl + 1);
  }
  return out;
}

std::string sha256_hex(std::string_view s) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> h{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), h.data());
  return hex(h.data(), h.size());
}

bool key_hash_matches(const std::string& stored_hash, std::string_view presented) {
  const std::string got = sha256_hex(presented);
  return stored_hash.size() == got.size() && CRYPTO_memcmp(stored_hash.data(), got.data(), got.size()) == 0;
}

Result<NewApiKey> new_key_material() {
  HEARTH_ASSIGN_OR_RETURN(std::string pre, random_base62(kPrefixChars));
  HEARTH_ASSIGN_OR_RETURN(std::string secret, random_base62(kSecretChars));
  NewApiKey k;
  k.info.prefix = std::string(kKeyPrefix) + pre;
  k.key = k.info.prefix + "_" + secret;
  k.info.created_ms = now_ms();
  return k;
}

Result<AuditMac> AuditMac::load(const std::string& key_file) {
  std::string hexkey;
  if (const char* e = std::getenv("HEARTH_AUDIT_KEY"); e != nullptr && *e != '\0') {
    hexkey = e;
  } else if (!key_file.empty()) {
    HEARTH_ASSIGN_OR_RETURN(hexkey, read_or_create_key_file(key_file));
  } else {
    return make_error(ErrorCode::kInvalidArgument,
                      "set HEARTH_AUDIT_KEY (hex, at least 16 bytes) to the audit log's HMAC key");
  }
  if (hexkey.size() < 32 || hexkey.size() % 2 != 0 ||
      hexkey.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
    return make_error(ErrorCode::kInvalidArgument, "the audit key must be at least 16 bytes of hex");
  AuditMac m;
  for (size_t i = 0; i < hexkey.size(); i += 2)
    m.key_.push_back(static_cast<unsigned char>(std::stoi(hexkey.substr(i, 2), nullptr, 16)));
  return m;
}

std::string AuditMac::mac(std::string_view msg) const {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &len);
  return hex(out, len);
}

// Length-prefixed fields: no two different records serialise alike.
std::string AuditMac::record(int64_t seq, int64_t ts, const std::string& actor, const std::string& action,
                             const std::string& detail, const std::string& prev) const {
  return mac(fmt::format("audit|{}|{}|{}:{}|{}:{}|{}:{}|{}", seq, ts, actor.size(), actor, action.size(),
                         action, detail.size(), detail, prev));
}

std::string AuditMac::head(int64_t seq, const std::string& hash) const {
  return mac(fmt::format("head|{}|{}", seq, hash));
}

std::string AuditMac::anchor(int64_t seq, const std::string& hash) const {
  return mac(fmt::format("anchor|{}|{}", seq, hash));
}

void ChainVerifier::start(const std::optional<AuditHead>& anchor) {
  if (!anchor) return;
  if (mac_.anchor(anchor->seq, anchor->hash) != anchor->mac) {
    bad(anchor->seq + 1, "the anchor left by pruning was modified");
    return;
  }
  expect_ = anchor->seq + 1;
  prev_ = anchor->hash;
}

void ChainVerifier::bad(int64_t seq, std::string why) {
  v_.intact = false;
  v_.first_bad_seq = seq;
  v_.reason = std::move(why);
}

bool ChainVerifier::add(const AuditRow& r) {
  if (!v_.intact) return false;
  ++v_.records;
  if (r.seq != expect_) {
    bad(expect_, fmt::format("record {} is missing (the next one is {})", expect_, r.seq));
    return false;
  }
  if (r.prev_hash != prev_) {
    bad(r.seq, fmt::format("record {} does not link to record {}", r.seq, r.seq - 1));
    return false;
  }
  const std::string h = mac_.record(r.seq, r.ts_ms, r.actor, r.action, r.detail, prev_);
  if (h != r.hash) {
    bad(r.seq, fmt::format("record {} was modified (its MAC does not match)", r.seq));
    return false;
  }
  prev_ = h;
  ++expect_;
  return true;
}

AuditVerdict ChainVerifier::finish(const std::optional<AuditHead>& head) {
  if (!v_.intact) return v_;
  // The head catches removal of the last records, which the chain alone cannot show.
  const int64_t last = expect_ - 1;

  if (head) {
    if (mac_.head(head->seq, head->hash) != head->mac) {
      bad(head->seq, "the audit head was modified");
    } else if (head->seq != last || head->hash != prev_) {
      bad(last + 1, fmt::format("records after {} were removed (the head says {})", last, head->seq));
    }
  } else if (last != 0) {
    bad(1, "the audit head is missing");
  }
  return v_;
}

}  // namespace detail
bool model_allowed(const TenantLimits& limits, std::string_view model) {
  return limits.models.empty() ||
         std::find(limits.models.begin(), limits.models.end(), model) != limits.models.end();
}

int64_t request_cost_micros(const Price& p, int64_t prompt_tokens, int64_t cached_tokens,
                            int64_t completion_tokens) {
  // sum(tokens_i * price_i) / 10^6, rounded up once, saturating at INT64_MAX: each tokens_i = q * 10^6 + r,
  // so the whole part is q * price + (r * price) / 10^6 and the fractions (each < 10^6) add up exactly.
  const int64_t prompt = std::max<int64_t>(0, prompt_tokens);
  const int64_t cached = std::clamp<int64_t>(cached_tokens, 0, prompt);
  const std::pair<int64_t, int64_t> terms[] = {{prompt - cached, p.input_micros},
                                               {cached, p.cached_micros},
                                               {std::max<int64_t>(0, completion_tokens), p.output_micros}};
  int64_t whole = 0, frac = 0;
  bool overflow = false;
  for (const auto& [tokens, price] : terms) {
    int64_t q = 0;
    overflow |= __builtin_mul_overflow(tokens / 1'000'000, price, &q);
    int64_t rp = 0;  // < 10^18 for prices the store accepts (<= 10^12)
    overflow |= __builtin_mul_overflow(tokens % 1'000'000, price, &rp);
    overflow |= __builtin_add_overflow(whole, q, &whole);
    overflow |= __builtin_add_overflow(whole, rp / 1'000'000, &whole);
    frac += rp % 1'000'000;
  }
  overflow |= __builtin_add_overflow(whole, (frac + 999'999) / 1'000'000, &whole);
  overflow |= __builtin_add_overflow(whole, p.request_micros, &whole);
  return overflow ? INT64_MAX : whole;
}

Result<int64_t> parse_money(std::string_view text, std::string_view what) {
  const auto bad = [&] {
    return make_error(ErrorCode::kInvalidArgument,
                      "{} '{}' is not an amount (digits, optionally '.' and up to 6 decimals, e.g. 12.50)",
                      what, text.substr(0, 40));
  };
  if (text.empty() || text.size() > 20) return bad();
  int64_t units = 0, micros = 0;
  size_t i = 0, int_digits = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++int_digits) {
    units = units * 10 + (text[i] - '0');
    if (units > 1'000'000'000'000) return bad();
  }
  int decimals = 0;
  if (i < text.size() && text[i] == '.') {
    for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      if (++decimals > 6) return bad();
      micros = micros * 10 + (text[i] - '0');
    }
    if (decimals == 0) return bad();
  }
  if (i != text.size() || int_digits == 0) return bad();
  for (int d = decimals; d < 6; ++d) micros *= 10;
  return units * 1'000'000 + micros;
}

std::string format_money(int64_t micros) {
  const bool neg = micros < 0;
  const uint64_t m = neg ? 0 - static_cast<uint64_t>(micros) : static_cast<uint64_t>(micros);
  std::string frac = fmt::format("{:06d}", m % 1'000'000);
  while (frac.size() > 2 && frac.back() == '0') frac.pop_back();
  return fmt::format("{}{}.{}", neg ? "-" : "", m / 1'000'000, frac);
}

}  // namespace hearth::store
