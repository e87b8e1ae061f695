// The admin API's login-security primitives: PBKDF2 password hashes (salted, verified in constant time,
// refusing malformed or weakened records) and the password policy. The API itself runs against a real
// gateway and store in tests/integration/admin_api.sh.
#include "gateway/admin_api.h"

#include <gtest/gtest.h>

namespace hearth::gateway {
namespace {

TEST(AdminPasswords, HashesAreSaltedAndVerify) {
  const std::string a = hash_admin_password("Correct-Horse-9", 1000);
  const std::string b = hash_admin_password("Correct-Horse-9", 1000);
  EXPECT_NE(a, b);  // fresh salt each time
  EXPECT_EQ(a.rfind("pbkdf2-sha256$1000$", 0), 0u) << a;
  EXPECT_TRUE(verify_admin_password("Correct-Horse-9", a));
  EXPECT_FALSE(verify_admin_password("Correct-Horse-8", a));
  EXPECT_FALSE(verify_admin_password("", a));
  EXPECT_EQ(hash_admin_password("x").rfind("pbkdf2-sha256$600000$", 0), 0u);  // the default work factor
}

TEST(AdminPasswords, MalformedOrWeakenedRecordsNeverVerify) {
  const std::string h = hash_admin_password("Correct-Horse-9", 1000);
  EXPECT_FALSE(verify_admin_password("Correct-Horse-9", ""));
  EXPECT_FALSE(verify_admin_password("Correct-Horse-9", "plain"));
  std::string weakened = h;
  weakened.replace(weakened.find("$1000$"), 6, "$1$");  // an attacker lowering the iterations
  EXPECT_FALSE(verify_admin_password("Correct-Horse-9", weakened));
  EXPECT_FALSE(verify_admin_password("Correct-Horse-9", "md5$1000$AAAA$AAAA"));
  EXPECT_FALSE(verify_admin_password("Correct-Horse-9", h.substr(0, h.size() - 2)));
}

TEST(AdminPasswords, PolicyNamesWhatIsWrong) {
  EXPECT_TRUE(check_password_policy("alice", "Correct-Horse-9").is_ok());
  EXPECT_NE(check_password_policy("alice", "Sh0rt!").message().find("12 characters"), std::string::npos);
  EXPECT_NE(check_password_policy("alice", "onlylowercaseletters").message().find("three of"),
            std::string::npos);
  EXPECT_NE(check_password_policy("alice", "My-ALICE-Password1").message().find("name"), std::string::npos);
  EXPECT_FALSE(check_password_policy("alice", std::string(300, 'a') + "B1!").is_ok());
  EXPECT_TRUE(check_password_policy("alice", "lower UPPER 1234").is_ok());  // spaces count as "other"
}

}  // namespace
}  // namespace hearth::gateway
