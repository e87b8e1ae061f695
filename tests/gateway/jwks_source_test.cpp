// JwksSource without a network: a key set from a file, replaced on disk and picked up by the refresh an
// unknown key id triggers (rate-limited), and clear errors for a missing file, an unreachable URL and a
// discovery location that is not a URL. Over http, discovery and rotation run in
// tests/integration/gateway.sh.
#include "gateway/jwks_source.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace hearth::gateway {
namespace {

std::string hex_b64url(const char* hex) {
  std::string bytes;
  for (size_t i = 0; hex[i] != '\0' && hex[i + 1] != '\0'; i += 2)
    bytes.push_back(static_cast<char>(std::stoi(std::string(hex + i, 2), nullptr, 16)));
  return base64url_encode(bytes);
}

// P-256's generator as a public key (a valid point), under each of `kids`.
std::string jwks(std::initializer_list<const char*> kids) {
  const std::string x = hex_b64url("6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296");
  const std::string y = hex_b64url("4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5");
  std::string out = R"({"keys":[)";
  bool first = true;
  for (const char* kid : kids) {
    if (!first) out += ",";
    first = false;
    out += R"({"kty":"EC","crv":"P-256","kid":")" + std::string(kid) + R"(","x":")" + x + R"(","y":")" + y +
           "\"}";
  }
  return out + "]}";
}

class JwksSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() /
             ("hearth-jwks-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".json"))
                .string();
  }
  void TearDown() override { std::filesystem::remove(path_); }
  void write(const std::string& text) { std::ofstream(path_) << text; }
  std::string path_;
};

TEST_F(JwksSourceTest, AFileIsReloadedWhenATokenNamesAnUnknownKey) {
  write(jwks({"k1"}));
  JwksSourceConfig c;
  c.location = path_;
  c.min_refresh_s = 0;
  auto s = JwksSource::create(c);
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ((*s)->current()->size(), 1u);
  const auto before = (*s)->current();
  write(jwks({"k1", "k2"}));
  EXPECT_TRUE((*s)->refresh_for_unknown_key());
  EXPECT_EQ((*s)->current()->size(), 2u);
  EXPECT_NE((*s)->current()->find("k2", "ES256"), nullptr);
  EXPECT_EQ(before->size(), 1u);  // a set in use by a verification stays valid
  write("not json");
  EXPECT_FALSE((*s)->refresh_for_unknown_key());  // a bad refresh keeps the last good set
  EXPECT_EQ((*s)->current()->size(), 2u);
}

TEST_F(JwksSourceTest, RefreshesForUnknownKeysAreRateLimited) {
  write(jwks({"k1"}));
  JwksSourceConfig c;
  c.location = path_;
  c.min_refresh_s = 3600;
  auto s = JwksSource::create(c);
  ASSERT_TRUE(s.is_ok());
  write(jwks({"k1", "k2"}));
  EXPECT_FALSE((*s)->refresh_for_unknown_key());  // a flood of random key ids cannot hammer the provider
  EXPECT_EQ((*s)->current()->size(), 1u);
}

TEST_F(JwksSourceTest, ErrorsNameWhatFailed) {
  JwksSourceConfig c;
  c.location = path_;  // not written
  EXPECT_NE(JwksSource::create(c).status().message().find("cannot read"), std::string::npos);
  c.location = "http://127.0.0.1:1/keys";
  c.timeout_ms = 2000;
  const Status down = JwksSource::create(c).status();
  EXPECT_NE(down.message().find("GET http://127.0.0.1:1/keys"), std::string::npos) << down.to_string();
  c.location = "idp.example";
  c.discover = true;
  EXPECT_NE(JwksSource::create(c).status().message().find("issuer as an http(s) URL"), std::string::npos);
  c.location = path_;
  c.discover = false;
  c.refresh_s = 0;
  EXPECT_FALSE(JwksSource::create(c).is_ok());
}

}  // namespace
}  // namespace hearth::gateway
