#include "gateway/authn_filter.h"

#include <fmt/format.h>
#include <openssl/sha.h>

#include <array>

namespace hearth::gateway {
namespace {

std::string sha256_hex(std::string_view s) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> h{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), h.data());
  static const char* d = "0123456789abcdef";
  std::string out(h.size() * 2, '0');
  for (size_t i = 0; i < h.size(); ++i) {
    out[2 * i] = d[h[i] >> 4];
    out[2 * i + 1] = d[h[i] & 15];
  }
  return out;
}

}  // namespace

AuthnFilter::AuthnFilter(AuthnConfig config, store::Store& store, RecordWriter& records, Registry& metrics)
    : config_(config), store_(store), records_(records) {
  failures_ = metrics
                  .counter("hearth_gateway_auth_failures", "Requests refused by authentication, by reason.",
                           {"reason"})
                  .value();
}

std::string_view AuthnFilter::bearer_token(std::string_view v) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  if (v.size() < 7) return {};
  const std::string_view scheme = v.substr(0, 6);
  if (!(scheme == "Bearer" || scheme == "bearer" || scheme == "BEARER") || v[6] != ' ') return {};
  v.remove_prefix(7);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

Rejection AuthnFilter::deny(RequestContext& ctx, const std::string& who, const char* reason,
                            std::string message) {
  failures_->labels({reason}).inc();
  records_.audit(
      {who, "auth.deny",
       fmt::format("{} {} {} request={}", reason, ctx.info.method, ctx.info.path, ctx.request_id)});
  Rejection r;
  r.status = 401;
  r.message = std::move(message);
  r.code = "invalid_api_key";
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

std::optional<Rejection> AuthnFilter::on_request(RequestContext& ctx) {
  const std::string_view token = bearer_token(ctx.info.authorization);
  if (token.empty()) {
    return deny(ctx, "anonymous", "missing",
                "no API key: send it as 'Authorization: Bearer hk_...' (hearth admin key create makes one)");
  }
  if (!store::looks_like_api_key(token)) {
    return deny(ctx, "anonymous", "malformed",
                "the API key is not a hearth key (they look like hk_XXXXXXXX_...)");
  }
  const std::string who = store::api_key_prefix(token);
  const std::string hash = sha256_hex(token);
  const Clock::time_point now = Clock::now();
  std::optional<store::ApiKeyInfo> info;
  {
    std::lock_guard lk(mu_);
    if (auto it = cache_.find(hash); it != cache_.end()) {
      if (it->second.until > now) {
        info = it->second.info;
      } else {
        cache_.erase(it);
      }
    }
  }
  if (!info) {
    auto r = store_.authenticate(token);
    if (!r.is_ok()) {
      failures_->labels({"store_error"}).inc();
      return unavailable("the gateway cannot check credentials right now (its store failed); retry shortly");
    }
    if (!r->has_value()) return deny(ctx, who, "invalid", "the API key is unknown, revoked or expired");
    info = **r;
    std::lock_guard lk(mu_);
    if (cache_.size() >= config_.max_cache_entries) cache_.clear();
    cache_[hash] = {*info, now + std::chrono::milliseconds(config_.cache_ttl_ms)};
  }
  // An expiry passed since the key was cached.
  const int64_t wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  if (info->expires_ms != 0 && info->expires_ms <= wall_ms)
    return deny(ctx, who, "invalid", "the API key is unknown, revoked or expired");
  ctx.tenant = info->tenant;
  ctx.key_id = info->id;
  ctx.key_prefix = who;
  records_.audit({who, "auth.allow",
                  fmt::format("tenant={} {} {} request={}", ctx.tenant, ctx.info.method, ctx.info.path,
                              ctx.request_id)});
  return std::nullopt;
}

}  // namespace hearth::gateway
