#pragma once
// What both store backends share: key material and hashing, the audit chain's MACs and its verifier.
// Not part of the store's public interface.
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/status.h"
#include "store/store.h"

namespace hearth::store::detail {

int64_t now_ms();
// Name 1-128 characters without control characters; limits >= 0.
Status validate_tenant(const std::string& name, const TenantLimits& limits);
// The model allow-list as stored (one name per line) and back.
std::string join_models(const std::vector<std::string>& models);
std::vector<std::string> split_models(std::string_view stored);
// The PostgreSQL backend (pg_store.cpp): url is a libpq connection URI.
Result<std::unique_ptr<Store>> open_postgres(const std::string& url);
std::string sha256_hex(std::string_view s);
// Constant-time comparison of the stored hash with the hash of the presented key.
bool key_hash_matches(const std::string& stored_hash, std::string_view presented);
// A fresh key (secret and public prefix) from the OS CSPRNG; info carries the prefix only.
Result<NewApiKey> new_key_material();

// Checks a price book entry (model name, ISO 4217-shaped currency, amounts >= 0 and below 10^12 micros).
Status validate_price(const Price& price);

// Migration 4, the same SQL for both backends: budgets per day and month (tokens, money), the cost of each
// usage record, and the price book.
// Migration 5: the anchor that pruning leaves (the last removed record's seq and hash, MAC'd), so the chain
// that remains still verifies from its first record.
inline constexpr const char* kMigrationAuditAnchor =
    "CREATE TABLE audit_anchor (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL,"
    " hash TEXT NOT NULL, mac TEXT NOT NULL);";

inline constexpr const char* kMigrationBudgetsAndPrices =
    "ALTER TABLE tenants ADD COLUMN budget_tokens_day BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE tenants ADD COLUMN budget_tokens_month BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE tenants ADD COLUMN budget_money_day BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE tenants ADD COLUMN budget_money_month BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE usage ADD COLUMN cost_micros BIGINT NOT NULL DEFAULT 0;"
    "CREATE TABLE prices (model TEXT PRIMARY KEY, currency TEXT NOT NULL, input_micros BIGINT NOT NULL,"
    " cached_micros BIGINT NOT NULL, output_micros BIGINT NOT NULL, request_micros BIGINT NOT NULL,"
    " updated_ms BIGINT NOT NULL);";

// Migration 6: licence tiers and the tier of each tenant.
inline constexpr const char* kMigrationTiers =
    "CREATE TABLE tiers (name TEXT PRIMARY KEY, base_fee_micros BIGINT NOT NULL, per_call_micros BIGINT NOT "
    "NULL,"
    " included_calls BIGINT NOT NULL, updated_ms BIGINT NOT NULL);"
    "ALTER TABLE tenants ADD COLUMN tier TEXT NOT NULL DEFAULT '';";

// Migrations 4 and later are the same SQL on both backends (BIGINT and TEXT mean the same to SQLite):
// each backend lists its own first three, then these, in order.
// Migration 7: administrator accounts and their sessions.
inline constexpr const char* kMigrationAdmins =
    "CREATE TABLE admins (name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL,"
    " password_changed_ms BIGINT NOT NULL, failed_logins BIGINT NOT NULL, locked_until_ms BIGINT NOT NULL,"
    " disabled BIGINT NOT NULL, created_ms BIGINT NOT NULL);"
    "CREATE TABLE admin_sessions (token_hash TEXT PRIMARY KEY, admin TEXT NOT NULL, created_ms BIGINT NOT "
    "NULL,"
    " last_seen_ms BIGINT NOT NULL);";
inline constexpr const char* kAdminColumns =
    "name, role, password_hash, password_changed_ms, failed_logins, locked_until_ms, disabled, created_ms";
template <typename Row>
AdminAccount admin_from_row(const Row& r) {
  AdminAccount a;
  a.name = r.text(0);
  a.role = r.text(1);
  a.password_hash = r.text(2);
  a.password_changed_ms = r.i64(3);
  a.failed_logins = r.i64(4);
  a.locked_until_ms = r.i64(5);
  a.disabled = r.i64(6) != 0;
  a.created_ms = r.i64(7);
  return a;
}
Status validate_admin(const AdminAccount& admin);

// Migration 8: shared quotas. quota_usage: tokens and money of finished requests per tenant and window
// (period 'total' from 0, 'day' and 'month' from the UTC window's start), kept by record_usage (a missing
// row is filled from the usage table when first needed); quota_holds: what requests in flight reserved, until
// their usage record releases it or it expires; quota_buckets: rate-limit token buckets ('rpm', 'tpm').
inline constexpr const char* kMigrationSharedQuotas =
    "CREATE TABLE quota_usage (tenant TEXT NOT NULL, period TEXT NOT NULL, window_start BIGINT NOT NULL,"
    " tokens BIGINT NOT NULL, micros BIGINT NOT NULL, PRIMARY KEY (tenant, period, window_start));"
    "CREATE TABLE quota_holds (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, tokens BIGINT NOT NULL,"
    " micros BIGINT NOT NULL, expires_ms BIGINT NOT NULL);"
    "CREATE INDEX quota_holds_tenant ON quota_holds (tenant, expires_ms);"
    "CREATE TABLE quota_buckets (tenant TEXT NOT NULL, kind TEXT NOT NULL, level DOUBLE PRECISION NOT NULL,"
    " updated_ms BIGINT NOT NULL, PRIMARY KEY (tenant, kind));";

// Migration 9: projects inside tenants; the project and owner of each key; the project and user of each
// usage record.
inline constexpr const char* kMigrationProjects =
    "CREATE TABLE projects (tenant TEXT NOT NULL, name TEXT NOT NULL, created_ms BIGINT NOT NULL,"
    " PRIMARY KEY (tenant, name));"
    "ALTER TABLE api_keys ADD COLUMN project TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE api_keys ADD COLUMN owner TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE usage ADD COLUMN project TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE usage ADD COLUMN user_name TEXT NOT NULL DEFAULT '';";

inline constexpr const char* kSharedMigrations[] = {
    kMigrationBudgetsAndPrices, kMigrationAuditAnchor,  kMigrationTiers,
    kMigrationAdmins,           kMigrationSharedQuotas, kMigrationProjects};

// A backend's connection inside an open transaction, for the SQL both backends run alike (quota_ledger.cpp).
// Statements number their parameters $1, $2, ... (SQLite reads them as ?1, ?2, ...) and use only SQL both
// dialects accept (INSERT ... ON CONFLICT, COALESCE); result cells come back as text.
using SqlValue = std::variant<int64_t, double, std::string>;
using SqlRows = std::vector<std::vector<std::string>>;
struct SqlStatement {
  std::string sql;
  std::vector<SqlValue> params;
};
class SqlRunner {
 public:
  virtual ~SqlRunner() = default;
  // Runs one statement; `rows` (when given) receives its result. Returns the number of rows it changed.
  virtual Result<int64_t> run(const char* sql, const std::vector<SqlValue>& params,
                              SqlRows* rows = nullptr) = 0;
  // Runs statements in order, stopping at the first error; results[i] receives statement i's rows. A backend
  // may send them together (PostgreSQL: one pipeline, one round trip).
  virtual Status run_all(const std::vector<SqlStatement>& statements, std::vector<SqlRows>& results) {
    results.assign(statements.size(), {});
    for (size_t i = 0; i < statements.size(); ++i)
      HEARTH_RETURN_IF_ERROR(run(statements[i].sql.c_str(), statements[i].params, &results[i]).status());
    return Status::ok();
  }
};
// Projects (Store::create_project and the rest), the same SQL on both backends; `key_scope` checks a new
// key's scope (the project exists in the tenant; names 1-128 characters without control characters).
Status create_project(SqlRunner& db, const std::string& tenant, const std::string& name, int64_t now_ms);
Result<std::vector<Project>> list_projects(SqlRunner& db, const std::string& tenant);
Status delete_project(SqlRunner& db, const std::string& tenant, const std::string& name);
Status check_key_scope(SqlRunner& db, const std::string& tenant, const KeyScope& scope);

// Store::admin_login_failed in one UPDATE (both backends).
Result<bool> admin_login_failed(SqlRunner& db, const std::string& name, int64_t max_failures,
                                int64_t lockout_ms, int64_t now_ms);

// Store::quota_transaction's body, inside the backend's transaction and tenant lock. `prelude` runs just
// before the read (and with it: e.g. BEGIN and the lock), `epilogue` after the writes (e.g. COMMIT), so a
// pipelining backend needs two round trips.
Status quota_admit(SqlRunner& db, const std::string& tenant, int64_t now_ms, const QuotaDecider& decide,
                   const std::vector<SqlStatement>& prelude = {},
                   const std::vector<SqlStatement>& epilogue = {});
// record_usage's part for shared quotas, after the record's usage row is inserted in the same transaction:
// the tenant's window totals, the release of its hold and the tokens-per-minute refund. Safe without the
// tenant lock: a missing total row is inserted ON CONFLICT DO NOTHING, then added to.
Status quota_record(SqlRunner& db, const UsageRecord& u);
inline constexpr int64_t kOwnMigrations = 3;
inline constexpr int64_t kMigrationCount =
    kOwnMigrations + static_cast<int64_t>(std::size(kSharedMigrations));
// Migration v's SQL (1-based).
inline const char* migration_sql(const char* const* own, int64_t v) {
  return v <= kOwnMigrations ? own[v - 1] : kSharedMigrations[v - kOwnMigrations - 1];
}

inline constexpr const char* kTierColumns =
    "name, base_fee_micros, per_call_micros, included_calls, updated_ms";

template <typename Row>
Tier tier_from_row(const Row& r) {
  Tier t;
  t.name = r.text(0);
  t.base_fee_micros = r.i64(1);
  t.per_call_micros = r.i64(2);
  t.included_calls = r.i64(3);
  t.updated_ms = r.i64(4);
  return t;
}
Status validate_tier(const Tier& tier);

// The query behind usage_totals (both backends bind tenant, since, until, until).
inline constexpr const char* kUsageTotalsQuery =
    "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(cached_tokens), 0),"
    " COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(cost_micros), 0) FROM usage";

// The columns of a tenant row, in the order tenant_from_row reads them.
inline constexpr const char* kTenantColumns =
    "id, name, rpm, tpm, budget_tokens, created_ms, models, budget_tokens_day, budget_tokens_month,"
    " budget_money_day, budget_money_month, tier";

template <typename Row>
Tenant tenant_from_row(const Row& r) {
  Tenant t;
  t.id = r.i64(0);
  t.name = r.text(1);
  t.limits.rpm = r.i64(2);
  t.limits.tpm = r.i64(3);
  t.limits.budget_tokens = r.i64(4);
  t.created_ms = r.i64(5);
  t.limits.models = split_models(r.text(6));
  t.limits.budget_tokens_day = r.i64(7);
  t.limits.budget_tokens_month = r.i64(8);
  t.limits.budget_money_day = r.i64(9);
  t.limits.budget_money_month = r.i64(10);
  t.limits.tier = r.text(11);
  return t;
}

// The columns of a price row, in the order price_from_row reads them.
inline constexpr const char* kPriceColumns =
    "model, currency, input_micros, cached_micros, output_micros, request_micros, updated_ms";

template <typename Row>
Price price_from_row(const Row& r) {
  Price p;
  p.model = r.text(0);
  p.currency = r.text(1);
  p.input_micros = r.i64(2);
  p.cached_micros = r.i64(3);
  p.output_micros = r.i64(4);
  p.request_micros = r.i64(5);
  p.updated_ms = r.i64(6);
  return p;
}

// The columns of a usage row, in the order usage_from_row reads them (both backends select them so).
inline constexpr const char* kUsageColumns =
    "ts_ms, tenant, key_id, model, prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens, "
    "latency_ms,"
    " status, outcome, request_id, cost_micros, project, user_name";

// Row mappers over a backend's row accessor (i64(col), text(col)).
template <typename Row>
UsageRecord usage_from_row(const Row& r) {
  UsageRecord u;
  u.ts_ms = r.i64(0);
  u.tenant = r.text(1);
  u.key_id = r.i64(2);
  u.model = r.text(3);
  u.prompt_tokens = r.i64(4);
  u.cached_tokens = r.i64(5);
  u.completion_tokens = r.i64(6);
  u.reasoning_tokens = r.i64(7);
  u.latency_ms = r.i64(8);
  u.status = static_cast<int>(r.i64(9));
  u.outcome = r.text(10);
  u.request_id = r.text(11);
  u.cost_micros = r.i64(12);
  u.project = r.text(13);
  u.user = r.text(14);
  return u;
}
// The columns key_from_row reads (api_keys k JOIN tenants t); authenticate adds k.hash after them.
inline constexpr const char* kKeyColumns =
    "k.id, k.prefix, t.name, k.created_ms, k.expires_ms, k.revoked_ms, k.project, k.owner";
inline constexpr int kKeyHashColumn = 8;
template <typename Row>
ApiKeyInfo key_from_row(const Row& r) {
  ApiKeyInfo k;
  k.id = r.i64(0);
  k.prefix = r.text(1);
  k.tenant = r.text(2);
  k.created_ms = r.i64(3);
  k.expires_ms = r.i64(4);
  k.revoked_ms = r.i64(5);
  k.project = r.text(6);
  k.owner = r.text(7);
  return k;
}

// The audit chain's HMAC-SHA256 key and MACs.
class AuditMac {
 public:
  // HEARTH_AUDIT_KEY (hex, >= 16 bytes); else `key_file` when given (created 0600 with 32 random bytes
  // when absent); else an error naming what to set.
  static Result<AuditMac> load(const std::string& key_file);
  std::string record(int64_t seq, int64_t ts_ms, const std::string& actor, const std::string& action,
                     const std::string& detail, const std::string& prev_hash) const;
  std::string head(int64_t seq, const std::string& hash) const;
  // The anchor pruning leaves: the last removed record's seq and hash.
  std::string anchor(int64_t seq, const std::string& hash) const;

 private:
  std::string mac(std::string_view msg) const;
  std::vector<unsigned char> key_;
};

struct AuditRow {
  int64_t seq = 0, ts_ms = 0;
  std::string actor, action, detail, prev_hash, hash;
};
struct AuditHead {
  int64_t seq = 0;
  std::string hash, mac;
};

// Feed the rows in seq order, then finish() with the stored head (if any). After pruning, start() with the
// stored anchor first: the chain then begins right after it.
class ChainVerifier {
 public:
  explicit ChainVerifier(const AuditMac& mac) : mac_(mac) {}
  void start(const std::optional<AuditHead>& anchor);
  bool add(const AuditRow& row);  // false once the chain is broken (stop feeding)
  AuditVerdict finish(const std::optional<AuditHead>& head);

 private:
  void bad(int64_t seq, std::string why);
  const AuditMac& mac_;
  AuditVerdict v_;
  std::string prev_;
  int64_t expect_ = 1;
};

}  // namespace hearth::store::detail
