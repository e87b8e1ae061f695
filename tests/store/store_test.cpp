// The store (SQLite and PostgreSQL): tenants, API keys (format, entropy, hashing, revocation, expiry) and the
// audit log's tamper evidence (modified, deleted — also the last —, inserted and reordered records are all
// found).
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include <fmt/format.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <thread>

#include "store/store.h"

namespace hearth::store {
namespace {

// Every test runs on both backends: SQLite in a temporary directory, PostgreSQL in a fresh schema of the
// server named by HEARTH_TEST_PG_URL (tests/integration/store_postgres.sh starts one; skipped without it).
class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  bool pg() const { return GetParam() == "postgres"; }

  void SetUp() override {
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    if (pg()) {
      const char* base = std::getenv("HEARTH_TEST_PG_URL");
      if (base == nullptr || *base == '\0')
        GTEST_SKIP() << "HEARTH_TEST_PG_URL is not set (see store_postgres.sh)";
      if (std::getenv("HEARTH_AUDIT_KEY") == nullptr) {
        ::setenv("HEARTH_AUDIT_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 1);
        set_key_ = true;
      }
      schema_ = "t_" + std::to_string(::getpid());
      for (char c : test)
        schema_ += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
      schema_ = schema_.substr(0, 60);
      raw_ = PQconnectdb(base);
      ASSERT_EQ(PQstatus(raw_), CONNECTION_OK) << PQerrorMessage(raw_);
      sql("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE; CREATE SCHEMA " + schema_ +
          "; SET search_path = " + schema_);
      url_ = std::string(base) + (std::string(base).find('?') == std::string::npos ? "?" : "&") +
             "options=-csearch_path%3D" + schema_;
    } else {
      dir_ = std::filesystem::path(::testing::TempDir()) /
             ("hearth_store_" + std::to_string(::getpid()) + "_" + test);
      std::filesystem::remove_all(dir_);
      std::filesystem::create_directories(dir_);
      path_ = (dir_ / "gw.db").string();
      url_ = "sqlite:" + path_;
    }
    auto s = Store::open(url_);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    if (raw_ != nullptr) {
      sql("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
      PQfinish(raw_);
    }
    if (set_key_) ::unsetenv("HEARTH_AUDIT_KEY");
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  void sql(const std::string& q) {
    PGresult* r = PQexec(raw_, q.c_str());
    const ExecStatusType st = PQresultStatus(r);
    EXPECT_TRUE(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) << q << ": " << PQresultErrorMessage(r);
    PQclear(r);
  }
  // Raw SQL on the database, as an attacker with write access to it would.
  void tamper(const char* q) {
    if (pg()) return sql(q);
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, q, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }
  // Everything the database holds, as bytes (files for SQLite, every row as text for PostgreSQL).
  std::string everything() {
    std::string bytes;
    if (pg()) {
      for (const char* t : {"tenants", "api_keys", "audit_log", "audit_head"}) {
        PGresult* r = PQexec(raw_, (std::string("SELECT x::text FROM ") + t + " x").c_str());
        for (int i = 0; i < PQntuples(r); ++i) bytes += std::string(PQgetvalue(r, i, 0)) + "\n";
        PQclear(r);
      }
      return bytes;
    }
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      std::ifstream in(e.path(), std::ios::binary);
      bytes.append(std::istreambuf_iterator<char>(in), {});
    }
    return bytes;
  }
  void audit_n(int n) {
    for (int i = 1; i <= n; ++i)
      ASSERT_TRUE(store_->audit("test", "action", "record " + std::to_string(i)).is_ok());
  }

  std::filesystem::path dir_;
  std::string path_, url_, schema_;
  PGconn* raw_ = nullptr;
  bool set_key_ = false;
  std::unique_ptr<Store> store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

TEST_P(StoreTest, TenantsAreUniqueAndListed) {
  ASSERT_TRUE(store_->create_tenant("acme", {60, 100000, 0}).is_ok());
  ASSERT_TRUE(store_->create_tenant("bank", {}).is_ok());
  auto dup = store_->create_tenant("acme", {});
  ASSERT_FALSE(dup.is_ok());
  EXPECT_NE(dup.status().message().find("already exists"), std::string::npos);
  EXPECT_FALSE(store_->create_tenant("", {}).is_ok());
  EXPECT_FALSE(store_->create_tenant("x", {-1, 0, 0}).is_ok());
  auto ts = store_->list_tenants();
  ASSERT_TRUE(ts.is_ok());
  ASSERT_EQ(ts->size(), 2u);
  EXPECT_EQ((*ts)[0].name, "acme");
  EXPECT_EQ((*ts)[0].limits.rpm, 60);
  EXPECT_EQ((*ts)[0].limits.tpm, 100000);
}

TEST_P(StoreTest, TenantModelAllowListsAndUpdates) {
  ASSERT_TRUE(store_->create_tenant("acme", {0, 0, 0, {"deepseek-v3", "qwen3-8b"}}).is_ok());
  ASSERT_TRUE(store_->create_tenant("bank", {}).is_ok());
  auto ts = store_->list_tenants();
  ASSERT_TRUE(ts.is_ok()) << ts.status().to_string();
  ASSERT_EQ(ts->size(), 2u);
  EXPECT_EQ((*ts)[0].limits.models, (std::vector<std::string>{"deepseek-v3", "qwen3-8b"}));
  EXPECT_TRUE((*ts)[1].limits.models.empty());
  EXPECT_TRUE(store::model_allowed((*ts)[0].limits, "qwen3-8b"));
  EXPECT_FALSE(store::model_allowed((*ts)[0].limits, "qwen3-8"));
  EXPECT_TRUE(store::model_allowed((*ts)[1].limits, "anything"));

  ASSERT_TRUE(store_->update_tenant("bank", {5, 6, 7, {"a/b:c"}}).is_ok());
  ASSERT_TRUE(store_->update_tenant("acme", {1, 2, 3, {}}).is_ok());
  ts = store_->list_tenants();
  ASSERT_TRUE(ts.is_ok());
  EXPECT_TRUE((*ts)[0].limits.models.empty());
  EXPECT_EQ((*ts)[0].limits.rpm, 1);
  EXPECT_EQ((*ts)[1].limits.models, (std::vector<std::string>{"a/b:c"}));
  EXPECT_EQ((*ts)[1].limits.budget_tokens, 7);

  const Status missing = store_->update_tenant("nobody", {});
  EXPECT_EQ(missing.code(), ErrorCode::kNotFound) << missing.to_string();
  EXPECT_FALSE(store_->update_tenant("acme", {0, 0, 0, {"bad\nname"}}).is_ok());  // one name per line
  EXPECT_FALSE(store_->update_tenant("acme", {0, 0, 0, {""}}).is_ok());
  EXPECT_FALSE(store_->create_tenant("x", {0, 0, 0, {std::string(300, 'm')}}).is_ok());
}

TEST_P(StoreTest, KeysAuthenticateUntilRevokedOrExpired) {
  ASSERT_TRUE(store_->create_tenant("acme", {}).is_ok());
  auto k = store_->create_key("acme", 0);
  ASSERT_TRUE(k.is_ok()) << k.status().to_string();
  EXPECT_TRUE(looks_like_api_key(k->key));
  EXPECT_EQ(api_key_prefix(k->key), k->info.prefix);
  EXPECT_EQ(k->key.rfind(k->info.prefix + "_", 0), 0u);
  auto ok = store_->authenticate(k->key);
  ASSERT_TRUE(ok.is_ok());
  ASSERT_TRUE(ok->has_value());
  EXPECT_EQ((*ok)->tenant, "acme");
  // One changed character of the secret, a truncated key, the prefix alone: refused.
  std::string bad = k->key;
  bad.back() = bad.back() == 'a' ? 'b' : 'a';
  EXPECT_FALSE(store_->authenticate(bad)->has_value());
  EXPECT_FALSE(store_->authenticate(k->key.substr(0, k->key.size() - 1))->has_value());
  EXPECT_FALSE(store_->authenticate(k->info.prefix)->has_value());
  EXPECT_FALSE(store_->authenticate("")->has_value());
  // The secret is not in the database: only its SHA-256.
  auto keys = store_->list_keys("acme");
  ASSERT_TRUE(keys.is_ok());
  ASSERT_EQ(keys->size(), 1u);
  ASSERT_TRUE(store_->revoke_key(k->info.prefix).is_ok());
  EXPECT_FALSE(store_->authenticate(k->key)->has_value());
  EXPECT_EQ(store_->revoke_key(k->info.prefix).code(), ErrorCode::kNotFound);
  // Expired keys are refused.
  const int64_t past = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count() -
                       1000;
  auto old = store_->create_key("acme", past);
  ASSERT_TRUE(old.is_ok());
  EXPECT_FALSE(store_->authenticate(old->key)->has_value());
  EXPECT_EQ(store_->create_key("nobody", 0).status().code(), ErrorCode::kNotFound);
}

TEST_P(StoreTest, KeysAreDistinctAndDrawnFromTheWholeAlphabet) {
  ASSERT_TRUE(store_->create_tenant("acme", {}).is_ok());
  std::set<std::string> keys;
  std::set<char> chars;
  for (int i = 0; i < 200; ++i) {
    auto k = store_->create_key("acme", 0);
    ASSERT_TRUE(k.is_ok());
    keys.insert(k->key);
    for (char c : k->key.substr(12)) chars.insert(c);
  }
  EXPECT_EQ(keys.size(), 200u);
  EXPECT_EQ(chars.size(), 62u);  // the secrets use every base62 digit
}

TEST_P(StoreTest, SecretIsNotStored) {
  ASSERT_TRUE(store_->create_tenant("acme", {}).is_ok());
  auto k = store_->create_key("acme", 0);
  ASSERT_TRUE(k.is_ok());
  const std::string bytes = everything();
  const std::string secret = k->key.substr(k->info.prefix.size() + 1);
  EXPECT_EQ(bytes.find(secret), std::string::npos) << "the key's secret is in the store's files";
  EXPECT_NE(bytes.find(k->info.prefix), std::string::npos);
}

TEST_P(StoreTest, AuditChainIntact) {
  audit_n(5);
  auto v = store_->verify_audit();
  ASSERT_TRUE(v.is_ok());
  EXPECT_TRUE(v->intact) << v->reason;
  EXPECT_EQ(v->records, 5);
}

TEST_P(StoreTest, AuditFindsAModifiedRecord) {
  audit_n(5);
  tamper("UPDATE audit_log SET detail = 'record X' WHERE seq = 3");
  auto v = store_->verify_audit();
  ASSERT_TRUE(v.is_ok());
  EXPECT_FALSE(v->intact);
  EXPECT_EQ(v->first_bad_seq, 3);
}

TEST_P(StoreTest, AuditFindsADeletedRecord) {
  audit_n(5);
  tamper("DELETE FROM audit_log WHERE seq = 2");
  auto v = store_->verify_audit();
  EXPECT_FALSE(v->intact);
  EXPECT_EQ(v->first_bad_seq, 2);
}

TEST_P(StoreTest, AuditFindsTheLastRecordsDeleted) {
  audit_n(5);
  tamper("DELETE FROM audit_log WHERE seq >= 4");
  auto v = store_->verify_audit();
  EXPECT_FALSE(v->intact);
  EXPECT_EQ(v->first_bad_seq, 4);
}

TEST_P(StoreTest, AuditFindsReorderedRecords) {
  audit_n(5);
  tamper(
      "UPDATE audit_log SET seq = 100 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 3;"
      " UPDATE audit_log SET seq = 3 WHERE seq = 100;");
  auto v = store_->verify_audit();
  EXPECT_FALSE(v->intact);
  EXPECT_EQ(v->first_bad_seq, 2);
}

TEST_P(StoreTest, AuditFindsAForgedHead) {
  audit_n(3);
  tamper(
      "DELETE FROM audit_log WHERE seq = 3; UPDATE audit_head SET seq = 2, hash = (SELECT hash FROM "
      "audit_log WHERE seq = 2)");
  auto v = store_->verify_audit();
  EXPECT_FALSE(v->intact);
  EXPECT_NE(v->reason.find("head"), std::string::npos) << v->reason;
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST_P(StoreTest, PruningKeepsTheRestVerifiable) {
  audit_n(5);
  auto none = store_->prune_audit(0, "cli:ops");  // nothing was written before the epoch
  ASSERT_TRUE(none.is_ok()) << none.status().to_string();
  EXPECT_EQ(*none, 0);
  auto removed = store_->prune_audit(wall_ms() + 60'000, "cli:ops");
  ASSERT_TRUE(removed.is_ok()) << removed.status().to_string();
  EXPECT_EQ(*removed, 5);
  auto v = store_->verify_audit();
  ASSERT_TRUE(v.is_ok());
  EXPECT_TRUE(v->intact) << v->reason;
  EXPECT_EQ(v->records, 1);  // the audit.prune record, seq 6
  audit_n(2);
  v = store_->verify_audit();
  EXPECT_TRUE(v->intact) << v->reason;
  EXPECT_EQ(v->records, 3);
  // Pruning again moves the anchor.
  EXPECT_EQ(*store_->prune_audit(wall_ms() + 60'000, "cli:ops"), 3);
  EXPECT_TRUE(store_->verify_audit()->intact);
}

TEST_P(StoreTest, PruningRefusesABrokenChain) {
  audit_n(4);
  tamper("UPDATE audit_log SET detail = 'rewritten' WHERE seq = 2");
  auto r = store_->prune_audit(wall_ms() + 60'000, "cli:ops");
  ASSERT_FALSE(r.is_ok());  // the evidence stays
  EXPECT_NE(r.status().message().find("broken at record 2"), std::string::npos) << r.status().to_string();
  EXPECT_EQ(store_->verify_audit()->first_bad_seq, 2);
}

TEST_P(StoreTest, TamperingAfterPruningIsFound) {
  audit_n(3);
  ASSERT_EQ(*store_->prune_audit(wall_ms() + 60'000, "cli:ops"), 3);
  audit_n(2);  // records 4 (prune), 5, 6
  tamper("UPDATE audit_anchor SET seq = 2");
  auto v = store_->verify_audit();
  EXPECT_FALSE(v->intact);
  EXPECT_NE(v->reason.find("anchor"), std::string::npos) << v->reason;
}

TEST_P(StoreTest, RecordsRemovedPastTheAnchorAreFound) {
  audit_n(3);
  ASSERT_EQ(*store_->prune_audit(wall_ms() + 60'000, "cli:ops"), 3);
  audit_n(2);
  tamper("DELETE FROM audit_log WHERE seq = 4");  // the prune record: the oldest that remains
  auto v = store_->verify_audit();
  EXPECT_FALSE(v->intact);
  EXPECT_EQ(v->first_bad_seq, 4);
  tamper("DELETE FROM audit_anchor");  // and without the anchor the chain must start at 1
  v = store_->verify_audit();
  EXPECT_FALSE(v->intact);
  EXPECT_EQ(v->first_bad_seq, 1);
}

TEST_P(StoreTest, ReopenKeepsEverythingAndTheKeyFileIsPrivate) {
  ASSERT_TRUE(store_->create_tenant("acme", {}).is_ok());
  audit_n(2);
  store_.reset();
  auto s = Store::open(url_);
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ((*s)->list_tenants()->size(), 1u);
  EXPECT_TRUE((*s)->verify_audit()->intact);
  if (pg()) return;  // the key comes from HEARTH_AUDIT_KEY there
  const auto perms = std::filesystem::status(path_ + ".audit-key").permissions();
  EXPECT_EQ(perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all),
            std::filesystem::perms::none);
}

TEST_P(StoreTest, UsageIsRecordedListedAndSummed) {
  std::vector<UsageRecord> rs;
  for (int i = 0; i < 5; ++i) {
    UsageRecord u;
    u.ts_ms = 1000 + i * 100;
    u.tenant = i % 2 ? "bank" : "acme";
    u.key_id = 7;
    u.model = "m";
    u.prompt_tokens = 10 + i;
    u.completion_tokens = 100;
    u.cached_tokens = i;
    u.reasoning_tokens = 2 * i;
    u.latency_ms = 50;
    u.status = 200;
    u.outcome = i == 4 ? "client_disconnected" : "ok";
    u.request_id = "req-" + std::to_string(i);
    rs.push_back(u);
  }
  ASSERT_TRUE(store_->record_usage(rs).is_ok());
  auto acme = store_->list_usage("acme", 0, 0, 100);
  ASSERT_TRUE(acme.is_ok()) << acme.status().to_string();
  ASSERT_EQ(acme->size(), 3u);
  EXPECT_EQ((*acme)[2].outcome, "client_disconnected");
  EXPECT_EQ((*acme)[1].reasoning_tokens, 4);
  EXPECT_EQ((*acme)[1].request_id, "req-2");
  EXPECT_EQ(store_->list_usage("", 1100, 1300, 100)->size(), 2u);  // [since, until)
  EXPECT_EQ(store_->list_usage("", 0, 0, 2)->size(), 2u);
  EXPECT_EQ(*store_->tokens_used("acme", 0), (10 + 12 + 14) + 300);
  EXPECT_EQ(*store_->tokens_used("acme", 1200), (12 + 14) + 200);
  EXPECT_EQ(*store_->tokens_used("nobody", 0), 0);
}

TEST_P(StoreTest, BudgetsOverTimeAndThePriceBook) {
  TenantLimits l;
  l.budget_tokens_day = 1000;
  l.budget_tokens_month = 20000;
  l.budget_money_day = 5'000'000;
  l.budget_money_month = 90'500'000;
  ASSERT_TRUE(store_->create_tenant("acme", l).is_ok());
  auto ts = store_->list_tenants();
  ASSERT_TRUE(ts.is_ok()) << ts.status().to_string();
  EXPECT_EQ((*ts)[0].limits.budget_tokens_day, 1000);
  EXPECT_EQ((*ts)[0].limits.budget_tokens_month, 20000);
  EXPECT_EQ((*ts)[0].limits.budget_money_day, 5'000'000);
  EXPECT_EQ((*ts)[0].limits.budget_money_month, 90'500'000);
  l.budget_money_day = 0;
  l.budget_tokens_month = 7;
  ASSERT_TRUE(store_->update_tenant("acme", l).is_ok());
  ts = store_->list_tenants();
  EXPECT_EQ((*ts)[0].limits.budget_money_day, 0);
  EXPECT_EQ((*ts)[0].limits.budget_tokens_month, 7);
  l.budget_money_month = -1;
  EXPECT_EQ(store_->update_tenant("acme", l).code(), ErrorCode::kInvalidArgument);

  Price p;
  p.model = "deepseek-v3";
  p.input_micros = 270'000;
  p.cached_micros = 70'000;
  p.output_micros = 1'100'000;
  ASSERT_TRUE(store_->set_price(p).is_ok());
  p.output_micros = 2'200'000;  // replaced, not added
  ASSERT_TRUE(store_->set_price(p).is_ok());
  Price q = p;
  q.model = "qwen3";
  q.currency = "CNY";
  const Status other = store_->set_price(q);
  EXPECT_NE(other.message().find("one currency per store"), std::string::npos) << other.to_string();
  q.currency = "USD";
  q.request_micros = 1000;
  ASSERT_TRUE(store_->set_price(q).is_ok());
  auto prices = store_->list_prices();
  ASSERT_TRUE(prices.is_ok()) << prices.status().to_string();
  ASSERT_EQ(prices->size(), 2u);
  EXPECT_EQ((*prices)[0].model, "deepseek-v3");
  EXPECT_EQ((*prices)[0].output_micros, 2'200'000);
  EXPECT_EQ((*prices)[0].cached_micros, 70'000);
  EXPECT_GT((*prices)[0].updated_ms, 0);
  EXPECT_EQ((*prices)[1].request_micros, 1000);
  q.currency = "usd";
  EXPECT_FALSE(store_->set_price(q).is_ok());
  q.currency = "USD";
  q.input_micros = -1;
  EXPECT_FALSE(store_->set_price(q).is_ok());
  ASSERT_TRUE(store_->delete_price("qwen3").is_ok());
  EXPECT_EQ(store_->delete_price("qwen3").code(), ErrorCode::kNotFound);
  EXPECT_EQ(store_->list_prices()->size(), 1u);
}

TEST_P(StoreTest, UsageCostsAreStoredAndSummed) {
  std::vector<UsageRecord> rs(3);
  for (int i = 0; i < 3; ++i) {
    rs[i].ts_ms = 1000 + i * 100;
    rs[i].tenant = "acme";
    rs[i].model = "m";
    rs[i].outcome = "ok";
    rs[i].cost_micros = 1'500'000 * (i + 1);
  }
  ASSERT_TRUE(store_->record_usage(rs).is_ok());
  auto got = store_->list_usage("acme", 0, 0, 10);
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ((*got)[2].cost_micros, 4'500'000);
  EXPECT_EQ(*store_->money_used("acme", 0), 9'000'000);
  EXPECT_EQ(*store_->money_used("acme", 1100), 7'500'000);
  EXPECT_EQ(*store_->money_used("bank", 0), 0);
}

TEST_P(StoreTest, LicenceTiersAndMonthlyTotals) {
  Tier gold;
  gold.name = "gold";
  gold.base_fee_micros = 500'000'000;
  gold.per_call_micros = 2'000;
  gold.included_calls = 1000;
  ASSERT_TRUE(store_->set_tier(gold).is_ok());
  TenantLimits l;
  l.tier = "silver";
  EXPECT_NE(store_->create_tenant("bank", l).status().message().find("no licence tier 'silver'"),
            std::string::npos);
  l.tier = "gold";
  ASSERT_TRUE(store_->create_tenant("bank", l).is_ok());
  EXPECT_EQ(store_->list_tenants()->front().limits.tier, "gold");
  gold.per_call_micros = 3'000;  // replaced
  ASSERT_TRUE(store_->set_tier(gold).is_ok());
  auto tiers = store_->list_tiers();
  ASSERT_TRUE(tiers.is_ok()) << tiers.status().to_string();
  ASSERT_EQ(tiers->size(), 1u);
  EXPECT_EQ((*tiers)[0].per_call_micros, 3'000);
  EXPECT_EQ((*tiers)[0].included_calls, 1000);
  EXPECT_NE(store_->delete_tier("gold").message().find("in use"), std::string::npos);
  Tier bad;
  bad.name = "has space";
  EXPECT_FALSE(store_->set_tier(bad).is_ok());

  std::vector<UsageRecord> rs(4);
  for (int i = 0; i < 4; ++i) {
    rs[i].ts_ms = 1000 + i * 1000;
    rs[i].tenant = i == 3 ? "other" : "bank";
    rs[i].model = "m";
    rs[i].outcome = "ok";
    rs[i].prompt_tokens = 10;
    rs[i].cached_tokens = 4;
    rs[i].completion_tokens = 5;
    rs[i].cost_micros = 100;
  }
  ASSERT_TRUE(store_->record_usage(rs).is_ok());
  auto all = store_->usage_totals("bank", 0, 0);
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  EXPECT_EQ(all->requests, 3);
  EXPECT_EQ(all->prompt_tokens, 30);
  EXPECT_EQ(all->cached_tokens, 12);
  EXPECT_EQ(all->completion_tokens, 15);
  EXPECT_EQ(all->cost_micros, 300);
  EXPECT_EQ(store_->usage_totals("bank", 2000, 3000)->requests, 1);  // [since, until)
  l.tier.clear();
  ASSERT_TRUE(store_->update_tenant("bank", l).is_ok());
  EXPECT_TRUE(store_->delete_tier("gold").is_ok());
  EXPECT_EQ(store_->delete_tier("gold").code(), ErrorCode::kNotFound);
}

TEST_P(StoreTest, AdministratorsSessionsAndTheAuditLogRead) {
  AdminAccount a;
  a.name = "sec";
  a.role = "security";
  a.password_hash = "pbkdf2-sha256$1000$x$y";
  a.created_ms = 5;
  ASSERT_TRUE(store_->put_admin(a, true).is_ok());
  EXPECT_NE(store_->put_admin(a, true).message().find("already exists"), std::string::npos);
  a.failed_logins = 2;
  a.locked_until_ms = 99;
  a.disabled = true;
  ASSERT_TRUE(store_->put_admin(a, false).is_ok());
  auto as = store_->list_admins();
  ASSERT_TRUE(as.is_ok()) << as.status().to_string();
  ASSERT_EQ(as->size(), 1u);
  EXPECT_EQ((*as)[0].failed_logins, 2);
  EXPECT_EQ((*as)[0].locked_until_ms, 99);
  EXPECT_TRUE((*as)[0].disabled);
  a.name = "ghost";
  EXPECT_EQ(store_->put_admin(a, false).code(), ErrorCode::kNotFound);
  a.role = "root";  // only the three MLPS roles
  EXPECT_FALSE(store_->put_admin(a, true).is_ok());

  ASSERT_TRUE(store_->put_session({"h1", "sec", 10, 10}).is_ok());
  ASSERT_TRUE(store_->put_session({"h1", "sec", 10, 20}).is_ok());  // touch
  auto s = store_->get_session("h1");
  ASSERT_TRUE(s.is_ok() && s->has_value());
  EXPECT_EQ((*s)->last_seen_ms, 20);
  EXPECT_EQ((*s)->created_ms, 10);
  ASSERT_TRUE(store_->delete_session("h1").is_ok());
  EXPECT_FALSE(store_->get_session("h1")->has_value());
  EXPECT_EQ(store_->delete_session("h1").code(), ErrorCode::kNotFound);

  audit_n(3);
  auto recs = store_->list_audit(1, 10);
  ASSERT_TRUE(recs.is_ok()) << recs.status().to_string();
  ASSERT_EQ(recs->size(), 2u);
  EXPECT_EQ((*recs)[0].seq, 2);
  EXPECT_EQ((*recs)[1].detail, "record 3");
}

TEST(Money, AmountsParseAndPrintExactly) {
  EXPECT_EQ(*store::parse_money("12.5", "x"), 12'500'000);
  EXPECT_EQ(*store::parse_money("0.000001", "x"), 1);
  EXPECT_EQ(*store::parse_money("7", "x"), 7'000'000);
  EXPECT_EQ(*store::parse_money("0", "x"), 0);
  for (const char* bad : {"", "-1", "1.", ".5", "1.2345678", "1e3", "12,5", "abc", "99999999999999999"})
    EXPECT_FALSE(store::parse_money(bad, "--budget-money-daily").is_ok()) << bad;
  EXPECT_NE(store::parse_money("x", "--input").status().message().find("--input"), std::string::npos);
  EXPECT_EQ(store::format_money(12'500'000), "12.50");
  EXPECT_EQ(store::format_money(1), "0.000001");
  EXPECT_EQ(store::format_money(0), "0.00");
  EXPECT_EQ(store::format_money(90'123'400), "90.1234");
}

TEST(Money, RequestCostsRoundUpAndNeverOverflow) {
  Price p;
  p.input_micros = 270'000;  // 0.27 per million
  p.cached_micros = 70'000;  // 0.07
  p.output_micros = 1'100'000;
  p.request_micros = 5;
  // 1,000 prompt tokens (200 cached) and 500 completion tokens:
  // (800 * 0.27 + 200 * 0.07 + 500 * 1.10) / 1e6 units = 780 micros (exact), + 5 per request.
  EXPECT_EQ(store::request_cost_micros(p, 1000, 200, 500), 785);
  EXPECT_EQ(store::request_cost_micros(p, 1, 0, 0), 1 + 5);  // rounded up: never free
  EXPECT_EQ(store::request_cost_micros(p, 0, 0, 0), 5);
  EXPECT_EQ(store::request_cost_micros(p, 10, 50, 0),
            (10 * 70'000 + 999'999) / 1'000'000 + 5);  // cached <= prompt
  p.output_micros = 1'000'000'000'000;
  EXPECT_EQ(store::request_cost_micros(p, 0, 0, INT64_MAX), INT64_MAX);
}

TEST_P(StoreTest, AuditBatchesChainLikeSingleRecords) {
  std::vector<AuditEntry> batch;
  for (int i = 0; i < 5; ++i) batch.push_back({"gateway", "auth.ok", "key " + std::to_string(i)});
  ASSERT_TRUE(store_->audit_batch(batch).is_ok());
  audit_n(1);
  ASSERT_TRUE(store_->audit_batch(batch).is_ok());
  auto v = store_->verify_audit();
  ASSERT_TRUE(v.is_ok());
  EXPECT_TRUE(v->intact) << v->reason;
  EXPECT_EQ(v->records, 11);
  tamper("UPDATE audit_log SET detail = 'key 9' WHERE seq = 8");
  v = store_->verify_audit();
  EXPECT_FALSE(v->intact);
  EXPECT_EQ(v->first_bad_seq, 8);
}

// Two Store objects on one database (two gateway replicas), four threads each appending: the chain stays
// linear and intact, and every record is there.
TEST_P(StoreTest, ConcurrentAppendersKeepTheChain) {
  auto other = Store::open(url_);
  ASSERT_TRUE(other.is_ok()) << other.status().to_string();
  std::vector<std::thread> ts;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      Store& s = t % 2 == 0 ? *store_ : **other;
      for (int i = 0; i < 25; ++i)
        if (!s.audit("replica" + std::to_string(t % 2), "append", std::to_string(t) + ":" + std::to_string(i))
                 .is_ok())
          ++failures;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto v = store_->verify_audit();
  ASSERT_TRUE(v.is_ok());
  EXPECT_TRUE(v->intact) << v->reason;
  EXPECT_EQ(v->records, 100);
}

// Replicas starting together on an empty database each see the schema applied once.
TEST_P(StoreTest, ConcurrentOpensMigrateOnce) {
  if (pg()) {
    sql("DROP SCHEMA " + schema_ + " CASCADE; CREATE SCHEMA " + schema_);
  } else {
    store_.reset();
    std::filesystem::remove(path_);
    std::filesystem::remove(path_ + ".audit-key");  // also created by exactly one of them
  }
  std::vector<std::thread> ts;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      auto s = Store::open(url_);
      if (!s.is_ok()) {
        ++failures;
        ADD_FAILURE() << s.status().to_string();
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(failures.load(), 0);
  // They agree on the audit key: a record written through one verifies through another.
  auto a = Store::open(url_), b = Store::open(url_);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  ASSERT_TRUE((*a)->audit("t", "a", "d").is_ok());
  EXPECT_TRUE((*b)->verify_audit()->intact);
}

TEST(StoreUrl, RefusesUnknownSchemes) {
  EXPECT_EQ(Store::open("mysql://x").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Store::open("sqlite:").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Store::open("sqlite:/nonexistent-dir/x/y.db").status().code(), ErrorCode::kIo);
}

TEST(StoreUrl, PostgresErrorsHideThePassword) {
  ::setenv("HEARTH_AUDIT_KEY", "00112233445566778899aabbccddeeff", 1);
  // Nothing listens on port 1: the connection fails, and the message names the server without the password.
  auto s = Store::open("postgresql://gw:s3cretpw@127.0.0.1:1/hearth?connect_timeout=2");
  ::unsetenv("HEARTH_AUDIT_KEY");
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), ErrorCode::kIo);
  EXPECT_EQ(s.status().message().find("s3cretpw"), std::string::npos) << s.status().message();
  EXPECT_NE(s.status().message().find("127.0.0.1"), std::string::npos) << s.status().message();
}

TEST(StoreUrl, PostgresNeedsAnAuditKey) {
  ::unsetenv("HEARTH_AUDIT_KEY");
  auto s = Store::open("postgresql://127.0.0.1:1/hearth");
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.status().message().find("HEARTH_AUDIT_KEY"), std::string::npos) << s.status().message();
}

// Shared quotas: one transaction reads the tenant's window totals (kept by record_usage), the holds of
// requests in flight and the rate buckets, and writes what the decider admits; a usage record releases its
// hold and refunds the tokens-per-minute bucket.
TEST_P(StoreTest, QuotaTransactionsSeeUsageHoldsAndBuckets) {
  using namespace std::chrono;
  const int64_t now = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  const CalendarWindows w = calendar_windows(now);
  std::vector<UsageRecord> old(2);
  old[0].ts_ms = w.month_start_ms - 1;  // last month: in the total only
  old[1].ts_ms = w.day_start_ms > w.month_start_ms ? w.day_start_ms - 1 : w.day_start_ms;  // this month
  for (auto& u : old) {
    u.tenant = "acme";
    u.model = "m";
    u.prompt_tokens = 10;
    u.completion_tokens = 90;
    u.cost_micros = 500;
    u.request_id = "old";
  }
  ASSERT_TRUE(store_->record_usage(old).is_ok());
  QuotaState seen;
  int calls = 0;
  auto admit = [&](const std::string& hold, int64_t tokens, int64_t expires) {
    return store_->quota_transaction("acme", now, [&](const QuotaState& q) {
      seen = q;
      ++calls;
      QuotaChange ch;
      ch.admit = !hold.empty();
      ch.rpm_level = 59;
      ch.tpm_level = 1000 - static_cast<double>(tokens);
      ch.hold_id = hold;
      ch.hold_tokens = tokens;
      ch.hold_micros = 7;
      ch.hold_expires_ms = expires;
      return ch;
    });
  };
  const Status first = admit("r1", 300, now + 60'000);
  ASSERT_TRUE(first.is_ok()) << first.to_string();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen.tokens_total, 200);
  EXPECT_EQ(seen.tokens_month, old[1].ts_ms >= w.month_start_ms ? 100 : 0);
  EXPECT_EQ(seen.rpm_level, -1.0);  // no buckets yet
  EXPECT_EQ(seen.holds, 0);
  ASSERT_TRUE(admit("r2", 50, now - 1).is_ok());  // a hold already expired at the next admission
  ASSERT_TRUE(admit("", 0, 0).is_ok());           // refused: writes nothing
  EXPECT_EQ(seen.holds, 1);
  EXPECT_EQ(seen.held_tokens, 300);
  EXPECT_EQ(seen.held_micros, 7);
  EXPECT_DOUBLE_EQ(seen.rpm_level, 59.0);
  EXPECT_DOUBLE_EQ(seen.tpm_level, 950.0);
  EXPECT_EQ(seen.rpm_updated_ms, now);
  // r1 finishes: its record counts in every window, releases the hold and gives 200 tokens back.
  UsageRecord u;
  u.ts_ms = now;
  u.tenant = "acme";
  u.model = "m";
  u.prompt_tokens = 40;
  u.completion_tokens = 60;
  u.cost_micros = 3;
  u.request_id = "r1";
  u.quota_hold = "r1";
  u.quota_refund_tokens = 200;
  ASSERT_TRUE(store_->record_usage(std::span<const UsageRecord>(&u, 1)).is_ok());
  ASSERT_TRUE(admit("", 0, 0).is_ok());
  EXPECT_EQ(seen.holds, 0);
  EXPECT_EQ(seen.tokens_total, 300);
  EXPECT_EQ(seen.tokens_day, 100);
  EXPECT_EQ(seen.micros_day, 3);
  EXPECT_DOUBLE_EQ(seen.tpm_level, 1150.0);
  // Totals lost (or from before this version) are rebuilt from the usage table.
  tamper("DELETE FROM quota_usage");
  ASSERT_TRUE(admit("", 0, 0).is_ok());
  EXPECT_EQ(seen.tokens_total, 300);
  EXPECT_EQ(seen.tokens_day, 100);
}

// Several stores on one database (replicas) admitting at once against a budget of 10 requests: exactly 10
// holds are granted, whatever the interleaving.
TEST_P(StoreTest, ConcurrentAdmissionsNeverOverspend) {
  using namespace std::chrono;
  const int64_t now = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  constexpr int kReplicas = 4, kThreads = 4, kTries = 10;
  std::vector<std::unique_ptr<Store>> replicas;
  for (int i = 0; i < kReplicas; ++i) {
    auto s = Store::open(url_);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    replicas.push_back(std::move(*s));
  }
  std::atomic<int> admitted{0}, failed{0};
  std::vector<std::thread> threads;
  for (int r = 0; r < kReplicas; ++r)
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, r, t] {
        for (int i = 0; i < kTries; ++i) {
          bool ok = false;
          const std::string id = fmt::format("r{}-t{}-{}", r, t, i);
          const Status st =
              replicas[static_cast<size_t>(r)]->quota_transaction("acme", now, [&](const QuotaState& q) {
                QuotaChange ch;
                ok = ch.admit = q.tokens_total + q.held_tokens + 1 <= 10;
                ch.hold_id = id;
                ch.hold_tokens = 1;
                ch.hold_expires_ms = now + 60'000;
                return ch;
              });
          if (!st.is_ok()) {
            ++failed;
            ADD_FAILURE() << st.to_string();
          } else if (ok) {
            ++admitted;
          }
        }
      });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(admitted.load(), 10);
}

// Projects inside tenants: keys may belong to one (and name the user they are issued to); the key's record
// carries both; a project with active keys cannot be deleted; usage records keep project and user.
TEST_P(StoreTest, ProjectsScopeKeysAndUsage) {
  ASSERT_TRUE(store_->create_tenant("acme", {}).is_ok());
  ASSERT_TRUE(store_->create_tenant("bank", {}).is_ok());
  ASSERT_TRUE(store_->create_project("acme", "fraud-models").is_ok());
  ASSERT_TRUE(store_->create_project("bank", "fraud-models").is_ok());  // names are per tenant
  EXPECT_EQ(store_->create_project("acme", "fraud-models").code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(store_->create_project("nobody", "x").code(), ErrorCode::kNotFound);
  EXPECT_EQ(store_->create_project("acme", "").code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(store_->list_projects("")->size(), 2u);
  ASSERT_EQ(store_->list_projects("acme")->size(), 1u);
  EXPECT_EQ((*store_->list_projects("acme"))[0].name, "fraud-models");

  auto k = store_->create_key("acme", 0, {"fraud-models", "alice@acme"});
  ASSERT_TRUE(k.is_ok()) << k.status().to_string();
  EXPECT_EQ(k->info.project, "fraud-models");
  auto who = store_->authenticate(k->key);
  ASSERT_TRUE(who.is_ok() && who->has_value());
  EXPECT_EQ((*who)->project, "fraud-models");
  EXPECT_EQ((*who)->owner, "alice@acme");
  EXPECT_EQ((*store_->list_keys("acme"))[0].owner, "alice@acme");
  EXPECT_EQ(store_->create_key("acme", 0, {"no-such-project", ""}).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store_->create_key("bank", 0, {"other", ""}).status().code(), ErrorCode::kNotFound);

  const Status busy = store_->delete_project("acme", "fraud-models");
  EXPECT_EQ(busy.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(busy.message().find("active key"), std::string::npos);
  ASSERT_TRUE(store_->revoke_key(k->info.prefix).is_ok());
  EXPECT_TRUE(store_->delete_project("acme", "fraud-models").is_ok());
  EXPECT_EQ(store_->delete_project("acme", "fraud-models").code(), ErrorCode::kNotFound);

  UsageRecord u;
  u.ts_ms = 5000;
  u.tenant = "acme";
  u.project = "fraud-models";
  u.user = "oidc:u-1";
  u.model = "m";
  u.request_id = "r";
  ASSERT_TRUE(store_->record_usage(std::span<const UsageRecord>(&u, 1)).is_ok());
  auto rows = store_->list_usage("acme", 0, 0, 10);
  ASSERT_TRUE(rows.is_ok() && rows->size() == 1u);
  EXPECT_EQ((*rows)[0].project, "fraud-models");
  EXPECT_EQ((*rows)[0].user, "oidc:u-1");
}

// Failed administrator sign-ins are counted in the store in one statement: the lockout comes at the limit,
// and replicas failing at once lose no count.
TEST_P(StoreTest, AdminLoginFailuresAddUpAcrossReplicas) {
  AdminAccount a;
  a.name = "ops";
  a.role = "system";
  a.password_hash = "pbkdf2-sha256$1000$x$y";
  ASSERT_TRUE(store_->put_admin(a, true).is_ok());
  for (int i = 1; i <= 4; ++i) EXPECT_FALSE(*store_->admin_login_failed("ops", 5, 60'000, 1000));
  EXPECT_TRUE(*store_->admin_login_failed("ops", 5, 60'000, 1000));  // the fifth locks
  EXPECT_EQ((*store_->list_admins())[0].locked_until_ms, 61'000);
  EXPECT_EQ((*store_->list_admins())[0].failed_logins, 0);
  EXPECT_EQ(store_->admin_login_failed("nobody", 5, 1, 1).status().code(), ErrorCode::kNotFound);

  std::vector<std::unique_ptr<Store>> replicas;
  for (int i = 0; i < 3; ++i) {
    auto r = Store::open(url_);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    replicas.push_back(std::move(*r));
  }
  std::vector<std::thread> threads;
  for (auto& r : replicas)
    threads.emplace_back([&r] {
      for (int i = 0; i < 10; ++i) ASSERT_TRUE(r->admin_login_failed("ops", 1000, 1, 2000).is_ok());
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ((*store_->list_admins())[0].failed_logins, 30);
}

}  // namespace
}  // namespace hearth::store
