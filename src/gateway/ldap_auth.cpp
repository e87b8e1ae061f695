#include "gateway/ldap_auth.h"

#include <fmt/format.h>
#include <ldap.h>
#include <sys/time.h>

#include <algorithm>
#include <cctype>

#include "gateway/base64.h"

namespace hearth::gateway {
namespace {

// Owns one libldap connection.
struct Conn {
  LDAP* ld = nullptr;
  ~Conn() {
    if (ld != nullptr) ldap_unbind_ext_s(ld, nullptr, nullptr);
  }
};

struct Msg {
  LDAPMessage* m = nullptr;
  ~Msg() {
    if (m != nullptr) ldap_msgfree(m);
  }
};

bool unreachable(int rc) {
  return rc == LDAP_SERVER_DOWN || rc == LDAP_TIMEOUT || rc == LDAP_CONNECT_ERROR || rc == LDAP_BUSY ||
         rc == LDAP_UNAVAILABLE || rc == LDAP_TIMELIMIT_EXCEEDED;
}

LdapOutcome failed(LdapOutcome::Kind kind, std::string reason) {
  LdapOutcome o;
  o.kind = kind;
  o.reason = std::move(reason);
  return o;
}

// An LDAP error code as an outcome: the directory unreachable or busy, or a refusal.
LdapOutcome from_rc(int rc, std::string_view what) {
  return failed(unreachable(rc) ? LdapOutcome::Kind::kUnavailable : LdapOutcome::Kind::kDenied,
                fmt::format("LDAP {}: {}", what, ldap_err2string(rc)));
}

std::string replace_all(std::string s, std::string_view key, std::string_view value) {
  for (size_t at = s.find(key); at != std::string::npos; at = s.find(key, at + value.size()))
    s.replace(at, key.size(), value);
  return s;
}

int simple_bind(LDAP* ld, const std::string& dn, std::string_view password) {
  berval cred;
  cred.bv_val = const_cast<char*>(password.data());
  cred.bv_len = password.size();
  return ldap_sasl_bind_s(ld, dn.empty() ? nullptr : dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr,
                          nullptr);
}

// The DNs of the entries matching `filter` under `base` (no attributes read), at most `limit`.
int search_dns(LDAP* ld, const std::string& base, const std::string& filter, int limit, int timeout_ms,
               std::vector<std::string>& dns) {
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  char no_attrs[] = LDAP_NO_ATTRS;  // "1.1": DNs only
  char* attrs[] = {no_attrs, nullptr};
  Msg res;
  const int rc = ldap_search_ext_s(ld, base.c_str(), LDAP_SCOPE_SUBTREE, filter.c_str(), attrs, 0, nullptr,
                                   nullptr, &tv, limit, &res.m);
  if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) return rc;
  for (LDAPMessage* e = ldap_first_entry(ld, res.m); e != nullptr; e = ldap_next_entry(ld, e)) {
    char* dn = ldap_get_dn(ld, e);
    if (dn != nullptr) {
      dns.emplace_back(dn);
      ldap_memfree(dn);
    }
  }
  return rc;
}

}  // namespace

std::string ldap_escape_filter_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '*': out += "\\2a"; break;
      case '(': out += "\\28"; break;
      case ')': out += "\\29"; break;
      case '\\': out += "\\5c"; break;
      case '\0': out += "\\00"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string ldap_normalize_dn(std::string_view dn) {
  std::string out;
  out.reserve(dn.size());
  for (size_t i = 0; i < dn.size(); ++i) {
    const char c = dn[i];
    if (c == ' ') {
      // Drop spaces next to separators.
      const bool after = !out.empty() && (out.back() == ',' || out.back() == '=' || out.back() == '+');
      size_t j = i;
      while (j < dn.size() && dn[j] == ' ') ++j;
      const bool before = j == dn.size() || dn[j] == ',' || dn[j] == '=' || dn[j] == '+';
      if (after || before || out.empty()) {
        i = j - 1;
        continue;
      }
    }
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

Result<std::pair<std::string, std::string>> parse_ldap_group_tenant(std::string_view spec) {
  const size_t eq = spec.rfind('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == spec.size() ||
      spec.substr(0, eq).find('=') == std::string_view::npos) {
    return make_error(ErrorCode::kInvalidArgument,
                      "'{}' is not GROUP_DN=TENANT (e.g. cn=bank-a,ou=groups,dc=example,dc=org=bank-a)",
                      spec);
  }
  return std::make_pair(std::string(spec.substr(0, eq)), std::string(spec.substr(eq + 1)));
}

std::optional<BasicCredentials> basic_credentials(std::string_view v) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  if (v.size() < 6 || v[5] != ' ') return std::nullopt;
  std::string scheme(v.substr(0, 5));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (scheme != "basic") return std::nullopt;
  v.remove_prefix(6);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.empty() || v.size() > 1400) return std::nullopt;
  std::string raw;
  if (!base64_decode(v, raw) || raw.size() > 1024) return std::nullopt;
  const size_t colon = raw.find(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  BasicCredentials c;
  c.user = raw.substr(0, colon);
  c.password = raw.substr(colon + 1);
  for (unsigned char ch : c.user)
    if (ch < 0x20 || ch == 0x7f) return std::nullopt;
  return c;
}

Result<std::unique_ptr<LdapDirectory>> LdapDirectory::create(LdapConfig c) {
  const bool ldaps = c.url.rfind("ldaps://", 0) == 0;
  if (!ldaps && c.url.rfind("ldap://", 0) != 0)
    return make_error(ErrorCode::kInvalidArgument, "--ldap-url '{}' must start with ldap:// or ldaps://",
                      c.url);
  if (ldaps && c.start_tls)
    return make_error(ErrorCode::kInvalidArgument,
                      "--ldap-start-tls is for ldap:// URLs (ldaps:// is TLS already)");
  if (c.user_base.empty())
    return make_error(ErrorCode::kInvalidArgument, "--ldap-user-base is required with --ldap-url");
  if (c.user_filter.find("{user}") == std::string::npos || c.user_filter.front() != '(')
    return make_error(ErrorCode::kInvalidArgument,
                      "--ldap-user-filter '{}' must be a filter containing {{user}}, e.g. (uid={{user}})",
                      c.user_filter);
  if (c.group_filter.find("{dn}") == std::string::npos || c.group_filter.front() != '(')
    return make_error(ErrorCode::kInvalidArgument,
                      "--ldap-group-filter '{}' must be a filter containing {{dn}}, e.g. (member={{dn}})",
                      c.group_filter);
  if (c.group_tenants.empty())
    return make_error(
        ErrorCode::kInvalidArgument,
        "LDAP users need --ldap-group-tenant GROUP_DN=TENANT (at least one): a group names the tenant");
  if (c.group_base.empty()) c.group_base = c.user_base;
  if (c.timeout_ms <= 0) c.timeout_ms = 5000;
  LDAP* probe = nullptr;  // the URL parses
  const int rc = ldap_initialize(&probe, c.url.c_str());
  if (rc != LDAP_SUCCESS)
    return make_error(ErrorCode::kInvalidArgument, "--ldap-url '{}': {}", c.url, ldap_err2string(rc));
  ldap_unbind_ext_s(probe, nullptr, nullptr);
  return std::unique_ptr<LdapDirectory>(new LdapDirectory(std::move(c)));
}

LdapOutcome LdapDirectory::authenticate(std::string_view user, std::string_view password) const {
  using Kind = LdapOutcome::Kind;
  if (user.empty() || user.size() > 256 || user.find('\0') != std::string_view::npos)
    return failed(Kind::kDenied, "bad user name");
  if (password.empty()) return failed(Kind::kDenied, "empty password");  // would be an anonymous bind
  Conn conn;
  int rc = ldap_initialize(&conn.ld, config_.url.c_str());
  if (rc != LDAP_SUCCESS) return from_rc(rc, "connect");
  const int v3 = LDAP_VERSION3;
  ldap_set_option(conn.ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
  ldap_set_option(conn.ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
  timeval tv{config_.timeout_ms / 1000, (config_.timeout_ms % 1000) * 1000};
  ldap_set_option(conn.ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
  ldap_set_option(conn.ld, LDAP_OPT_TIMEOUT, &tv);
  const int demand = LDAP_OPT_X_TLS_DEMAND;
  ldap_set_option(conn.ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
  if (!config_.ca_file.empty()) ldap_set_option(conn.ld, LDAP_OPT_X_TLS_CACERTFILE, config_.ca_file.c_str());
  const int server_ctx = 0;
  ldap_set_option(conn.ld, LDAP_OPT_X_TLS_NEWCTX, &server_ctx);  // apply the TLS options to this handle
  if (config_.start_tls) {
    rc = ldap_start_tls_s(conn.ld, nullptr, nullptr);
    if (rc != LDAP_SUCCESS) return from_rc(rc, "StartTLS");
  }
  // 1. The service account finds the user's entry.
  rc = simple_bind(conn.ld, config_.bind_dn, config_.bind_password);
  if (rc != LDAP_SUCCESS) {
    LdapOutcome o = from_rc(rc, "service bind");
    o.kind = Kind::kUnavailable;  // a misconfigured service account is the gateway's problem, not the user's
    return o;
  }
  const std::string escaped = ldap_escape_filter_value(user);
  std::vector<std::string> users;
  rc = search_dns(conn.ld, config_.user_base, replace_all(config_.user_filter, "{user}", escaped), 2,
                  config_.timeout_ms, users);
  if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) return from_rc(rc, "user search");
  if (users.empty()) return failed(Kind::kDenied, "no such user");
  if (users.size() > 1 || rc == LDAP_SIZELIMIT_EXCEEDED)
    return failed(Kind::kDenied, "the user name matches several entries");
  LdapOutcome ok;
  ok.kind = Kind::kOk;
  ok.identity.user = std::string(user);
  ok.identity.dn = users.front();
  // 2. Its groups, still as the service account (users often may not search groups).
  rc = search_dns(conn.ld, config_.group_base,
                  replace_all(config_.group_filter, "{dn}", ldap_escape_filter_value(ok.identity.dn)),
                  static_cast<int>(config_.max_groups), config_.timeout_ms, ok.identity.groups);
  if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) return from_rc(rc, "group search");
  // 3. The password: a bind as the user's own DN.
  rc = simple_bind(conn.ld, ok.identity.dn, password);
  if (rc == LDAP_INVALID_CREDENTIALS) return failed(Kind::kDenied, "wrong password");
  if (rc != LDAP_SUCCESS) return from_rc(rc, "user bind");
  std::vector<std::string> mine;
  mine.reserve(ok.identity.groups.size());
  for (const auto& g : ok.identity.groups) mine.push_back(ldap_normalize_dn(g));
  for (const auto& [group, tenant] : config_.group_tenants) {
    if (std::find(mine.begin(), mine.end(), ldap_normalize_dn(group)) != mine.end()) {
      ok.identity.tenant = tenant;
      break;
    }
  }
  return ok;
}

}  // namespace hearth::gateway
