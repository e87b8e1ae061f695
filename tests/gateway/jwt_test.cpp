// JWT verification: RS256 and ES256 tokens signed here with fresh OpenSSL keys and checked against a JWKS
// built from their public parts — valid tokens pass; a changed byte, "none", HMAC, a key of the other type,
// an unknown kid, expiry, nbf, issuer and audience are each refused with an error naming the check; key
// rotation picks the key by kid; JWKS parsing refuses small RSA keys and points off the curve.
#include "gateway/jwt.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <memory>
#include <string>

namespace hearth::gateway {
namespace {

std::string b64url(std::string_view s) {
  return base64url_encode(s);
}

std::string bn_bytes(const BIGNUM* bn, int width = 0) {
  std::string s(static_cast<size_t>(width > 0 ? width : BN_num_bytes(bn)), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(s.data()), static_cast<int>(s.size()));
  return s;
}

struct Key {
  std::shared_ptr<EVP_PKEY> pkey;
  std::string alg, kid;
  nlohmann::json jwk() const {
    nlohmann::json j{{"kid", kid}, {"use", "sig"}, {"alg", alg}};
    if (alg == "RS256") {
      BIGNUM *n = nullptr, *e = nullptr;
      EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_RSA_N, &n);
      EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_RSA_E, &e);
      j["kty"] = "RSA";
      j["n"] = b64url(bn_bytes(n));
      j["e"] = b64url(bn_bytes(e));
      BN_free(n);
      BN_free(e);
    } else {
      BIGNUM *x = nullptr, *y = nullptr;
      EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x);
      EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y);
      j["kty"] = "EC";
      j["crv"] = "P-256";
      j["x"] = b64url(bn_bytes(x, 32));
      j["y"] = b64url(bn_bytes(y, 32));
      BN_free(x);
      BN_free(y);
    }
    return j;
  }
  std::string sign(const nlohmann::json& header, const nlohmann::json& claims) const {
    const std::string input = b64url(header.dump()) + "." + b64url(claims.dump());
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    size_t len = 0;
    EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, pkey.get());
    EVP_DigestSign(md, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
    std::string sig(len, '\0');
    EVP_DigestSign(md, reinterpret_cast<unsigned char*>(sig.data()), &len,
                   reinterpret_cast<const unsigned char*>(input.data()), input.size());
    sig.resize(len);
    EVP_MD_CTX_free(md);
    if (EVP_PKEY_get_base_id(pkey.get()) == EVP_PKEY_EC) {  // DER -> r || s
      const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
      ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
      sig = bn_bytes(ECDSA_SIG_get0_r(es), 32) + bn_bytes(ECDSA_SIG_get0_s(es), 32);
      ECDSA_SIG_free(es);
    }
    return input + "." + b64url(sig);
  }
  std::string token(const nlohmann::json& claims) const {
    return sign({{"alg", alg}, {"typ", "JWT"}, {"kid", kid}}, claims);
  }
};

Key rsa(const std::string& kid, unsigned bits = 2048) {
  return {std::shared_ptr<EVP_PKEY>(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)),
                                    EVP_PKEY_free),
          "RS256", kid};
}
Key ec(const std::string& kid) {
  return {std::shared_ptr<EVP_PKEY>(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free),
          "ES256", kid};
}

constexpr int64_t kNow = 1800000000;
nlohmann::json claims(int64_t exp = kNow + 600) {
  return {{"iss", "https://idp.example/realms/bank"},
          {"aud", {"hearth", "other"}},
          {"sub", "u1"},
          {"exp", exp},
          {"nbf", kNow - 10},
          {"tenant", "acme"}};
}
JwtPolicy policy() {
  JwtPolicy p;
  p.issuer = "https://idp.example/realms/bank";
  p.audience = "hearth";
  return p;
}
JwkSet set_of(std::initializer_list<const Key*> keys) {
  nlohmann::json j{{"keys", nlohmann::json::array()}};
  for (const Key* k : keys) j["keys"].push_back(k->jwk());
  auto s = JwkSet::parse(j.dump());
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return std::move(*s);
}
std::string refusal(const Result<JwtClaims>& r) {
  return r.is_ok() ? "accepted" : r.status().message();
}

TEST(Jwt, Rs256AndEs256TokensVerify) {
  const Key r = rsa("r1"), e = ec("e1");
  const JwkSet keys = set_of({&r, &e});
  for (const Key* k : {&r, &e}) {
    auto c = verify_jwt(k->token(claims()), keys, policy(), kNow);
    ASSERT_TRUE(c.is_ok()) << k->alg << ": " << c.status().to_string();
    EXPECT_EQ(c->subject, "u1");
    EXPECT_EQ(c->all["tenant"], "acme");
  }
}

TEST(Jwt, AChangedByteAnywhereIsRefused) {
  const Key e = ec("e1");
  const JwkSet keys = set_of({&e});
  const std::string t = e.token(claims());
  for (size_t i = 0; i < t.size(); ++i) {  // every byte: the last of each part carries unused bits
    std::string bad = t;
    if (bad[i] == '.') continue;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(verify_jwt(bad, keys, policy(), kNow).is_ok()) << "byte " << i;
  }
}

TEST(Jwt, AlgorithmsOtherThanRs256AndEs256AreRefused) {
  const Key r = rsa("r1");
  const JwkSet keys = set_of({&r});
  const std::string body = "." + b64url(claims().dump()) + ".";
  EXPECT_NE(
      refusal(verify_jwt(b64url(R"({"alg":"none"})") + body, keys, policy(), kNow)).find("'none' refused"),
      std::string::npos);
  EXPECT_NE(refusal(verify_jwt(b64url(R"({"alg":"HS256","kid":"r1"})") + body + "AAAA", keys, policy(), kNow))
                .find("'HS256' refused"),
            std::string::npos);
  // An ES256 header naming an RSA key's kid: no ES256 key by that kid.
  Key as_ec = r;
  as_ec.alg = "ES256";
  EXPECT_NE(refusal(verify_jwt(as_ec.sign({{"alg", "ES256"}, {"kid", "r1"}}, claims()), keys, policy(), kNow))
                .find("no ES256 key"),
            std::string::npos);
}

TEST(Jwt, TimeIssuerAndAudienceAreChecked) {
  const Key r = rsa("r1");
  const JwkSet keys = set_of({&r});
  EXPECT_NE(refusal(verify_jwt(r.token(claims(kNow - 61)), keys, policy(), kNow)).find("expired"),
            std::string::npos);
  EXPECT_TRUE(verify_jwt(r.token(claims(kNow - 30)), keys, policy(), kNow).is_ok());  // within the leeway
  auto early = claims();
  early["nbf"] = kNow + 300;
  EXPECT_NE(refusal(verify_jwt(r.token(early), keys, policy(), kNow)).find("nbf"), std::string::npos);
  auto no_exp = claims();
  no_exp.erase("exp");
  EXPECT_NE(refusal(verify_jwt(r.token(no_exp), keys, policy(), kNow)).find("no exp"), std::string::npos);
  auto iss = claims();
  iss["iss"] = "https://evil.example";
  EXPECT_NE(refusal(verify_jwt(r.token(iss), keys, policy(), kNow)).find("issuer"), std::string::npos);
  auto aud = claims();
  aud["aud"] = "someone-else";
  EXPECT_NE(refusal(verify_jwt(r.token(aud), keys, policy(), kNow)).find("audience"), std::string::npos);
  aud["aud"] = "hearth";  // a plain string works too
  EXPECT_TRUE(verify_jwt(r.token(aud), keys, policy(), kNow).is_ok());
  auto bad_exp = claims();
  bad_exp["exp"] = "tomorrow";
  EXPECT_FALSE(verify_jwt(r.token(bad_exp), keys, policy(), kNow).is_ok());
}

TEST(Jwt, KeyRotationPicksTheKeyByKid) {
  const Key old_key = rsa("2026-q3"), new_key = rsa("2026-q4");
  const JwkSet both = set_of({&old_key, &new_key});
  EXPECT_TRUE(verify_jwt(old_key.token(claims()), both, policy(), kNow).is_ok());
  EXPECT_TRUE(verify_jwt(new_key.token(claims()), both, policy(), kNow).is_ok());
  const JwkSet rotated = set_of({&new_key});
  EXPECT_NE(refusal(verify_jwt(old_key.token(claims()), rotated, policy(), kNow)).find("kid '2026-q3'"),
            std::string::npos);
  // A token signed by one key but naming the other's kid.
  EXPECT_NE(refusal(verify_jwt(old_key.sign({{"alg", "RS256"}, {"kid", "2026-q4"}}, claims()), both, policy(),
                               kNow))
                .find("does not verify"),
            std::string::npos);
}

TEST(Jwt, MalformedTokensAreRefusedByName) {
  const Key r = rsa("r1");
  const JwkSet keys = set_of({&r});
  EXPECT_NE(refusal(verify_jwt("abc.def", keys, policy(), kNow)).find("three"), std::string::npos);
  EXPECT_NE(refusal(verify_jwt("a.b.c.d", keys, policy(), kNow)).find("three"), std::string::npos);
  EXPECT_NE(refusal(verify_jwt("!!.e30.AA", keys, policy(), kNow)).find("base64url"), std::string::npos);
  EXPECT_NE(refusal(verify_jwt(b64url("[1]") + ".e30.AA", keys, policy(), kNow)).find("JSON object"),
            std::string::npos);
  EXPECT_NE(refusal(verify_jwt(std::string(20000, 'a'), keys, policy(), kNow)).find("bytes"),
            std::string::npos);
}

TEST(Jwks, RefusesWeakKeysAndPointsOffTheCurve) {
  const Key small = rsa("tiny", 1024);
  EXPECT_FALSE(JwkSet::parse(nlohmann::json{{"keys", {small.jwk()}}}.dump()).is_ok());
  const Key e = ec("e1");
  auto j = e.jwk();
  std::string y;
  ASSERT_TRUE(base64url_decode(j["y"].get<std::string>(), y));
  y[31] = static_cast<char>(y[31] ^ 1);
  j["y"] = b64url(y);
  auto bad = JwkSet::parse(nlohmann::json{{"keys", {j}}}.dump());
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("curve"), std::string::npos) << bad.status().message();
  EXPECT_FALSE(JwkSet::parse("{}").is_ok());
  EXPECT_FALSE(JwkSet::parse(R"({"keys":[{"kty":"oct","k":"AAAA"}]})").is_ok());
  // Encryption keys are skipped; a signing key beside them is used.
  auto enc = e.jwk();
  enc["use"] = "enc";
  auto ok = JwkSet::parse(nlohmann::json{{"keys", {enc, rsa("r").jwk()}}}.dump());
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ(ok->size(), 1u);
}

TEST(Jwt, Base64urlDecodesAndRefusesOtherAlphabets) {
  std::string out;
  for (std::string_view s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00"}) {
    ASSERT_TRUE(base64url_decode(base64url_encode(s), out)) << s;
    EXPECT_EQ(out, s);
  }
  EXPECT_EQ(base64url_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_TRUE(base64url_decode("aGVsbG8", out));
  EXPECT_EQ(out, "hello");
  EXPECT_TRUE(base64url_decode("_-8", out));
  EXPECT_EQ(out, std::string("\xff\xef", 2));
  EXPECT_FALSE(base64url_decode("aGVsbG8=", out));  // padding is not JWS
  EXPECT_FALSE(base64url_decode("a+b/", out));      // plain base64's alphabet
  EXPECT_FALSE(base64url_decode("a", out));         // impossible length
  EXPECT_FALSE(base64url_decode("-_9", out));       // non-zero bits past the last byte: not canonical
}

}  // namespace
}  // namespace hearth::gateway
