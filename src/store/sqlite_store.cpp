// The SQLite backend of Store (store.h).
#include <sqlite3.h>

#include <fmt/format.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <thread>
#include <variant>

#include "store/store_internal.h"

namespace hearth::store {
namespace {

using detail::now_ms;

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, double v) {
    sqlite3_bind_double(s_, i, v);
    return *this;
  }
  int step() { return sqlite3_step(s_); }
  sqlite3_stmt* raw() const { return s_; }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  std::string text(int c) const {
    const unsigned char* p = sqlite3_column_text(s_, c);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(s_, c)))
             : std::string();
  }

 private:
  sqlite3_stmt* s_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

// The shared SQL (store_internal.h): $N parameters read as ?N.
class SqliteRunner final : public detail::SqlRunner {
 public:
  explicit SqliteRunner(sqlite3* db) : db_(db) {}
  Result<int64_t> run(const char* sql, const std::vector<detail::SqlValue>& params,
                      detail::SqlRows* rows = nullptr) override {
    std::string q(sql);
    for (char& c : q)
      if (c == '$') c = '?';
    Stmt s(db_, q.c_str());
    if (!s.ok()) return make_error(ErrorCode::kIo, "SQLite store: prepare: {}", sqlite3_errmsg(db_));
    for (size_t i = 0; i < params.size(); ++i)
      std::visit([&](const auto& v) { s.bind(static_cast<int>(i + 1), v); }, params[i]);
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      if (rows == nullptr) continue;
      auto& r = rows->emplace_back();
      for (int c = 0; c < sqlite3_column_count(s.raw()); ++c) r.push_back(s.text(c));
    }
    if (rc != SQLITE_DONE) return make_error(ErrorCode::kIo, "SQLite store: {}", sqlite3_errmsg(db_));
    return static_cast<int64_t>(sqlite3_changes(db_));
  }

 private:
  sqlite3* db_;
};

// Numbered migrations: each runs once, in a transaction, recorded in schema_migrations.
const char* const kMigrations[] = {
    // 1: tenants, API keys, the audit log and its MAC'd head.
    "CREATE TABLE tenants (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, rpm INTEGER NOT NULL,"
    " tpm INTEGER NOT NULL, budget_tokens INTEGER NOT NULL, created_ms INTEGER NOT NULL);"
    "CREATE TABLE api_keys (id INTEGER PRIMARY KEY, tenant_id INTEGER NOT NULL REFERENCES tenants(id),"
    " prefix TEXT NOT NULL UNIQUE, hash TEXT NOT NULL, created_ms INTEGER NOT NULL,"
    " expires_ms INTEGER NOT NULL, revoked_ms INTEGER NOT NULL);"
    "CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, actor TEXT NOT NULL,"
    " action TEXT NOT NULL, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);"
    "CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL,"
    " hash TEXT NOT NULL, mac TEXT NOT NULL);",
    // 2: metering.
    "CREATE TABLE usage (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, tenant TEXT NOT NULL,"
    " key_id INTEGER NOT NULL, model TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, cached_tokens INTEGER "
    "NOT NULL,"
    " completion_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL, latency_ms INTEGER NOT NULL,"
    " status INTEGER NOT NULL, outcome TEXT NOT NULL, request_id TEXT NOT NULL);"
    "CREATE INDEX usage_tenant_ts ON usage (tenant, ts_ms);",
    // 3: per-tenant model allow-lists (one name per line; empty = every model).
    "ALTER TABLE tenants ADD COLUMN models TEXT NOT NULL DEFAULT '';",
    // 4 and later: detail::kSharedMigrations.
};

class SqliteStore final : public Store {
 public:
  ~SqliteStore() override {
    if (db_ != nullptr) sqlite3_close_v2(db_);
  }

  Status open(const std::string& path) {
    path_ = path;
    if (sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
      return make_error(ErrorCode::kIo, "cannot open the SQLite store {}: {}", path,
                        db_ ? sqlite3_errmsg(db_) : "out of memory");
    }
    sqlite3_busy_timeout(db_, 5000);
    // WAL: readers never block the writer; FULL: a committed audit or usage record survives power loss.
    // Switching a new file to WAL needs an exclusive lock and does not wait in the busy handler: when
    // another process opens the same new file at the same moment, retry for up to the busy timeout.
    for (int attempt = 0;; ++attempt) {
      Status st = exec("PRAGMA journal_mode=WAL");
      if (st.is_ok()) break;
      if (sqlite3_errcode(db_) != SQLITE_BUSY || attempt >= 500) return st;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    HEARTH_RETURN_IF_ERROR(exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"));
    HEARTH_RETURN_IF_ERROR(migrate());
    HEARTH_ASSIGN_OR_RETURN(detail::AuditMac mac, detail::AuditMac::load(path + ".audit-key"));
    mac_.emplace(std::move(mac));
    return Status::ok();
  }

  Result<Tenant> create_tenant(const std::string& name, const TenantLimits& l) override {
    std::lock_guard lk(mu_);
    HEARTH_RETURN_IF_ERROR(detail::validate_tenant(name, l));
    Tenant t;
    t.name = name;
    t.limits = l;
    t.created_ms = now_ms();
    HEARTH_RETURN_IF_ERROR(check_tier_exists(l.tier));
    Stmt s(db_,
           "INSERT INTO tenants (name, rpm, tpm, budget_tokens, created_ms, models, budget_tokens_day,"
           " budget_tokens_month, budget_money_day, budget_money_month, tier) VALUES (?, ?, ?, ?, ?, ?, ?, "
           "?, ?, ?,"
           " ?)");
    if (!s.ok()) return db_error("prepare");
    s.bind(1, name).bind(2, l.rpm).bind(3, l.tpm).bind(4, l.budget_tokens).bind(5, t.created_ms);
    s.bind(6, detail::join_models(l.models)).bind(7, l.budget_tokens_day).bind(8, l.budget_tokens_month);
    s.bind(9, l.budget_money_day).bind(10, l.budget_money_month).bind(11, l.tier);
    if (s.step() != SQLITE_DONE) {
      if (sqlite3_extended_errcode(db_) == SQLITE_CONSTRAINT_UNIQUE)
        return make_error(ErrorCode::kInvalidArgument, "tenant '{}' already exists", name);
      return db_error("create tenant");
    }
    t.id = sqlite3_last_insert_rowid(db_);
    return t;
  }

  Result<std::vector<Tenant>> list_tenants() override {
    std::lock_guard lk(mu_);
    Stmt s(db_, (std::string("SELECT ") + detail::kTenantColumns + " FROM tenants ORDER BY name").c_str());
    if (!s.ok()) return db_error("prepare");
    std::vector<Tenant> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) out.push_back(detail::tenant_from_row(s));
    if (rc != SQLITE_DONE) return db_error("list tenants");
    return out;
  }

  Status update_tenant(const std::string& name, const TenantLimits& l) override {
    std::lock_guard lk(mu_);
    HEARTH_RETURN_IF_ERROR(detail::validate_tenant(name, l));
    HEARTH_RETURN_IF_ERROR(check_tier_exists(l.tier));
    Stmt s(db_,
           "UPDATE tenants SET rpm = ?, tpm = ?, budget_tokens = ?, models = ?, budget_tokens_day = ?,"
           " budget_tokens_month = ?, budget_money_day = ?, budget_money_month = ?, tier = ? WHERE name = ?");
    if (!s.ok()) return db_error("prepare");
    s.bind(1, l.rpm).bind(2, l.tpm).bind(3, l.budget_tokens).bind(4, detail::join_models(l.models));
    s.bind(5, l.budget_tokens_day).bind(6, l.budget_tokens_month).bind(7, l.budget_money_day);
    s.bind(8, l.budget_money_month).bind(9, l.tier).bind(10, name);
    if (s.step() != SQLITE_DONE) return db_error("update tenant");
    if (sqlite3_changes(db_) == 0) return make_error(ErrorCode::kNotFound, "no tenant '{}'", name);
    return Status::ok();
  }

  Status create_project(const std::string& tenant, const std::string& name) override {
    std::lock_guard lk(mu_);
    SqliteRunner db(db_);
    return detail::create_project(db, tenant, name, now_ms());
  }
  Result<std::vector<Project>> list_projects(const std::string& tenant) override {
    std::lock_guard lk(mu_);
    SqliteRunner db(db_);
    return detail::list_projects(db, tenant);
  }
  Status delete_project(const std::string& tenant, const std::string& name) override {
    std::lock_guard lk(mu_);
    SqliteRunner db(db_);
    return detail::delete_project(db, tenant, name);
  }

  Result<NewApiKey> create_key(const std::string& tenant, int64_t expires_ms,
                               const KeyScope& scope) override {
    std::lock_guard lk(mu_);
    HEARTH_ASSIGN_OR_RETURN(int64_t tenant_id, tenant_id_of(tenant));
    {
      SqliteRunner db(db_);
      HEARTH_RETURN_IF_ERROR(detail::check_key_scope(db, tenant, scope));
    }
    for (int attempt = 0; attempt < 4; ++attempt) {  // a prefix collision (1 in 62^8) just retries
      HEARTH_ASSIGN_OR_RETURN(NewApiKey k, detail::new_key_material());
      k.info.tenant = tenant;
      k.info.expires_ms = expires_ms;
      k.info.project = scope.project;
      k.info.owner = scope.owner;
      Stmt s(db_,
             "INSERT INTO api_keys (tenant_id, prefix, hash, created_ms, expires_ms, revoked_ms, project, "
             "owner) "
             "VALUES (?, ?, ?, ?, ?, 0, ?, ?)");
      if (!s.ok()) return db_error("prepare");
      s.bind(1, tenant_id)
          .bind(2, k.info.prefix)
          .bind(3, detail::sha256_hex(k.key))
          .bind(4, k.info.created_ms)
          .bind(5, expires_ms)
          .bind(6, scope.project)
          .bind(7, scope.owner);
      if (s.step() == SQLITE_DONE) {
        k.info.id = sqlite3_last_insert_rowid(db_);
        return k;
      }
      if (sqlite3_extended_errcode(db_) != SQLITE_CONSTRAINT_UNIQUE) return db_error("create key");
    }
    return make_error(ErrorCode::kInternal, "could not find a free key prefix");
  }

  Result<std::vector<ApiKeyInfo>> list_keys(const std::string& tenant) override {
    std::lock_guard lk(mu_);
    Stmt s(
        db_,
        (std::string("SELECT ") + detail::kKeyColumns +
         " FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE (? = '' OR t.name = ?) ORDER BY k.id")
            .c_str());
    if (!s.ok()) return db_error("prepare");
    s.bind(1, tenant).bind(2, tenant);
    std::vector<ApiKeyInfo> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) out.push_back(detail::key_from_row(s));
    if (rc != SQLITE_DONE) return db_error("list keys");
    return out;
  }

  Status revoke_key(const std::string& prefix) override {
    std::lock_guard lk(mu_);
    Stmt s(db_, "UPDATE api_keys SET revoked_ms = ? WHERE prefix = ? AND revoked_ms = 0");
    if (!s.ok()) return db_error("prepare");
    s.bind(1, now_ms()).bind(2, prefix);
    if (s.step() != SQLITE_DONE) return db_error("revoke key");
    if (sqlite3_changes(db_) == 0)
      return make_error(ErrorCode::kNotFound, "no active key with prefix '{}'", prefix);
    return Status::ok();
  }

  Result<std::optional<ApiKeyInfo>> authenticate(std::string_view presented) override {
    std::lock_guard lk(mu_);
    if (!looks_like_api_key(presented)) return std::optional<ApiKeyInfo>();
    Stmt s(db_, (std::string("SELECT ") + detail::kKeyColumns +
                 ", k.hash FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.prefix = ?")
                    .c_str());
    if (!s.ok()) return db_error("prepare");
    s.bind(1, api_key_prefix(presented));
    const int rc = s.step();
    if (rc == SQLITE_DONE) return std::optional<ApiKeyInfo>();
    if (rc != SQLITE_ROW) return db_error("authenticate");
    if (!detail::key_hash_matches(s.text(detail::kKeyHashColumn), presented))
      return std::optional<ApiKeyInfo>();
    ApiKeyInfo info = detail::key_from_row(s);
    if (info.revoked_ms != 0 || (info.expires_ms != 0 && info.expires_ms <= now_ms()))
      return std::optional<ApiKeyInfo>();
    return std::optional<ApiKeyInfo>(std::move(info));
  }

  Status audit_batch(std::span<const AuditEntry> entries) override {
    std::lock_guard lk(mu_);
    if (entries.empty()) return Status::ok();
    HEARTH_RETURN_IF_ERROR(exec("BEGIN IMMEDIATE"));
    Status st = append_audit(entries);
    HEARTH_RETURN_IF_ERROR(exec(st.is_ok() ? "COMMIT" : "ROLLBACK"));
    return st;
  }

  Status record_usage(std::span<const UsageRecord> records) override {
    std::lock_guard lk(mu_);
    if (records.empty()) return Status::ok();
    HEARTH_RETURN_IF_ERROR(exec("BEGIN IMMEDIATE"));
    Status st = Status::ok();
    {
      Stmt ins(
          db_,
          "INSERT INTO usage (ts_ms, tenant, key_id, model, prompt_tokens, cached_tokens, completion_tokens,"
          " reasoning_tokens, latency_ms, status, outcome, request_id, cost_micros, project, user_name) "
          "VALUES"
          " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
      if (!ins.ok()) st = db_error("prepare");
      for (size_t i = 0; st.is_ok() && i < records.size(); ++i) {
        const UsageRecord& u = records[i];
        ins.reset();
        ins.bind(1, u.ts_ms).bind(2, u.tenant).bind(3, u.key_id).bind(4, u.model).bind(5, u.prompt_tokens);
        ins.bind(6, u.cached_tokens)
            .bind(7, u.completion_tokens)
            .bind(8, u.reasoning_tokens)
            .bind(9, u.latency_ms);
        ins.bind(10, static_cast<int64_t>(u.status)).bind(11, u.outcome).bind(12, u.request_id);
        ins.bind(13, u.cost_micros).bind(14, u.project).bind(15, u.user);
        if (ins.step() != SQLITE_DONE) st = db_error("record usage");
        if (st.is_ok()) {
          SqliteRunner db(db_);
          st = detail::quota_record(db, u);
        }
      }
    }
    HEARTH_RETURN_IF_ERROR(exec(st.is_ok() ? "COMMIT" : "ROLLBACK"));
    return st;
  }

  Status quota_transaction(const std::string& tenant, int64_t now, const QuotaDecider& decide) override {
    std::lock_guard lk(mu_);
    // BEGIN IMMEDIATE takes the write lock first: admissions (also of other processes on this file) and
    // usage writes run one after another.
    HEARTH_RETURN_IF_ERROR(exec("BEGIN IMMEDIATE"));
    SqliteRunner db(db_);
    const Status st = detail::quota_admit(db, tenant, now, decide);
    HEARTH_RETURN_IF_ERROR(exec(st.is_ok() ? "COMMIT" : "ROLLBACK"));
    return st;
  }

  Result<std::vector<UsageRecord>> list_usage(const std::string& tenant, int64_t since_ms, int64_t until_ms,
                                              int64_t limit) override {
    std::lock_guard lk(mu_);
    Stmt s(db_, (std::string("SELECT ") + detail::kUsageColumns +
                 " FROM usage WHERE (? = '' OR tenant = ?) AND ts_ms >= ?"
                 " AND (? = 0 OR ts_ms < ?) ORDER BY ts_ms, id LIMIT ?")
                    .c_str());
    if (!s.ok()) return db_error("prepare");
    s.bind(1, tenant).bind(2, tenant).bind(3, since_ms).bind(4, until_ms).bind(5, until_ms).bind(6, limit);
    std::vector<UsageRecord> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      out.push_back(detail::usage_from_row(s));
    }
    if (rc != SQLITE_DONE) return db_error("list usage");
    return out;
  }

  Result<int64_t> tokens_used(const std::string& tenant, int64_t since_ms) override {
    std::lock_guard lk(mu_);
    Stmt s(db_,
           "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM usage WHERE tenant = ? AND ts_ms "
           ">= ?");
    if (!s.ok()) return db_error("prepare");
    s.bind(1, tenant).bind(2, since_ms);
    if (s.step() != SQLITE_ROW) return db_error("sum usage");
    return s.i64(0);
  }

  Result<int64_t> money_used(const std::string& tenant, int64_t since_ms) override {
    std::lock_guard lk(mu_);
    Stmt s(db_, "SELECT COALESCE(SUM(cost_micros), 0) FROM usage WHERE tenant = ? AND ts_ms >= ?");
    if (!s.ok()) return db_error("prepare");
    s.bind(1, tenant).bind(2, since_ms);
    if (s.step() != SQLITE_ROW) return db_error("sum costs");
    return s.i64(0);
  }

  Result<UsageTotals> usage_totals(const std::string& tenant, int64_t since_ms, int64_t until_ms) override {
    std::lock_guard lk(mu_);
    Stmt s(db_, (std::string(detail::kUsageTotalsQuery) +
                 " WHERE tenant = ? AND ts_ms >= ? AND (? = 0 OR ts_ms < ?)")
                    .c_str());
    if (!s.ok()) return db_error("prepare");
    s.bind(1, tenant).bind(2, since_ms).bind(3, until_ms).bind(4, until_ms);
    if (s.step() != SQLITE_ROW) return db_error("sum usage");
    return UsageTotals{s.i64(0), s.i64(1), s.i64(2), s.i64(3), s.i64(4)};
  }

  Result<std::vector<AuditRecord>> list_audit(int64_t after_seq, int64_t limit) override {
    std::lock_guard lk(mu_);
    Stmt s(db_, "SELECT seq, ts_ms, actor, action, detail FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?");
    if (!s.ok()) return db_error("prepare");
    s.bind(1, after_seq).bind(2, limit);
    std::vector<AuditRecord> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW)
      out.push_back({s.i64(0), s.i64(1), s.text(2), s.text(3), s.text(4)});
    if (rc != SQLITE_DONE) return db_error("read the audit log");
    return out;
  }

  Result<bool> admin_login_failed(const std::string& name, int64_t max_failures, int64_t lockout_ms,
                                  int64_t now) override {
    std::lock_guard lk(mu_);
    SqliteRunner db(db_);
    return detail::admin_login_failed(db, name, max_failures, lockout_ms, now);
  }

  Status put_admin(const AdminAccount& a, bool create) override {
    HEARTH_RETURN_IF_ERROR(detail::validate_admin(a));
    std::lock_guard lk(mu_);
    Stmt s(
        db_,
        create
            ? "INSERT INTO admins (role, password_hash, password_changed_ms, failed_logins, locked_until_ms,"
              " disabled, created_ms, name) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            : "UPDATE admins SET role = ?, password_hash = ?, password_changed_ms = ?, failed_logins = ?,"
              " locked_until_ms = ?, disabled = ?, created_ms = ? WHERE name = ?");
    if (!s.ok()) return db_error("prepare");
    s.bind(1, a.role).bind(2, a.password_hash).bind(3, a.password_changed_ms).bind(4, a.failed_logins);
    s.bind(5, a.locked_until_ms).bind(6, int64_t{a.disabled ? 1 : 0}).bind(7, a.created_ms).bind(8, a.name);
    if (s.step() != SQLITE_DONE) {
      if (sqlite3_extended_errcode(db_) == SQLITE_CONSTRAINT_PRIMARYKEY)
        return make_error(ErrorCode::kInvalidArgument, "administrator '{}' already exists", a.name);
      return db_error("write administrator");
    }
    if (!create && sqlite3_changes(db_) == 0)
      return make_error(ErrorCode::kNotFound, "no administrator '{}'", a.name);
    return Status::ok();
  }

  Result<std::vector<AdminAccount>> list_admins() override {
    std::lock_guard lk(mu_);
    Stmt s(db_, (std::string("SELECT ") + detail::kAdminColumns + " FROM admins ORDER BY name").c_str());
    if (!s.ok()) return db_error("prepare");
    std::vector<AdminAccount> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) out.push_back(detail::admin_from_row(s));
    if (rc != SQLITE_DONE) return db_error("list administrators");
    return out;
  }

  Status put_session(const AdminSession& x) override {
    std::lock_guard lk(mu_);
    Stmt s(db_,
           "INSERT INTO admin_sessions (token_hash, admin, created_ms, last_seen_ms) VALUES (?, ?, ?, ?)"
           " ON CONFLICT(token_hash) DO UPDATE SET last_seen_ms = excluded.last_seen_ms");
    if (!s.ok()) return db_error("prepare");
    s.bind(1, x.token_hash).bind(2, x.admin).bind(3, x.created_ms).bind(4, x.last_seen_ms);
    if (s.step() != SQLITE_DONE) return db_error("write session");
    return Status::ok();
  }

  Result<std::optional<AdminSession>> get_session(const std::string& token_hash) override {
    std::lock_guard lk(mu_);
    Stmt s(db_,
           "SELECT token_hash, admin, created_ms, last_seen_ms FROM admin_sessions WHERE token_hash = ?");
    if (!s.ok()) return db_error("prepare");
    s.bind(1, token_hash);
    const int rc = s.step();
    if (rc == SQLITE_DONE) return std::optional<AdminSession>();
    if (rc != SQLITE_ROW) return db_error("read session");
    return std::optional<AdminSession>(AdminSession{s.text(0), s.text(1), s.i64(2), s.i64(3)});
  }

  Status delete_session(const std::string& token_hash) override {
    std::lock_guard lk(mu_);
    Stmt s(db_, "DELETE FROM admin_sessions WHERE token_hash = ?");
    if (!s.ok()) return db_error("prepare");
    s.bind(1, token_hash);
    if (s.step() != SQLITE_DONE) return db_error("delete session");
    if (sqlite3_changes(db_) == 0) return make_error(ErrorCode::kNotFound, "no such session");
    return Status::ok();
  }

  Status set_tier(const Tier& tier) override {
    HEARTH_RETURN_IF_ERROR(detail::validate_tier(tier));
    std::lock_guard lk(mu_);
    Stmt s(
        db_,
        "INSERT INTO tiers (name, base_fee_micros, per_call_micros, included_calls, updated_ms) VALUES (?, "
        "?, ?,"
        " ?, ?) ON CONFLICT(name) DO UPDATE SET base_fee_micros = excluded.base_fee_micros, per_call_micros ="
        " excluded.per_call_micros, included_calls = excluded.included_calls, updated_ms = "
        "excluded.updated_ms");
    if (!s.ok()) return db_error("prepare");
    s.bind(1, tier.name)
        .bind(2, tier.base_fee_micros)
        .bind(3, tier.per_call_micros)
        .bind(4, tier.included_calls);
    s.bind(5, now_ms());
    if (s.step() != SQLITE_DONE) return db_error("set tier");
    return Status::ok();
  }

  Result<std::vector<Tier>> list_tiers() override {
    std::lock_guard lk(mu_);
    Stmt s(db_, (std::string("SELECT ") + detail::kTierColumns + " FROM tiers ORDER BY name").c_str());
    if (!s.ok()) return db_error("prepare");
    std::vector<Tier> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) out.push_back(detail::tier_from_row(s));
    if (rc != SQLITE_DONE) return db_error("list tiers");
    return out;
  }

  Status delete_tier(const std::string& name) override {
    std::lock_guard lk(mu_);
    {
      Stmt used(db_, "SELECT name FROM tenants WHERE tier = ? LIMIT 1");
      if (!used.ok()) return db_error("prepare");
      used.bind(1, name);
      if (used.step() == SQLITE_ROW)
        return make_error(ErrorCode::kInvalidArgument, "tier '{}' is in use (tenant '{}')", name,
                          used.text(0));
    }
    Stmt s(db_, "DELETE FROM tiers WHERE name = ?");
    if (!s.ok()) return db_error("prepare");
    s.bind(1, name);
    if (s.step() != SQLITE_DONE) return db_error("delete tier");
    if (sqlite3_changes(db_) == 0) return make_error(ErrorCode::kNotFound, "no tier '{}'", name);
    return Status::ok();
  }

  Status set_price(const Price& price) override {
    HEARTH_RETURN_IF_ERROR(detail::validate_price(price));
    std::lock_guard lk(mu_);
    HEARTH_RETURN_IF_ERROR(exec("BEGIN IMMEDIATE"));
    Status st = [&]() -> Status {
      Stmt cur(db_, "SELECT currency FROM prices WHERE model <> ? AND currency <> ? LIMIT 1");
      if (!cur.ok()) return db_error("prepare");
      cur.bind(1, price.model).bind(2, price.currency);
      if (cur.step() == SQLITE_ROW)
        return make_error(ErrorCode::kInvalidArgument,
                          "the price book is in {}, not {}: one currency per store", cur.text(0),
                          price.currency);
      Stmt s(
          db_,
          "INSERT INTO prices (model, currency, input_micros, cached_micros, output_micros, request_micros,"
          " updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(model) DO UPDATE SET currency ="
          " excluded.currency, input_micros = excluded.input_micros, cached_micros = excluded.cached_micros,"
          " output_micros = excluded.output_micros, request_micros = excluded.request_micros,"
          " updated_ms = excluded.updated_ms");
      if (!s.ok()) return db_error("prepare");
      s.bind(1, price.model).bind(2, price.currency).bind(3, price.input_micros).bind(4, price.cached_micros);
      s.bind(5, price.output_micros).bind(6, price.request_micros).bind(7, now_ms());
      if (s.step() != SQLITE_DONE) return db_error("set price");
      return Status::ok();
    }();
    HEARTH_RETURN_IF_ERROR(exec(st.is_ok() ? "COMMIT" : "ROLLBACK"));
    return st;
  }

  Result<std::vector<Price>> list_prices() override {
    std::lock_guard lk(mu_);
    Stmt s(db_, (std::string("SELECT ") + detail::kPriceColumns + " FROM prices ORDER BY model").c_str());
    if (!s.ok()) return db_error("prepare");
    std::vector<Price> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) out.push_back(detail::price_from_row(s));
    if (rc != SQLITE_DONE) return db_error("list prices");
    return out;
  }

  Status delete_price(const std::string& model) override {
    std::lock_guard lk(mu_);
    Stmt s(db_, "DELETE FROM prices WHERE model = ?");
    if (!s.ok()) return db_error("prepare");
    s.bind(1, model);
    if (s.step() != SQLITE_DONE) return db_error("delete price");
    if (sqlite3_changes(db_) == 0) return make_error(ErrorCode::kNotFound, "no price for model '{}'", model);
    return Status::ok();
  }

  Result<AuditVerdict> verify_audit() override {
    std::lock_guard lk(mu_);
    return verify_locked();
  }

  Result<int64_t> prune_audit(int64_t before_ms, const std::string& actor) override {
    std::lock_guard lk(mu_);
    HEARTH_RETURN_IF_ERROR(exec("BEGIN IMMEDIATE"));
    Result<int64_t> r = prune_in_transaction(before_ms, actor);
    HEARTH_RETURN_IF_ERROR(exec(r.is_ok() ? "COMMIT" : "ROLLBACK"));
    return r;
  }

 private:
  // In a write transaction: verify first (pruning must not erase the evidence of tampering), then remove
  // the prefix, anchor the rest and record the pruning.
  Result<int64_t> prune_in_transaction(int64_t before_ms, const std::string& actor) {
    HEARTH_ASSIGN_OR_RETURN(AuditVerdict v, verify_locked());
    if (!v.intact)
      return make_error(ErrorCode::kCorrupt, "the audit log is broken at record {} ({}): not pruning it",
                        v.first_bad_seq, v.reason);
    Stmt range(db_,
               "SELECT MIN(seq), (SELECT MIN(seq) FROM audit_log WHERE ts_ms >= ?), MAX(seq) FROM audit_log");
    if (!range.ok()) return db_error("prepare");
    range.bind(1, before_ms);
    if (range.step() != SQLITE_ROW) return db_error("read the audit log");
    const int64_t first = range.i64(0);
    const bool all_old = sqlite3_column_type(range.raw(), 1) == SQLITE_NULL;
    const int64_t last_old = all_old ? range.i64(2) : range.i64(1) - 1;
    if (first == 0 || last_old < first) return int64_t{0};
    std::string hash;
    {
      Stmt h(db_, "SELECT hash FROM audit_log WHERE seq = ?");
      if (!h.ok()) return db_error("prepare");
      h.bind(1, last_old);
      if (h.step() != SQLITE_ROW) return db_error("read the audit log");
      hash = h.text(0);
    }
    {
      Stmt del(db_, "DELETE FROM audit_log WHERE seq <= ?");
      if (!del.ok()) return db_error("prepare");
      del.bind(1, last_old);
      if (del.step() != SQLITE_DONE) return db_error("prune the audit log");
    }
    Stmt anchor(
        db_,
        "INSERT INTO audit_anchor (id, seq, hash, mac) VALUES (1, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET"
        " seq = excluded.seq, hash = excluded.hash, mac = excluded.mac");
    if (!anchor.ok()) return db_error("prepare");
    anchor.bind(1, last_old).bind(2, hash).bind(3, mac_->anchor(last_old, hash));
    if (anchor.step() != SQLITE_DONE) return db_error("anchor the audit log");
    const AuditEntry e{
        actor, "audit.prune",
        fmt::format("removed records {} to {} (written before {} ms)", first, last_old, before_ms)};
    HEARTH_RETURN_IF_ERROR(append_audit(std::span<const AuditEntry>(&e, 1)));
    return last_old - first + 1;
  }

  Result<AuditVerdict> verify_locked() {
    detail::ChainVerifier chain(*mac_);
    {
      Stmt an(db_, "SELECT seq, hash, mac FROM audit_anchor WHERE id = 1");
      if (!an.ok()) return db_error("prepare");
      if (an.step() == SQLITE_ROW) chain.start(detail::AuditHead{an.i64(0), an.text(1), an.text(2)});
    }
    Stmt s(db_, "SELECT seq, ts_ms, actor, action, detail, prev_hash, hash FROM audit_log ORDER BY seq");
    if (!s.ok()) return db_error("prepare");
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      if (!chain.add({s.i64(0), s.i64(1), s.text(2), s.text(3), s.text(4), s.text(5), s.text(6)}))
        return chain.finish({});
    }
    if (rc != SQLITE_DONE) return db_error("read the audit log");
    Stmt hd(db_, "SELECT seq, hash, mac FROM audit_head WHERE id = 1");
    if (!hd.ok()) return db_error("prepare");
    std::optional<detail::AuditHead> head;
    if (hd.step() == SQLITE_ROW) head = detail::AuditHead{hd.i64(0), hd.text(1), hd.text(2)};
    return chain.finish(head);
  }

  Status exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      Status st = make_error(ErrorCode::kIo, "SQLite store {}: {}", path_, err ? err : sqlite3_errmsg(db_));
      sqlite3_free(err);
      return st;
    }
    return Status::ok();
  }

  Status db_error(const char* what) const {
    return make_error(ErrorCode::kIo, "SQLite store {}: {}: {}", path_, what, sqlite3_errmsg(db_));
  }

  // One write transaction for the version check and every migration: processes opening the same new
  // file together apply each migration once (the others wait on the lock, then see the new version).
  Status migrate() {
    HEARTH_RETURN_IF_ERROR(exec("BEGIN IMMEDIATE"));
    Status st = migrate_in_transaction();
    HEARTH_RETURN_IF_ERROR(exec(st.is_ok() ? "COMMIT" : "ROLLBACK"));
    return st;
  }

  Status migrate_in_transaction() {
    HEARTH_RETURN_IF_ERROR(
        exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER "
             "NOT NULL)"));
    int64_t have = 0;
    {
      Stmt s(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
      if (!s.ok() || s.step() != SQLITE_ROW) return db_error("read the schema version");
      have = s.i64(0);
    }
    static_assert(std::size(kMigrations) == detail::kOwnMigrations);
    const int64_t known = detail::kMigrationCount;
    if (have > known) {
      return make_error(
          ErrorCode::kUnsupported,
          "SQLite store {} has schema version {}, newer than this hearth knows ({}): upgrade hearth", path_,
          have, known);
    }
    for (int64_t v = have + 1; v <= known; ++v) {
      HEARTH_RETURN_IF_ERROR(
          exec(detail::migration_sql(kMigrations, v)).with_context(fmt::format("migration {}", v)));
      Stmt s(db_, "INSERT INTO schema_migrations (version, applied_ms) VALUES (?, ?)");
      s.bind(1, v).bind(2, now_ms());
      if (!s.ok() || s.step() != SQLITE_DONE) return db_error("record the migration");
    }
    return Status::ok();
  }

  // In a write transaction: the entries after the current last record, then the head once.
  Status append_audit(std::span<const AuditEntry> entries) {
    int64_t seq = 0;
    std::string prev;
    {
      // The last record, or after pruning everything the anchor it left.
      Stmt s(db_,
             "SELECT seq, hash FROM (SELECT seq, hash FROM audit_log UNION ALL SELECT seq, hash FROM "
             "audit_anchor)"
             " ORDER BY seq DESC LIMIT 1");
      if (!s.ok()) return db_error("prepare");
      if (s.step() == SQLITE_ROW) {
        seq = s.i64(0);
        prev = s.text(1);
      }
    }
    Stmt ins(db_,
             "INSERT INTO audit_log (seq, ts_ms, actor, action, detail, prev_hash, hash) VALUES (?, ?, ?, ?, "
             "?, ?, ?)");
    if (!ins.ok()) return db_error("prepare");
    const int64_t ts = now_ms();
    for (const AuditEntry& e : entries) {
      ++seq;
      std::string h = mac_->record(seq, ts, e.actor, e.action, e.detail, prev);
      ins.reset();
      ins.bind(1, seq)
          .bind(2, ts)
          .bind(3, e.actor)
          .bind(4, e.action)
          .bind(5, e.detail)
          .bind(6, prev)
          .bind(7, h);
      if (ins.step() != SQLITE_DONE) return db_error("append to the audit log");
      prev = std::move(h);
    }
    Stmt head(db_,
              "INSERT INTO audit_head (id, seq, hash, mac) VALUES (1, ?, ?, ?) "
              "ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac");
    if (!head.ok()) return db_error("prepare");
    head.bind(1, seq).bind(2, prev).bind(3, mac_->head(seq, prev));
    if (head.step() != SQLITE_DONE) return db_error("update the audit head");
    return Status::ok();
  }

  Status check_tier_exists(const std::string& tier) {
    if (tier.empty()) return Status::ok();
    Stmt s(db_, "SELECT 1 FROM tiers WHERE name = ?");
    if (!s.ok()) return db_error("prepare");
    s.bind(1, tier);
    if (s.step() != SQLITE_ROW)
      return make_error(ErrorCode::kInvalidArgument, "no licence tier '{}' (hearth admin tier set makes one)",
                        tier);
    return Status::ok();
  }

  Result<int64_t> tenant_id_of(const std::string& name) {
    Stmt s(db_, "SELECT id FROM tenants WHERE name = ?");
    if (!s.ok()) return db_error("prepare");
    s.bind(1, name);
    if (s.step() != SQLITE_ROW) return make_error(ErrorCode::kNotFound, "no tenant '{}'", name);
    return s.i64(0);
  }

  sqlite3* db_ = nullptr;
  std::string path_;
  std::optional<detail::AuditMac> mac_;
  // One connection: its transactions and sqlite3_last_insert_rowid/changes are per connection, so calls
  // from several threads take turns.
  std::mutex mu_;
};

}  // namespace

Result<std::unique_ptr<Store>> Store::open(const std::string& url) {
  if (url.rfind("sqlite:", 0) == 0) {
    const std::string path = url.substr(7);
    if (path.empty()) return make_error(ErrorCode::kInvalidArgument, "--store sqlite:PATH needs a path");
    auto s = std::make_unique<SqliteStore>();
    HEARTH_RETURN_IF_ERROR(s->open(path));
    return std::unique_ptr<Store>(std::move(s));
  }
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
    return detail::open_postgres(url);
  }
  return make_error(ErrorCode::kInvalidArgument, "--store must be sqlite:PATH or postgresql://..., got '{}'",
                    url);
}

}  // namespace hearth::store
