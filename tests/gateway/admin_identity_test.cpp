// Administrators from the identity provider: roles read from token claims (dotted paths, arrays or
// space-separated strings), mapped to exactly one admin role (none, or two different ones, is refused), role
// mappings parsed from flags, and account names for OIDC subjects.
#include "gateway/admin_identity.h"

#include <gtest/gtest.h>

namespace hearth::gateway {
namespace {

TEST(AdminIdentity, ClaimRolesFromArraysStringsAndNestedPaths) {
  const auto claims = nlohmann::json::parse(
      R"({"roles": ["a", "b", 3], "scope": "openid hearth:audit  x", "realm_access": {"roles": ["ops"]},
          "deep": {"x": 1}})");
  EXPECT_EQ(claim_roles(claims, "roles"), (std::vector<std::string>{"a", "b"}));  // non-strings skipped
  EXPECT_EQ(claim_roles(claims, "scope"), (std::vector<std::string>{"openid", "hearth:audit", "x"}));
  EXPECT_EQ(claim_roles(claims, "realm_access.roles"), (std::vector<std::string>{"ops"}));
  EXPECT_TRUE(claim_roles(claims, "realm_access.missing").empty());
  EXPECT_TRUE(claim_roles(claims, "deep.x.y").empty());  // a number is not an object
  EXPECT_TRUE(claim_roles(claims, "").empty());
  EXPECT_TRUE(claim_roles(nlohmann::json::array(), "roles").empty());
}

TEST(AdminIdentity, ExactlyOneAdministratorRole) {
  const RoleMap map{{"hearth-auditors", "audit"}, {"hearth-ops", "system"}, {"ops-alias", "system"}};
  EXPECT_EQ(*admin_role_of({"x", "hearth-auditors"}, map, false), "audit");
  EXPECT_EQ(*admin_role_of({"hearth-ops", "ops-alias"}, map, false), "system");  // two names, one role
  auto two = admin_role_of({"hearth-auditors", "hearth-ops"}, map, false);
  ASSERT_FALSE(two.is_ok());
  EXPECT_EQ(two.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(two.status().message().find("separation of duties"), std::string::npos);
  auto none = admin_role_of({"HEARTH-AUDITORS"}, map, false);  // role names compare exactly
  ASSERT_FALSE(none.is_ok());
  EXPECT_EQ(none.status().code(), ErrorCode::kNotFound);
  // Group DNs compare loosely (case, spaces around separators).
  const RoleMap groups{{"cn=Auditors, ou=groups,dc=bank,dc=example", "audit"}};
  EXPECT_EQ(*admin_role_of({"CN=auditors,OU=groups,DC=bank,DC=example"}, groups, true), "audit");
}

TEST(AdminIdentity, RoleMappingsFromFlags) {
  auto m = parse_role_mapping("cn=ops,ou=groups,dc=bank=system");
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ(m->first, "cn=ops,ou=groups,dc=bank");
  EXPECT_EQ(m->second, "system");
  EXPECT_FALSE(parse_role_mapping("hearth-ops=root").is_ok());  // not an admin role
  EXPECT_FALSE(parse_role_mapping("=audit").is_ok());
  EXPECT_FALSE(parse_role_mapping("audit").is_ok());
  EXPECT_FALSE(parse_role_mapping("x=").is_ok());
}

TEST(AdminIdentity, OidcAccountNames) {
  EXPECT_EQ(oidc_admin_name("u-4711"), "oidc:u-4711");
  const std::string long_sub(100, 'a');
  const std::string n = oidc_admin_name(long_sub);
  EXPECT_EQ(n.size(), 5u + 32u);
  EXPECT_EQ(n.rfind("oidc:", 0), 0u);
  EXPECT_EQ(n, oidc_admin_name(long_sub));  // stable
  EXPECT_EQ(oidc_admin_name("a b").find(' '), std::string::npos);
}

}  // namespace
}  // namespace hearth::gateway
