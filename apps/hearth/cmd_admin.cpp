// `hearth admin` (tenants and API keys in the gateway's store) and `hearth audit verify`.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "commands.h"
#include "store/store.h"

namespace hearth::app {
namespace {

struct AdminArgs {
  std::string store;
  std::string name;
  int64_t rpm = 0, tpm = 0, budget_tokens = 0;
  std::string tenant;
  std::string prefix;
  double expires_days = 0;
  bool json = false;
};

int fail(const Status& st) {
  std::fprintf(stderr, "error: %s\n", st.message().c_str());
  return st.code() == ErrorCode::kInvalidArgument ? 2 : 1;
}

// Who did it, for the audit log: the operating-system user of the CLI.
std::string cli_actor() {
  const char* u = std::getenv("USER");
  return fmt::format("cli:{}", u != nullptr && *u != '\0' ? u : "unknown");
}

Result<std::unique_ptr<store::Store>> open_store(const std::string& url) {
  if (url.empty()) return make_error(ErrorCode::kInvalidArgument, "give --store sqlite:PATH");
  return store::Store::open(url);
}

std::string iso_ms(int64_t ms) {
  if (ms == 0) return "";
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int tenant_create(const AdminArgs& a) {
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  auto t = (*st)->create_tenant(a.name, {a.rpm, a.tpm, a.budget_tokens});
  if (!t.is_ok()) return fail(t.status());
  const Status au = (*st)->audit(
      cli_actor(), "tenant.create",
      fmt::format("name={} rpm={} tpm={} budget_tokens={}", a.name, a.rpm, a.tpm, a.budget_tokens));
  if (!au.is_ok()) return fail(au);
  if (a.json) {
    std::printf("%s\n", nlohmann::json{{"id", t->id},
                                       {"name", t->name},
                                       {"rpm", a.rpm},
                                       {"tpm", a.tpm},
                                       {"budget_tokens", a.budget_tokens}}
                            .dump()
                            .c_str());
  } else {
    std::printf("tenant %s created (rpm %lld, tpm %lld, budget %lld tokens; 0 = unlimited)\n",
                t->name.c_str(), static_cast<long long>(a.rpm), static_cast<long long>(a.tpm),
                static_cast<long long>(a.budget_tokens));
  }
  return 0;
}

int tenant_list(const AdminArgs& a) {
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  auto ts = (*st)->list_tenants();
  if (!ts.is_ok()) return fail(ts.status());
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& t : *ts) {
    if (a.json) {
      arr.push_back({{"id", t.id},
                     {"name", t.name},
                     {"rpm", t.limits.rpm},
                     {"tpm", t.limits.tpm},
                     {"budget_tokens", t.limits.budget_tokens},
                     {"created", iso_ms(t.created_ms)}});
    } else {
      std::printf("%-24s rpm %-8lld tpm %-10lld budget %-12lld created %s\n", t.name.c_str(),
                  static_cast<long long>(t.limits.rpm), static_cast<long long>(t.limits.tpm),
                  static_cast<long long>(t.limits.budget_tokens), iso_ms(t.created_ms).c_str());
    }
  }
  if (a.json) std::printf("%s\n", arr.dump().c_str());
  return 0;
}

int key_create(const AdminArgs& a) {
  if (a.expires_days < 0) return fail(make_error(ErrorCode::kInvalidArgument, "--expires-days must be >= 0"));
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const int64_t expires = a.expires_days > 0 ? now + static_cast<int64_t>(a.expires_days * 86400e3) : 0;
  auto k = (*st)->create_key(a.tenant, expires);
  if (!k.is_ok()) return fail(k.status());
  // The audit record names the key by its public prefix only.
  const Status au = (*st)->audit(cli_actor(), "key.create",
                                 fmt::format("tenant={} prefix={} expires={}", a.tenant, k->info.prefix,
                                             expires ? iso_ms(expires) : "never"));
  if (!au.is_ok()) return fail(au);
  if (a.json) {
    std::printf(
        "%s\n",
        nlohmann::json{
            {"key", k->key}, {"prefix", k->info.prefix}, {"tenant", a.tenant}, {"expires", iso_ms(expires)}}
            .dump()
            .c_str());
  } else {
    std::printf("%s\n", k->key.c_str());
    std::fprintf(stderr, "key %s for tenant %s: store it now, it is not shown again\n",
                 k->info.prefix.c_str(), a.tenant.c_str());
  }
  return 0;
}

int key_list(const AdminArgs& a) {
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  auto ks = (*st)->list_keys(a.tenant);
  if (!ks.is_ok()) return fail(ks.status());
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& k : *ks) {
    const char* state = k.revoked_ms ? "revoked" : "active";
    if (a.json) {
      arr.push_back({{"prefix", k.prefix},
                     {"tenant", k.tenant},
                     {"created", iso_ms(k.created_ms)},
                     {"expires", iso_ms(k.expires_ms)},
                     {"revoked", iso_ms(k.revoked_ms)},
                     {"state", state}});
    } else {
      std::printf("%-12s %-24s %-8s created %s%s%s\n", k.prefix.c_str(), k.tenant.c_str(), state,
                  iso_ms(k.created_ms).c_str(), k.expires_ms ? " expires " : "",
                  iso_ms(k.expires_ms).c_str());
    }
  }
  if (a.json) std::printf("%s\n", arr.dump().c_str());
  return 0;
}

int key_revoke(const AdminArgs& a) {
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  if (Status s = (*st)->revoke_key(a.prefix); !s.is_ok()) return fail(s);
  if (Status s = (*st)->audit(cli_actor(), "key.revoke", fmt::format("prefix={}", a.prefix)); !s.is_ok())
    return fail(s);
  std::printf("key %s revoked\n", a.prefix.c_str());
  return 0;
}

int audit_verify(const AdminArgs& a) {
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  auto v = (*st)->verify_audit();
  if (!v.is_ok()) return fail(v.status());
  if (a.json) {
    std::printf("%s\n", nlohmann::json{{"intact", v->intact},
                                       {"records", v->records},
                                       {"first_bad_record", v->intact ? nlohmann::json(nullptr)
                                                                      : nlohmann::json(v->first_bad_seq)},
                                       {"reason", v->reason}}
                            .dump()
                            .c_str());
  }
  if (!v->intact) {
    std::fprintf(stderr, "audit log BROKEN at record %lld: %s\n", static_cast<long long>(v->first_bad_seq),
                 v->reason.c_str());
    return 1;
  }
  if (!a.json) std::printf("audit log intact: %lld records\n", static_cast<long long>(v->records));
  return 0;
}

}  // namespace

void add_admin_command(CLI::App& app, RunFn* run) {
  auto a = std::make_shared<AdminArgs>();
  auto* admin =
      app.add_subcommand("admin", "Manage the gateway's tenants and API keys (every action is audited)");
  admin->add_option("--store", a->store, "The store: sqlite:PATH")->required();
  admin->require_subcommand(1);

  auto* tenant = admin->add_subcommand("tenant", "Tenants and their limits");
  tenant->require_subcommand(1);
  auto* tc = tenant->add_subcommand("create", "Create a tenant");
  tc->add_option("name", a->name, "Tenant name")->required();
  tc->add_option("--rpm", a->rpm, "Requests per minute (0 = unlimited)")->check(CLI::NonNegativeNumber);
  tc->add_option("--tpm", a->tpm, "Tokens per minute (0 = unlimited)")->check(CLI::NonNegativeNumber);
  tc->add_option("--budget-tokens", a->budget_tokens, "Token budget in total (0 = unlimited)")
      ->check(CLI::NonNegativeNumber);
  tc->add_flag("--json", a->json, "Print JSON");
  tc->callback([run, a] { *run = [a] { return tenant_create(*a); }; });
  auto* tl = tenant->add_subcommand("list", "List tenants");
  tl->add_flag("--json", a->json, "Print JSON");
  tl->callback([run, a] { *run = [a] { return tenant_list(*a); }; });

  auto* key = admin->add_subcommand("key", "API keys (shown once at creation, stored hashed)");
  key->require_subcommand(1);
  auto* kc = key->add_subcommand("create", "Create a key for a tenant; prints the key");
  kc->add_option("--tenant", a->tenant, "Tenant name")->required();
  kc->add_option("--expires-days", a->expires_days, "Days until the key expires (0 = never)");
  kc->add_flag("--json", a->json, "Print {\"key\": ..., \"prefix\": ..., ...}");
  kc->callback([run, a] { *run = [a] { return key_create(*a); }; });
  auto* kl = key->add_subcommand("list", "List keys (prefixes only, never secrets)");
  kl->add_option("--tenant", a->tenant, "Only this tenant's keys");
  kl->add_flag("--json", a->json, "Print JSON");
  kl->callback([run, a] { *run = [a] { return key_list(*a); }; });
  auto* kr = key->add_subcommand("revoke", "Revoke a key by its prefix");
  kr->add_option("prefix", a->prefix, "The key's prefix (hk_XXXXXXXX)")->required();
  kr->callback([run, a] { *run = [a] { return key_revoke(*a); }; });

  auto* audit = app.add_subcommand("audit", "The gateway's tamper-evident audit log");
  audit->require_subcommand(1);
  auto* av = audit->add_subcommand(
      "verify", "Check the HMAC hash chain: exit 0 when intact, 1 naming the first bad record otherwise");
  av->add_option("--store", a->store, "The store: sqlite:PATH")->required();
  av->add_flag("--json", a->json, "Print JSON");
  av->callback([run, a] { *run = [a] { return audit_verify(*a); }; });
}

}  // namespace hearth::app
