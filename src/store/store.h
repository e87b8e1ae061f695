#pragma once
// Store: the gateway's persistent state behind one interface — tenants and their limits, API keys,
// and the append-only, HMAC hash-chained audit log. Opened from a URL: "sqlite:PATH" (the default,
// one file, WAL, synchronous=FULL). PostgreSQL (several gateway replicas) is the next backend behind
// the same interface. Schema changes are numbered migrations applied at open. SQL is parameterised only.
//
// API keys: "hk_" + an 8-character public prefix (for identification in lists and logs) + "_" + a
// 43-character secret (256 random bits, base62). Only SHA-256 of the whole key is stored; the key is shown
// once, at creation. authenticate() compares hashes in constant time.
//
// Audit: record n's hash = HMAC-SHA256(key, seq | time | actor | action | detail | hash of n - 1); the
// chain's head (last seq and hash) is itself MAC'd, so a modified, deleted (also the last), inserted or
// reordered record breaks verification. The HMAC key never enters the database: HEARTH_AUDIT_KEY (hex),
// or a file beside the database (PATH.audit-key, created 0600 on first use).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace hearth::store {

struct TenantLimits {
  int64_t rpm = 0;            // requests per minute; 0 = unlimited
  int64_t tpm = 0;            // tokens per minute
  int64_t budget_tokens = 0;  // tokens in total
};

struct Tenant {
  int64_t id = 0;
  std::string name;
  TenantLimits limits;
  int64_t created_ms = 0;
};

struct ApiKeyInfo {
  int64_t id = 0;
  std::string prefix;  // public, e.g. "hk_Ab3dE9xZ"
  std::string tenant;
  int64_t created_ms = 0;
  int64_t expires_ms = 0;  // 0: never
  int64_t revoked_ms = 0;  // 0: active
};

struct NewApiKey {
  std::string key;  // the secret: shown once
  ApiKeyInfo info;
};

struct AuditVerdict {
  bool intact = true;
  int64_t records = 0;
  int64_t first_bad_seq = 0;  // when not intact
  std::string reason;
};

class Store {
 public:
  // "sqlite:PATH". Errors name what failed (the file, the migration).
  static Result<std::unique_ptr<Store>> open(const std::string& url);
  virtual ~Store() = default;

  virtual Result<Tenant> create_tenant(const std::string& name, const TenantLimits& limits) = 0;
  virtual Result<std::vector<Tenant>> list_tenants() = 0;

  // expires_ms: absolute (ms since the epoch), 0 = never.
  virtual Result<NewApiKey> create_key(const std::string& tenant, int64_t expires_ms) = 0;
  virtual Result<std::vector<ApiKeyInfo>> list_keys(const std::string& tenant) = 0;  // "" = all tenants
  virtual Status revoke_key(const std::string& prefix) = 0;
  // The key's record when `presented` is a valid, unexpired, unrevoked key; nullopt otherwise.
  virtual Result<std::optional<ApiKeyInfo>> authenticate(std::string_view presented) = 0;

  virtual Status audit(const std::string& actor, const std::string& action, const std::string& detail) = 0;
  virtual Result<AuditVerdict> verify_audit() = 0;
};

// Key format helpers (exposed for tests and the gateway's header parsing).
bool looks_like_api_key(std::string_view s);
std::string api_key_prefix(std::string_view key);  // "" when not a key

}  // namespace hearth::store
