// `hearth admin` (tenants, API keys and usage in the gateway's store) and `hearth audit verify`.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "commands.h"
#include "gateway/admin_api.h"
#include "gateway/billing.h"
#include "store/store.h"

namespace hearth::app {
namespace {

struct AdminArgs {
  std::string store;
  std::string name;
  int64_t rpm = 0, tpm = 0, budget_tokens = 0;
  std::vector<std::string> models;  // --models a,b (allow-list)
  bool all_models = false;          // tenant update --all-models: clear the allow-list
  int64_t tokens_day = 0, tokens_month = 0;
  std::string money_day = "0", money_month = "0";  // amounts in the price book's currency
  // tenant update: which limits were given (the others keep their stored values).
  bool set_rpm = false, set_tpm = false, set_budget = false, set_models = false;
  bool set_tokens_day = false, set_tokens_month = false, set_money_day = false, set_money_month = false;
  std::string tier;
  bool set_tier = false;
  // tier set
  std::string base_fee = "0", per_call = "0";
  int64_t included_calls = 0;
  // usage bill
  std::string month;
  // admin (administrator accounts)
  std::string role;
  // price set
  std::string model, currency = "USD", input = "0", cached_input, output = "0", per_request = "0";
  std::string tenant;
  std::string prefix;
  std::string project, owner;  // key create --project/--owner; project create/delete NAME
  double expires_days = 0;
  bool json = false;
  // usage export
  std::string since, until, format = "csv", out;
  int64_t limit = 1000000;
  // audit prune
  double keep_days = 180;
  bool allow_short_retention = false;
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

std::string models_text(const std::vector<std::string>& models) {
  return models.empty() ? std::string("all") : fmt::format("{}", fmt::join(models, ","));
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

// The limits as one line (audit details, CLI output) and as JSON.
std::string limits_text(const store::TenantLimits& l) {
  return fmt::format(
      "rpm={} tpm={} budget_tokens={} budget_tokens_day={} budget_tokens_month={} budget_money_day={} "
      "budget_money_month={} tier={} models={}",
      l.rpm, l.tpm, l.budget_tokens, l.budget_tokens_day, l.budget_tokens_month,
      store::format_money(l.budget_money_day), store::format_money(l.budget_money_month),
      l.tier.empty() ? "none" : l.tier, models_text(l.models));
}

// The limits given on the command line over `l` (all of them for create, the flagged ones for update).
Result<store::TenantLimits> limits_from_args(const AdminArgs& a, store::TenantLimits l, bool only_given) {
  if (!only_given || a.set_rpm) l.rpm = a.rpm;
  if (!only_given || a.set_tpm) l.tpm = a.tpm;
  if (!only_given || a.set_budget) l.budget_tokens = a.budget_tokens;
  if (!only_given || a.set_tokens_day) l.budget_tokens_day = a.tokens_day;
  if (!only_given || a.set_tokens_month) l.budget_tokens_month = a.tokens_month;
  if (!only_given || a.set_money_day) {
    HEARTH_ASSIGN_OR_RETURN(l.budget_money_day, store::parse_money(a.money_day, "--budget-money-daily"));
  }
  if (!only_given || a.set_money_month) {
    HEARTH_ASSIGN_OR_RETURN(l.budget_money_month,
                            store::parse_money(a.money_month, "--budget-money-monthly"));
  }
  if (!only_given || a.set_models) l.models = a.models;
  if (!only_given || a.set_tier) l.tier = a.tier;
  if (a.all_models) l.models.clear();
  return l;
}

int tenant_create(const AdminArgs& a) {
  auto l = limits_from_args(a, {}, false);
  if (!l.is_ok()) return fail(l.status());
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  auto t = (*st)->create_tenant(a.name, *l);
  if (!t.is_ok()) return fail(t.status());
  const Status au =
      (*st)->audit(cli_actor(), "tenant.create", fmt::format("name={} {}", a.name, limits_text(*l)));
  if (!au.is_ok()) return fail(au);
  if (a.json) {
    nlohmann::json j = gateway::tenant_limits_json(*l);
    j["id"] = t->id;
    j["name"] = t->name;
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("tenant %s created (0 = unlimited): %s\n", t->name.c_str(), limits_text(*l).c_str());
  }
  return 0;
}

int tenant_update(const AdminArgs& a) {
  if (!a.set_rpm && !a.set_tpm && !a.set_budget && !a.set_models && !a.all_models && !a.set_tokens_day &&
      !a.set_tokens_month && !a.set_money_day && !a.set_money_month && !a.set_tier)
    return fail(
        make_error(ErrorCode::kInvalidArgument,
                   "nothing to change: give --rpm, --tpm, a --budget-* option, --models or --all-models"));
  if (a.set_models && a.all_models)
    return fail(make_error(ErrorCode::kInvalidArgument, "give --models or --all-models, not both"));
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  auto ts = (*st)->list_tenants();
  if (!ts.is_ok()) return fail(ts.status());
  const store::Tenant* cur = nullptr;
  for (const auto& t : *ts)
    if (t.name == a.name) cur = &t;
  if (cur == nullptr) return fail(make_error(ErrorCode::kNotFound, "no tenant '{}'", a.name));
  auto l = limits_from_args(a, cur->limits, true);
  if (!l.is_ok()) return fail(l.status());
  if (Status s = (*st)->update_tenant(a.name, *l); !s.is_ok()) return fail(s);
  const std::string detail = fmt::format("name={} {}", a.name, limits_text(*l));
  if (Status au = (*st)->audit(cli_actor(), "tenant.update", detail); !au.is_ok()) return fail(au);
  std::printf("tenant %s updated: %s\n", a.name.c_str(), detail.c_str());
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
      nlohmann::json j = gateway::tenant_limits_json(t.limits);
      j["id"] = t.id;
      j["name"] = t.name;
      j["created"] = iso_ms(t.created_ms);
      arr.push_back(std::move(j));
    } else {
      std::printf("%-24s created %s %s\n", t.name.c_str(), iso_ms(t.created_ms).c_str(),
                  limits_text(t.limits).c_str());
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
  auto k = (*st)->create_key(a.tenant, expires, {a.project, a.owner});
  if (!k.is_ok()) return fail(k.status());
  // The audit record names the key by its public prefix only.
  const Status au =
      (*st)->audit(cli_actor(), "key.create",
                   fmt::format("tenant={} prefix={} expires={} project={} owner={}", a.tenant, k->info.prefix,
                               expires ? iso_ms(expires) : "never", a.project, a.owner));
  if (!au.is_ok()) return fail(au);
  if (a.json) {
    std::printf("%s\n", nlohmann::json{{"key", k->key},
                                       {"prefix", k->info.prefix},
                                       {"tenant", a.tenant},
                                       {"project", a.project},
                                       {"owner", a.owner},
                                       {"expires", iso_ms(expires)}}
                            .dump()
                            .c_str());
  } else {
    std::printf("%s\n", k->key.c_str());
    std::fprintf(stderr, "key %s for tenant %s: store it now, it is not shown again\n",
                 k->info.prefix.c_str(), a.tenant.c_str());
  }
  return 0;
}

int project_create(const AdminArgs& a) {
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  if (Status c = (*st)->create_project(a.tenant, a.project); !c.is_ok()) return fail(c);
  if (Status au = (*st)->audit(cli_actor(), "project.create",
                               fmt::format("tenant={} project={}", a.tenant, a.project));
      !au.is_ok())
    return fail(au);
  if (a.json) std::printf("%s\n", nlohmann::json{{"tenant", a.tenant}, {"name", a.project}}.dump().c_str());
  return 0;
}

int project_list(const AdminArgs& a) {
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  auto ps = (*st)->list_projects(a.tenant);
  if (!ps.is_ok()) return fail(ps.status());
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& p : *ps) {
    if (a.json)
      arr.push_back({{"tenant", p.tenant}, {"name", p.name}, {"created", iso_ms(p.created_ms)}});
    else
      std::printf("%-24s %-24s created %s\n", p.tenant.c_str(), p.name.c_str(), iso_ms(p.created_ms).c_str());
  }
  if (a.json) std::printf("%s\n", arr.dump().c_str());
  return 0;
}

int project_delete(const AdminArgs& a) {
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  if (Status d = (*st)->delete_project(a.tenant, a.project); !d.is_ok()) return fail(d);
  if (Status au = (*st)->audit(cli_actor(), "project.delete",
                               fmt::format("tenant={} project={}", a.tenant, a.project));
      !au.is_ok())
    return fail(au);
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
                     {"project", k.project},
                     {"owner", k.owner},
                     {"created", iso_ms(k.created_ms)},
                     {"expires", iso_ms(k.expires_ms)},
                     {"revoked", iso_ms(k.revoked_ms)},
                     {"state", state}});
    } else {
      std::printf("%-12s %-24s %-8s created %s%s%s%s%s%s%s\n", k.prefix.c_str(), k.tenant.c_str(), state,
                  iso_ms(k.created_ms).c_str(), k.expires_ms ? " expires " : "", iso_ms(k.expires_ms).c_str(),
                  k.project.empty() ? "" : " project ", k.project.c_str(), k.owner.empty() ? "" : " owner ",
                  k.owner.c_str());
    }
  }
  if (a.json) std::printf("%s\n", arr.dump().c_str());
  return 0;
}

// "2026-11-01", "2026-11-01T08:30", "2026-11-01T08:30:00Z" (UTC) or milliseconds since the epoch -> ms.
Result<int64_t> parse_time(const std::string& text, const char* flag) {
  if (text.empty()) return int64_t{0};
  if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }) && text.size() <= 15)
    return static_cast<int64_t>(std::stoll(text));
  std::tm tm{};
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  char tail[8] = {};
  const int n = std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%7s", &y, &mo, &d, &h, &mi, &sec, tail);
  const bool ok = (n == 3 && text.size() == 10) || n == 5 || n == 6 || (n == 7 && std::string(tail) == "Z");
  if (!ok || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
    return make_error(
        ErrorCode::kInvalidArgument,
        "{} must be a date (2026-11-01), a UTC time (2026-11-01T08:30:00Z) or epoch milliseconds, "
        "got '{}'",
        flag, text);
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

// RFC 4180: quoted when it holds a comma, quote or line break; quotes doubled.
std::string csv_field(const std::string& v) {
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string q = "\"";
  for (char c : v) {
    if (c == '"') q.push_back('"');
    q.push_back(c);
  }
  q.push_back('"');
  return q;
}

int usage_export(const AdminArgs& a) {
  if (a.format != "csv" && a.format != "json")
    return fail(make_error(ErrorCode::kInvalidArgument, "--format must be csv or json, got '{}'", a.format));
  auto since = parse_time(a.since, "--since");
  if (!since.is_ok()) return fail(since.status());
  auto until = parse_time(a.until, "--until");
  if (!until.is_ok()) return fail(until.status());
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  auto rows = (*st)->list_usage(a.tenant, *since, *until, a.limit);
  if (!rows.is_ok()) return fail(rows.status());
  std::FILE* out = stdout;
  if (!a.out.empty() && a.out != "-") {
    out = std::fopen(a.out.c_str(), "w");
    if (out == nullptr)
      return fail(make_error(ErrorCode::kIo, "cannot write {}: {}", a.out, std::strerror(errno)));
  }
  if (a.format == "json") {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& u : *rows) {
      nlohmann::json j = gateway::usage_record_json(u);
      j.erase("ts_ms");  // the export names the time in UTC
      j["time"] = iso_ms(u.ts_ms);
      arr.push_back(std::move(j));
    }
    std::fprintf(out, "%s\n", arr.dump().c_str());
  } else {
    std::fprintf(out,
                 "time,tenant,key_id,model,prompt_tokens,cached_tokens,completion_tokens,reasoning_tokens,"
                 "latency_ms,status,outcome,request_id,cost,project,user\n");
    for (const auto& u : *rows) {
      std::fprintf(out, "%s,%s,%lld,%s,%lld,%lld,%lld,%lld,%lld,%d,%s,%s,%s,%s,%s\n", iso_ms(u.ts_ms).c_str(),
                   csv_field(u.tenant).c_str(), static_cast<long long>(u.key_id), csv_field(u.model).c_str(),
                   static_cast<long long>(u.prompt_tokens), static_cast<long long>(u.cached_tokens),
                   static_cast<long long>(u.completion_tokens), static_cast<long long>(u.reasoning_tokens),
                   static_cast<long long>(u.latency_ms), u.status, csv_field(u.outcome).c_str(),
                   csv_field(u.request_id).c_str(), store::format_money(u.cost_micros).c_str(),
                   csv_field(u.project).c_str(), csv_field(u.user).c_str());
    }
  }
  const bool write_failed = std::ferror(out) != 0;
  if (out != stdout && std::fclose(out) != 0)
    return fail(make_error(ErrorCode::kIo, "cannot write {}", a.out));
  if (write_failed) return fail(make_error(ErrorCode::kIo, "writing the export failed"));
  if (static_cast<int64_t>(rows->size()) == a.limit)
    std::fprintf(stderr, "warning: stopped at --limit %lld records; narrow --since/--until for the rest\n",
                 static_cast<long long>(a.limit));
  const Status au =
      (*st)->audit(cli_actor(), "usage.export",
                   fmt::format("tenant={} since={} until={} records={}", a.tenant.empty() ? "all" : a.tenant,
                               iso_ms(*since), iso_ms(*until), rows->size()));
  if (!au.is_ok()) return fail(au);
  return 0;
}

int price_set(const AdminArgs& a) {
  store::Price p;
  p.model = a.model;
  p.currency = a.currency;
  struct Amount {
    const std::string& text;
    const char* flag;
    int64_t* out;
  };
  for (const Amount& m :
       {Amount{a.input, "--input", &p.input_micros}, Amount{a.output, "--output", &p.output_micros},
        Amount{a.cached_input.empty() ? a.input : a.cached_input, "--cached-input", &p.cached_micros},
        Amount{a.per_request, "--per-request", &p.request_micros}}) {
    auto v = store::parse_money(m.text, m.flag);
    if (!v.is_ok()) return fail(v.status());
    *m.out = *v;
  }
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  if (Status s = (*st)->set_price(p); !s.is_ok()) return fail(s);
  const std::string detail = fmt::format(
      "model={} currency={} input={} cached_input={} output={} per_request={} (per million tokens)", p.model,
      p.currency, store::format_money(p.input_micros), store::format_money(p.cached_micros),
      store::format_money(p.output_micros), store::format_money(p.request_micros));
  if (Status s = (*st)->audit(cli_actor(), "price.set", detail); !s.is_ok()) return fail(s);
  std::printf("price set: %s\n", detail.c_str());
  return 0;
}

int tier_set(const AdminArgs& a) {
  store::Tier t;
  t.name = a.name;
  t.included_calls = a.included_calls;
  auto base = store::parse_money(a.base_fee, "--base-fee");
  if (!base.is_ok()) return fail(base.status());
  auto call = store::parse_money(a.per_call, "--per-call");
  if (!call.is_ok()) return fail(call.status());
  t.base_fee_micros = *base;
  t.per_call_micros = *call;
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  if (Status s = (*st)->set_tier(t); !s.is_ok()) return fail(s);
  const std::string detail = fmt::format("tier={} base_fee={} per_call={} included_calls={}", t.name,
                                         store::format_money(t.base_fee_micros),
                                         store::format_money(t.per_call_micros), t.included_calls);
  if (Status s = (*st)->audit(cli_actor(), "tier.set", detail); !s.is_ok()) return fail(s);
  std::printf("tier set: %s\n", detail.c_str());
  return 0;
}

int tier_list(const AdminArgs& a) {
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  auto ts = (*st)->list_tiers();
  if (!ts.is_ok()) return fail(ts.status());
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& t : *ts) {
    if (a.json) {
      arr.push_back({{"name", t.name},
                     {"base_fee", store::format_money(t.base_fee_micros)},
                     {"per_call", store::format_money(t.per_call_micros)},
                     {"included_calls", t.included_calls}});
    } else {
      std::printf("%-24s base fee %s a month, %s per call beyond %lld\n", t.name.c_str(),
                  store::format_money(t.base_fee_micros).c_str(),
                  store::format_money(t.per_call_micros).c_str(), static_cast<long long>(t.included_calls));
    }
  }
  if (a.json) std::printf("%s\n", arr.dump().c_str());
  return 0;
}

int tier_delete(const AdminArgs& a) {
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  if (Status s = (*st)->delete_tier(a.name); !s.is_ok()) return fail(s);
  if (Status s = (*st)->audit(cli_actor(), "tier.delete", fmt::format("tier={}", a.name)); !s.is_ok())
    return fail(s);
  std::printf("tier %s deleted\n", a.name.c_str());
  return 0;
}

// One tenant's bill for a calendar month: the tier's base fee, its per-call fee beyond the included calls,
// and the metered usage at the price book's prices (per-request model fees included).
int usage_bill(const AdminArgs& a) {
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  auto bills = gateway::monthly_bills(**st, a.month, a.tenant);
  if (!bills.is_ok())
    return fail(bills.status().code() == ErrorCode::kInvalidArgument ? bills.status().with_context("--month")
                                                                     : bills.status());
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& b : *bills) {
    if (a.json) {
      arr.push_back(gateway::bill_json(b));
    } else {
      std::printf("%-20s %s tier %-12s %8lld requests %12lld tokens  base %s + calls %s + usage %s = %s %s\n",
                  b.tenant.c_str(), b.month.c_str(), b.tier.empty() ? "-" : b.tier.c_str(),
                  static_cast<long long>(b.usage.requests),
                  static_cast<long long>(b.usage.prompt_tokens + b.usage.completion_tokens),
                  store::format_money(b.base_fee_micros).c_str(),
                  store::format_money(b.calls_fee_micros).c_str(),
                  store::format_money(b.usage.cost_micros).c_str(),
                  store::format_money(b.total_micros).c_str(), b.currency.c_str());
    }
  }
  if (a.json) std::printf("%s\n", arr.dump().c_str());
  if (Status s =
          (*st)->audit(cli_actor(), "usage.bill",
                       fmt::format("month={} tenant={}", a.month, a.tenant.empty() ? "all" : a.tenant));
      !s.is_ok())
    return fail(s);
  return 0;
}

// The first administrators (then the security administrator manages accounts over /admin/v1/admins).
int admin_create(const AdminArgs& a) {
  std::string password;
  if (const char* p = std::getenv("HEARTH_ADMIN_PASSWORD")) {
    password = p;
  } else {
    std::fprintf(stderr, "password for %s (one line on standard input): ", a.name.c_str());
    char line[512];
    if (std::fgets(line, sizeof line, stdin) != nullptr) password = line;
    while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) password.pop_back();
    std::fprintf(stderr, "\n");
  }
  if (Status st = gateway::check_password_policy(a.name, password); !st.is_ok()) return fail(st);
  store::AdminAccount acc;
  acc.name = a.name;
  acc.role = a.role;
  acc.password_hash = gateway::hash_admin_password(password);
  acc.created_ms = acc.password_changed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 std::chrono::system_clock::now().time_since_epoch())
                                                 .count();
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  if (Status s = (*st)->put_admin(acc, true); !s.is_ok()) return fail(s);
  if (Status s =
          (*st)->audit(cli_actor(), "admin.create", fmt::format("name={} role={}", acc.name, acc.role));
      !s.is_ok())
    return fail(s);
  std::printf("administrator %s created (role %s)\n", acc.name.c_str(), acc.role.c_str());
  return 0;
}

int admin_list(const AdminArgs& a) {
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  auto as = (*st)->list_admins();
  if (!as.is_ok()) return fail(as.status());
  for (const auto& x : *as)
    std::printf("%-24s %-8s%s\n", x.name.c_str(), x.role.c_str(), x.disabled ? " disabled" : "");
  return 0;
}

int price_list(const AdminArgs& a) {
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  auto ps = (*st)->list_prices();
  if (!ps.is_ok()) return fail(ps.status());
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& p : *ps) {
    if (a.json) {
      arr.push_back({{"model", p.model},
                     {"currency", p.currency},
                     {"input_per_million", store::format_money(p.input_micros)},
                     {"cached_input_per_million", store::format_money(p.cached_micros)},
                     {"output_per_million", store::format_money(p.output_micros)},
                     {"per_request", store::format_money(p.request_micros)},
                     {"updated", iso_ms(p.updated_ms)}});
    } else {
      std::printf("%-32s %s input %s cached %s output %s per million tokens, %s per request\n",
                  p.model.c_str(), p.currency.c_str(), store::format_money(p.input_micros).c_str(),
                  store::format_money(p.cached_micros).c_str(), store::format_money(p.output_micros).c_str(),
                  store::format_money(p.request_micros).c_str());
    }
  }
  if (a.json) std::printf("%s\n", arr.dump().c_str());
  return 0;
}

int price_delete(const AdminArgs& a) {
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  if (Status s = (*st)->delete_price(a.model); !s.is_ok()) return fail(s);
  if (Status s = (*st)->audit(cli_actor(), "price.delete", fmt::format("model={}", a.model)); !s.is_ok())
    return fail(s);
  std::printf("price of %s deleted\n", a.model.c_str());
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

int audit_prune(const AdminArgs& a) {
  if (a.keep_days < 0) return fail(make_error(ErrorCode::kInvalidArgument, "--keep-days must be >= 0"));
  if (a.keep_days < 180 && !a.allow_short_retention)
    return fail(
        make_error(ErrorCode::kInvalidArgument,
                   "--keep-days {} is below 180 days (MLPS 2.0 level 3 expects at least six months of "
                   "audit records): add --allow-short-retention to do it anyway",
                   a.keep_days));
  auto st = open_store(a.store);
  if (!st.is_ok()) return fail(st.status());
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const int64_t before = now - static_cast<int64_t>(a.keep_days * 86400e3);
  auto removed = (*st)->prune_audit(before, cli_actor());
  if (!removed.is_ok()) return fail(removed.status());
  if (a.json) {
    std::printf("%s\n", nlohmann::json{{"removed", *removed}, {"before", iso_ms(before)}}.dump().c_str());
  } else {
    std::printf("audit log: removed %lld records written before %s%s\n", static_cast<long long>(*removed),
                iso_ms(before).c_str(),
                *removed > 0 ? " (the rest still verifies from the anchor left)" : "");
  }
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
  // The limit options of create and update (update changes only those given).
  const auto limit_options = [a](CLI::App* cmd) {
    const auto given = [](bool* flag) { return [flag](const std::string&) { *flag = true; }; };
    cmd->add_option("--rpm", a->rpm, "Requests per minute (0 = unlimited)")
        ->check(CLI::NonNegativeNumber)
        ->each(given(&a->set_rpm));
    cmd->add_option("--tpm", a->tpm, "Tokens per minute (0 = unlimited)")
        ->check(CLI::NonNegativeNumber)
        ->each(given(&a->set_tpm));
    cmd->add_option("--budget-tokens", a->budget_tokens, "Token budget in total (0 = unlimited)")
        ->check(CLI::NonNegativeNumber)
        ->each(given(&a->set_budget));
    cmd->add_option("--budget-tokens-daily", a->tokens_day, "Tokens per UTC day (0 = unlimited)")
        ->check(CLI::NonNegativeNumber)
        ->each(given(&a->set_tokens_day));
    cmd->add_option("--budget-tokens-monthly", a->tokens_month,
                    "Tokens per UTC calendar month (0 = unlimited)")
        ->check(CLI::NonNegativeNumber)
        ->each(given(&a->set_tokens_month));
    cmd->add_option("--budget-money-daily", a->money_day,
                    "Spend per UTC day in the price book's currency, e.g. 25.00 (0 = unlimited)")
        ->each(given(&a->set_money_day));
    cmd->add_option("--budget-money-monthly", a->money_month,
                    "Spend per UTC calendar month in the price book's currency (0 = unlimited)")
        ->each(given(&a->set_money_month));
    cmd->add_option("--tier", a->tier, "The licence tier billed (hearth admin tier set; '' = none)")
        ->each(given(&a->set_tier));
  };
  auto* tc = tenant->add_subcommand("create", "Create a tenant");
  tc->add_option("name", a->name, "Tenant name")->required();
  limit_options(tc);
  tc->add_option("--models", a->models, "The models the tenant may use, comma-separated (default: all)")
      ->delimiter(',');
  tc->add_flag("--json", a->json, "Print JSON");
  tc->callback([run, a] { *run = [a] { return tenant_create(*a); }; });
  auto* tu =
      tenant->add_subcommand("update", "Change a tenant's limits or model allow-list (the rest is kept)");
  tu->add_option("name", a->name, "Tenant name")->required();
  limit_options(tu);
  tu->add_option("--models", a->models, "The models the tenant may use, comma-separated")
      ->delimiter(',')
      ->each([a](const std::string&) { a->set_models = true; });
  tu->add_flag("--all-models", a->all_models, "Let the tenant use every model (clears the allow-list)");
  tu->callback([run, a] { *run = [a] { return tenant_update(*a); }; });
  auto* tl = tenant->add_subcommand("list", "List tenants");
  tl->add_flag("--json", a->json, "Print JSON");
  tl->callback([run, a] { *run = [a] { return tenant_list(*a); }; });

  auto* key = admin->add_subcommand("key", "API keys (shown once at creation, stored hashed)");
  key->require_subcommand(1);
  auto* kc = key->add_subcommand("create", "Create a key for a tenant; prints the key");
  kc->add_option("--tenant", a->tenant, "Tenant name")->required();
  kc->add_option("--expires-days", a->expires_days, "Days until the key expires (0 = never)");
  kc->add_option("--project", a->project, "A project of the tenant the key (and its usage) belongs to");
  kc->add_option("--owner", a->owner, "The user the key is issued to (usage records name them)");
  kc->add_flag("--json", a->json, "Print {\"key\": ..., \"prefix\": ..., ...}");
  kc->callback([run, a] { *run = [a] { return key_create(*a); }; });
  auto* kl = key->add_subcommand("list", "List keys (prefixes only, never secrets)");
  kl->add_option("--tenant", a->tenant, "Only this tenant's keys");
  kl->add_flag("--json", a->json, "Print JSON");
  kl->callback([run, a] { *run = [a] { return key_list(*a); }; });
  auto* kr = key->add_subcommand("revoke", "Revoke a key by its prefix");
  kr->add_option("prefix", a->prefix, "The key's prefix (hk_XXXXXXXX)")->required();
  kr->callback([run, a] { *run = [a] { return key_revoke(*a); }; });

  auto* project = admin->add_subcommand("project", "Projects inside tenants (keys and usage belong to them)");
  project->require_subcommand(1);
  auto* prc = project->add_subcommand("create", "Create a project in a tenant");
  prc->add_option("name", a->project, "Project name")->required();
  prc->add_option("--tenant", a->tenant, "Tenant name")->required();
  prc->add_flag("--json", a->json, "Print JSON");
  prc->callback([run, a] { *run = [a] { return project_create(*a); }; });
  auto* prl = project->add_subcommand("list", "List projects");
  prl->add_option("--tenant", a->tenant, "Only this tenant's projects");
  prl->add_flag("--json", a->json, "Print JSON");
  prl->callback([run, a] { *run = [a] { return project_list(*a); }; });
  auto* prd = project->add_subcommand("delete", "Delete a project (refused while active keys belong to it)");
  prd->add_option("name", a->project, "Project name")->required();
  prd->add_option("--tenant", a->tenant, "Tenant name")->required();
  prd->callback([run, a] { *run = [a] { return project_delete(*a); }; });

  auto* price = admin->add_subcommand(
      "price", "The price book: what each model costs per million tokens (usage costs, money budgets)");
  price->require_subcommand(1);
  auto* ps = price->add_subcommand("set", "Set (or replace) a model's price");
  ps->add_option("model", a->model, "The model name as clients send it")->required();
  ps->add_option("--input", a->input, "Per million prompt tokens, e.g. 0.27")->required();
  ps->add_option("--output", a->output, "Per million completion tokens, e.g. 1.10")->required();
  ps->add_option("--cached-input", a->cached_input,
                 "Per million prompt tokens served from the prefix cache (default: --input)");
  ps->add_option("--per-request", a->per_request, "Per request (licence fee per call)")
      ->capture_default_str();
  ps->add_option("--currency", a->currency, "ISO 4217 code; one currency per store")->capture_default_str();
  ps->callback([run, a] { *run = [a] { return price_set(*a); }; });
  auto* pl = price->add_subcommand("list", "List prices");
  pl->add_flag("--json", a->json, "Print JSON");
  pl->callback([run, a] { *run = [a] { return price_list(*a); }; });
  auto* pd = price->add_subcommand("delete", "Remove a model's price");
  pd->add_option("model", a->model, "The model name")->required();
  pd->callback([run, a] { *run = [a] { return price_delete(*a); }; });

  auto* adm = admin->add_subcommand(
      "admin", "Administrator accounts of the admin REST API (roles: system, security, audit)");
  adm->require_subcommand(1);
  auto* ac =
      adm->add_subcommand("create", "Create an administrator (password: HEARTH_ADMIN_PASSWORD or stdin)");
  ac->add_option("name", a->name, "Administrator name")->required();
  ac->add_option("--role", a->role,
                 "system (tenants, keys, prices), security (administrators) or audit (audit log)")
      ->required()
      ->check(CLI::IsMember({"system", "security", "audit"}));
  ac->callback([run, a] { *run = [a] { return admin_create(*a); }; });
  auto* al = adm->add_subcommand("list", "List administrators");
  al->callback([run, a] { *run = [a] { return admin_list(*a); }; });

  auto* tier = admin->add_subcommand("tier", "Licence tiers: a base fee per month plus a fee per call");
  tier->require_subcommand(1);
  auto* tis = tier->add_subcommand("set", "Set (or replace) a tier");
  tis->add_option("name", a->name, "Tier name")->required();
  tis->add_option("--base-fee", a->base_fee, "Per calendar month, in the price book's currency")
      ->capture_default_str();
  tis->add_option("--per-call", a->per_call, "Per request beyond the included ones")->capture_default_str();
  tis->add_option("--included-calls", a->included_calls, "Requests a month the base fee covers")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  tis->callback([run, a] { *run = [a] { return tier_set(*a); }; });
  auto* til = tier->add_subcommand("list", "List tiers");
  til->add_flag("--json", a->json, "Print JSON");
  til->callback([run, a] { *run = [a] { return tier_list(*a); }; });
  auto* tid = tier->add_subcommand("delete", "Remove a tier no tenant is on");
  tid->add_option("name", a->name, "Tier name")->required();
  tid->callback([run, a] { *run = [a] { return tier_delete(*a); }; });

  auto* usage = admin->add_subcommand("usage", "Metered usage (one record per request through the gateway)");
  usage->require_subcommand(1);
  auto* ue = usage->add_subcommand("export", "Export usage records as CSV or JSON, oldest first");
  ue->add_option("--tenant", a->tenant, "Only this tenant's records");
  ue->add_option("--since", a->since, "From this time: 2026-11-01, 2026-11-01T08:30:00Z (UTC) or epoch ms");
  ue->add_option("--until", a->until, "Before this time (same forms)");
  ue->add_option("--format", a->format, "csv or json")->capture_default_str();
  ue->add_option("--out", a->out, "Write to this file (default: standard output)");
  ue->add_option("--limit", a->limit, "At most this many records")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  ue->callback([run, a] { *run = [a] { return usage_export(*a); }; });
  auto* ub = usage->add_subcommand(
      "bill",
      "A calendar month's bill per tenant: tier base fee + per-call fees + metered usage at the price book");
  ub->add_option("--month", a->month, "YYYY-MM (UTC)")->required();
  ub->add_option("--tenant", a->tenant, "Only this tenant");
  ub->add_flag("--json", a->json, "Print JSON");
  ub->callback([run, a] { *run = [a] { return usage_bill(*a); }; });

  auto* audit = app.add_subcommand("audit", "The gateway's tamper-evident audit log");
  audit->require_subcommand(1);
  auto* av = audit->add_subcommand(
      "verify", "Check the HMAC hash chain: exit 0 when intact, 1 naming the first bad record otherwise");
  av->add_option("--store", a->store, "The store: sqlite:PATH")->required();
  av->add_flag("--json", a->json, "Print JSON");
  av->callback([run, a] { *run = [a] { return audit_verify(*a); }; });
  auto* ap = audit->add_subcommand(
      "prune", "Retention: remove records older than --keep-days (after verifying the chain; audited)");
  ap->add_option("--store", a->store, "The store: sqlite:PATH or postgresql://...")->required();
  ap->add_option("--keep-days", a->keep_days, "Keep this many days of records")->capture_default_str();
  ap->add_flag("--allow-short-retention", a->allow_short_retention, "Allow --keep-days below 180");
  ap->add_flag("--json", a->json, "Print JSON");
  ap->callback([run, a] { *run = [a] { return audit_prune(*a); }; });
}

}  // namespace hearth::app
