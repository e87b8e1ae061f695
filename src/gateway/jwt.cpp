#include "gateway/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <array>

#include "core/json_guard.h"

namespace hearth::gateway {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM, OSSL_PARAM_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG, ECDSA_SIG_free>>;

constexpr JsonLimits kJsonLimits{64 << 10, 16};

std::shared_ptr<EVP_PKEY> from_params(const char* type, const OSSL_PARAM* params) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* key = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, const_cast<OSSL_PARAM*>(params)) <= 0)
    return nullptr;
  std::shared_ptr<EVP_PKEY> out(key, EVP_PKEY_free);
  PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) <= 0) return nullptr;  // e.g. a point not on the curve
  return out;
}

Result<std::shared_ptr<EVP_PKEY>> rsa_key(const std::string& n64, const std::string& e64) {
  std::string n, e;
  if (!base64url_decode(n64, n) || !base64url_decode(e64, e) || n.empty() || e.empty())
    return make_error(ErrorCode::kInvalidArgument, "RSA key: n and e must be base64url");
  if (n.size() < 256)
    return make_error(ErrorCode::kInvalidArgument, "RSA key: {} bits, at least 2048 wanted", n.size() * 8);
  BnPtr bn_n(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()), nullptr));
  BnPtr bn_e(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()), nullptr));
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()))
    return make_error(ErrorCode::kInternal, "RSA key: OpenSSL could not build the parameters");
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  auto key = from_params("RSA", params.get());
  if (!key) return make_error(ErrorCode::kInvalidArgument, "RSA key: OpenSSL refused it");
  return key;
}

Result<std::shared_ptr<EVP_PKEY>> ec_key(const std::string& x64, const std::string& y64) {
  std::string x, y;
  if (!base64url_decode(x64, x) || !base64url_decode(y64, y) || x.size() != 32 || y.size() != 32)
    return make_error(ErrorCode::kInvalidArgument,
                      "EC P-256 key: x and y must be 32 bytes of base64url each");
  std::string point = "\x04" + x + y;  // uncompressed
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()))
    return make_error(ErrorCode::kInternal, "EC key: OpenSSL could not build the parameters");
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  auto key = from_params("EC", params.get());
  if (!key) return make_error(ErrorCode::kInvalidArgument, "EC P-256 key: not a point on the curve");
  return key;
}

std::string str(const nlohmann::json& j, const char* k) {
  auto it = j.find(k);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<nlohmann::json> parse_part(std::string_view b64, const char* what) {
  std::string text;
  if (!base64url_decode(b64, text))
    return make_error(ErrorCode::kInvalidArgument, "token {}: not base64url", what);
  HEARTH_RETURN_IF_ERROR(check_json_limits(text, kJsonLimits, what));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return make_error(ErrorCode::kInvalidArgument, "token {}: not a JSON object", what);
  return j;
}

// A NumericDate claim: absent -> fallback; present, it must be a number.
Result<int64_t> date_claim(const nlohmann::json& c, const char* k, int64_t fallback) {
  auto it = c.find(k);
  if (it == c.end()) return fallback;
  if (!it->is_number()) return make_error(ErrorCode::kInvalidArgument, "token claim {} is not a number", k);
  const double v = it->get<double>();
  if (!(v > -1e15 && v < 1e15))
    return make_error(ErrorCode::kInvalidArgument, "token claim {} is out of range", k);
  return static_cast<int64_t>(v);
}

}  // namespace

Result<JwkSet> JwkSet::parse(std::string_view json) {
  HEARTH_RETURN_IF_ERROR(check_json_limits(json, JsonLimits{1 << 20, 16}, "JWKS"));
  nlohmann::json j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("keys") || !j["keys"].is_array())
    return make_error(ErrorCode::kInvalidArgument, "JWKS: not a JSON object with a \"keys\" array");
  JwkSet set;
  std::string skipped;
  for (const auto& k : j["keys"]) {
    if (!k.is_object()) continue;
    const std::string kty = str(k, "kty"), use = str(k, "use"), alg = str(k, "alg");
    if (!use.empty() && use != "sig") continue;
    Jwk jwk;
    jwk.kid = str(k, "kid");
    Result<std::shared_ptr<EVP_PKEY>> key = make_error(ErrorCode::kUnsupported, "key type {}", kty);
    if (kty == "RSA" && (alg.empty() || alg == "RS256")) {
      jwk.alg = "RS256";
      key = rsa_key(str(k, "n"), str(k, "e"));
    } else if (kty == "EC" && str(k, "crv") == "P-256" && (alg.empty() || alg == "ES256")) {
      jwk.alg = "ES256";
      key = ec_key(str(k, "x"), str(k, "y"));
    }
    if (!key.is_ok()) {
      skipped += (skipped.empty() ? "" : "; ") + ("kid '" + jwk.kid + "': " + key.status().message());
      continue;
    }
    jwk.key = std::move(*key);
    set.keys_.push_back(std::move(jwk));
  }
  if (set.keys_.empty())
    return make_error(ErrorCode::kInvalidArgument, "JWKS: no usable RS256 or ES256 signing key{}",
                      skipped.empty() ? "" : " (" + skipped + ")");
  return set;
}

const Jwk* JwkSet::find(std::string_view kid, std::string_view alg) const {
  const Jwk* only = nullptr;
  int n = 0;
  for (const Jwk& k : keys_) {
    if (k.alg != alg) continue;
    if (!kid.empty() && k.kid == kid) return &k;
    only = &k;
    ++n;
  }
  return kid.empty() && n == 1 ? only : nullptr;
}

Result<JwtClaims> verify_jwt(std::string_view token, const JwkSet& keys, const JwtPolicy& policy,
                             int64_t now_s) {
  if (token.size() > policy.max_token_bytes)
    return make_error(ErrorCode::kInvalidArgument, "token is {} bytes, more than {}", token.size(),
                      policy.max_token_bytes);
  const size_t d1 = token.find('.');
  const size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return make_error(ErrorCode::kInvalidArgument, "malformed token: three dot-separated parts expected");
  HEARTH_ASSIGN_OR_RETURN(nlohmann::json header, parse_part(token.substr(0, d1), "header"));
  const std::string alg = str(header, "alg");
  if (alg != "RS256" && alg != "ES256")
    return make_error(ErrorCode::kInvalidArgument, "token algorithm '{}' refused: RS256 or ES256 only", alg);
  if (header.contains("crit"))
    return make_error(ErrorCode::kInvalidArgument, "token has critical extensions: refused");
  const std::string kid = str(header, "kid");
  const Jwk* jwk = keys.find(kid, alg);
  if (jwk == nullptr)
    return make_error(ErrorCode::kNotFound, "no {} key with kid '{}' in the key set", alg, kid);
  std::string sig;
  if (!base64url_decode(token.substr(d2 + 1), sig))
    return make_error(ErrorCode::kInvalidArgument, "token signature: not base64url");
  if (alg == "ES256") {  // JWS carries r || s; OpenSSL verifies DER
    if (sig.size() != 64) return make_error(ErrorCode::kInvalidArgument, "ES256 signature must be 64 bytes");
    EcdsaSigPtr es(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()), 32, nullptr);
    BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()) + 32, 32, nullptr);
    if (!es || !r || !s || ECDSA_SIG_set0(es.get(), r, s) != 1) {
      BN_free(r);
      BN_free(s);
      return make_error(ErrorCode::kInternal, "ES256: OpenSSL could not hold the signature");
    }
    unsigned char* der = nullptr;
    const int len = i2d_ECDSA_SIG(es.get(), &der);
    if (len <= 0) return make_error(ErrorCode::kInternal, "ES256: OpenSSL could not encode the signature");
    sig.assign(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
    OPENSSL_free(der);
  }
  const std::string_view signed_part = token.substr(0, d2);
  MdCtxPtr md(EVP_MD_CTX_new());
  if (!md || EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, jwk->key.get()) != 1 ||
      EVP_DigestVerify(md.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) != 1)
    return make_error(ErrorCode::kInvalidArgument, "token signature does not verify (kid '{}')", kid);

  HEARTH_ASSIGN_OR_RETURN(nlohmann::json c, parse_part(token.substr(d1 + 1, d2 - d1 - 1), "payload"));
  JwtClaims out;
  out.issuer = str(c, "iss");
  out.subject = str(c, "sub");
  HEARTH_ASSIGN_OR_RETURN(out.expires_s, date_claim(c, "exp", -1));
  HEARTH_ASSIGN_OR_RETURN(int64_t nbf, date_claim(c, "nbf", 0));
  if (out.expires_s < 0) return make_error(ErrorCode::kInvalidArgument, "token has no exp claim: refused");
  if (now_s > out.expires_s + policy.leeway_s)
    return make_error(ErrorCode::kInvalidArgument, "token expired {} s ago", now_s - out.expires_s);
  if (now_s + policy.leeway_s < nbf)
    return make_error(ErrorCode::kInvalidArgument, "token not valid for another {} s (nbf)", nbf - now_s);
  if (!policy.issuer.empty() && out.issuer != policy.issuer)
    return make_error(ErrorCode::kInvalidArgument, "token issuer '{}' is not '{}'", out.issuer,
                      policy.issuer);
  if (!policy.audience.empty()) {
    bool ok = false;
    if (auto a = c.find("aud"); a != c.end()) {
      if (a->is_string()) ok = a->get<std::string>() == policy.audience;
      if (a->is_array())
        for (const auto& e : *a) ok = ok || (e.is_string() && e.get<std::string>() == policy.audience);
    }
    if (!ok)
      return make_error(ErrorCode::kInvalidArgument, "token audience does not include '{}'", policy.audience);
  }
  out.all = std::move(c);
  return out;
}

}  // namespace hearth::gateway
