#pragma once
// Gateway: `hearth gateway`, an OpenAI-compatible front for one upstream model server. Each request to
// /v1/* runs the filter chain (authn -> decode -> quota), is forwarded to the upstream (route) with the
// response streamed back unbuffered, then metered: a usage record per request, written durably (group
// commit) before the client's response is finished. /health and /metrics (gateway metrics) are open.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "core/metrics.h"
#include "core/status.h"
#include "gateway/admin_api.h"
#include "gateway/authn_filter.h"
#include "gateway/authz_filter.h"
#include "gateway/decode_filter.h"
#include "gateway/quota_filter.h"
#include "gateway/record_writer.h"
#include "gateway/upstream.h"
#include "server/http_server.h"
#include "store/store.h"

namespace hearth::gateway {

// What the audit log records of each forwarded request besides auth decisions: nothing (the default), its
// metadata (tenant, credential prefix, model, status, tokens, cost, latency, request id, path), or also the
// request body (the prompt; at most kAuditBodyBytes) for deployments whose policy requires it.
enum class AuditRequests { kOff, kMetadata, kPrompts };
inline constexpr size_t kAuditBodyBytes = 16384;

struct GatewayConfig {
  server::HttpServerConfig http;
  UpstreamConfig upstream;
  std::string upstream_api_key;  // sent upstream as Bearer, when the upstream wants one
  AuthnConfig authn;
  DecodeConfig decode;
  AuthzConfig authz;
  QuotaConfig quota;
  RecordWriterConfig records;
  AuditRequests audit_requests = AuditRequests::kOff;
  AdminPolicy admin;  // the admin REST API's login security (/admin/v1)
  // Administrators signing in through the identity provider: OIDC roles (needs authn.oidc) and LDAP groups
  // (needs authn.ldap) mapped to admin roles; the key set, policy and directory are taken from authn.
  std::string oidc_roles_claim = "roles";
  RoleMap oidc_admin_roles;
  RoleMap ldap_admin_groups;
  // Threads for work that waits on something slow (LDAP binds, shared-quota store transactions, admin
  // password hashing): such requests run their filter chain there, not on an I/O thread.
  int blocking_threads = 4;
  Status validate() const;
};

class Gateway {
 public:
  // The store must outlive the gateway. Binds the listener (port 0: any free port).
  static Result<std::unique_ptr<Gateway>> create(const GatewayConfig& config, store::Store& store);
  ~Gateway();

  uint16_t port() const;
  void start();
  void stop();  // stops accepting, then the I/O threads; queued records are written

  struct Impl;

 private:
  explicit Gateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::gateway
