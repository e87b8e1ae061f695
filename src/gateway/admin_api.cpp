#include "gateway/admin_api.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>

#include "core/json_guard.h"
#include "gateway/base64.h"
#include "gateway/billing.h"
#include "gateway/http_query.h"

namespace hearth::gateway {
namespace {

using nlohmann::json;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string pbkdf2(std::string_view password, const std::string& salt, int iterations) {
  unsigned char out[32];
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                        iterations, EVP_sha256(), sizeof out, out) != 1)
    return {};
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

void reply(const std::shared_ptr<server::Exchange>& ex, int status, const json& body) {
  ex->respond(status, "application/json", body.dump());
}

void error(const std::shared_ptr<server::Exchange>& ex, int status, std::string_view code,
           std::string message) {
  reply(ex, status,
        json{{"error",
              {{"message", std::move(message)}, {"type", "admin_error"}, {"code", std::string(code)}}}});
}

std::string random_token() {
  unsigned char b[32];
  if (RAND_bytes(b, sizeof b) != 1) return {};
  return base64url_encode(std::string_view(reinterpret_cast<const char*>(b), sizeof b));
}

// What each role may do (MLPS separation of duties).
bool allowed(const std::string& role, std::string_view what) {
  if (what == "tenants.read") return role == "system" || role == "audit";
  if (what == "tenants.write") return role == "system";
  if (what == "admins") return role == "security";
  if (what == "audit") return role == "audit";
  if (what == "keys") return role == "system";
  if (what == "usage") return role == "system" || role == "audit";
  if (what == "billing.read") return role == "system" || role == "audit";
  if (what == "billing.write") return role == "system";
  return false;
}

}  // namespace

std::string hash_admin_password(std::string_view password, int iterations) {
  unsigned char salt[16];
  if (RAND_bytes(salt, sizeof salt) != 1) return {};
  const std::string s(reinterpret_cast<const char*>(salt), sizeof salt);
  return fmt::format("pbkdf2-sha256${}${}${}", iterations, base64url_encode(s),
                     base64url_encode(pbkdf2(password, s, iterations)));
}

bool verify_admin_password(std::string_view password, const std::string& stored) {
  // pbkdf2-sha256$ITER$SALT$HASH
  const size_t a = stored.find('$'), b = stored.find('$', a + 1), c = stored.find('$', b + 1);
  if (a == std::string::npos || b == std::string::npos || c == std::string::npos ||
      stored.substr(0, a) != "pbkdf2-sha256")
    return false;
  const int iterations = std::atoi(stored.substr(a + 1, b - a - 1).c_str());
  std::string salt, want;
  if (iterations < 1000 || iterations > 10'000'000 ||
      !base64url_decode(stored.substr(b + 1, c - b - 1), salt) ||
      !base64url_decode(stored.substr(c + 1), want) || want.size() != 32)
    return false;
  const std::string got = pbkdf2(password, salt, iterations);
  return got.size() == want.size() && CRYPTO_memcmp(got.data(), want.data(), got.size()) == 0;
}

Status check_password_policy(std::string_view name, std::string_view password) {
  if (password.size() < 12)
    return make_error(ErrorCode::kInvalidArgument, "the password must have at least 12 characters");
  if (password.size() > 256)
    return make_error(ErrorCode::kInvalidArgument, "the password is longer than 256 bytes");
  int lower = 0, upper = 0, digit = 0, other = 0;
  for (unsigned char c : password) {
    if (std::islower(c))
      lower = 1;
    else if (std::isupper(c))
      upper = 1;
    else if (std::isdigit(c))
      digit = 1;
    else
      other = 1;
  }
  if (lower + upper + digit + other < 3)
    return make_error(
        ErrorCode::kInvalidArgument,
        "the password must mix at least three of: lower case, upper case, digits, other characters");
  std::string p(password), n(name);
  std::transform(p.begin(), p.end(), p.begin(), [](unsigned char c) { return std::tolower(c); });
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  if (!n.empty() && p.find(n) != std::string::npos)
    return make_error(ErrorCode::kInvalidArgument, "the password must not contain the administrator's name");
  return Status::ok();
}

json usage_record_json(const store::UsageRecord& u) {
  return {{"ts_ms", u.ts_ms},
          {"tenant", u.tenant},
          {"key_id", u.key_id},
          {"model", u.model},
          {"prompt_tokens", u.prompt_tokens},
          {"cached_tokens", u.cached_tokens},
          {"completion_tokens", u.completion_tokens},
          {"reasoning_tokens", u.reasoning_tokens},
          {"latency_ms", u.latency_ms},
          {"status", u.status},
          {"outcome", u.outcome},
          {"request_id", u.request_id},
          {"cost", store::format_money(u.cost_micros)},
          {"project", u.project},
          {"user", u.user}};
}

json tenant_limits_json(const store::TenantLimits& l) {
  return {{"rpm", l.rpm},
          {"tpm", l.tpm},
          {"budget_tokens", l.budget_tokens},
          {"budget_tokens_day", l.budget_tokens_day},
          {"budget_tokens_month", l.budget_tokens_month},
          {"budget_money_day", store::format_money(l.budget_money_day)},
          {"budget_money_month", store::format_money(l.budget_money_month)},
          {"tier", l.tier},
          {"models", l.models}};
}

AdminApi::AdminApi(store::Store& store, RecordWriter& records, AdminPolicy policy, AdminDirectory directory)
    : store_(store), records_(records), policy_(policy), directory_(std::move(directory)) {}

const std::string& AdminApi::dummy_hash() const {
  std::call_once(dummy_once_, [this] { dummy_hash_ = hash_admin_password(random_token()); });
  return dummy_hash_;
}

AdminApi::External AdminApi::oidc_login(const std::string& id_token, int64_t now) const {
  External e;
  auto claims = verify_jwt(id_token, *directory_.jwks->current(), directory_.policy, now / 1000);
  if (!claims.is_ok() && claims.status().code() == ErrorCode::kNotFound &&
      directory_.jwks->refresh_for_unknown_key())
    claims = verify_jwt(id_token, *directory_.jwks->current(), directory_.policy, now / 1000);
  if (!claims.is_ok()) {
    e.refusal = "token refused: " + claims.status().message();
    return e;
  }
  if (claims->subject.empty()) {
    e.refusal = "the token has no subject";
    return e;
  }
  e.name = oidc_admin_name(claims->subject);
  auto role = admin_role_of(claim_roles(claims->all, directory_.roles_claim), directory_.oidc_roles, false);
  if (!role.is_ok()) {
    e.refusal = role.status().message();
    return e;
  }
  e.role = *role;
  return e;
}

AdminApi::External AdminApi::ldap_login(const std::string& user, const std::string& password) const {
  External e;
  e.name = "ldap:" + user;
  const LdapOutcome o = directory_.ldap->authenticate(user, password);
  if (o.kind == LdapOutcome::Kind::kUnavailable) {
    e.unavailable = true;
    e.refusal = o.reason;
    return e;
  }
  if (o.kind != LdapOutcome::Kind::kOk) {
    e.refusal = "directory: " + o.reason;
    return e;
  }
  auto role = admin_role_of(o.identity.groups, directory_.ldap_group_roles, true);
  if (!role.is_ok()) {
    e.refusal = role.status().message();
    return e;
  }
  e.role = *role;
  return e;
}

void AdminApi::handle(const std::shared_ptr<server::Exchange>& ex) {
  const std::string path(ex->path());
  const std::string method(ex->request().method_string());
  const std::string& body = ex->request().body();
  const int64_t now = now_ms();
  const auto parse = [&](json& out) {
    if (!check_json_limits(body, JsonLimits{65536, 8}, "admin request").is_ok()) return false;
    out = json::parse(body, nullptr, false);
    return !out.is_discarded() && out.is_object();
  };
  const auto str = [](const json& j, const char* k) {
    return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string();
  };
  auto admins = store_.list_admins();
  if (!admins.is_ok())
    return error(ex, 503, "store_error", "the gateway cannot read its administrators right now");
  const auto find = [&](const std::string& name) -> store::AdminAccount* {
    for (auto& a : *admins)
      if (a.name == name) return &a;
    return nullptr;
  };

  if (path == "/admin/v1/login") {
    json req;
    if (method != "POST" || !parse(req))
      return error(ex, 400, "bad_request", "POST {\"name\", \"password\"} or {\"id_token\"}");
    // Starts a session for account `a` (whose sign-in just succeeded).
    const auto start_session = [&](store::AdminAccount& a, const std::string& detail) {
      a.failed_logins = 0;
      a.locked_until_ms = 0;
      (void)store_.put_admin(a, false);
      const std::string token = random_token();
      if (token.empty() || !store_.put_session({store::credential_hash(token), a.name, now, now}).is_ok())
        return error(ex, 503, "store_error", "the session could not be stored; retry");
      const bool expired = now - a.password_changed_ms > int64_t{policy_.password_max_age_days} * 86'400'000;
      records_.audit({"admin:" + a.name, "admin.login",
                      fmt::format("role={}{}{}", a.role, detail, expired ? " password_expired" : "")});
      return reply(ex, 200,
                   json{{"token", token},
                        {"name", a.name},
                        {"role", a.role},
                        {"idle_timeout_s", policy_.idle_ms / 1000},
                        {"password_expired", expired}});
    };
    // An identity-provider account: provisioned (or its role updated) at each sign-in.
    const auto provision = [&](const External& e, const char* via) {
      const std::string who = "admin:" + e.name;
      store::AdminAccount* have = find(e.name);
      if (have != nullptr && have->disabled) {
        records_.audit({who, "admin.login.deny", "disabled"});
        return error(ex, 401, "invalid_credentials", "the sign-in was refused");
      }
      store::AdminAccount acc = have != nullptr ? *have : store::AdminAccount{};
      const bool created = have == nullptr;
      if (created) {
        acc.name = e.name;
        acc.created_ms = now;
      } else if (acc.role != e.role) {
        records_.audit(
            {who, "admin.role", fmt::format("{} -> {} (from the identity provider)", acc.role, e.role)});
      }
      acc.role = e.role;
      acc.password_hash = store::kExternalAdminPassword;
      acc.password_changed_ms = now;  // the provider manages credentials
      if (Status st = store_.put_admin(acc, created); !st.is_ok())
        return error(ex, 503, "store_error", "the account could not be stored; retry");
      if (created) records_.audit({who, "admin.provision", fmt::format("role={} via {}", e.role, via)});
      return start_session(acc, fmt::format(" via {}", via));
    };
    if (req.contains("id_token")) {
      if (!directory_.jwks)
        return error(ex, 400, "bad_request",
                     "this gateway has no OIDC sign-in (--oidc-jwks, --oidc-admin-role)");
      const External e = oidc_login(str(req, "id_token"), now);
      if (!e.refusal.empty()) {
        records_.audit(
            {"admin:" + (e.name.empty() ? std::string("oidc:?") : e.name), "admin.login.deny", e.refusal});
        return error(ex, 401, "invalid_credentials", "the sign-in was refused");
      }
      return provision(e, "oidc");
    }
    const std::string name = str(req, "name").substr(0, 64), password = str(req, "password");
    // A directory user signs in with the bare name; its account is "ldap:NAME".
    const bool directory_user =
        directory_.ldap != nullptr && !name.empty() && name.find(':') == std::string::npos &&
        (find(name) == nullptr || find(name)->password_hash == store::kExternalAdminPassword);
    store::AdminAccount* a = find(directory_user ? "ldap:" + name : name);
    const std::string who =
        "admin:" + (name.empty() ? std::string("?") : (directory_user ? "ldap:" + name : name));
    if (a != nullptr && a->locked_until_ms > now) {
      records_.audit({who, "admin.login.deny", "locked"});
      return error(ex, 401, "locked",
                   fmt::format("too many failed sign-ins: locked for another {} s",
                               (a->locked_until_ms - now + 999) / 1000));
    }
    External ext;
    bool ok = false;
    if (directory_user && a == nullptr) {  // no account yet: failures are counted here
      std::lock_guard lk(failures_mu_);
      auto it = failures_.find(name);
      if (it != failures_.end() && now - it->second.second > policy_.lockout_ms) failures_.erase(it);
      it = failures_.find(name);
      if (it != failures_.end() && it->second.first >= policy_.max_failures) {
        records_.audit({who, "admin.login.deny", "locked"});
        return error(ex, 401, "locked", "too many failed sign-ins: try again later");
      }
    }
    if (directory_user) {
      ext = ldap_login(name, password);
      if (ext.unavailable)
        return error(ex, 503, "directory_unavailable", "the directory cannot be reached; retry shortly");
      ok = ext.refusal.empty() && (a == nullptr || !a->disabled);
    } else {
      // Unknown names cost a hash too: the answer's timing does not tell which names exist.
      ok = verify_admin_password(password, a != nullptr ? a->password_hash : dummy_hash()) && a != nullptr &&
           !a->disabled;
    }
    if (!ok) {
      if (directory_user && a == nullptr) {
        std::lock_guard lk(failures_mu_);
        if (failures_.size() >= 100000) failures_.clear();
        auto& f = failures_[name];
        if (f.first == 0) f.second = now;
        f.first += 1;
      }
      if (a != nullptr)  // counted in the store in one statement: failures on every replica add up
        (void)store_.admin_login_failed(a->name, policy_.max_failures, policy_.lockout_ms, now);
      records_.audit({who, "admin.login.deny",
                      !ext.refusal.empty() ? ext.refusal
                      : a == nullptr       ? "no such administrator"
                      : a->disabled        ? "disabled"
                                           : "wrong password"});
      return error(ex, 401, "invalid_credentials", "the name or password was refused");
    }
    if (directory_user) {
      {
        std::lock_guard lk(failures_mu_);
        failures_.erase(name);
      }
      return provision(ext, "ldap");
    }
    return start_session(*a, "");
  }

  // Everything else needs a live session.
  std::string_view auth = ex->header("Authorization");
  if (auth.rfind("Bearer ", 0) != 0) return error(ex, 401, "no_session", "sign in: POST /admin/v1/login");
  const std::string token_hash = store::credential_hash(auth.substr(7));
  auto session = store_.get_session(token_hash);
  if (!session.is_ok()) return error(ex, 503, "store_error", "the gateway cannot read sessions right now");
  if (!*session) return error(ex, 401, "no_session", "the session is unknown or ended: sign in again");
  store::AdminAccount* me = find((*session)->admin);
  const bool idle = now - (*session)->last_seen_ms > policy_.idle_ms;
  const bool old = now - (*session)->created_ms > policy_.absolute_ms;
  if (me == nullptr || me->disabled || idle || old) {
    (void)store_.delete_session(token_hash);
    records_.audit({"admin:" + (*session)->admin, "admin.session.end",
                    idle  ? "idle timeout"
                    : old ? "absolute timeout"
                          : "account disabled or removed"});
    return error(
        ex, 401, "session_ended",
        idle ? "the session ended after inactivity: sign in again" : "the session ended: sign in again");
  }
  (*session)->last_seen_ms = now;
  (void)store_.put_session(**session);
  const std::string who = "admin:" + me->name;
  const bool password_expired =
      now - me->password_changed_ms > int64_t{policy_.password_max_age_days} * 86'400'000;

  if (path == "/admin/v1/logout" && method == "POST") {
    (void)store_.delete_session(token_hash);
    records_.audit({who, "admin.logout", ""});
    return ex->respond(204, "application/json", "");
  }
  if (path == "/admin/v1/password" && method == "POST") {
    if (me->password_hash == store::kExternalAdminPassword)
      return error(ex, 400, "external_account",
                   "this account's password is managed by the identity provider");
    json req;
    if (!parse(req)) return error(ex, 400, "bad_request", "POST {\"old\", \"new\"}");
    if (!verify_admin_password(str(req, "old"), me->password_hash))
      return error(ex, 403, "wrong_password", "the current password is wrong");
    const std::string fresh = str(req, "new");
    if (Status st = check_password_policy(me->name, fresh); !st.is_ok())
      return error(ex, 400, "password_policy", st.message());
    if (verify_admin_password(fresh, me->password_hash))
      return error(ex, 400, "password_policy", "the new password must differ from the current one");
    me->password_hash = hash_admin_password(fresh);
    me->password_changed_ms = now;
    if (!store_.put_admin(*me, false).is_ok()) return error(ex, 503, "store_error", "not saved; retry");
    records_.audit({who, "admin.password", "changed"});
    return reply(ex, 200, json{{"changed", true}});
  }
  if (path == "/admin/v1/me")
    return reply(ex, 200,
                 json{{"name", me->name}, {"role", me->role}, {"password_expired", password_expired}});
  if (password_expired)
    return error(ex, 403, "password_expired",
                 "the password is older than the policy allows: change it first");

  const auto deny = [&](std::string_view what) {
    records_.audit({who, "admin.deny", fmt::format("role={} {} {}", me->role, method, path)});
    return error(ex, 403, "forbidden",
                 fmt::format("role '{}' may not {} (separation of duties)", me->role, what));
  };
  if (path == "/admin/v1/tenants") {
    if (method == "GET") {
      if (!allowed(me->role, "tenants.read")) return deny("read tenants");
      auto ts = store_.list_tenants();
      if (!ts.is_ok()) return error(ex, 503, "store_error", "cannot read tenants now");
      json arr = json::array();
      for (const auto& t : *ts) {
        json j = tenant_limits_json(t.limits);
        j["name"] = t.name;
        arr.push_back(std::move(j));
      }
      return reply(ex, 200, json{{"data", std::move(arr)}});
    }
    if (method == "POST") {
      if (!allowed(me->role, "tenants.write")) return deny("create tenants");
      json req;
      if (!parse(req)) return error(ex, 400, "bad_request", "POST {\"name\", \"rpm\", \"tpm\", ...}");
      store::TenantLimits l;
      const auto num = [&](const char* k, int64_t& out) {
        if (req.contains(k) && req[k].is_number_integer()) out = req[k].get<int64_t>();
      };
      num("rpm", l.rpm);
      num("tpm", l.tpm);
      num("budget_tokens", l.budget_tokens);
      num("budget_tokens_day", l.budget_tokens_day);
      num("budget_tokens_month", l.budget_tokens_month);
      auto t = store_.create_tenant(str(req, "name"), l);
      if (!t.is_ok()) return error(ex, 400, "invalid", t.status().message());
      records_.audit({who, "tenant.create", fmt::format("name={} rpm={} tpm={}", t->name, l.rpm, l.tpm)});
      return reply(ex, 201, json{{"name", t->name}});
    }
  }
  // API keys (system): create for a tenant (the key is in this response only), list, revoke.
  if (path.rfind("/admin/v1/tenants/", 0) == 0 && path.size() > 23 &&
      path.substr(path.size() - 5) == "/keys" && method == "POST") {
    if (!allowed(me->role, "keys")) return deny("create API keys");
    const std::string tenant = path.substr(18, path.size() - 18 - 5);
    json req = json::object();
    if (!body.empty() && !parse(req))
      return error(ex, 400, "bad_request", "POST {\"expires_days\": N} or nothing");
    const double days = req.contains("expires_days") && req["expires_days"].is_number()
                            ? req["expires_days"].get<double>()
                            : 0;
    if (days < 0 || days > 36500) return error(ex, 400, "invalid", "expires_days must be in [0, 36500]");
    const int64_t expires = days > 0 ? now + static_cast<int64_t>(days * 86400e3) : 0;
    const store::KeyScope scope{str(req, "project"), str(req, "owner")};
    auto k = store_.create_key(tenant, expires, scope);
    if (!k.is_ok())
      return error(ex, k.status().code() == ErrorCode::kNotFound ? 404 : 400, "invalid",
                   k.status().message());
    records_.audit({who, "key.create",
                    fmt::format("tenant={} prefix={} expires_ms={} project={} owner={}", tenant,
                                k->info.prefix, expires, scope.project, scope.owner)});
    return reply(ex, 201,
                 json{{"key", k->key},
                      {"prefix", k->info.prefix},
                      {"tenant", tenant},
                      {"project", scope.project},
                      {"owner", scope.owner},
                      {"expires_ms", expires}});
  }
  // Projects (system writes; system and audit read): GET /admin/v1/projects[?tenant=T],
  // POST /admin/v1/tenants/T/projects {"name"}, DELETE /admin/v1/tenants/T/projects/NAME.
  if (path == "/admin/v1/projects" && method == "GET") {
    if (!allowed(me->role, "tenants.read")) return deny("read projects");
    auto ps = store_.list_projects(query_param(std::string(ex->request().target()), "tenant"));
    if (!ps.is_ok()) return error(ex, 503, "store_error", "cannot read projects now");
    json arr = json::array();
    for (const auto& p : *ps)
      arr.push_back({{"tenant", p.tenant}, {"name", p.name}, {"created_ms", p.created_ms}});
    return reply(ex, 200, json{{"data", std::move(arr)}});
  }
  if (const size_t at = path.find("/projects"); path.rfind("/admin/v1/tenants/", 0) == 0 &&
                                                at != std::string::npos && at > 18 &&
                                                (method == "POST" || method == "DELETE")) {
    if (!allowed(me->role, "tenants.write")) return deny("change projects");
    const std::string tenant = path.substr(18, at - 18);
    const std::string rest = path.substr(at + 9);  // "" or "/NAME"
    if (method == "POST" && rest.empty()) {
      json req;
      if (!parse(req)) return error(ex, 400, "bad_request", "POST {\"name\"}");
      const std::string name = str(req, "name");
      if (Status st = store_.create_project(tenant, name); !st.is_ok())
        return error(ex, st.code() == ErrorCode::kNotFound ? 404 : 400, "invalid", st.message());
      records_.audit({who, "project.create", fmt::format("tenant={} project={}", tenant, name)});
      return reply(ex, 201, json{{"tenant", tenant}, {"name", name}});
    }
    if (method == "DELETE" && rest.size() > 1 && rest[0] == '/') {
      const std::string name = rest.substr(1);
      if (Status st = store_.delete_project(tenant, name); !st.is_ok())
        return error(ex, st.code() == ErrorCode::kNotFound ? 404 : 400, "invalid", st.message());
      records_.audit({who, "project.delete", fmt::format("tenant={} project={}", tenant, name)});
      return reply(ex, 200, json{{"tenant", tenant}, {"name", name}, {"deleted", true}});
    }
  }
  if (path == "/admin/v1/keys" && method == "GET") {
    if (!allowed(me->role, "keys")) return deny("list API keys");
    auto ks = store_.list_keys("");
    if (!ks.is_ok()) return error(ex, 503, "store_error", "cannot read keys now");
    json arr = json::array();
    for (const auto& k : *ks)
      arr.push_back({{"prefix", k.prefix},
                     {"tenant", k.tenant},
                     {"project", k.project},
                     {"owner", k.owner},
                     {"created_ms", k.created_ms},
                     {"expires_ms", k.expires_ms},
                     {"revoked", k.revoked_ms != 0}});
    return reply(ex, 200, json{{"data", std::move(arr)}});
  }
  if (path.rfind("/admin/v1/keys/", 0) == 0 && method == "DELETE") {
    if (!allowed(me->role, "keys")) return deny("revoke API keys");
    const std::string prefix = path.substr(15);
    if (Status st = store_.revoke_key(prefix); !st.is_ok())
      return error(ex, st.code() == ErrorCode::kNotFound ? 404 : 503, "not_found", st.message());
    records_.audit({who, "key.revoke", "prefix=" + prefix});
    return reply(ex, 200, json{{"prefix", prefix}, {"revoked", true}});
  }
  // Usage records (system, audit): GET /admin/v1/usage?tenant=T&since_ms=..&until_ms=..&limit=N
  if (path == "/admin/v1/usage" && method == "GET") {
    if (!allowed(me->role, "usage")) return deny("read usage");
    const std::string target(ex->request().target());
    const auto param = [&](const char* key) { return query_param(target, key); };
    const auto num = [&](const char* key, int64_t dflt) -> int64_t {
      const std::string v = param(key);
      if (v.empty()) return dflt;
      if (v.size() > 15 || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return -1;
      return std::stoll(v);
    };
    const int64_t since = num("since_ms", 0), until = num("until_ms", 0), limit = num("limit", 1000);
    if (since < 0 || until < 0 || limit < 1 || limit > 100000)
      return error(ex, 400, "bad_request", "since_ms / until_ms: epoch milliseconds; limit in [1, 100000]");
    std::string tenant;
    if (!url_decode(param("tenant"), tenant))
      return error(ex, 400, "bad_request", "tenant: malformed %-escape");
    auto rows = store_.list_usage(tenant, since, until, limit);
    if (!rows.is_ok()) return error(ex, 503, "store_error", "cannot read usage now");
    json arr = json::array();
    for (const auto& u : *rows) arr.push_back(usage_record_json(u));
    records_.audit({who, "usage.read", fmt::format("tenant={} records={}", tenant, rows->size())});
    return reply(ex, 200, json{{"data", std::move(arr)}});
  }
  // The price book and licence tiers (system writes; system and audit read). Amounts are strings ("0.27")
  // or JSON numbers, in the book's currency.
  const auto money = [&](const json& req, const char* key, const std::string& dflt, int64_t& out) -> Status {
    std::string text = dflt;
    if (req.contains(key)) {
      if (req[key].is_string())
        text = req[key].get<std::string>();
      else if (req[key].is_number())
        text = fmt::format("{:.6f}", req[key].get<double>());
      else
        return make_error(ErrorCode::kInvalidArgument, "'{}' must be an amount", key);
    }
    HEARTH_ASSIGN_OR_RETURN(out, store::parse_money(text, key));
    return Status::ok();
  };
  for (const char* kind : {"prices", "tiers"}) {
    const std::string base = std::string("/admin/v1/") + kind;
    const bool prices = std::string_view(kind) == "prices";
    if (path == base && method == "GET") {
      if (!allowed(me->role, "billing.read")) return deny(std::string("read ") + kind);
      json arr = json::array();
      if (prices) {
        auto ps = store_.list_prices();
        if (!ps.is_ok()) return error(ex, 503, "store_error", "cannot read prices now");
        for (const auto& p : *ps)
          arr.push_back({{"model", p.model},
                         {"currency", p.currency},
                         {"input", store::format_money(p.input_micros)},
                         {"cached_input", store::format_money(p.cached_micros)},
                         {"output", store::format_money(p.output_micros)},
                         {"per_request", store::format_money(p.request_micros)}});
      } else {
        auto ts = store_.list_tiers();
        if (!ts.is_ok()) return error(ex, 503, "store_error", "cannot read tiers now");
        for (const auto& t : *ts)
          arr.push_back({{"name", t.name},
                         {"base_fee", store::format_money(t.base_fee_micros)},
                         {"per_call", store::format_money(t.per_call_micros)},
                         {"included_calls", t.included_calls}});
      }
      return reply(ex, 200, json{{"data", std::move(arr)}});
    }
    if (path.rfind(base + "/", 0) == 0 && (method == "PUT" || method == "DELETE")) {
      if (!allowed(me->role, "billing.write")) return deny(std::string("change ") + kind);
      std::string name;
      if (!url_decode(path.substr(base.size() + 1), name) || name.empty())
        return error(ex, 400, "bad_request", "the name in the path is malformed");
      Status st;
      std::string detail;
      if (method == "DELETE") {
        st = prices ? store_.delete_price(name) : store_.delete_tier(name);
        detail = (prices ? "model=" : "tier=") + name;
      } else {
        json req;
        if (!parse(req)) return error(ex, 400, "bad_request", "PUT a JSON object");
        if (prices) {
          store::Price p;
          p.model = name;
          if (req.contains("currency") && req["currency"].is_string())
            p.currency = req["currency"].get<std::string>();
          st = money(req, "input", "0", p.input_micros);
          if (st.is_ok()) st = money(req, "output", "0", p.output_micros);
          if (st.is_ok())
            st = money(req, "cached_input", store::format_money(p.input_micros), p.cached_micros);
          if (st.is_ok()) st = money(req, "per_request", "0", p.request_micros);
          if (st.is_ok()) st = store_.set_price(p);
          detail = fmt::format("model={} currency={} input={} output={}", name, p.currency,
                               store::format_money(p.input_micros), store::format_money(p.output_micros));
        } else {
          store::Tier t;
          t.name = name;
          st = money(req, "base_fee", "0", t.base_fee_micros);
          if (st.is_ok()) st = money(req, "per_call", "0", t.per_call_micros);
          if (req.contains("included_calls") && req["included_calls"].is_number_integer())
            t.included_calls = req["included_calls"].get<int64_t>();
          if (st.is_ok()) st = store_.set_tier(t);
          detail = fmt::format("tier={} base_fee={} per_call={} included_calls={}", name,
                               store::format_money(t.base_fee_micros), store::format_money(t.per_call_micros),
                               t.included_calls);
        }
      }
      if (!st.is_ok())
        return error(ex, st.code() == ErrorCode::kNotFound ? 404 : 400, "invalid", st.message());
      records_.audit(
          {who, std::string(prices ? "price." : "tier.") + (method == "DELETE" ? "delete" : "set"), detail});
      return reply(ex, 200, json{{"done", true}});
    }
  }
  if (path == "/admin/v1/admins") {
    if (!allowed(me->role, "admins")) return deny("manage administrators");
    if (method == "GET") {
      json arr = json::array();
      for (const auto& a : *admins)
        arr.push_back({{"name", a.name},
                       {"role", a.role},
                       {"disabled", a.disabled},
                       {"locked", a.locked_until_ms > now}});
      return reply(ex, 200, json{{"data", std::move(arr)}});
    }
    if (method == "POST") {
      json req;
      if (!parse(req)) return error(ex, 400, "bad_request", "POST {\"name\", \"role\", \"password\"}");
      store::AdminAccount a;
      a.name = str(req, "name");
      a.role = str(req, "role");
      if (Status st = check_password_policy(a.name, str(req, "password")); !st.is_ok())
        return error(ex, 400, "password_policy", st.message());
      a.password_hash = hash_admin_password(str(req, "password"));
      a.created_ms = now;
      a.password_changed_ms = now;
      if (Status st = store_.put_admin(a, true); !st.is_ok()) return error(ex, 400, "invalid", st.message());
      records_.audit({who, "admin.create", fmt::format("name={} role={}", a.name, a.role)});
      return reply(ex, 201, json{{"name", a.name}, {"role", a.role}});
    }
  }
  if (path.rfind("/admin/v1/admins/", 0) == 0 && method == "POST") {
    if (!allowed(me->role, "admins")) return deny("manage administrators");
    const std::string rest = path.substr(17);
    const size_t slash = rest.find('/');
    const std::string name = rest.substr(0, slash),
                      action = slash == std::string::npos ? "" : rest.substr(slash + 1);
    store::AdminAccount* a = find(name);
    if (a == nullptr) return error(ex, 404, "not_found", fmt::format("no administrator '{}'", name));
    if (action == "unlock") {
      a->locked_until_ms = 0;
      a->failed_logins = 0;
    } else if (action == "disable" || action == "enable") {
      if (a->name == me->name) return error(ex, 400, "invalid", "an administrator cannot disable themself");
      a->disabled = action == "disable";
    } else {
      return error(ex, 404, "not_found", "POST /admin/v1/admins/NAME/unlock | disable | enable");
    }
    if (!store_.put_admin(*a, false).is_ok()) return error(ex, 503, "store_error", "not saved; retry");
    records_.audit({who, "admin." + action, "name=" + name});
    return reply(ex, 200, json{{"name", name}, {"done", action}});
  }
  // Monthly bills (system, audit): GET /admin/v1/bills?month=YYYY-MM[&tenant=T].
  if (path == "/admin/v1/bills" && method == "GET") {
    if (!allowed(me->role, "billing.read")) return deny("read bills");
    const std::string target(ex->request().target());
    const std::string month = query_param(target, "month"), tenant = query_param(target, "tenant");
    auto bills = monthly_bills(store_, month, tenant);
    if (!bills.is_ok()) {
      const ErrorCode c = bills.status().code();
      return error(ex,
                   c == ErrorCode::kInvalidArgument ? 400
                   : c == ErrorCode::kNotFound      ? 404
                                                    : 503,
                   c == ErrorCode::kInvalidArgument ? "bad_request" : "not_found", bills.status().message());
    }
    json arr = json::array();
    for (const auto& b : *bills) arr.push_back(bill_json(b));
    records_.audit(
        {who, "usage.bill", fmt::format("month={} tenant={}", month, tenant.empty() ? "all" : tenant)});
    return reply(ex, 200, json{{"data", std::move(arr)}});
  }
  // The audit log in pages (audit): GET /admin/v1/audit[?after=SEQ][&limit=N] (N <= 1000): records after SEQ,
  // oldest first, with `next_after` for the next page; the first page (no `after`) carries the verification
  // of the whole chain.
  if (path == "/admin/v1/audit" && method == "GET") {
    if (!allowed(me->role, "audit")) return deny("read the audit log");
    const std::string target(ex->request().target());
    const auto num = [&](const char* key, int64_t dflt) -> int64_t {
      const std::string v = query_param(target, key);
      if (v.empty() || v.size() > 18 ||
          !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return v.empty() ? dflt : -1;
      return std::stoll(v);
    };
    const int64_t after = num("after", 0), limit = num("limit", 1000);
    if (after < 0 || limit < 1 || limit > 1000)
      return error(ex, 400, "bad_request", "after must be a record number, limit 1-1000");
    auto recs = store_.list_audit(after, limit);
    if (!recs.is_ok()) return error(ex, 503, "store_error", "cannot read the audit log now");
    json arr = json::array();
    for (const auto& r : *recs)
      arr.push_back({{"seq", r.seq},
                     {"ts_ms", r.ts_ms},
                     {"actor", r.actor},
                     {"action", r.action},
                     {"detail", r.detail}});
    json page{{"data", std::move(arr)},
              {"has_more", static_cast<int64_t>(recs->size()) == limit},
              {"next_after", recs->empty() ? after : recs->back().seq}};
    if (after == 0) {
      auto v = store_.verify_audit();
      if (!v.is_ok()) return error(ex, 503, "store_error", "cannot verify the audit log now");
      page["intact"] = v->intact;
      page["records"] = v->records;
      page["first_bad_record"] = v->intact ? json(nullptr) : json(v->first_bad_seq);
    }
    records_.audit({who, "audit.read", fmt::format("after={} records={}", after, recs->size())});
    return reply(ex, 200, page);
  }
  return error(ex, 404, "not_found", fmt::format("no admin route {} {}", method, path));
}

}  // namespace hearth::gateway
