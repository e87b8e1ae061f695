// The parts of LDAP sign-in that need no directory: HTTP Basic credentials (RFC 7617) and standard base64,
// RFC 4515 filter escaping, DN comparison, the GROUP_DN=TENANT option, configuration checks, and an
// unreachable directory reported as unavailable (not as a wrong password). The directory itself is
// exercised against a real slapd by tests/integration/ldap.sh.
#include "gateway/ldap_auth.h"

#include <gtest/gtest.h>

#include <string>

#include "gateway/base64.h"

namespace hearth::gateway {
namespace {

std::string basic(std::string_view user_pass) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < user_pass.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(user_pass[i]) << 16) |
                       (static_cast<uint8_t>(user_pass[i + 1]) << 8) | static_cast<uint8_t>(user_pass[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(a[(v >> s) & 63]);
  }
  const size_t rest = user_pass.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<uint8_t>(user_pass[i]) << 16;
    if (rest == 2) v |= static_cast<uint8_t>(user_pass[i + 1]) << 8;
    out.push_back(a[(v >> 18) & 63]);
    out.push_back(a[(v >> 12) & 63]);
    out.push_back(rest == 2 ? a[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return "Basic " + out;
}

TEST(Base64, StandardAlphabetWithPaddingIsCanonical) {
  std::string out;
  ASSERT_TRUE(base64_decode("YWxpY2U6cHc=", out));
  EXPECT_EQ(out, "alice:pw");
  ASSERT_TRUE(base64_decode("+/8=", out));  // + and / of the standard alphabet
  EXPECT_EQ(out, "\xfb\xff");
  ASSERT_TRUE(base64_decode("", out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(base64_decode("YWxpY2U6cHc", out));   // padding missing
  EXPECT_FALSE(base64_decode("YWxpY2U6cH=", out));   // non-zero bits before the padding
  EXPECT_FALSE(base64_decode("YW=pY2U6cHc=", out));  // '=' inside
  EXPECT_FALSE(base64_decode("YWxp-2U6cHc=", out));  // base64url's '-'
  EXPECT_FALSE(base64_decode("Y===", out));
}

TEST(LdapAuth, BasicCredentialsFollowRfc7617) {
  auto c = basic_credentials(basic("alice:pa:ss word"));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->user, "alice");
  EXPECT_EQ(c->password, "pa:ss word");  // the user ends at the first colon
  c = basic_credentials("  basic   " + basic("bob:").substr(6) + " ");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->user, "bob");
  EXPECT_EQ(c->password, "");  // parsed; refused later (an empty password is an anonymous bind)
  EXPECT_FALSE(basic_credentials(basic("nocolon")).has_value());
  EXPECT_FALSE(basic_credentials(basic(":pw")).has_value());
  EXPECT_FALSE(basic_credentials(basic("al\nice:pw")).has_value());  // no control characters in names
  EXPECT_FALSE(basic_credentials("Bearer hk_x").has_value());
  EXPECT_FALSE(basic_credentials("Basic").has_value());
  EXPECT_FALSE(basic_credentials("Basic !!!!").has_value());
  EXPECT_FALSE(basic_credentials(basic("u:" + std::string(1100, 'p'))).has_value());
}

TEST(LdapAuth, FilterValuesAreEscaped) {
  EXPECT_EQ(ldap_escape_filter_value("alice"), "alice");
  EXPECT_EQ(ldap_escape_filter_value("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
  EXPECT_EQ(ldap_escape_filter_value(std::string("a\\b\0c", 5)), "a\\5cb\\00c");
  EXPECT_EQ(ldap_escape_filter_value("Zoë"), "Zoë");  // UTF-8 passes through (RFC 4515 allows it)
}

TEST(LdapAuth, DnsCompareLoosely) {
  EXPECT_EQ(ldap_normalize_dn("CN=Auditors, OU=groups , dc=bank,dc=example"),
            "cn=auditors,ou=groups,dc=bank,dc=example");
  EXPECT_EQ(ldap_normalize_dn("cn=Jane  Doe,dc=x"),
            "cn=jane  doe,dc=x");  // inner spaces are part of the value
  EXPECT_EQ(ldap_normalize_dn(" cn = a "), "cn=a");
}

TEST(LdapAuth, GroupTenantSpecSplitsAtTheLastEquals) {
  auto m = parse_ldap_group_tenant("cn=analysts,ou=groups,dc=bank,dc=example=acme");
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ(m->first, "cn=analysts,ou=groups,dc=bank,dc=example");
  EXPECT_EQ(m->second, "acme");
  EXPECT_FALSE(parse_ldap_group_tenant("acme").is_ok());
  EXPECT_FALSE(parse_ldap_group_tenant("cn=a,dc=b=").is_ok());
  EXPECT_FALSE(parse_ldap_group_tenant("groups=acme").is_ok());  // no DN before the tenant
}

LdapConfig valid_config() {
  LdapConfig c;
  c.url = "ldap://127.0.0.1:1";
  c.user_base = "ou=people,dc=x";
  c.group_tenants = {{"cn=g,dc=x", "acme"}};
  c.timeout_ms = 500;
  return c;
}

TEST(LdapAuth, ConfigurationIsChecked) {
  EXPECT_TRUE(LdapDirectory::create(valid_config()).is_ok());
  LdapConfig c = valid_config();
  c.url = "http://x";
  EXPECT_NE(LdapDirectory::create(c).status().message().find("ldap://"), std::string::npos);
  c = valid_config();
  c.url = "ldaps://x";
  c.start_tls = true;
  EXPECT_FALSE(LdapDirectory::create(c).is_ok());
  c = valid_config();
  c.user_base.clear();
  EXPECT_FALSE(LdapDirectory::create(c).is_ok());
  c = valid_config();
  c.user_filter = "(uid=alice)";
  EXPECT_NE(LdapDirectory::create(c).status().message().find("{user}"), std::string::npos);
  c = valid_config();
  c.group_filter = "member=x";
  EXPECT_FALSE(LdapDirectory::create(c).is_ok());
  c = valid_config();
  c.group_tenants.clear();
  EXPECT_FALSE(LdapDirectory::create(c).is_ok());
}

TEST(LdapAuth, UnreachableDirectoryIsUnavailableAndEmptyPasswordsNeverBind) {
  auto dir = LdapDirectory::create(valid_config());  // port 1: nothing listens
  ASSERT_TRUE(dir.is_ok());
  const LdapOutcome down = (*dir)->authenticate("alice", "pw");
  EXPECT_EQ(down.kind, LdapOutcome::Kind::kUnavailable) << down.reason;
  const LdapOutcome empty = (*dir)->authenticate("alice", "");
  EXPECT_EQ(empty.kind, LdapOutcome::Kind::kDenied);
  EXPECT_EQ(empty.reason, "empty password");
  EXPECT_EQ((*dir)->authenticate(std::string(300, 'a'), "pw").kind, LdapOutcome::Kind::kDenied);
}

}  // namespace
}  // namespace hearth::gateway
