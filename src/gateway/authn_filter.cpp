#include "gateway/authn_filter.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <iterator>

namespace hearth::gateway {

namespace {
// The sign-in cache's key for directory credentials (SHA-256; the plain material is wiped).
std::string ldap_cache_key(const BasicCredentials& creds) {
  std::string material = "ldap\n" + creds.user + "\n" + creds.password;
  std::string hash = store::credential_hash(material);
  std::fill(material.begin(), material.end(), '\0');
  return hash;
}
}  // namespace

AuthnFilter::AuthnFilter(AuthnConfig config, store::Store& store, RecordWriter& records, Registry& metrics)
    : config_(config), store_(store), records_(records) {
  failures_ = metrics
                  .counter("hearth_gateway_auth_failures", "Requests refused by authentication, by reason.",
                           {"reason"})
                  .value();
}

Result<std::unique_ptr<AuthnFilter>> AuthnFilter::create(AuthnConfig config, store::Store& store,
                                                         RecordWriter& records, Registry& metrics) {
  std::unique_ptr<AuthnFilter> f(new AuthnFilter(std::move(config), store, records, metrics));
  if (!f->config_.oidc.jwks.location.empty()) {
    HEARTH_ASSIGN_OR_RETURN(f->jwks_, JwksSource::create(f->config_.oidc.jwks));
  }
  return f;
}

bool AuthnFilter::tenant_exists(const std::string& tenant) {
  const Clock::time_point now = Clock::now();
  {
    std::lock_guard lk(mu_);
    if (auto it = tenants_.find(tenant); it != tenants_.end() && it->second > now) return true;
  }
  auto all = store_.list_tenants();
  if (!all.is_ok()) return false;
  std::lock_guard lk(mu_);
  tenants_.clear();
  for (const auto& t : *all) tenants_[t.name] = now + std::chrono::milliseconds(config_.cache_ttl_ms);
  return tenants_.count(tenant) != 0;
}

std::optional<Rejection> AuthnFilter::on_jwt(RequestContext& ctx, std::string_view token) {
  const std::string hash = store::credential_hash(token);
  const Clock::time_point now = Clock::now();
  {
    std::lock_guard lk(mu_);
    if (auto it = cache_.find(hash); it != cache_.end() && it->second.until > now) {
      ctx.tenant = it->second.info.tenant;
      ctx.key_prefix = it->second.info.prefix;
      ctx.user = it->second.info.prefix;
      return std::nullopt;
    }
  }
  const int64_t wall_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  auto claims = verify_jwt(token, *jwks_->current(), config_.oidc.policy, wall_s);
  if (!claims.is_ok() && claims.status().code() == ErrorCode::kNotFound && jwks_->refresh_for_unknown_key())
    claims = verify_jwt(token, *jwks_->current(), config_.oidc.policy, wall_s);  // the provider rotated keys
  if (!claims.is_ok())
    return deny(ctx, "oidc", "invalid_token", "the bearer token was refused: " + claims.status().message());
  const std::string who =
      "oidc:" + (claims->subject.empty() ? std::string("?") : claims->subject.substr(0, 128));
  auto tc = claims->all.find(config_.oidc.tenant_claim);
  if (tc == claims->all.end() || !tc->is_string())
    return deny(ctx, who, "no_tenant",
                fmt::format("the token has no '{}' claim naming a tenant", config_.oidc.tenant_claim));
  const std::string tenant = tc->get<std::string>();
  if (!tenant_exists(tenant))
    return deny(ctx, who, "unknown_tenant",
                fmt::format("the token's tenant '{}' does not exist here", tenant));
  ctx.tenant = tenant;
  ctx.key_prefix = who;
  ctx.user = who;
  store::ApiKeyInfo info;
  info.tenant = tenant;
  info.prefix = who;
  const auto until = std::min(now + std::chrono::milliseconds(config_.cache_ttl_ms),
                              now + std::chrono::seconds(std::max<int64_t>(0, claims->expires_s - wall_s)));
  {
    std::lock_guard lk(mu_);
    if (cache_.size() >= config_.max_cache_entries) cache_.clear();
    cache_[hash] = {info, until};
  }
  records_.audit({who, "auth.allow",
                  fmt::format("tenant={} iss={} {} {} request={}", tenant, claims->issuer, ctx.info.method,
                              ctx.info.path, ctx.request_id)});
  return std::nullopt;
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
                            std::string message, std::string_view detail) {
  failures_->labels({reason}).inc();
  records_.audit({who, "auth.deny",
                  fmt::format("{} {} {} request={}{}{}", reason, ctx.info.method, ctx.info.path,
                              ctx.request_id, detail.empty() ? "" : " ", detail)});
  Rejection r;
  r.status = 401;
  r.message = std::move(message);
  r.code = "invalid_api_key";
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  if (config_.ldap) r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"hearth\", charset=\"UTF-8\"");
  return r;
}

std::optional<Rejection> AuthnFilter::on_basic(RequestContext& ctx, const BasicCredentials& creds) {
  const std::string who = "ldap:" + creds.user.substr(0, 128);
  const std::string hash = ldap_cache_key(creds);
  const Clock::time_point now = Clock::now();
  const auto window = std::chrono::milliseconds(config_.ldap_lockout_ms);
  {
    std::lock_guard lk(mu_);
    if (auto it = cache_.find(hash); it != cache_.end() && it->second.until > now) {
      ctx.tenant = it->second.info.tenant;
      ctx.key_prefix = it->second.info.prefix;
      ctx.user = it->second.info.prefix;
      return std::nullopt;
    }
    if (auto it = ldap_failures_.find(creds.user); it != ldap_failures_.end()) {
      if (it->second.since + window <= now) {
        ldap_failures_.erase(it);
      } else if (it->second.count >= config_.ldap_max_failures) {
        const auto left = std::chrono::duration_cast<std::chrono::seconds>(it->second.since + window - now);
        return deny(ctx, who, "locked",
                    fmt::format("too many refused sign-ins for this user: locked for another {} s",
                                left.count() + 1));
      }
    }
  }
  const LdapOutcome o = config_.ldap->authenticate(creds.user, creds.password);
  if (o.kind == LdapOutcome::Kind::kUnavailable) {
    failures_->labels({"ldap_unavailable"}).inc();
    records_.audit(
        {who, "auth.error", fmt::format("{} {} request={}", o.reason, ctx.info.path, ctx.request_id)});
    return unavailable("the gateway cannot reach its user directory (LDAP) right now; retry shortly");
  }
  if (o.kind == LdapOutcome::Kind::kDenied) {
    {
      std::lock_guard lk(mu_);
      if (ldap_failures_.size() >= config_.max_cache_entries) ldap_failures_.clear();
      Failures& f = ldap_failures_[creds.user];
      if (f.count == 0) f.since = now;
      ++f.count;
    }
    return deny(ctx, who, "ldap_denied", "the user name or password was refused", o.reason);
  }
  if (o.identity.tenant.empty())
    return deny(ctx, who, "no_tenant", "the user is in no group that maps to a tenant of this gateway",
                "dn=" + o.identity.dn);
  if (!tenant_exists(o.identity.tenant))
    return deny(ctx, who, "unknown_tenant",
                fmt::format("the user's tenant '{}' does not exist here", o.identity.tenant));
  ctx.tenant = o.identity.tenant;
  ctx.key_prefix = who;
  ctx.user = who;
  store::ApiKeyInfo info;
  info.tenant = o.identity.tenant;
  info.prefix = who;
  {
    std::lock_guard lk(mu_);
    ldap_failures_.erase(creds.user);
    if (cache_.size() >= config_.max_cache_entries) cache_.clear();
    cache_[hash] = {info, now + std::chrono::milliseconds(config_.cache_ttl_ms)};
  }
  records_.audit({who, "auth.allow",
                  fmt::format("tenant={} dn={} {} {} request={}", ctx.tenant, o.identity.dn, ctx.info.method,
                              ctx.info.path, ctx.request_id)});
  return std::nullopt;
}

bool AuthnFilter::may_block(const RequestContext& ctx) const {
  if (!config_.ldap || !bearer_token(ctx.info.authorization).empty()) return false;
  auto creds = basic_credentials(ctx.info.authorization);
  if (!creds) return false;
  const std::string hash = ldap_cache_key(*creds);
  std::lock_guard lk(mu_);
  auto it = cache_.find(hash);
  return it == cache_.end() || it->second.until <= Clock::now();
}

std::optional<Rejection> AuthnFilter::on_request(RequestContext& ctx) {
  const std::string_view token = bearer_token(ctx.info.authorization);
  if (token.empty()) {
    if (config_.ldap) {
      if (auto creds = basic_credentials(ctx.info.authorization)) return on_basic(ctx, *creds);
    }
    return deny(ctx, "anonymous", "missing",
                config_.ldap
                    ? "no credentials: send 'Authorization: Bearer hk_...' (an API key) or a directory "
                      "user's name and password as HTTP Basic authentication"
                    : "no API key: send it as 'Authorization: Bearer hk_...' (hearth admin key create "
                      "makes one)");
  }
  if (jwks_ && std::count(token.begin(), token.end(), '.') == 2) return on_jwt(ctx, token);
  if (!store::looks_like_api_key(token)) {
    return deny(ctx, "anonymous", "malformed",
                "the API key is not a hearth key (they look like hk_XXXXXXXX_...)");
  }
  const std::string who = store::api_key_prefix(token);
  const std::string hash = store::credential_hash(token);
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
  ctx.project = info->project;
  ctx.user = info->owner;
  records_.audit({who, "auth.allow",
                  fmt::format("tenant={} {} {} request={}", ctx.tenant, ctx.info.method, ctx.info.path,
                              ctx.request_id)});
  return std::nullopt;
}

}  // namespace hearth::gateway
