// The SQLite backend of Store (store.h).
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>

#include "store/store.h"

namespace hearth::store {
namespace {

constexpr std::string_view kKeyPrefix = "hk_";
constexpr size_t kPrefixChars = 8;
constexpr size_t kSecretChars = 43;  // 43 base62 digits > 256 bits
constexpr std::string_view kBase62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string hex(const unsigned char* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = d[p[i] >> 4];
    s[2 * i + 1] = d[p[i] & 15];
  }
  return s;
}

std::string sha256_hex(std::string_view s) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> h{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), h.data());
  return hex(h.data(), h.size());
}

// Uniform base62 characters from the OS CSPRNG (rejection sampling: no modulo bias).
Result<std::string> random_base62(size_t n) {
  std::string out;
  while (out.size() < n) {
    std::array<unsigned char, 64> buf{};
    if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1)
      return make_error(ErrorCode::kInternal, "the system's random generator failed (RAND_bytes)");
    for (unsigned char b : buf) {
      if (b >= 248) continue;  // 248 = 4 * 62
      out.push_back(kBase62[b % 62]);
      if (out.size() == n) break;
    }
  }
  return out;
}

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
  int step() { return sqlite3_step(s_); }
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
    HEARTH_RETURN_IF_ERROR(exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"));
    HEARTH_RETURN_IF_ERROR(migrate());
    return load_audit_key();
  }

  Result<Tenant> create_tenant(const std::string& name, const TenantLimits& l) override {
    if (name.empty() || name.size() > 128 || name.find_first_of("\n\r\t") != std::string::npos)
      return make_error(ErrorCode::kInvalidArgument,
                        "tenant name must be 1-128 characters without control characters");
    if (l.rpm < 0 || l.tpm < 0 || l.budget_tokens < 0)
      return make_error(ErrorCode::kInvalidArgument, "tenant limits must be >= 0 (0 = unlimited)");
    Tenant t;
    t.name = name;
    t.limits = l;
    t.created_ms = now_ms();
    Stmt s(db_, "INSERT INTO tenants (name, rpm, tpm, budget_tokens, created_ms) VALUES (?, ?, ?, ?, ?)");
    if (!s.ok()) return db_error("prepare");
    s.bind(1, name).bind(2, l.rpm).bind(3, l.tpm).bind(4, l.budget_tokens).bind(5, t.created_ms);
    if (s.step() != SQLITE_DONE) {
      if (sqlite3_extended_errcode(db_) == SQLITE_CONSTRAINT_UNIQUE)
        return make_error(ErrorCode::kInvalidArgument, "tenant '{}' already exists", name);
      return db_error("create tenant");
    }
    t.id = sqlite3_last_insert_rowid(db_);
    return t;
  }

  Result<std::vector<Tenant>> list_tenants() override {
    Stmt s(db_, "SELECT id, name, rpm, tpm, budget_tokens, created_ms FROM tenants ORDER BY name");
    if (!s.ok()) return db_error("prepare");
    std::vector<Tenant> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      Tenant t;
      t.id = s.i64(0);
      t.name = s.text(1);
      t.limits = {s.i64(2), s.i64(3), s.i64(4)};
      t.created_ms = s.i64(5);
      out.push_back(std::move(t));
    }
    if (rc != SQLITE_DONE) return db_error("list tenants");
    return out;
  }

  Result<NewApiKey> create_key(const std::string& tenant, int64_t expires_ms) override {
    HEARTH_ASSIGN_OR_RETURN(int64_t tenant_id, tenant_id_of(tenant));
    for (int attempt = 0; attempt < 4; ++attempt) {  // a prefix collision (1 in 62^8) just retries
      HEARTH_ASSIGN_OR_RETURN(std::string pre, random_base62(kPrefixChars));
      HEARTH_ASSIGN_OR_RETURN(std::string secret, random_base62(kSecretChars));
      NewApiKey k;
      k.info.prefix = std::string(kKeyPrefix) + pre;
      k.key = k.info.prefix + "_" + secret;
      k.info.tenant = tenant;
      k.info.created_ms = now_ms();
      k.info.expires_ms = expires_ms;
      Stmt s(db_,
             "INSERT INTO api_keys (tenant_id, prefix, hash, created_ms, expires_ms, revoked_ms) "
             "VALUES (?, ?, ?, ?, ?, 0)");
      if (!s.ok()) return db_error("prepare");
      s.bind(1, tenant_id)
          .bind(2, k.info.prefix)
          .bind(3, sha256_hex(k.key))
          .bind(4, k.info.created_ms)
          .bind(5, expires_ms);
      if (s.step() == SQLITE_DONE) {
        k.info.id = sqlite3_last_insert_rowid(db_);
        return k;
      }
      if (sqlite3_extended_errcode(db_) != SQLITE_CONSTRAINT_UNIQUE) return db_error("create key");
    }
    return make_error(ErrorCode::kInternal, "could not find a free key prefix");
  }

  Result<std::vector<ApiKeyInfo>> list_keys(const std::string& tenant) override {
    Stmt s(db_,
           "SELECT k.id, k.prefix, t.name, k.created_ms, k.expires_ms, k.revoked_ms FROM api_keys k "
           "JOIN tenants t ON t.id = k.tenant_id WHERE (? = '' OR t.name = ?) ORDER BY k.id");
    if (!s.ok()) return db_error("prepare");
    s.bind(1, tenant).bind(2, tenant);
    std::vector<ApiKeyInfo> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) out.push_back(key_row(s));
    if (rc != SQLITE_DONE) return db_error("list keys");
    return out;
  }

  Status revoke_key(const std::string& prefix) override {
    Stmt s(db_, "UPDATE api_keys SET revoked_ms = ? WHERE prefix = ? AND revoked_ms = 0");
    if (!s.ok()) return db_error("prepare");
    s.bind(1, now_ms()).bind(2, prefix);
    if (s.step() != SQLITE_DONE) return db_error("revoke key");
    if (sqlite3_changes(db_) == 0)
      return make_error(ErrorCode::kNotFound, "no active key with prefix '{}'", prefix);
    return Status::ok();
  }

  Result<std::optional<ApiKeyInfo>> authenticate(std::string_view presented) override {
    if (!looks_like_api_key(presented)) return std::optional<ApiKeyInfo>();
    Stmt s(db_,
           "SELECT k.id, k.prefix, t.name, k.created_ms, k.expires_ms, k.revoked_ms, k.hash FROM api_keys k "
           "JOIN tenants t ON t.id = k.tenant_id WHERE k.prefix = ?");
    if (!s.ok()) return db_error("prepare");
    s.bind(1, api_key_prefix(presented));
    const int rc = s.step();
    if (rc == SQLITE_DONE) return std::optional<ApiKeyInfo>();
    if (rc != SQLITE_ROW) return db_error("authenticate");
    const std::string want = s.text(6), got = sha256_hex(presented);
    if (want.size() != got.size() || CRYPTO_memcmp(want.data(), got.data(), got.size()) != 0)
      return std::optional<ApiKeyInfo>();
    ApiKeyInfo info = key_row(s);
    if (info.revoked_ms != 0 || (info.expires_ms != 0 && info.expires_ms <= now_ms()))
      return std::optional<ApiKeyInfo>();
    return std::optional<ApiKeyInfo>(std::move(info));
  }

  Status audit(const std::string& actor, const std::string& action, const std::string& detail) override {
    HEARTH_RETURN_IF_ERROR(exec("BEGIN IMMEDIATE"));
    Status st = append_audit(actor, action, detail);
    HEARTH_RETURN_IF_ERROR(exec(st.is_ok() ? "COMMIT" : "ROLLBACK"));
    return st;
  }

  Result<AuditVerdict> verify_audit() override {
    AuditVerdict v;
    Stmt s(db_, "SELECT seq, ts_ms, actor, action, detail, prev_hash, hash FROM audit_log ORDER BY seq");
    if (!s.ok()) return db_error("prepare");
    std::string prev;
    int64_t expect = 1;
    int rc;
    auto bad = [&](int64_t seq, std::string why) {
      v.intact = false;
      v.first_bad_seq = seq;
      v.reason = std::move(why);
    };
    while ((rc = s.step()) == SQLITE_ROW) {
      const int64_t seq = s.i64(0);
      ++v.records;
      if (seq != expect) {
        bad(expect, fmt::format("record {} is missing (the next one is {})", expect, seq));
        return v;
      }
      if (s.text(5) != prev) {
        bad(seq, fmt::format("record {} does not link to record {}", seq, seq - 1));
        return v;
      }
      const std::string h = record_mac(seq, s.i64(1), s.text(2), s.text(3), s.text(4), prev);
      if (h != s.text(6)) {
        bad(seq, fmt::format("record {} was modified (its MAC does not match)", seq));
        return v;
      }
      prev = h;
      ++expect;
    }
    if (rc != SQLITE_DONE) return db_error("read the audit log");
    // The head: catches removal of the last records, which the chain alone cannot show.
    Stmt hd(db_, "SELECT seq, hash, mac FROM audit_head WHERE id = 1");
    if (!hd.ok()) return db_error("prepare");
    const int64_t last = expect - 1;
    if (hd.step() == SQLITE_ROW) {
      const int64_t head_seq = hd.i64(0);
      if (head_mac(head_seq, hd.text(1)) != hd.text(2)) {
        bad(head_seq, "the audit head was modified");
      } else if (head_seq != last || hd.text(1) != prev) {
        bad(last + 1, fmt::format("records after {} were removed (the head says {})", last, head_seq));
      }
    } else if (last != 0) {
      bad(1, "the audit head is missing");
    }
    return v;
  }

 private:
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

  Status migrate() {
    HEARTH_RETURN_IF_ERROR(
        exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER "
             "NOT NULL)"));
    int64_t have = 0;
    {
      Stmt s(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
      if (!s.ok() || s.step() != SQLITE_ROW) return db_error("read the schema version");
      have = s.i64(0);
    }
    const int64_t known = static_cast<int64_t>(std::size(kMigrations));
    if (have > known) {
      return make_error(
          ErrorCode::kUnsupported,
          "SQLite store {} has schema version {}, newer than this hearth knows ({}): upgrade hearth", path_,
          have, known);
    }
    for (int64_t v = have + 1; v <= known; ++v) {
      HEARTH_RETURN_IF_ERROR(exec("BEGIN IMMEDIATE"));
      Status st = exec(kMigrations[v - 1]);
      if (st.is_ok()) {
        Stmt s(db_, "INSERT INTO schema_migrations (version, applied_ms) VALUES (?, ?)");
        s.bind(1, v).bind(2, now_ms());
        if (!s.ok() || s.step() != SQLITE_DONE) st = db_error("record the migration");
      }
      HEARTH_RETURN_IF_ERROR(exec(st.is_ok() ? "COMMIT" : "ROLLBACK"));
      HEARTH_RETURN_IF_ERROR(st.with_context(fmt::format("migration {}", v)));
    }
    return Status::ok();
  }

  // HEARTH_AUDIT_KEY (hex), else PATH.audit-key (created 0600 with 32 random bytes on first use).
  Status load_audit_key() {
    std::string hexkey;
    if (const char* e = std::getenv("HEARTH_AUDIT_KEY"); e != nullptr && *e != '\0') {
      hexkey = e;
    } else {
      const std::string kp = path_ + ".audit-key";
      std::ifstream in(kp);
      if (in) {
        std::getline(in, hexkey);
      } else {
        std::array<unsigned char, 32> k{};
        if (RAND_bytes(k.data(), static_cast<int>(k.size())) != 1)
          return make_error(ErrorCode::kInternal, "the system's random generator failed (RAND_bytes)");
        hexkey = hex(k.data(), k.size());
        const int fd = ::open(kp.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd < 0) return make_error(ErrorCode::kIo, "cannot create the audit key file {}", kp);
        const std::string line = hexkey + "\n";
        const bool ok =
            ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
        ::close(fd);
        if (!ok) return make_error(ErrorCode::kIo, "cannot write the audit key file {}", kp);
      }
    }
    if (hexkey.size() < 32 || hexkey.size() % 2 != 0 ||
        hexkey.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
      return make_error(ErrorCode::kInvalidArgument, "the audit key must be at least 16 bytes of hex");
    audit_key_.clear();
    for (size_t i = 0; i < hexkey.size(); i += 2)
      audit_key_.push_back(static_cast<unsigned char>(std::stoi(hexkey.substr(i, 2), nullptr, 16)));
    return Status::ok();
  }

  std::string mac(std::string_view msg) const {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), audit_key_.data(), static_cast<int>(audit_key_.size()),
         reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &len);
    return hex(out, len);
  }

  // Length-prefixed fields: no two different records serialise alike.
  std::string record_mac(int64_t seq, int64_t ts, const std::string& actor, const std::string& action,
                         const std::string& detail, const std::string& prev) const {
    return mac(fmt::format("audit|{}|{}|{}:{}|{}:{}|{}:{}|{}", seq, ts, actor.size(), actor, action.size(),
                           action, detail.size(), detail, prev));
  }
  std::string head_mac(int64_t seq, const std::string& hash) const {
    return mac(fmt::format("head|{}|{}", seq, hash));
  }

  Status append_audit(const std::string& actor, const std::string& action, const std::string& detail) {
    int64_t seq = 1;
    std::string prev;
    {
      Stmt s(db_, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1");
      if (!s.ok()) return db_error("prepare");
      if (s.step() == SQLITE_ROW) {
        seq = s.i64(0) + 1;
        prev = s.text(1);
      }
    }
    const int64_t ts = now_ms();
    const std::string h = record_mac(seq, ts, actor, action, detail, prev);
    Stmt ins(db_,
             "INSERT INTO audit_log (seq, ts_ms, actor, action, detail, prev_hash, hash) VALUES (?, ?, ?, ?, "
             "?, ?, ?)");
    if (!ins.ok()) return db_error("prepare");
    ins.bind(1, seq).bind(2, ts).bind(3, actor).bind(4, action).bind(5, detail).bind(6, prev).bind(7, h);
    if (ins.step() != SQLITE_DONE) return db_error("append to the audit log");
    Stmt head(db_,
              "INSERT INTO audit_head (id, seq, hash, mac) VALUES (1, ?, ?, ?) "
              "ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac");
    if (!head.ok()) return db_error("prepare");
    head.bind(1, seq).bind(2, h).bind(3, head_mac(seq, h));
    if (head.step() != SQLITE_DONE) return db_error("update the audit head");
    return Status::ok();
  }

  Result<int64_t> tenant_id_of(const std::string& name) {
    Stmt s(db_, "SELECT id FROM tenants WHERE name = ?");
    if (!s.ok()) return db_error("prepare");
    s.bind(1, name);
    if (s.step() != SQLITE_ROW) return make_error(ErrorCode::kNotFound, "no tenant '{}'", name);
    return s.i64(0);
  }

  static ApiKeyInfo key_row(const Stmt& s) {
    ApiKeyInfo k;
    k.id = s.i64(0);
    k.prefix = s.text(1);
    k.tenant = s.text(2);
    k.created_ms = s.i64(3);
    k.expires_ms = s.i64(4);
    k.revoked_ms = s.i64(5);
    return k;
  }

  sqlite3* db_ = nullptr;
  std::string path_;
  std::vector<unsigned char> audit_key_;
};

}  // namespace

bool looks_like_api_key(std::string_view s) {
  if (s.size() != kKeyPrefix.size() + kPrefixChars + 1 + kSecretChars ||
      s.substr(0, kKeyPrefix.size()) != kKeyPrefix)
    return false;
  if (s[kKeyPrefix.size() + kPrefixChars] != '_') return false;
  for (size_t i = kKeyPrefix.size(); i < s.size(); ++i) {
    if (i == kKeyPrefix.size() + kPrefixChars) continue;
    if (kBase62.find(s[i]) == std::string_view::npos) return false;
  }
  return true;
}

std::string api_key_prefix(std::string_view key) {
  if (!looks_like_api_key(key)) return {};
  return std::string(key.substr(0, kKeyPrefix.size() + kPrefixChars));
}

Result<std::unique_ptr<Store>> Store::open(const std::string& url) {
  if (url.rfind("sqlite:", 0) == 0) {
    const std::string path = url.substr(7);
    if (path.empty()) return make_error(ErrorCode::kInvalidArgument, "--store sqlite:PATH needs a path");
    auto s = std::make_unique<SqliteStore>();
    HEARTH_RETURN_IF_ERROR(s->open(path));
    return std::unique_ptr<Store>(std::move(s));
  }
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
    return make_error(
        ErrorCode::kUnsupported,
        "the PostgreSQL store is not built yet (issue #7 in progress): use --store sqlite:PATH");
  }
  return make_error(ErrorCode::kInvalidArgument, "--store must be sqlite:PATH or postgresql://..., got '{}'",
                    url);
}

}  // namespace hearth::store
