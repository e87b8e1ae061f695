#pragma once
// Store: the gateway's persistent state behind one interface — tenants and their limits, API keys,
// and the append-only, HMAC hash-chained audit log. Opened from a URL: "sqlite:PATH" (the default,
// one file, WAL, synchronous=FULL). PostgreSQL (several gateway replicas) is the next backend behind
// the same interface. Schema changes are numbered migrations applied at open. SQL is parameterised only.
//
// Metering: a usage table (one row per request through the gateway), written in batches.
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
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace hearth::store {

struct TenantLimits {
  int64_t rpm = 0;                  // requests per minute; 0 = unlimited
  int64_t tpm = 0;                  // tokens per minute
  int64_t budget_tokens = 0;        // tokens in total
  std::vector<std::string> models;  // the models the tenant may use; empty = every model
};

// Whether `limits` lets a tenant use `model`.
bool model_allowed(const TenantLimits& limits, std::string_view model);

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

// One request through the gateway (metering). Tokens as the upstream reported them; when a client hung up
// mid-stream the upstream's count is unknown and the gateway's estimate is stored (outcome says so).
struct UsageRecord {
  int64_t ts_ms = 0;  // when the request finished
  std::string tenant;
  int64_t key_id = 0;  // 0: not a key (e.g. an OIDC token)
  std::string model;
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t reasoning_tokens = 0;
  int64_t latency_ms = 0;
  int status = 0;       // HTTP status returned to the client
  std::string outcome;  // "ok", "upstream_error", "client_disconnected", ...
  std::string request_id;
};

struct AuditEntry {
  std::string actor, action, detail;
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
  // Replaces a tenant's limits (kNotFound when there is no such tenant).
  virtual Status update_tenant(const std::string& name, const TenantLimits& limits) = 0;

  // expires_ms: absolute (ms since the epoch), 0 = never.
  virtual Result<NewApiKey> create_key(const std::string& tenant, int64_t expires_ms) = 0;
  virtual Result<std::vector<ApiKeyInfo>> list_keys(const std::string& tenant) = 0;  // "" = all tenants
  virtual Status revoke_key(const std::string& prefix) = 0;
  // The key's record when `presented` is a valid, unexpired, unrevoked key; nullopt otherwise.
  virtual Result<std::optional<ApiKeyInfo>> authenticate(std::string_view presented) = 0;

  virtual Status audit(const std::string& actor, const std::string& action, const std::string& detail) {
    const AuditEntry e{actor, action, detail};
    return audit_batch(std::span<const AuditEntry>(&e, 1));
  }
  // Appends the entries in order, in one transaction (one fsync): all or none.
  virtual Status audit_batch(std::span<const AuditEntry> entries) = 0;

  // Usage records, in one transaction (one fsync): all or none. Durable when this returns.
  virtual Status record_usage(std::span<const UsageRecord> records) = 0;
  // Records of `tenant` ("" = all) finished in [since_ms, until_ms) (until 0 = no bound), oldest first,
  // at most `limit`.
  virtual Result<std::vector<UsageRecord>> list_usage(const std::string& tenant, int64_t since_ms,
                                                      int64_t until_ms, int64_t limit) = 0;
  // Tokens (prompt + completion) of `tenant` finished at or after since_ms.
  virtual Result<int64_t> tokens_used(const std::string& tenant, int64_t since_ms) = 0;
  virtual Result<AuditVerdict> verify_audit() = 0;
};

// Key format helpers (exposed for tests and the gateway's header parsing).
bool looks_like_api_key(std::string_view s);
std::string api_key_prefix(std::string_view key);  // "" when not a key
// SHA-256 of a credential, hex: what the store keeps of a key, and what caches may be keyed by.
std::string credential_hash(std::string_view credential);

}  // namespace hearth::store
