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
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace hearth::store {

// Money is held in micro-units (1e-6) of the price book's currency, as int64.
struct TenantLimits {
  int64_t rpm = 0;                  // requests per minute; 0 = unlimited
  int64_t tpm = 0;                  // tokens per minute
  int64_t budget_tokens = 0;        // tokens in total
  std::vector<std::string> models;  // the models the tenant may use; empty = every model
  // Budgets per calendar day and month (UTC): tokens (prompt + completion) and money (price book).
  int64_t budget_tokens_day = 0, budget_tokens_month = 0;
  int64_t budget_money_day = 0, budget_money_month = 0;  // micro-units
  std::string tier;                                      // the licence tier billed ("" = none)
};

// A licence tier: a base fee per calendar month plus a fee per request beyond the included ones.
struct Tier {
  std::string name;
  int64_t base_fee_micros = 0;
  int64_t per_call_micros = 0;
  int64_t included_calls = 0;
  int64_t updated_ms = 0;
};

// An administrator of the gateway (MLPS 2.0 separation of duties: "system" manages tenants, keys, prices and
// tiers; "security" manages administrator accounts; "audit" reads the audit log and usage).
struct AdminAccount {
  std::string name, role;
  std::string password_hash;  // hash_admin_password's format; never the password
  int64_t password_changed_ms = 0;
  int64_t failed_logins = 0;    // consecutive
  int64_t locked_until_ms = 0;  // 0: not locked
  bool disabled = false;
  int64_t created_ms = 0;
};

// The password_hash of an administrator provisioned from the identity provider ("oidc:SUB", "ldap:USER"):
// never verifies as a password. Only such accounts may have ':' in their name.
inline constexpr const char* kExternalAdminPassword = "external";

// A signed-in administrator's session: only the SHA-256 of its token is stored.
struct AdminSession {
  std::string token_hash, admin;
  int64_t created_ms = 0, last_seen_ms = 0;
};

// A tenant's metered totals over a time range.
struct UsageTotals {
  int64_t requests = 0, prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0, cost_micros = 0;
};

// One model's price (the price book): micro-units of `currency` per million tokens, plus per request.
struct Price {
  std::string model;
  std::string currency = "USD";  // ISO 4217 code; one currency per store
  int64_t input_micros = 0;      // per million prompt tokens not served from the prefix cache
  int64_t cached_micros = 0;     // per million cached prompt tokens
  int64_t output_micros = 0;     // per million completion tokens (reasoning included)
  int64_t request_micros = 0;    // per request
  int64_t updated_ms = 0;
};

// What a request costs at `price` (micro-units, rounded up).
int64_t request_cost_micros(const Price& price, int64_t prompt_tokens, int64_t cached_tokens,
                            int64_t completion_tokens);
// "12.5" / "0.000001" <-> micro-units; at most 6 decimals, >= 0, no exponent. Errors name `what`.
Result<int64_t> parse_money(std::string_view text, std::string_view what);
std::string format_money(int64_t micros);  // "12.50", "0.000001": 2 to 6 decimals

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
  std::string project;  // "" = the tenant as a whole
  std::string owner;    // the user the key was issued to ("" = not a person's key)
  int64_t created_ms = 0;
  int64_t expires_ms = 0;  // 0: never
  int64_t revoked_ms = 0;  // 0: active
};

// A project inside a tenant: keys may belong to one, and usage is recorded per project.
struct Project {
  std::string tenant, name;
  int64_t created_ms = 0;
};

// What a new key is for: a project of its tenant and the user it is issued to (both optional).
struct KeyScope {
  std::string project, owner;
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
  int64_t key_id = 0;   // 0: not a key (e.g. an OIDC token)
  std::string project;  // the key's project ("" = none)
  std::string user;     // who: the key's owner, or the signed-in user ("oidc:SUB", "ldap:NAME"); "" = unknown
  std::string model;
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t reasoning_tokens = 0;
  int64_t latency_ms = 0;
  int status = 0;       // HTTP status returned to the client
  std::string outcome;  // "ok", "upstream_error", "client_disconnected", ...
  std::string request_id;
  int64_t cost_micros = 0;  // at the model's price when the request was admitted (0: no price)
  // Shared quotas (not stored in the record): the hold this request's admission made, released in the same
  // transaction that writes the record, and the tokens to give back to the tenant's tokens-per-minute bucket
  // (reserved minus used; negative takes more).
  std::string quota_hold;
  int64_t quota_refund_tokens = 0;
};

// Start of the UTC day and calendar month containing wall time `ms` (ms since the epoch), and their ends.
struct CalendarWindows {
  int64_t day_start_ms, day_end_ms, month_start_ms, month_end_ms;
};
CalendarWindows calendar_windows(int64_t ms);

// Shared quotas: a tenant's rate-limit buckets, what its finished requests used and what requests in flight
// hold, read and changed in one store transaction under a per-tenant lock, so that several gateway replicas
// (on PostgreSQL, or processes sharing one SQLite file) admit against the same numbers.
struct QuotaState {
  // Token buckets: level and when it was last written; level < 0: no bucket yet (a full one).
  double rpm_level = -1, tpm_level = -1;
  int64_t rpm_updated_ms = 0, tpm_updated_ms = 0;
  // Finished requests (usage records): tokens in total, this UTC day and month; money this day and month.
  int64_t tokens_total = 0, tokens_day = 0, tokens_month = 0, micros_day = 0, micros_month = 0;
  // Unexpired holds of requests in flight, every replica's.
  int64_t holds = 0, held_tokens = 0, held_micros = 0;
};
struct QuotaChange {  // what an admission writes; nothing when admit is false
  bool admit = false;
  double rpm_level = -1, tpm_level = -1;  // the buckets' new levels (< 0: unchanged)
  std::string hold_id;                    // the request's hold (released by its usage record)
  int64_t hold_tokens = 0, hold_micros = 0, hold_expires_ms = 0;
};
using QuotaDecider = std::function<QuotaChange(const QuotaState&)>;

struct AuditEntry {
  std::string actor, action, detail;
};

struct AuditRecord {
  int64_t seq = 0, ts_ms = 0;
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

  // Projects of a tenant: create (kInvalidArgument when it exists, kNotFound without the tenant), list (""
  // = every tenant's; by tenant and name), delete (kNotFound when absent; refused while active keys use it).
  virtual Status create_project(const std::string& tenant, const std::string& name) = 0;
  virtual Result<std::vector<Project>> list_projects(const std::string& tenant) = 0;
  virtual Status delete_project(const std::string& tenant, const std::string& name) = 0;

  // expires_ms: absolute (ms since the epoch), 0 = never. scope.project must be a project of the tenant.
  virtual Result<NewApiKey> create_key(const std::string& tenant, int64_t expires_ms,
                                       const KeyScope& scope = {}) = 0;
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

  // Usage records, in one transaction (one fsync): all or none. Durable when this returns. Each record also
  // counts towards its tenant's shared-quota totals and releases its quota_hold.
  virtual Status record_usage(std::span<const UsageRecord> records) = 0;
  // Records of `tenant` ("" = all) finished in [since_ms, until_ms) (until 0 = no bound), oldest first,
  // at most `limit`.
  virtual Result<std::vector<UsageRecord>> list_usage(const std::string& tenant, int64_t since_ms,
                                                      int64_t until_ms, int64_t limit) = 0;
  // Tokens (prompt + completion) of `tenant` finished at or after since_ms.
  virtual Result<int64_t> tokens_used(const std::string& tenant, int64_t since_ms) = 0;
  // Money (cost_micros) `tenant` spent on requests finished at or after since_ms.
  virtual Result<int64_t> money_used(const std::string& tenant, int64_t since_ms) = 0;

  // One admission against shared quotas: reads `tenant`'s QuotaState for the windows containing now_ms (holds
  // expired by then are dropped), asks `decide`, and writes its change — all in one transaction under a
  // per-tenant lock. `decide` runs inside the transaction: it must be quick, must not call the store, and may
  // run more than once (a transaction retried after a serialization failure).
  virtual Status quota_transaction(const std::string& tenant, int64_t now_ms, const QuotaDecider& decide) = 0;

  // Totals of `tenant`'s requests finished in [since_ms, until_ms) (until 0 = no bound).
  virtual Result<UsageTotals> usage_totals(const std::string& tenant, int64_t since_ms, int64_t until_ms) = 0;

  // Administrators: create (kInvalidArgument when the name exists) or replace one by name (kNotFound);
  // list by name.
  virtual Status put_admin(const AdminAccount& admin, bool create) = 0;
  virtual Result<std::vector<AdminAccount>> list_admins() = 0;
  // A failed sign-in of administrator `name`, counted atomically (replicas signing in at once all count): the
  // account is locked until now_ms + lockout_ms when this makes max_failures (and the count starts again).
  // Returns whether the account is now locked; kNotFound without such an account.
  virtual Result<bool> admin_login_failed(const std::string& name, int64_t max_failures, int64_t lockout_ms,
                                          int64_t now_ms) = 0;
  // Sessions: insert or update (last_seen_ms), find by token hash, delete (kNotFound when absent).
  virtual Status put_session(const AdminSession& session) = 0;
  virtual Result<std::optional<AdminSession>> get_session(const std::string& token_hash) = 0;
  virtual Status delete_session(const std::string& token_hash) = 0;

  // Licence tiers: set (insert or replace), list (by name), delete (kNotFound when absent; refused while a
  // tenant is on it).
  virtual Status set_tier(const Tier& tier) = 0;
  virtual Result<std::vector<Tier>> list_tiers() = 0;
  virtual Status delete_tier(const std::string& name) = 0;

  // The price book: set (insert or replace; the currency must match the book's), list (by model), delete
  // (kNotFound when absent).
  virtual Status set_price(const Price& price) = 0;
  virtual Result<std::vector<Price>> list_prices() = 0;
  virtual Status delete_price(const std::string& model) = 0;
  virtual Result<AuditVerdict> verify_audit() = 0;
  // Records with seq > after_seq, oldest first, at most `limit` (reading; verify_audit checks them).
  virtual Result<std::vector<AuditRecord>> list_audit(int64_t after_seq, int64_t limit) = 0;
  // Retention: removes the audit records written before `before_ms` (the chain's oldest ones, up to the first
  // newer record), leaves a MAC'd anchor so the rest still verifies, and appends an "audit.prune" record by
  // `actor` — all in one transaction. Returns how many records were removed (0: nothing older).
  virtual Result<int64_t> prune_audit(int64_t before_ms, const std::string& actor) = 0;
};

// Key format helpers (exposed for tests and the gateway's header parsing).
bool looks_like_api_key(std::string_view s);
std::string api_key_prefix(std::string_view key);  // "" when not a key
// SHA-256 of a credential, hex: what the store keeps of a key, and what caches may be keyed by.
std::string credential_hash(std::string_view credential);

}  // namespace hearth::store
