#pragma once
// JSON Web Tokens (RFC 7519) signed with RS256 or ES256 (RFC 7518), verified against a JSON Web Key Set
// (RFC 7517): what an OAuth2 / OpenID Connect identity provider (Keycloak, Azure AD, Okta, ...) issues as
// a bearer token. Everything here is untrusted input: sizes are bounded, the algorithm must be one of the
// two and match the key's type (no "none", no HMAC with a public key as the secret), the key is chosen by
// kid, and iss, aud, exp and nbf are checked with a small leeway. Errors say which check failed.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "gateway/base64.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace hearth::gateway {

// One public key of a set: RSA (n, e) for RS256 or EC P-256 (x, y) for ES256.
struct Jwk {
  std::string kid;
  std::string alg;  // "RS256" or "ES256"
  std::shared_ptr<EVP_PKEY> key;
};

class JwkSet {
 public:
  // {"keys": [...]}: keys of other types, curves or uses ("enc") are skipped; none usable is an error.
  static Result<JwkSet> parse(std::string_view json);
  // The key with this kid; with an empty kid, the only key of that algorithm (else null).
  const Jwk* find(std::string_view kid, std::string_view alg) const;
  size_t size() const { return keys_.size(); }

 private:
  std::vector<Jwk> keys_;
};

struct JwtPolicy {
  std::string issuer;    // required "iss" ("" = not checked)
  std::string audience;  // must be "aud" or one of its entries ("" = not checked)
  int64_t leeway_s = 60;
  size_t max_token_bytes = 16384;
};

struct JwtClaims {
  std::string issuer, subject;
  int64_t expires_s = 0;
  nlohmann::json all;  // every claim, for mapping to tenants and roles
};

// Verifies `token` (header.payload.signature, base64url) at time now_s (seconds since the epoch). A token
// whose key id is not in `keys` fails with kNotFound (the caller may refetch the set: key rotation).
Result<JwtClaims> verify_jwt(std::string_view token, const JwkSet& keys, const JwtPolicy& policy,
                             int64_t now_s);

}  // namespace hearth::gateway
