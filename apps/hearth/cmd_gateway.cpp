// hearth gateway: tenants, API keys, quotas and metering in front of one OpenAI-compatible upstream.
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <tuple>

#include "commands.h"
#include "gateway/gateway.h"
#include "gateway/ldap_auth.h"
#include "store/store.h"
#include "yaml_config.h"

namespace hearth::app {
namespace {

struct GatewayArgs {
  std::string upstream;
  std::string store;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string port_file;
  int io_threads = 2;
  TlsFlags tls;
  std::string upstream_ca, upstream_cert, upstream_key;
  int upstream_threads = 2;
  int64_t default_max_tokens = 4096;
  int max_concurrent = 0;
  std::string shared_quotas = "auto";
  int quota_hold_s = 3600;
  int blocking_threads = 4;
  int key_cache_ms = 5000;
  int permissions_ttl_ms = 5000;
  std::string upstream_api_key;
  std::string oidc_jwks, oidc_issuer, oidc_audience, oidc_tenant_claim = "tenant", oidc_ca;
  bool oidc_discover = false;
  int oidc_refresh_s = 300;
  std::string audit_requests = "off";
  std::string config;  // --config FILE.yaml
  int admin_idle_s = 900, admin_session_s = 28800, admin_max_failures = 5, admin_lockout_s = 900;
  int admin_password_days = 90;
  gateway::LdapConfig ldap;
  std::vector<std::string> ldap_group_tenants;
  std::string oidc_roles_claim = "roles";
  std::vector<std::string> oidc_admin_roles, ldap_admin_groups;
  int ldap_max_failures = 5;
  int ldap_lockout_s = 300;
};

int run_gateway(GatewayArgs& a) {
  if (a.upstream.empty() || a.store.empty()) {
    std::fprintf(stderr, "error: --upstream and --store are required (on the command line or in --config)\n");
    return 2;
  }
  if (a.port < 0 || a.port > 65535) {
    std::fprintf(stderr, "error: --port must be in [0, 65535]\n");
    return 2;
  }
  if (a.upstream_api_key.empty())
    if (const char* k = std::getenv("HEARTH_UPSTREAM_API_KEY")) a.upstream_api_key = k;
  sigset_t sigs = block_termination_signals();

  auto st = store::Store::open(a.store);
  if (!st.is_ok()) {
    std::fprintf(stderr, "error: %s\n", st.status().to_string().c_str());
    return 1;
  }
  gateway::GatewayConfig c;
  c.http.host = a.host;
  c.http.port = static_cast<uint16_t>(a.port);
  c.http.io_threads = a.io_threads;
  c.http.server_header = "hearth-gateway";
  c.http.tls = {a.tls.cert, a.tls.key, a.tls.min_version, a.tls.client_ca};
  c.upstream.ca_file = a.upstream_ca;
  c.upstream.client_cert_file = a.upstream_cert;
  c.upstream.client_key_file = a.upstream_key;
  c.upstream.url = a.upstream;
  c.upstream.io_threads = a.upstream_threads;
  c.upstream_api_key = a.upstream_api_key;
  c.decode.default_max_tokens = a.default_max_tokens;
  c.quota.max_concurrent_per_tenant = a.max_concurrent;
  // Shared quotas by default where several replicas can share the store (PostgreSQL).
  c.quota.shared =
      a.shared_quotas == "on" || (a.shared_quotas == "auto" && a.store.rfind("postgres", 0) == 0);
  c.quota.hold_ttl_s = a.quota_hold_s;
  c.blocking_threads = a.blocking_threads;
  c.authn.cache_ttl_ms = a.key_cache_ms;
  c.admin.idle_ms = int64_t{a.admin_idle_s} * 1000;
  c.admin.absolute_ms = int64_t{a.admin_session_s} * 1000;
  c.admin.max_failures = a.admin_max_failures;
  c.admin.lockout_ms = int64_t{a.admin_lockout_s} * 1000;
  c.admin.password_max_age_days = a.admin_password_days;
  c.audit_requests = a.audit_requests == "prompts"    ? gateway::AuditRequests::kPrompts
                     : a.audit_requests == "metadata" ? gateway::AuditRequests::kMetadata
                                                      : gateway::AuditRequests::kOff;
  c.authz.limits_ttl_ms = a.permissions_ttl_ms;
  c.authn.oidc.jwks.location = a.oidc_discover ? a.oidc_issuer : a.oidc_jwks;
  c.authn.oidc.jwks.discover = a.oidc_discover;
  c.authn.oidc.jwks.ca_file = a.oidc_ca;
  c.authn.oidc.jwks.refresh_s = a.oidc_refresh_s;
  c.authn.oidc.jwks.min_refresh_s = std::min(10, a.oidc_refresh_s);
  c.authn.oidc.policy.issuer = a.oidc_issuer;
  c.authn.oidc.policy.audience = a.oidc_audience;
  c.authn.oidc.tenant_claim = a.oidc_tenant_claim;
  if ((!a.oidc_jwks.empty() || a.oidc_discover) && (a.oidc_issuer.empty() || a.oidc_audience.empty())) {
    std::fprintf(
        stderr,
        "error: --oidc-jwks / --oidc-discover need --oidc-issuer and --oidc-audience (tokens for other "
        "parties must not pass)\n");
    return 2;
  }
  if (!a.oidc_jwks.empty() && a.oidc_discover) {
    std::fprintf(stderr, "error: give --oidc-jwks or --oidc-discover, not both\n");
    return 2;
  }
  if (!a.ldap.url.empty()) {
    if (const char* pw = std::getenv("HEARTH_LDAP_BIND_PASSWORD")) a.ldap.bind_password = pw;
    if (!a.ldap.bind_dn.empty() && a.ldap.bind_password.empty()) {
      std::fprintf(stderr, "error: --ldap-bind-dn needs its password in HEARTH_LDAP_BIND_PASSWORD\n");
      return 2;
    }
    for (const std::string& spec : a.ldap_group_tenants) {
      auto m = gateway::parse_ldap_group_tenant(spec);
      if (!m.is_ok()) {
        std::fprintf(stderr, "error: --ldap-group-tenant: %s\n", m.status().message().c_str());
        return 2;
      }
      a.ldap.group_tenants.push_back(std::move(*m));
    }
    auto dir = gateway::LdapDirectory::create(a.ldap);
    if (!dir.is_ok()) {
      std::fprintf(stderr, "error: %s\n", dir.status().message().c_str());
      return 2;
    }
    c.authn.ldap = std::move(*dir);
    c.authn.ldap_max_failures = a.ldap_max_failures;
    c.authn.ldap_lockout_ms = a.ldap_lockout_s * 1000;
  } else if (!a.ldap_group_tenants.empty() || !a.ldap.user_base.empty()) {
    std::fprintf(stderr, "error: the --ldap-* options need --ldap-url\n");
    return 2;
  }
  // Administrators from the identity provider: NAME=ROLE mappings.
  for (const auto& [specs, out, flag] :
       {std::tuple{&a.oidc_admin_roles, &c.oidc_admin_roles, "--oidc-admin-role"},
        std::tuple{&a.ldap_admin_groups, &c.ldap_admin_groups, "--ldap-admin-group"}}) {
    for (const std::string& spec : *specs) {
      auto m = gateway::parse_role_mapping(spec);
      if (!m.is_ok()) {
        std::fprintf(stderr, "error: %s: %s\n", flag, m.status().message().c_str());
        return 2;
      }
      out->push_back(std::move(*m));
    }
  }
  c.oidc_roles_claim = a.oidc_roles_claim;
  auto gw = gateway::Gateway::create(c, **st);
  if (!gw.is_ok()) {
    std::fprintf(stderr, "error: %s\n", gw.status().to_string().c_str());
    return gw.status().code() == ErrorCode::kInvalidArgument ? 2 : 1;
  }
  (*gw)->start();
  const uint16_t port = (*gw)->port();
  if (!a.port_file.empty()) write_port_file(a.port_file, port);
  std::fprintf(stderr, "gateway: %s://%s:%u/v1 -> %s (store %s)\n", a.tls.enabled() ? "https" : "http",
               a.host.c_str(), port, a.upstream.c_str(),
               a.store.rfind("postgres", 0) == 0 ? "postgresql" : a.store.c_str());
  int sig = 0;
  sigwait(&sigs, &sig);
  std::fprintf(stderr, "gateway: %s: stopping (queued usage and audit records are written first)\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*gw)->stop();
  return 0;
}

}  // namespace

void add_gateway_command(CLI::App& app, RunFn* run) {
  auto args = std::make_shared<GatewayArgs>();
  CLI::App* cmd = app.add_subcommand(
      "gateway",
      "OpenAI-compatible gateway: API keys, tenant quotas, metering and audit in front of an upstream");
  cmd->add_option(
      "--upstream", args->upstream,
      "The model server, http://HOST:PORT or https://HOST[:PORT] (hearth serve, vLLM, ...); required");
  cmd->add_option("--store", args->store,
                  "sqlite:PATH or postgresql://USER@HOST:PORT/DB (HEARTH_AUDIT_KEY for PG); required");
  cmd->add_option("--host", args->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", args->port, "Port (0: any free port)")->capture_default_str();
  cmd->add_option("--port-file", args->port_file, "Write the bound port to this file once listening");
  cmd->add_option("--io-threads", args->io_threads, "Client-side I/O threads")->capture_default_str();
  add_tls_flags(cmd, &args->tls);
  cmd->add_option("--upstream-ca", args->upstream_ca,
                  "https upstreams: trust these PEM CA certificates (default: the system's)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--upstream-cert", args->upstream_cert,
                  "https upstreams: present this PEM client certificate (mutual TLS; with --upstream-key)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--upstream-key", args->upstream_key, "The client certificate's PEM private key")
      ->check(CLI::ExistingFile);
  cmd->add_option("--upstream-threads", args->upstream_threads, "Upstream-side I/O threads")
      ->capture_default_str();
  cmd->add_option("--upstream-api-key", args->upstream_api_key,
                  "Bearer key the upstream wants (or HEARTH_UPSTREAM_API_KEY)");
  cmd->add_option("--default-max-tokens", args->default_max_tokens,
                  "max_tokens set on requests without one (quotas reserve it)")
      ->capture_default_str();
  cmd->add_option("--max-concurrent-per-tenant", args->max_concurrent,
                  "Requests in flight per tenant (0: no cap)")
      ->capture_default_str();
  cmd->add_option("--shared-quotas", args->shared_quotas,
                  "Admit every request through a store transaction so quotas hold across gateway replicas "
                  "(auto: on with PostgreSQL, off with SQLite)")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  cmd->add_option(
         "--quota-hold-s", args->quota_hold_s,
         "Shared quotas: a request's reservation lapses after this many seconds if never released (a "
         "replica that died mid-request)")
      ->check(CLI::Range(60, 86400))
      ->capture_default_str();
  cmd->add_option("--blocking-threads", args->blocking_threads,
                  "Threads for work that waits (LDAP binds, shared-quota transactions, admin password "
                  "hashing), off the I/O threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--key-cache-ms", args->key_cache_ms,
                  "How long a checked API key is trusted before the store is asked again (revocation delay)")
      ->capture_default_str();
  cmd->add_option("--permissions-ttl-ms", args->permissions_ttl_ms,
                  "How often tenants' model allow-lists are re-read from the store (change delay)")
      ->capture_default_str();
  cmd->add_option("--oidc-jwks", args->oidc_jwks,
                  "OIDC: the identity provider's JWKS, its jwks_uri (https://...) or a file; bearer JWTs "
                  "(RS256/ES256) are then accepted besides API keys");
  cmd->add_flag("--oidc-discover", args->oidc_discover,
                "OIDC: find the JWKS through the issuer's /.well-known/openid-configuration");
  cmd->add_option("--oidc-ca", args->oidc_ca, "OIDC: CA certificates (PEM) for the provider's https URLs");
  cmd->add_option(
         "--oidc-jwks-refresh-s", args->oidc_refresh_s,
         "OIDC: re-read the key set this often (and at once, at most every 10 s, for an unknown key id)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--oidc-issuer", args->oidc_issuer, "OIDC: the required iss claim");
  cmd->add_option("--oidc-audience", args->oidc_audience,
                  "OIDC: the required aud claim (this gateway's client id)");
  cmd->add_option("--oidc-roles-claim", args->oidc_roles_claim,
                  "OIDC: the claim holding the user's roles (dotted path, e.g. realm_access.roles)")
      ->capture_default_str();
  cmd->add_option(
      "--oidc-admin-role", args->oidc_admin_roles,
      "OIDC: IDP_ROLE=ROLE (repeatable; ROLE system, security or audit): an ID token with the role "
      "signs in to the admin API (POST /admin/v1/login {\"id_token\"}) as account oidc:SUBJECT");
  cmd->add_option("--oidc-tenant-claim", args->oidc_tenant_claim, "OIDC: the claim naming the tenant")
      ->capture_default_str();
  cmd->add_option(
         "--audit-requests", args->audit_requests,
         "What the audit log keeps of each forwarded request: off, metadata (tenant, credential prefix, "
         "model, status, tokens, cost, latency) or prompts (metadata + the first 16 KiB of the body)")
      ->check(CLI::IsMember({"off", "metadata", "prompts"}))
      ->capture_default_str();
  cmd->add_option("--admin-idle-timeout-s", args->admin_idle_s,
                  "Admin API: a session ends after this long without a request")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--admin-session-max-s", args->admin_session_s,
                  "Admin API: a session ends after this long in all")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--admin-max-failures", args->admin_max_failures,
                  "Admin API: failed sign-ins before an account is locked")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--admin-lockout-s", args->admin_lockout_s,
                  "Admin API: how long a locked account stays locked")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--admin-password-max-age-days", args->admin_password_days,
                  "Admin API: older passwords must be changed before anything else")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--ldap-url", args->ldap.url,
                  "LDAP: ldap://HOST:PORT or ldaps://HOST:PORT; users then sign in with HTTP Basic "
                  "(user name and password), checked by a bind as their own entry");
  cmd->add_flag("--ldap-start-tls", args->ldap.start_tls, "LDAP: StartTLS on an ldap:// connection");
  cmd->add_option("--ldap-ca", args->ldap.ca_file, "LDAP: CA certificates (PEM) for ldaps:// or StartTLS");
  cmd->add_option("--ldap-bind-dn", args->ldap.bind_dn,
                  "LDAP: the service account that searches users and groups (password in "
                  "HEARTH_LDAP_BIND_PASSWORD; none: anonymous searches)");
  cmd->add_option("--ldap-user-base", args->ldap.user_base, "LDAP: subtree of the user entries");
  cmd->add_option("--ldap-user-filter", args->ldap.user_filter,
                  "LDAP: filter finding a user; {user} is the escaped name")
      ->capture_default_str();
  cmd->add_option("--ldap-group-base", args->ldap.group_base,
                  "LDAP: subtree of the groups (default: the user base)");
  cmd->add_option("--ldap-group-filter", args->ldap.group_filter,
                  "LDAP: filter finding a user's groups; {dn} is the user's escaped DN")
      ->capture_default_str();
  cmd->add_option(
      "--ldap-group-tenant", args->ldap_group_tenants,
      "LDAP: GROUP_DN=TENANT (repeatable, first match wins): members of the group act for the tenant");
  cmd->add_option(
      "--ldap-admin-group", args->ldap_admin_groups,
      "LDAP: GROUP_DN=ROLE (repeatable; ROLE system, security or audit): members sign in to the admin "
      "API with their directory password as account ldap:USER");
  cmd->add_option("--ldap-timeout-ms", args->ldap.timeout_ms, "LDAP: network and operation timeout")
      ->capture_default_str();
  cmd->add_option("--ldap-max-failures", args->ldap_max_failures,
                  "LDAP: refused passwords before a user name is locked out")
      ->capture_default_str();
  cmd->add_option("--ldap-lockout-s", args->ldap_lockout_s,
                  "LDAP: the window (seconds) in which failures count, and the lockout's length")
      ->capture_default_str();
  add_yaml_config_option(cmd, &args->config);
  cmd->callback([run, args, cmd] {
    *run = [args, cmd] {
      if (!args->config.empty()) {
        if (Status st = apply_yaml_config(cmd, args->config); !st.is_ok()) {
          std::fprintf(stderr, "error: %s\n", st.message().c_str());
          return st.code() == ErrorCode::kInvalidArgument ? 2 : 1;
        }
      }
      return run_gateway(*args);
    };
  });
}

}  // namespace hearth::app
