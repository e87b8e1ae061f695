// The PostgreSQL backend of Store (store.h): several gateway replicas share one database.
// libpq with parameterised statements only (PQexecParams, text parameters). One connection per Store,
// used under a mutex; a dropped connection is re-established once per call (PQreset).
// Concurrency between replicas: migrations run under a transaction-scoped advisory lock; audit appends
// lock the audit table (EXCLUSIVE: readers go on, other appenders wait), so seq and the chain stay linear.
#include <libpq-fe.h>

#include <fmt/format.h>

#include <cstring>
#include <functional>
#include <mutex>
#include <utility>
#include <variant>

#include "store/store_internal.h"

namespace hearth::store {
namespace {

using detail::now_ms;

constexpr const char* kUniqueViolation = "23505";
constexpr int64_t kMigrationLockId = 0x6865617274680001;  // "hearth" + 1: one lock for all replicas
constexpr int64_t kQuotaLockClass = 0x68656172;           // "hear": advisory locks (class, hashtext(tenant))

// The URL without its password, for messages and logs.
std::string redact(const std::string& url) {
  const size_t scheme = url.find("://");
  const size_t at = url.find('@');
  if (scheme == std::string::npos || at == std::string::npos || at < scheme) return url;
  const size_t colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

class PgResult {
 public:
  explicit PgResult(PGresult* r) : r_(r) {}
  ~PgResult() { PQclear(r_); }
  PgResult(PgResult&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  PgResult& operator=(PgResult&&) = delete;

  bool ok() const {
    const ExecStatusType st = PQresultStatus(r_);
    return r_ != nullptr && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
  }
  std::string sqlstate() const {
    const char* s = r_ ? PQresultErrorField(r_, PG_DIAG_SQLSTATE) : nullptr;
    return s ? s : "";
  }
  std::string error() const {
    const char* s = r_ ? PQresultErrorMessage(r_) : "no result (out of memory or connection lost)";
    std::string m = s ? s : "";
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    return m;
  }
  int rows() const { return PQntuples(r_); }
  int64_t affected() const {
    const char* s = PQcmdTuples(r_);
    return (s && *s) ? std::strtoll(s, nullptr, 10) : 0;
  }
  std::string text(int row, int col) const {
    return std::string(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
  }
  int64_t i64(int row, int col) const { return std::strtoll(PQgetvalue(r_, row, col), nullptr, 10); }
  bool null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  // One row, with the (col) accessors the shared row mappers use.
  struct Row {
    const PgResult& r;
    int i;
    int64_t i64(int col) const { return r.i64(i, col); }
    std::string text(int col) const { return r.text(i, col); }
  };
  Row row(int i) const { return {*this, i}; }
  PGresult* raw() const { return r_; }

 private:
  PGresult* r_;
};

// Text parameters: integers are formatted, strings passed with their lengths (they may hold any byte but NUL,
// which PostgreSQL text refuses anyway).
class Params {
 public:
  Params& add(int64_t v) {
    owned_.push_back(std::to_string(v));
    return *this;
  }
  Params& add(std::string_view v) {
    owned_.emplace_back(v);
    return *this;
  }
  Params& add(double v) {
    owned_.push_back(fmt::format("{:.17g}", v));
    return *this;
  }
  int size() const { return static_cast<int>(owned_.size()); }
  const char* const* values() {
    ptrs_.clear();
    for (const auto& s : owned_) ptrs_.push_back(s.c_str());
    return ptrs_.data();
  }
  const int* lengths() {
    lens_.clear();
    for (const auto& s : owned_) lens_.push_back(static_cast<int>(s.size()));
    return lens_.data();
  }

 private:
  std::vector<std::string> owned_;
  std::vector<const char*> ptrs_;
  std::vector<int> lens_;
};

// The shared SQL (store_internal.h) on one connection. A serialization failure or deadlock (SQLSTATE 40001,
// 40P01) is reported as kResourceExhausted, which the caller retries.
class PgRunner final : public detail::SqlRunner {
 public:
  PgRunner(PGconn* conn, const std::string& shown) : conn_(conn), shown_(shown) {}
  Result<int64_t> run(const char* sql, const std::vector<detail::SqlValue>& params,
                      detail::SqlRows* rows = nullptr) override {
    Params p;
    for (const auto& v : params) std::visit([&](const auto& x) { p.add(x); }, v);
    PgResult r(PQexecParams(conn_, sql, p.size(), nullptr, p.values(), p.lengths(), nullptr, 0));
    if (!r.ok()) {
      const std::string state = r.sqlstate();
      return make_error(state == "40001" || state == "40P01" ? ErrorCode::kResourceExhausted : ErrorCode::kIo,
                        "PostgreSQL store {}: quotas: {}", shown_, r.error());
    }
    if (rows != nullptr) {
      const int cols = PQnfields(r.raw());
      for (int i = 0; i < r.rows(); ++i) {
        auto& row = rows->emplace_back();
        for (int c = 0; c < cols; ++c) row.push_back(r.text(i, c));
      }
    }
    return r.affected();
  }

  // One pipeline (libpq pipeline mode): every statement sent, then one sync; results read in order. After an
  // error the rest of the pipeline is aborted by the server; the first error is returned.
  Status run_all(const std::vector<detail::SqlStatement>& statements,
                 std::vector<detail::SqlRows>& results) override {
    results.assign(statements.size(), {});
    if (statements.empty()) return Status::ok();
    if (PQenterPipelineMode(conn_) != 1) return SqlRunner::run_all(statements, results);
    Status first = Status::ok();
    size_t sent = 0;
    for (const auto& st : statements) {
      Params p;
      for (const auto& v : st.params) std::visit([&](const auto& x) { p.add(x); }, v);
      if (PQsendQueryParams(conn_, st.sql.c_str(), p.size(), nullptr, p.values(), p.lengths(), nullptr, 0) !=
          1)
        break;
      ++sent;
    }
    if (sent < statements.size())
      first = make_error(ErrorCode::kIo, "PostgreSQL store {}: quotas: {}", shown_, PQerrorMessage(conn_));
    if (PQpipelineSync(conn_) != 1) {
      PQexitPipelineMode(conn_);
      return make_error(ErrorCode::kIo, "PostgreSQL store {}: quotas: {}", shown_, PQerrorMessage(conn_));
    }
    // Statement i's results end with a NULL; the sync's result closes the pipeline.
    size_t i = 0;
    int idle = 0;
    for (;;) {
      PGresult* raw = PQgetResult(conn_);
      if (raw == nullptr) {
        ++i;
        if (++idle > 2 || PQstatus(conn_) == CONNECTION_BAD) break;  // nothing more will come
        continue;
      }
      idle = 0;
      PgResult r(raw);
      const ExecStatusType es = PQresultStatus(raw);
      if (es == PGRES_PIPELINE_SYNC) break;
      if (es == PGRES_PIPELINE_ABORTED) continue;
      if (!r.ok()) {
        if (first.is_ok()) {
          const std::string state = r.sqlstate();
          first = make_error(
              state == "40001" || state == "40P01" ? ErrorCode::kResourceExhausted : ErrorCode::kIo,
              "PostgreSQL store {}: quotas: {}", shown_, r.error());
        }
        continue;
      }
      if (i < results.size()) {
        const int cols = PQnfields(raw);
        for (int row = 0; row < r.rows(); ++row) {
          auto& out = results[i].emplace_back();
          for (int c = 0; c < cols; ++c) out.push_back(r.text(row, c));
        }
      }
    }
    PQexitPipelineMode(conn_);
    return first;
  }

 private:
  PGconn* conn_;
  const std::string& shown_;
};

const char* const kMigrations[] = {
    // 1: tenants, API keys, the audit log and its MAC'd head.
    "CREATE TABLE tenants (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, rpm BIGINT NOT NULL,"
    " tpm BIGINT NOT NULL, budget_tokens BIGINT NOT NULL, created_ms BIGINT NOT NULL);"
    "CREATE TABLE api_keys (id BIGSERIAL PRIMARY KEY, tenant_id BIGINT NOT NULL REFERENCES tenants(id),"
    " prefix TEXT NOT NULL UNIQUE, hash TEXT NOT NULL, created_ms BIGINT NOT NULL,"
    " expires_ms BIGINT NOT NULL, revoked_ms BIGINT NOT NULL);"
    "CREATE TABLE audit_log (seq BIGINT PRIMARY KEY, ts_ms BIGINT NOT NULL, actor TEXT NOT NULL,"
    " action TEXT NOT NULL, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);"
    "CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL,"
    " hash TEXT NOT NULL, mac TEXT NOT NULL);",
    // 2: metering.
    "CREATE TABLE usage (id BIGSERIAL PRIMARY KEY, ts_ms BIGINT NOT NULL, tenant TEXT NOT NULL,"
    " key_id BIGINT NOT NULL, model TEXT NOT NULL, prompt_tokens BIGINT NOT NULL, cached_tokens BIGINT NOT "
    "NULL,"
    " completion_tokens BIGINT NOT NULL, reasoning_tokens BIGINT NOT NULL, latency_ms BIGINT NOT NULL,"
    " status INTEGER NOT NULL, outcome TEXT NOT NULL, request_id TEXT NOT NULL);"
    "CREATE INDEX usage_tenant_ts ON usage (tenant, ts_ms);",
    // 3: per-tenant model allow-lists (one name per line; empty = every model).
    "ALTER TABLE tenants ADD COLUMN models TEXT NOT NULL DEFAULT '';",
    // 4 and later: detail::kSharedMigrations.
};

class PgStore final : public Store {
 public:
  ~PgStore() override {
    if (conn_ != nullptr) PQfinish(conn_);
    if (qconn_ != nullptr) PQfinish(qconn_);
  }

  Status open(const std::string& url) {
    shown_ = redact(url);
    HEARTH_ASSIGN_OR_RETURN(detail::AuditMac mac, detail::AuditMac::load(""));
    mac_.emplace(std::move(mac));
    conn_ = PQconnectdb(url.c_str());
    if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) {
      return make_error(ErrorCode::kIo, "cannot connect to the PostgreSQL store {}: {}", shown_,
                        conn_ ? trimmed(PQerrorMessage(conn_)) : "out of memory");
    }
    // Notices (e.g. "relation already exists, skipping") are not errors: keep them off stderr.
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
    url_ = url;
    std::lock_guard lk(mu_);
    return migrate();
  }

  Result<Tenant> create_tenant(const std::string& name, const TenantLimits& l) override {
    HEARTH_RETURN_IF_ERROR(detail::validate_tenant(name, l));
    Tenant t;
    t.name = name;
    t.limits = l;
    t.created_ms = now_ms();
    std::lock_guard lk(mu_);
    HEARTH_RETURN_IF_ERROR(check_tier_exists(l.tier));
    PgResult r = exec(
        "INSERT INTO tenants (name, rpm, tpm, budget_tokens, created_ms, models, budget_tokens_day,"
        " budget_tokens_month, budget_money_day, budget_money_month, tier) VALUES ($1, $2, $3, $4, $5, $6, "
        "$7,"
        " $8, $9, $10, $11) RETURNING id",
        Params()
            .add(name)
            .add(l.rpm)
            .add(l.tpm)
            .add(l.budget_tokens)
            .add(t.created_ms)
            .add(detail::join_models(l.models))
            .add(l.budget_tokens_day)
            .add(l.budget_tokens_month)
            .add(l.budget_money_day)
            .add(l.budget_money_month)
            .add(l.tier));
    if (!r.ok()) {
      if (r.sqlstate() == kUniqueViolation)
        return make_error(ErrorCode::kInvalidArgument, "tenant '{}' already exists", name);
      return db_error("create tenant", r);
    }
    t.id = r.i64(0, 0);
    return t;
  }

  Result<std::vector<Tenant>> list_tenants() override {
    std::lock_guard lk(mu_);
    PgResult r = exec(
        (std::string("SELECT ") + detail::kTenantColumns + " FROM tenants ORDER BY name").c_str(), Params());
    if (!r.ok()) return db_error("list tenants", r);
    std::vector<Tenant> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(detail::tenant_from_row(r.row(i)));
    return out;
  }

  Status update_tenant(const std::string& name, const TenantLimits& l) override {
    HEARTH_RETURN_IF_ERROR(detail::validate_tenant(name, l));
    std::lock_guard lk(mu_);
    HEARTH_RETURN_IF_ERROR(check_tier_exists(l.tier));
    PgResult r = exec(
        "UPDATE tenants SET rpm = $1, tpm = $2, budget_tokens = $3, models = $4, budget_tokens_day = $5,"
        " budget_tokens_month = $6, budget_money_day = $7, budget_money_month = $8, tier = $9 WHERE name = "
        "$10",
        Params()
            .add(l.rpm)
            .add(l.tpm)
            .add(l.budget_tokens)
            .add(detail::join_models(l.models))
            .add(l.budget_tokens_day)
            .add(l.budget_tokens_month)
            .add(l.budget_money_day)
            .add(l.budget_money_month)
            .add(l.tier)
            .add(name));
    if (!r.ok()) return db_error("update tenant", r);
    if (r.affected() == 0) return make_error(ErrorCode::kNotFound, "no tenant '{}'", name);
    return Status::ok();
  }

  Status create_project(const std::string& tenant, const std::string& name) override {
    std::lock_guard lk(mu_);
    PgRunner db(conn_, shown_);
    return detail::create_project(db, tenant, name, now_ms());
  }
  Result<std::vector<Project>> list_projects(const std::string& tenant) override {
    std::lock_guard lk(mu_);
    PgRunner db(conn_, shown_);
    return detail::list_projects(db, tenant);
  }
  Status delete_project(const std::string& tenant, const std::string& name) override {
    std::lock_guard lk(mu_);
    PgRunner db(conn_, shown_);
    return detail::delete_project(db, tenant, name);
  }

  Result<NewApiKey> create_key(const std::string& tenant, int64_t expires_ms,
                               const KeyScope& scope) override {
    std::lock_guard lk(mu_);
    HEARTH_ASSIGN_OR_RETURN(int64_t tenant_id, tenant_id_of(tenant));
    {
      PgRunner db(conn_, shown_);
      HEARTH_RETURN_IF_ERROR(detail::check_key_scope(db, tenant, scope));
    }
    for (int attempt = 0; attempt < 4; ++attempt) {  // a prefix collision (1 in 62^8) just retries
      HEARTH_ASSIGN_OR_RETURN(NewApiKey k, detail::new_key_material());
      k.info.tenant = tenant;
      k.info.expires_ms = expires_ms;
      k.info.project = scope.project;
      k.info.owner = scope.owner;
      PgResult r = exec(
          "INSERT INTO api_keys (tenant_id, prefix, hash, created_ms, expires_ms, revoked_ms, project, "
          "owner) "
          "VALUES ($1, $2, $3, $4, $5, 0, $6, $7) RETURNING id",
          Params()
              .add(tenant_id)
              .add(k.info.prefix)
              .add(detail::sha256_hex(k.key))
              .add(k.info.created_ms)
              .add(expires_ms)
              .add(scope.project)
              .add(scope.owner));
      if (r.ok()) {
        k.info.id = r.i64(0, 0);
        return k;
      }
      if (r.sqlstate() != kUniqueViolation) return db_error("create key", r);
    }
    return make_error(ErrorCode::kInternal, "could not find a free key prefix");
  }

  Result<std::vector<ApiKeyInfo>> list_keys(const std::string& tenant) override {
    std::lock_guard lk(mu_);
    PgResult r = exec(
        (std::string("SELECT ") + detail::kKeyColumns +
         " FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE ($1 = '' OR t.name = $1) ORDER BY k.id")
            .c_str(),
        Params().add(tenant));
    if (!r.ok()) return db_error("list keys", r);
    std::vector<ApiKeyInfo> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(detail::key_from_row(r.row(i)));
    return out;
  }

  Status revoke_key(const std::string& prefix) override {
    std::lock_guard lk(mu_);
    PgResult r = exec("UPDATE api_keys SET revoked_ms = $1 WHERE prefix = $2 AND revoked_ms = 0",
                      Params().add(now_ms()).add(prefix));
    if (!r.ok()) return db_error("revoke key", r);
    if (r.affected() == 0) return make_error(ErrorCode::kNotFound, "no active key with prefix '{}'", prefix);
    return Status::ok();
  }

  Result<std::optional<ApiKeyInfo>> authenticate(std::string_view presented) override {
    if (!looks_like_api_key(presented)) return std::optional<ApiKeyInfo>();
    std::lock_guard lk(mu_);
    PgResult r = exec((std::string("SELECT ") + detail::kKeyColumns +
                       ", k.hash FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.prefix = $1")
                          .c_str(),
                      Params().add(api_key_prefix(presented)));
    if (!r.ok()) return db_error("authenticate", r);
    if (r.rows() == 0 || !detail::key_hash_matches(r.text(0, detail::kKeyHashColumn), presented))
      return std::optional<ApiKeyInfo>();
    ApiKeyInfo info = detail::key_from_row(r.row(0));
    if (info.revoked_ms != 0 || (info.expires_ms != 0 && info.expires_ms <= now_ms()))
      return std::optional<ApiKeyInfo>();
    return std::optional<ApiKeyInfo>(std::move(info));
  }

  Status audit_batch(std::span<const AuditEntry> entries) override {
    std::lock_guard lk(mu_);
    if (entries.empty()) return Status::ok();
    return in_transaction([&] { return append_audit(entries); });
  }

  Status record_usage(std::span<const UsageRecord> records) override {
    std::lock_guard lk(mu_);
    if (records.empty()) return Status::ok();
    return in_transaction([&]() -> Status {
      for (const UsageRecord& u : records) {
        PgResult r = exec(
            "INSERT INTO usage (ts_ms, tenant, key_id, model, prompt_tokens, cached_tokens, "
            "completion_tokens,"
            " reasoning_tokens, latency_ms, status, outcome, request_id, cost_micros, project, user_name) "
            "VALUES"
            " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            Params()
                .add(u.ts_ms)
                .add(u.tenant)
                .add(u.key_id)
                .add(u.model)
                .add(u.prompt_tokens)
                .add(u.cached_tokens)
                .add(u.completion_tokens)
                .add(u.reasoning_tokens)
                .add(u.latency_ms)
                .add(static_cast<int64_t>(u.status))
                .add(u.outcome)
                .add(u.request_id)
                .add(u.cost_micros)
                .add(u.project)
                .add(u.user));
        if (!r.ok()) return db_error("record usage", r);
        PgRunner db(conn_, shown_);
        HEARTH_RETURN_IF_ERROR(detail::quota_record(db, u));
      }
      return Status::ok();
    });
  }

  // Admissions run on a connection of their own (opened on first use), so that they do not queue behind
  // the usage writer's batches: a READ COMMITTED transaction that first takes the tenant's transaction-scoped
  // advisory lock; quota_admit's single read statement then sees everything the previous holder committed.
  Status quota_transaction(const std::string& tenant, int64_t now, const QuotaDecider& decide) override {
    std::lock_guard lk(qmu_);
    if (qconn_ == nullptr || PQstatus(qconn_) != CONNECTION_OK) {
      if (qconn_ != nullptr) PQfinish(qconn_);
      qconn_ = PQconnectdb(url_.c_str());
      if (qconn_ == nullptr || PQstatus(qconn_) != CONNECTION_OK) {
        const std::string why = qconn_ ? trimmed(PQerrorMessage(qconn_)) : "out of memory";
        if (qconn_ != nullptr) PQfinish(qconn_);
        qconn_ = nullptr;
        return make_error(ErrorCode::kIo, "cannot connect to the PostgreSQL store {} (quotas): {}", shown_,
                          why);
      }
      PQsetNoticeProcessor(
          qconn_, [](void*, const char*) {}, nullptr);
    }
    PgRunner db(qconn_, shown_);
    Status st = Status::ok();
    // Two round trips: BEGIN, the lock and the read in one pipeline; the writes and COMMIT in another.
    const std::vector<detail::SqlStatement> prelude{
        {"BEGIN", {}}, {"SELECT pg_advisory_xact_lock($1::int, hashtext($2))", {kQuotaLockClass, tenant}}};
    const std::vector<detail::SqlStatement> epilogue{{"COMMIT", {}}};
    for (int attempt = 0; attempt < 5; ++attempt) {  // retried: deadlocks and serialization failures only
      st = detail::quota_admit(db, tenant, now, decide, prelude, epilogue);
      if (st.is_ok()) break;
      (void)db.run("ROLLBACK", {});
      if (st.code() != ErrorCode::kResourceExhausted) break;
    }
    return st;
  }

  Result<std::vector<UsageRecord>> list_usage(const std::string& tenant, int64_t since_ms, int64_t until_ms,
                                              int64_t limit) override {
    std::lock_guard lk(mu_);
    PgResult r = exec((std::string("SELECT ") + detail::kUsageColumns +
                       " FROM usage WHERE ($1 = '' OR tenant = $1) AND ts_ms >= $2"
                       " AND ($3 = 0 OR ts_ms < $3) ORDER BY ts_ms, id LIMIT $4")
                          .c_str(),
                      Params().add(tenant).add(since_ms).add(until_ms).add(limit));
    if (!r.ok()) return db_error("list usage", r);
    std::vector<UsageRecord> out;
    for (int i = 0; i < r.rows(); ++i) {
      out.push_back(detail::usage_from_row(r.row(i)));
    }
    return out;
  }

  Result<int64_t> tokens_used(const std::string& tenant, int64_t since_ms) override {
    std::lock_guard lk(mu_);
    PgResult r = exec(
        "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM usage WHERE tenant = $1 AND ts_ms "
        ">= $2",
        Params().add(tenant).add(since_ms));
    if (!r.ok()) return db_error("sum usage", r);
    return r.i64(0, 0);
  }

  Result<int64_t> money_used(const std::string& tenant, int64_t since_ms) override {
    std::lock_guard lk(mu_);
    PgResult r = exec("SELECT COALESCE(SUM(cost_micros), 0) FROM usage WHERE tenant = $1 AND ts_ms >= $2",
                      Params().add(tenant).add(since_ms));
    if (!r.ok()) return db_error("sum costs", r);
    return r.i64(0, 0);
  }
  Result<UsageTotals> usage_totals(const std::string& tenant, int64_t since_ms, int64_t until_ms) override {
    std::lock_guard lk(mu_);
    PgResult r = exec((std::string(detail::kUsageTotalsQuery) +
                       " WHERE tenant = $1 AND ts_ms >= $2 AND ($3 = 0 OR ts_ms < $3)")
                          .c_str(),
                      Params().add(tenant).add(since_ms).add(until_ms));
    if (!r.ok()) return db_error("sum usage", r);
    return UsageTotals{r.i64(0, 0), r.i64(0, 1), r.i64(0, 2), r.i64(0, 3), r.i64(0, 4)};
  }
  Result<std::vector<AuditRecord>> list_audit(int64_t after_seq, int64_t limit) override {
    std::lock_guard lk(mu_);
    PgResult r =
        exec("SELECT seq, ts_ms, actor, action, detail FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
             Params().add(after_seq).add(limit));
    if (!r.ok()) return db_error("read the audit log", r);
    std::vector<AuditRecord> out;
    for (int i = 0; i < r.rows(); ++i)
      out.push_back({r.i64(i, 0), r.i64(i, 1), r.text(i, 2), r.text(i, 3), r.text(i, 4)});
    return out;
  }
  Result<bool> admin_login_failed(const std::string& name, int64_t max_failures, int64_t lockout_ms,
                                  int64_t now) override {
    std::lock_guard lk(mu_);
    PgRunner db(conn_, shown_);
    return detail::admin_login_failed(db, name, max_failures, lockout_ms, now);
  }

  Status put_admin(const AdminAccount& a, bool create) override {
    HEARTH_RETURN_IF_ERROR(detail::validate_admin(a));
    std::lock_guard lk(mu_);
    PgResult r = exec(
        create ? "INSERT INTO admins (role, password_hash, password_changed_ms, failed_logins,"
                 " locked_until_ms, disabled, created_ms, name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
               : "UPDATE admins SET role = $1, password_hash = $2, password_changed_ms = $3,"
                 " failed_logins = $4, locked_until_ms = $5, disabled = $6, created_ms = $7 WHERE name = $8",
        Params()
            .add(a.role)
            .add(a.password_hash)
            .add(a.password_changed_ms)
            .add(a.failed_logins)
            .add(a.locked_until_ms)
            .add(int64_t{a.disabled ? 1 : 0})
            .add(a.created_ms)
            .add(a.name));
    if (!r.ok()) {
      if (r.sqlstate() == kUniqueViolation)
        return make_error(ErrorCode::kInvalidArgument, "administrator '{}' already exists", a.name);
      return db_error("write administrator", r);
    }
    if (!create && r.affected() == 0)
      return make_error(ErrorCode::kNotFound, "no administrator '{}'", a.name);
    return Status::ok();
  }
  Result<std::vector<AdminAccount>> list_admins() override {
    std::lock_guard lk(mu_);
    PgResult r = exec((std::string("SELECT ") + detail::kAdminColumns + " FROM admins ORDER BY name").c_str(),
                      Params());
    if (!r.ok()) return db_error("list administrators", r);
    std::vector<AdminAccount> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(detail::admin_from_row(r.row(i)));
    return out;
  }
  Status put_session(const AdminSession& x) override {
    std::lock_guard lk(mu_);
    PgResult r = exec(
        "INSERT INTO admin_sessions (token_hash, admin, created_ms, last_seen_ms) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (token_hash) DO UPDATE SET last_seen_ms = excluded.last_seen_ms",
        Params().add(x.token_hash).add(x.admin).add(x.created_ms).add(x.last_seen_ms));
    if (!r.ok()) return db_error("write session", r);
    return Status::ok();
  }
  Result<std::optional<AdminSession>> get_session(const std::string& token_hash) override {
    std::lock_guard lk(mu_);
    PgResult r =
        exec("SELECT token_hash, admin, created_ms, last_seen_ms FROM admin_sessions WHERE token_hash = $1",
             Params().add(token_hash));
    if (!r.ok()) return db_error("read session", r);
    if (r.rows() == 0) return std::optional<AdminSession>();
    return std::optional<AdminSession>(AdminSession{r.text(0, 0), r.text(0, 1), r.i64(0, 2), r.i64(0, 3)});
  }
  Status delete_session(const std::string& token_hash) override {
    std::lock_guard lk(mu_);
    PgResult r = exec("DELETE FROM admin_sessions WHERE token_hash = $1", Params().add(token_hash));
    if (!r.ok()) return db_error("delete session", r);
    if (r.affected() == 0) return make_error(ErrorCode::kNotFound, "no such session");
    return Status::ok();
  }
  Status set_tier(const Tier& tier) override {
    HEARTH_RETURN_IF_ERROR(detail::validate_tier(tier));
    std::lock_guard lk(mu_);
    PgResult r = exec(
        "INSERT INTO tiers (name, base_fee_micros, per_call_micros, included_calls, updated_ms) VALUES ($1, "
        "$2, $3,"
        " $4, $5) ON CONFLICT (name) DO UPDATE SET base_fee_micros = excluded.base_fee_micros, "
        "per_call_micros ="
        " excluded.per_call_micros, included_calls = excluded.included_calls, updated_ms = "
        "excluded.updated_ms",
        Params()
            .add(tier.name)
            .add(tier.base_fee_micros)
            .add(tier.per_call_micros)
            .add(tier.included_calls)
            .add(now_ms()));
    if (!r.ok()) return db_error("set tier", r);
    return Status::ok();
  }
  Result<std::vector<Tier>> list_tiers() override {
    std::lock_guard lk(mu_);
    PgResult r =
        exec((std::string("SELECT ") + detail::kTierColumns + " FROM tiers ORDER BY name").c_str(), Params());
    if (!r.ok()) return db_error("list tiers", r);
    std::vector<Tier> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(detail::tier_from_row(r.row(i)));
    return out;
  }
  Status delete_tier(const std::string& name) override {
    std::lock_guard lk(mu_);
    PgResult used = exec("SELECT name FROM tenants WHERE tier = $1 LIMIT 1", Params().add(name));
    if (!used.ok()) return db_error("read tenants", used);
    if (used.rows() > 0)
      return make_error(ErrorCode::kInvalidArgument, "tier '{}' is in use (tenant '{}')", name,
                        used.text(0, 0));
    PgResult r = exec("DELETE FROM tiers WHERE name = $1", Params().add(name));
    if (!r.ok()) return db_error("delete tier", r);
    if (r.affected() == 0) return make_error(ErrorCode::kNotFound, "no tier '{}'", name);
    return Status::ok();
  }
  Status set_price(const Price& price) override {
    HEARTH_RETURN_IF_ERROR(detail::validate_price(price));
    std::lock_guard lk(mu_);
    return in_transaction([&]() -> Status {
      // Replicas setting prices together: one at a time, so two currencies cannot slip in.
      HEARTH_RETURN_IF_ERROR(command("LOCK TABLE prices IN EXCLUSIVE MODE"));
      PgResult cur = exec("SELECT currency FROM prices WHERE model <> $1 AND currency <> $2 LIMIT 1",
                          Params().add(price.model).add(price.currency));
      if (!cur.ok()) return db_error("read prices", cur);
      if (cur.rows() > 0)
        return make_error(ErrorCode::kInvalidArgument,
                          "the price book is in {}, not {}: one currency per store", cur.text(0, 0),
                          price.currency);
      PgResult r = exec(
          "INSERT INTO prices (model, currency, input_micros, cached_micros, output_micros, request_micros,"
          " updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (model) DO UPDATE SET currency ="
          " excluded.currency, input_micros = excluded.input_micros, cached_micros = excluded.cached_micros,"
          " output_micros = excluded.output_micros, request_micros = excluded.request_micros,"
          " updated_ms = excluded.updated_ms",
          Params()
              .add(price.model)
              .add(price.currency)
              .add(price.input_micros)
              .add(price.cached_micros)
              .add(price.output_micros)
              .add(price.request_micros)
              .add(now_ms()));
      if (!r.ok()) return db_error("set price", r);
      return Status::ok();
    });
  }
  Result<std::vector<Price>> list_prices() override {
    std::lock_guard lk(mu_);
    PgResult r = exec(
        (std::string("SELECT ") + detail::kPriceColumns + " FROM prices ORDER BY model").c_str(), Params());
    if (!r.ok()) return db_error("list prices", r);
    std::vector<Price> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(detail::price_from_row(r.row(i)));
    return out;
  }
  Status delete_price(const std::string& model) override {
    std::lock_guard lk(mu_);
    PgResult r = exec("DELETE FROM prices WHERE model = $1", Params().add(model));
    if (!r.ok()) return db_error("delete price", r);
    if (r.affected() == 0) return make_error(ErrorCode::kNotFound, "no price for model '{}'", model);
    return Status::ok();
  }
  Result<int64_t> prune_audit(int64_t before_ms, const std::string& actor) override {
    std::lock_guard lk(mu_);
    Result<int64_t> removed = int64_t{0};
    const Status st = in_transaction([&]() -> Status {
      // Appenders on every replica wait; verify first (pruning must not erase the evidence of tampering).
      HEARTH_RETURN_IF_ERROR(command("LOCK TABLE audit_log IN EXCLUSIVE MODE"));
      HEARTH_ASSIGN_OR_RETURN(AuditVerdict v, verify_locked());
      if (!v.intact)
        return make_error(ErrorCode::kCorrupt, "the audit log is broken at record {} ({}): not pruning it",
                          v.first_bad_seq, v.reason);
      PgResult range = exec(
          "SELECT COALESCE(MIN(seq), 0), (SELECT MIN(seq) FROM audit_log WHERE ts_ms >= $1),"
          " COALESCE(MAX(seq), 0) FROM audit_log",
          Params().add(before_ms));
      if (!range.ok()) return db_error("read the audit log", range);
      const int64_t first = range.i64(0, 0);
      const int64_t last_old = range.null(0, 1) ? range.i64(0, 2) : range.i64(0, 1) - 1;
      if (first == 0 || last_old < first) return Status::ok();
      PgResult h = exec("SELECT hash FROM audit_log WHERE seq = $1", Params().add(last_old));
      if (!h.ok() || h.rows() != 1) return db_error("read the audit log", h);
      const std::string hash = h.text(0, 0);
      PgResult del = exec("DELETE FROM audit_log WHERE seq <= $1", Params().add(last_old));
      if (!del.ok()) return db_error("prune the audit log", del);
      PgResult anchor = exec(
          "INSERT INTO audit_anchor (id, seq, hash, mac) VALUES (1, $1, $2, $3) ON CONFLICT (id) DO UPDATE "
          "SET"
          " seq = excluded.seq, hash = excluded.hash, mac = excluded.mac",
          Params().add(last_old).add(hash).add(mac_->anchor(last_old, hash)));
      if (!anchor.ok()) return db_error("anchor the audit log", anchor);
      const AuditEntry e{
          actor, "audit.prune",
          fmt::format("removed records {} to {} (written before {} ms)", first, last_old, before_ms)};
      HEARTH_RETURN_IF_ERROR(append_audit(std::span<const AuditEntry>(&e, 1)));
      removed = last_old - first + 1;
      return Status::ok();
    });
    HEARTH_RETURN_IF_ERROR(st);
    return removed;
  }
  Result<AuditVerdict> verify_audit() override {
    std::lock_guard lk(mu_);
    // One snapshot for the rows and the head: a concurrent append cannot make an intact chain look cut.
    HEARTH_RETURN_IF_ERROR(command("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    auto v = verify_locked();
    (void)command("COMMIT");
    return v;
  }

 private:
  static std::string trimmed(const char* s) {
    std::string m = s ? s : "";
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    return m;
  }

  // One reconnect attempt when the server closed the connection (restart, failover, idle timeout).
  PgResult exec(const char* sql, Params p) {
    PgResult r(PQexecParams(conn_, sql, p.size(), nullptr, p.values(), p.lengths(), nullptr, 0));
    if (!r.ok() && PQstatus(conn_) == CONNECTION_BAD && PQtransactionStatus(conn_) != PQTRANS_INTRANS) {
      PQreset(conn_);
      if (PQstatus(conn_) == CONNECTION_OK)
        return PgResult(PQexecParams(conn_, sql, p.size(), nullptr, p.values(), p.lengths(), nullptr, 0));
    }
    return r;
  }

  Status command(const char* sql) {
    PgResult r = exec(sql, Params());
    return r.ok() ? Status::ok() : db_error(sql, r);
  }

  Status db_error(const char* what, const PgResult& r) const {
    return make_error(ErrorCode::kIo, "PostgreSQL store {}: {}: {}", shown_, what, r.error());
  }

  Status migrate() {
    return in_transaction([&] { return migrate_in_transaction(); });
  }

  // Under an advisory lock: two replicas starting together apply each migration once.
  Status migrate_in_transaction() {
    PgResult lock = exec("SELECT pg_advisory_xact_lock($1)", Params().add(kMigrationLockId));
    if (!lock.ok()) return db_error("take the migration lock", lock);
    HEARTH_RETURN_IF_ERROR(command(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT "
        "NULL)"));
    PgResult have_r = exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", Params());
    if (!have_r.ok()) return db_error("read the schema version", have_r);
    const int64_t have = have_r.i64(0, 0);
    static_assert(std::size(kMigrations) == detail::kOwnMigrations);
    const int64_t known = detail::kMigrationCount;
    if (have > known) {
      return make_error(
          ErrorCode::kUnsupported,
          "PostgreSQL store {} has schema version {}, newer than this hearth knows ({}): upgrade hearth",
          shown_, have, known);
    }
    for (int64_t v = have + 1; v <= known; ++v) {
      // Several statements in one string: the simple-query protocol (no parameters; constant SQL).
      PgResult m(PQexec(conn_, detail::migration_sql(kMigrations, v)));
      if (!m.ok()) return db_error("migrate", m).with_context(fmt::format("migration {}", v));
      PgResult rec = exec("INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
                          Params().add(v).add(now_ms()));
      if (!rec.ok()) return db_error("record the migration", rec);
    }
    return Status::ok();
  }

  Status in_transaction(const std::function<Status()>& body) {
    HEARTH_RETURN_IF_ERROR(command("BEGIN"));
    Status st = body();
    Status end = command(st.is_ok() ? "COMMIT" : "ROLLBACK");
    HEARTH_RETURN_IF_ERROR(st);
    return end;
  }

  Status append_audit(std::span<const AuditEntry> entries) {
    // EXCLUSIVE: plain reads go on; appenders on every replica queue here, so the chain stays linear.
    HEARTH_RETURN_IF_ERROR(command("LOCK TABLE audit_log IN EXCLUSIVE MODE"));
    // The last record, or after pruning everything the anchor it left.
    PgResult last = exec(
        "SELECT seq, hash FROM (SELECT seq, hash FROM audit_log UNION ALL SELECT seq, hash FROM "
        "audit_anchor) t"
        " ORDER BY seq DESC LIMIT 1",
        Params());
    if (!last.ok()) return db_error("read the audit log", last);
    int64_t seq = 0;
    std::string prev;
    if (last.rows() == 1) {
      seq = last.i64(0, 0);
      prev = last.text(0, 1);
    }
    const int64_t ts = now_ms();
    for (const AuditEntry& e : entries) {
      ++seq;
      std::string h = mac_->record(seq, ts, e.actor, e.action, e.detail, prev);
      PgResult ins = exec(
          "INSERT INTO audit_log (seq, ts_ms, actor, action, detail, prev_hash, hash) VALUES ($1, $2, $3, "
          "$4, $5, "
          "$6, $7)",
          Params().add(seq).add(ts).add(e.actor).add(e.action).add(e.detail).add(prev).add(h));
      if (!ins.ok()) return db_error("append to the audit log", ins);
      prev = std::move(h);
    }
    PgResult head = exec(
        "INSERT INTO audit_head (id, seq, hash, mac) VALUES (1, $1, $2, $3) "
        "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac",
        Params().add(seq).add(prev).add(mac_->head(seq, prev)));
    if (!head.ok()) return db_error("update the audit head", head);
    return Status::ok();
  }

  Result<AuditVerdict> verify_locked() {
    detail::ChainVerifier chain(*mac_);
    PgResult an = exec("SELECT seq, hash, mac FROM audit_anchor WHERE id = 1", Params());
    if (!an.ok()) return db_error("read the audit anchor", an);
    if (an.rows() == 1) chain.start(detail::AuditHead{an.i64(0, 0), an.text(0, 1), an.text(0, 2)});
    // Pages of rows keep memory bounded on long logs.
    int64_t after = 0;
    for (;;) {
      PgResult r = exec(
          "SELECT seq, ts_ms, actor, action, detail, prev_hash, hash FROM audit_log WHERE seq > $1 ORDER BY "
          "seq "
          "LIMIT 10000",
          Params().add(after));
      if (!r.ok()) return db_error("read the audit log", r);
      for (int i = 0; i < r.rows(); ++i) {
        if (!chain.add({r.i64(i, 0), r.i64(i, 1), r.text(i, 2), r.text(i, 3), r.text(i, 4), r.text(i, 5),
                        r.text(i, 6)}))
          return chain.finish({});
        after = r.i64(i, 0);
      }
      if (r.rows() < 10000) break;
    }
    PgResult hd = exec("SELECT seq, hash, mac FROM audit_head WHERE id = 1", Params());
    if (!hd.ok()) return db_error("read the audit head", hd);
    std::optional<detail::AuditHead> head;
    if (hd.rows() == 1) head = detail::AuditHead{hd.i64(0, 0), hd.text(0, 1), hd.text(0, 2)};
    return chain.finish(head);
  }

  Status check_tier_exists(const std::string& tier) {
    if (tier.empty()) return Status::ok();
    PgResult r = exec("SELECT 1 FROM tiers WHERE name = $1", Params().add(tier));
    if (!r.ok()) return db_error("read tiers", r);
    if (r.rows() == 0)
      return make_error(ErrorCode::kInvalidArgument, "no licence tier '{}' (hearth admin tier set makes one)",
                        tier);
    return Status::ok();
  }
  Result<int64_t> tenant_id_of(const std::string& name) {
    PgResult r = exec("SELECT id FROM tenants WHERE name = $1", Params().add(name));
    if (!r.ok()) return db_error("find tenant", r);
    if (r.rows() == 0) return make_error(ErrorCode::kNotFound, "no tenant '{}'", name);
    return r.i64(0, 0);
  }

  std::mutex mu_;
  PGconn* conn_ = nullptr;
  std::string shown_;
  std::string url_;
  std::mutex qmu_;  // the quota connection
  PGconn* qconn_ = nullptr;
  std::optional<detail::AuditMac> mac_;
};

}  // namespace

namespace detail {
Result<std::unique_ptr<Store>> open_postgres(const std::string& url) {
  auto s = std::make_unique<PgStore>();
  HEARTH_RETURN_IF_ERROR(s->open(url));
  return std::unique_ptr<Store>(std::move(s));
}
}  // namespace detail

}  // namespace hearth::store
