#pragma once
// AuthnFilter: who is calling. An API key (Authorization: Bearer hk_...) is checked against the store; valid
// keys are cached (keyed by the key's SHA-256, never the key) for cache_ttl_ms, so revocation takes effect
// within that time on every replica. Every decision goes to the audit log (key prefix, path, request id;
// never the key). With OIDC configured, a bearer JWT (RS256/ES256) is verified against the identity
// provider's key set (jwt.h: signature, iss, aud, exp, nbf); a claim names the tenant, which must exist in
// the store. Verified tokens are cached by SHA-256 until they expire (at most cache_ttl_ms). With LDAP
// configured, `Authorization: Basic` user:password is checked against the directory (ldap_auth.h; a mapped
// group names the tenant); successes are cached by the SHA-256 of the credentials, and after
// ldap_max_failures refused passwords within ldap_lockout_ms a user name is locked out for the rest of that
// window without asking the directory. No valid credential: 401 with an OpenAI error object.
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/metrics.h"
#include "gateway/filter.h"
#include "gateway/jwks_source.h"
#include "gateway/jwt.h"
#include "gateway/ldap_auth.h"
#include "gateway/record_writer.h"
#include "store/store.h"

namespace hearth::gateway {

struct OidcConfig {
  JwksSourceConfig jwks;  // the identity provider's key set: file or URL (location "" = OIDC off)
  JwtPolicy policy;       // issuer, audience, leeway
  std::string tenant_claim = "tenant";
};

struct AuthnConfig {
  int cache_ttl_ms = 5000;
  size_t max_cache_entries = 100000;
  OidcConfig oidc;
  std::shared_ptr<const LdapDirectory> ldap;  // null = LDAP off
  int ldap_max_failures = 5;
  int ldap_lockout_ms = 300000;
};

class AuthnFilter final : public Filter {
 public:
  // Fails when the OIDC key set cannot be read (file or URL) or holds no usable key.
  static Result<std::unique_ptr<AuthnFilter>> create(AuthnConfig config, store::Store& store,
                                                     RecordWriter& records, Registry& metrics);
  const char* name() const override { return "authn"; }
  std::optional<Rejection> on_request(RequestContext& ctx) override;
  // HTTP Basic credentials with LDAP on: a directory bind unless the sign-in is cached.
  bool may_block(const RequestContext& ctx) const override;

  // The OIDC key set (null without OIDC): the admin API's OIDC sign-in shares it.
  std::shared_ptr<JwksSource> jwks() const { return jwks_; }

  // The credential of an Authorization header value ("Bearer X" -> X; "" when absent or malformed).
  static std::string_view bearer_token(std::string_view authorization);

 private:
  AuthnFilter(AuthnConfig config, store::Store& store, RecordWriter& records, Registry& metrics);
  struct Cached {
    store::ApiKeyInfo info;  // for a JWT: tenant, and the subject as the prefix
    Clock::time_point until;
  };
  struct Failures {
    int count = 0;
    Clock::time_point since;
  };
  std::optional<Rejection> on_jwt(RequestContext& ctx, std::string_view token);
  std::optional<Rejection> on_basic(RequestContext& ctx, const BasicCredentials& creds);
  bool tenant_exists(const std::string& tenant);
  // `detail` goes to the audit log only (e.g. which LDAP check failed), never to the client.
  Rejection deny(RequestContext& ctx, const std::string& who, const char* reason, std::string message,
                 std::string_view detail = {});

  const AuthnConfig config_;
  store::Store& store_;
  RecordWriter& records_;
  CounterFamily* failures_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Cached> cache_;  // SHA-256 hex of the key -> its record
  std::shared_ptr<JwksSource> jwks_;
  std::unordered_map<std::string, Clock::time_point> tenants_;  // known tenant names, until
  std::unordered_map<std::string, Failures> ldap_failures_;  // user name -> refused passwords in the window
};

}  // namespace hearth::gateway
