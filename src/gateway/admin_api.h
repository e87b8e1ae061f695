#pragma once
// The gateway's admin REST API under /admin/v1, for administrators kept in the store with MLPS 2.0's
// separation of duties: "system" manages tenants (and, by the CLI, keys, prices, tiers), "security" manages
// administrator accounts, "audit" reads the audit log and verifies it; no role does another's work.
// Sign-in: POST /admin/v1/login {"name", "password"} returns a session token (256 random bits; the store
// keeps its SHA-256) for `Authorization: Bearer`. Login security: passwords hashed with PBKDF2-HMAC-SHA256
// (600,000 iterations, 16-byte salt), a password policy (>= 12 characters, 3 of 4 character classes, not the
// name), lockout after max_failures failed sign-ins for lockout_ms, sessions ending after idle_ms without a
// request or absolute_ms in all, passwords older than password_max_age_days only allowed to change
// themselves. Every action and every sign-in, allowed or refused, goes to the audit log as admin:NAME.
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "gateway/admin_identity.h"
#include "gateway/record_writer.h"
#include "server/http_server.h"
#include "store/store.h"

namespace hearth::gateway {

struct AdminPolicy {
  int max_failures = 5;
  int64_t lockout_ms = 15 * 60 * 1000;
  int64_t idle_ms = 15 * 60 * 1000;
  int64_t absolute_ms = 8 * 3600 * 1000;
  int password_max_age_days = 90;
};

// "pbkdf2-sha256$ITERATIONS$SALT$HASH" (base64url); verification is constant-time.
std::string hash_admin_password(std::string_view password, int iterations = 600000);
bool verify_admin_password(std::string_view password, const std::string& stored);
// The policy's complaint about `password` for administrator `name` (ok when acceptable).
Status check_password_policy(std::string_view name, std::string_view password);

// A tenant and its limits as JSON (the admin API and `hearth admin tenant list --json`).
nlohmann::json tenant_limits_json(const store::TenantLimits& limits);
// A usage record as JSON (the admin API and `hearth admin usage export --format json`; ts_ms in epoch ms).
nlohmann::json usage_record_json(const store::UsageRecord& record);

class AdminApi {
 public:
  AdminApi(store::Store& store, RecordWriter& records, AdminPolicy policy, AdminDirectory directory = {});
  // Handles a request whose path starts with /admin/v1/ (it may wait: LDAP, password hashing).
  void handle(const std::shared_ptr<server::Exchange>& ex);

 private:
  // Sign-in through the identity provider: the account name and role, or why not (logged, never shown).
  struct External {
    std::string name, role, refusal;
    bool unavailable = false;
  };
  External oidc_login(const std::string& id_token, int64_t now) const;
  External ldap_login(const std::string& user, const std::string& password) const;

  store::Store& store_;
  RecordWriter& records_;
  const AdminPolicy policy_;
  const std::string& dummy_hash() const;

  const AdminDirectory directory_;
  // Verified against for unknown names, so that they take as long as known ones (made on first use).
  mutable std::once_flag dummy_once_;
  mutable std::string dummy_hash_;
  // Failed directory sign-ins of names without an account yet (name -> count, first failure ms), bounded.
  mutable std::mutex failures_mu_;
  mutable std::unordered_map<std::string, std::pair<int, int64_t>> failures_;
};

}  // namespace hearth::gateway
