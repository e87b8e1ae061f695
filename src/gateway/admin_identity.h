#pragma once
// Administrators from the organisation's identity provider: an OIDC ID token (roles from a claim) or an LDAP
// user (roles from group membership) signs in to the admin API with POST /admin/v1/login, and the mapped
// role — exactly one of system, security, audit (MLPS separation of duties: an identity mapped to two admin
// roles is refused) — becomes an administrator account provisioned in the store on first sign-in ("oidc:SUB"
// or "ldap:USER", no local password), so sessions, timeouts, lockout, disabling and the audit trail work as
// for local administrators. The role is re-read from the provider at every sign-in.
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "gateway/jwks_source.h"
#include "gateway/jwt.h"
#include "gateway/ldap_auth.h"

namespace hearth::gateway {

using RoleMap = std::vector<std::pair<std::string, std::string>>;  // IdP role or group DN -> admin role

struct AdminDirectory {
  std::shared_ptr<const LdapDirectory> ldap;  // null: no LDAP sign-in
  RoleMap ldap_group_roles;                   // group DN -> role
  std::shared_ptr<JwksSource> jwks;           // null: no OIDC sign-in
  JwtPolicy policy;                           // the same issuer and audience as bearer tokens
  std::string roles_claim = "roles";          // a dotted path, e.g. realm_access.roles (Keycloak)
  RoleMap oidc_roles;                         // IdP role -> role
};

// The provider's roles at `path` in the claims (dotted; an array of strings or one space-separated string).
std::vector<std::string> claim_roles(const nlohmann::json& claims, std::string_view path);
// The one administrator role `have` maps to: kNotFound when none, kInvalidArgument when two different ones.
// dns: compare as LDAP DNs (loosely), else exactly.
Result<std::string> admin_role_of(const std::vector<std::string>& have, const RoleMap& map, bool dns);
// "NAME=ROLE" (split at the last '=': DNs contain '='); ROLE is system, security or audit.
Result<std::pair<std::string, std::string>> parse_role_mapping(std::string_view spec);
// The account name of an OIDC subject: "oidc:SUB", or for subjects too long for a name (64 characters)
// "oidc:" + the first 32 hex digits of SHA-256(SUB).
std::string oidc_admin_name(std::string_view subject);

}  // namespace hearth::gateway
