// The SQLite store: tenants, API keys (format, entropy, hashing, revocation, expiry) and the audit log's
// tamper evidence (modified, deleted — also the last —, inserted and reordered records are all found).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "store/store.h"

namespace hearth::store {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("hearth_store_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "gw.db").string();
    auto s = Store::open("sqlite:" + path_);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Raw SQL on the database file, as an attacker with file access would.
  void tamper(const char* sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }
  void audit_n(int n) {
    for (int i = 1; i <= n; ++i)
      ASSERT_TRUE(store_->audit("test", "action", "record " + std::to_string(i)).is_ok());
  }

  std::filesystem::path dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, TenantsAreUniqueAndListed) {
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

TEST_F(StoreTest, KeysAuthenticateUntilRevokedOrExpired) {
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

TEST_F(StoreTest, KeysAreDistinctAndDrawnFromTheWholeAlphabet) {
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

TEST_F(StoreTest, SecretIsNotStored) {
  ASSERT_TRUE(store_->create_tenant("acme", {}).is_ok());
  auto k = store_->create_key("acme", 0);
  ASSERT_TRUE(k.is_ok());
  store_.reset();
  std::string bytes;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    std::ifstream in(e.path(), std::ios::binary);
    bytes.append(std::istreambuf_iterator<char>(in), {});
  }
  const std::string secret = k->key.substr(k->info.prefix.size() + 1);
  EXPECT_EQ(bytes.find(secret), std::string::npos) << "the key's secret is in the store's files";
  EXPECT_NE(bytes.find(k->info.prefix), std::string::npos);
}

TEST_F(StoreTest, AuditChainIntact) {
  audit_n(5);
  auto v = store_->verify_audit();
  ASSERT_TRUE(v.is_ok());
  EXPECT_TRUE(v->intact) << v->reason;
  EXPECT_EQ(v->records, 5);
}

TEST_F(StoreTest, AuditFindsAModifiedRecord) {
  audit_n(5);
  tamper("UPDATE audit_log SET detail = 'record X' WHERE seq = 3");
  auto v = store_->verify_audit();
  ASSERT_TRUE(v.is_ok());
  EXPECT_FALSE(v->intact);
  EXPECT_EQ(v->first_bad_seq, 3);
}

TEST_F(StoreTest, AuditFindsADeletedRecord) {
  audit_n(5);
  tamper("DELETE FROM audit_log WHERE seq = 2");
  auto v = store_->verify_audit();
  EXPECT_FALSE(v->intact);
  EXPECT_EQ(v->first_bad_seq, 2);
}

TEST_F(StoreTest, AuditFindsTheLastRecordsDeleted) {
  audit_n(5);
  tamper("DELETE FROM audit_log WHERE seq >= 4");
  auto v = store_->verify_audit();
  EXPECT_FALSE(v->intact);
  EXPECT_EQ(v->first_bad_seq, 4);
}

TEST_F(StoreTest, AuditFindsReorderedRecords) {
  audit_n(5);
  tamper(
      "UPDATE audit_log SET seq = 100 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 3;"
      " UPDATE audit_log SET seq = 3 WHERE seq = 100;");
  auto v = store_->verify_audit();
  EXPECT_FALSE(v->intact);
  EXPECT_EQ(v->first_bad_seq, 2);
}

TEST_F(StoreTest, AuditFindsAForgedHead) {
  audit_n(3);
  tamper(
      "DELETE FROM audit_log WHERE seq = 3; UPDATE audit_head SET seq = 2, hash = (SELECT hash FROM "
      "audit_log WHERE seq = 2)");
  auto v = store_->verify_audit();
  EXPECT_FALSE(v->intact);
  EXPECT_NE(v->reason.find("head"), std::string::npos) << v->reason;
}

TEST_F(StoreTest, ReopenKeepsEverythingAndTheKeyFileIsPrivate) {
  ASSERT_TRUE(store_->create_tenant("acme", {}).is_ok());
  audit_n(2);
  store_.reset();
  auto s = Store::open("sqlite:" + path_);
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ((*s)->list_tenants()->size(), 1u);
  EXPECT_TRUE((*s)->verify_audit()->intact);
  const auto perms = std::filesystem::status(path_ + ".audit-key").permissions();
  EXPECT_EQ(perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all),
            std::filesystem::perms::none);
}

TEST(StoreUrl, RefusesUnknownSchemes) {
  EXPECT_EQ(Store::open("mysql://x").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Store::open("sqlite:").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Store::open("sqlite:/nonexistent-dir/x/y.db").status().code(), ErrorCode::kIo);
}

}  // namespace
}  // namespace hearth::store
