#pragma once
// LDAP users for the gateway (OpenLDAP's libldap): a client sends `Authorization: Basic
// base64(user:password)`; the gateway searches the directory for the user's entry with a service account
// (search-then-bind: the user's DN is looked up, never built from the name), finds the groups whose member is
// that DN, then binds as the user with the password — which proves it without the gateway ever reading a
// password attribute. The first configured group that the user belongs to names the tenant. ldap://
// (optionally StartTLS) or ldaps:// with a CA file; network and operation timeouts; referrals off. Every
// value put into a search filter is escaped (RFC 4515), so a user name like "*)(uid=*" matches nothing. An
// empty password is refused before any bind: LDAP treats a simple bind with a DN and no password as an
// anonymous ("unauthenticated") bind that succeeds (RFC 4513 5.1.2).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace hearth::gateway {

struct LdapConfig {
  std::string url;            // ldap://host:port or ldaps://host:port ("" = LDAP off)
  bool start_tls = false;     // StartTLS on an ldap:// connection (required to succeed when set)
  std::string ca_file;        // CA certificates for ldaps / StartTLS ("" = the system's)
  std::string bind_dn;        // the service account that searches ("" = anonymous searches)
  std::string bind_password;  // its password (from the environment, never a flag)
  std::string user_base;      // subtree searched for users
  std::string user_filter = "(uid={user})";  // {user}: the escaped user name
  std::string group_base;                    // subtree searched for groups ("" = user_base)
  std::string group_filter = "(|(member={dn})(uniqueMember={dn}))";  // {dn}: the user's escaped DN
  // Group DN -> tenant, in order: the first group the user is a member of decides.
  std::vector<std::pair<std::string, std::string>> group_tenants;
  int timeout_ms = 5000;
  size_t max_groups = 1000;
};

struct LdapIdentity {
  std::string user;                 // as sent
  std::string dn;                   // the entry it resolved to
  std::vector<std::string> groups;  // DNs of the groups it is a member of
  std::string tenant;               // from group_tenants ("" when no mapped group)
};

struct LdapOutcome {
  enum class Kind { kOk, kDenied, kUnavailable };
  Kind kind = Kind::kDenied;
  std::string reason;  // for the audit log and the client (never the password)
  LdapIdentity identity;
};

class LdapDirectory {
 public:
  // Checks the configuration (URL scheme, bases, filters contain their placeholder, mappings).
  static Result<std::unique_ptr<LdapDirectory>> create(LdapConfig config);
  // One connection per call (thread-safe; callers cache successes).
  LdapOutcome authenticate(std::string_view user, std::string_view password) const;
  const LdapConfig& config() const { return config_; }

 private:
  explicit LdapDirectory(LdapConfig config) : config_(std::move(config)) {}
  const LdapConfig config_;
};

// RFC 4515 value escaping: '*', '(', ')', '\' and NUL become \2a, \28, \29, \5c, \00.
std::string ldap_escape_filter_value(std::string_view value);
// A DN compared loosely: ASCII lower case, no spaces around ',' '=' '+'.
std::string ldap_normalize_dn(std::string_view dn);
// "GROUP_DN=TENANT": split at the last '=' (DNs contain '=', tenant names do not).
Result<std::pair<std::string, std::string>> parse_ldap_group_tenant(std::string_view spec);

struct BasicCredentials {
  std::string user, password;
};
// `Authorization: Basic base64(user:password)` (RFC 7617: the user ends at the first ':'); nullopt when the
// header is another scheme, is not canonical base64, has no ':', an empty user, a control character in the
// user, or more than 1 KiB of credentials.
std::optional<BasicCredentials> basic_credentials(std::string_view authorization);

}  // namespace hearth::gateway
