#pragma once
// AuthnFilter: who is calling. An API key (Authorization: Bearer hk_...) is checked against the store; valid
// keys are cached (keyed by the key's SHA-256, never the key) for cache_ttl_ms, so revocation takes effect
// within that time on every replica. Every decision goes to the audit log (key prefix, path, request id;
// never the key). With OIDC configured, a bearer JWT (RS256/ES256) is verified against the identity
// provider's key set (jwt.h: signature, iss, aud, exp, nbf); a claim names the tenant, which must exist in
// the store. Verified tokens are cached by SHA-256 until they expire (at most cache_ttl_ms). No valid
// credential: 401 with an OpenAI error object.
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/metrics.h"
#include "gateway/filter.h"
#include "gateway/jwt.h"
#include "gateway/record_writer.h"
#include "store/store.h"

namespace hearth::gateway {

struct OidcConfig {
  std::string jwks_file;  // the identity provider's JWKS document ("" = OIDC off)
  JwtPolicy policy;       // issuer, audience, leeway
  std::string tenant_claim = "tenant";
};

struct AuthnConfig {
  int cache_ttl_ms = 5000;
  size_t max_cache_entries = 100000;
  OidcConfig oidc;
};

class AuthnFilter final : public Filter {
 public:
  // Fails when the OIDC key set cannot be read or holds no usable key.
  static Result<std::unique_ptr<AuthnFilter>> create(AuthnConfig config, store::Store& store,
                                                     RecordWriter& records, Registry& metrics);
  const char* name() const override { return "authn"; }
  std::optional<Rejection> on_request(RequestContext& ctx) override;

  // The credential of an Authorization header value ("Bearer X" -> X; "" when absent or malformed).
  static std::string_view bearer_token(std::string_view authorization);

 private:
  AuthnFilter(AuthnConfig config, store::Store& store, RecordWriter& records, Registry& metrics);
  struct Cached {
    store::ApiKeyInfo info;  // for a JWT: tenant, and the subject as the prefix
    Clock::time_point until;
  };
  std::optional<Rejection> on_jwt(RequestContext& ctx, std::string_view token);
  bool tenant_exists(const std::string& tenant);
  Rejection deny(RequestContext& ctx, const std::string& who, const char* reason, std::string message);

  const AuthnConfig config_;
  store::Store& store_;
  RecordWriter& records_;
  CounterFamily* failures_;
  std::mutex mu_;
  std::unordered_map<std::string, Cached> cache_;  // SHA-256 hex of the key -> its record
  std::optional<JwkSet> jwks_;
  std::unordered_map<std::string, Clock::time_point> tenants_;  // known tenant names, until
};

}  // namespace hearth::gateway
