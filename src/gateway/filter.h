#pragma once
// The gateway's filter chain, in Envoy's shape: each filter is a small class built from an immutable
// config, sees one RequestContext per request, and owns its metrics. on_request runs in chain order
// (authn -> decode -> authz -> quota); the first filter that rejects answers the client and the rest do not
// run. on_complete runs, in reverse order, for every filter whose on_request ran — when the response is
// complete, the upstream failed, or the client went away — so reservations are always released.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/store.h"

namespace hearth::gateway {

using Clock = std::chrono::steady_clock;

// What the client asked for, read from the request body once (the filters need model and max_tokens).
struct RequestInfo {
  std::string method, path;
  std::string authorization;  // the header's value: a secret, never logged
  std::string model;
  bool stream = false;
  bool client_wants_usage = false;  // stream_options.include_usage was set by the client
  int64_t max_tokens = 0;           // as asked, or the gateway's default when absent
  int64_t prompt_estimate = 0;      // tokens, from the body's size (before the upstream counts them)
};

struct Usage {
  bool known = false;  // the upstream reported it
  int64_t prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0, reasoning_tokens = 0;
};

struct RequestContext {
  std::string request_id;
  Clock::time_point start = Clock::now();
  RequestInfo info;
  std::string body;        // forwarded to the upstream (decode may rewrite it)
  std::string audit_body;  // what the audit log keeps of it (only with --audit-requests prompts)
  // Set by authn.
  std::string tenant;
  int64_t key_id = 0;
  std::string key_prefix;
  std::string project;  // the key's project ("" = none)
  std::string user;     // the key's owner, or the signed-in user ("oidc:SUB", "ldap:NAME")
  // Set by authz: the tenant's model allow-list (null or empty = every model), shared with the filter's
  // cache; GET /v1/models is filtered by it.
  std::shared_ptr<const std::vector<std::string>> allowed_models;
  // Set by quota: what was reserved against the tenant's limits (released/reconciled on completion), and
  // the model's price at admission (the request's cost, ctx.cost_micros, is computed with it).
  int64_t reserved_tokens = 0;
  int64_t reserved_micros = 0;
  std::optional<store::Price> price;
  int64_t cost_micros = 0;
  bool holds_concurrency = false;
  // Shared quotas: the store hold of this request (its id), released with its usage record together with
  // the tokens-per-minute refund set on completion.
  std::string quota_hold;
  int64_t quota_refund_tokens = 0;
  std::vector<std::pair<std::string, std::string>> response_headers;  // x-ratelimit-* for the client
  // Set as the response goes.
  int status = 0;
  Usage usage;
  int64_t streamed_events = 0;  // content events passed to the client (the estimate when usage is unknown)
  std::string outcome = "ok";   // "ok", "upstream_error", "client_disconnected", "rejected"
};

// An answer instead of forwarding: an OpenAI error object with this status.
struct Rejection {
  int status = 400;
  std::string type = "invalid_request_error";
  std::string message;
  std::string code;
  std::vector<std::pair<std::string, std::string>> headers;
};

// 503 with Retry-After: 1, for a dependency (the store) that failed; the message says what could not be done.
inline Rejection unavailable(std::string message) {
  Rejection r;
  r.status = 503;
  r.type = "server_error";
  r.message = std::move(message);
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

class Filter {
 public:
  virtual ~Filter() = default;
  virtual const char* name() const = 0;
  virtual std::optional<Rejection> on_request(RequestContext& ctx) = 0;
  // Whether on_request may wait on something slow for this request (a directory bind, a store
  // transaction): the gateway then runs the rest of the chain on its blocking pool, not an I/O thread.
  virtual bool may_block(const RequestContext& /*ctx*/) const { return false; }
  virtual void on_complete(RequestContext& /*ctx*/) {}
};

}  // namespace hearth::gateway
