#include "gateway/gateway.h"

#include <fmt/format.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/log.h"
#include "gateway/authz_filter.h"
#include "gateway/http_query.h"
#include "server/openai_request.h"

namespace hearth::gateway {
namespace {

constexpr double kOverheadBounds[] = {25e-6,  50e-6, 100e-6, 250e-6, 500e-6, 1e-3,
                                      2.5e-3, 5e-3,  10e-3,  25e-3,  0.1};

std::string new_request_id() {
  std::array<unsigned char, 12> b{};
  RAND_bytes(b.data(), static_cast<int>(b.size()));
  static const char* d = "0123456789abcdef";
  std::string s = "gw-";
  for (unsigned char c : b) {
    s.push_back(d[c >> 4]);
    s.push_back(d[c & 15]);
  }
  return s;
}

std::string error_json(const Rejection& r) {
  server::ApiError e;
  e.status = r.status;
  e.type = r.type;
  e.message = r.message;
  e.code = r.code;
  return e.to_json().dump();
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Reads a usage object ({"prompt_tokens", "completion_tokens", "prompt_tokens_details": {"cached_tokens"},
// "completion_tokens_details": {"reasoning_tokens"}}) into u.
void read_usage(const nlohmann::json& j, Usage& u) {
  auto num = [](const nlohmann::json& o, const char* k) -> int64_t {
    auto it = o.find(k);
    return it != o.end() && it->is_number_integer() ? std::max<int64_t>(0, it->get<int64_t>()) : 0;
  };
  if (!j.is_object()) return;
  u.known = true;
  u.prompt_tokens = num(j, "prompt_tokens");
  u.completion_tokens = num(j, "completion_tokens");
  if (auto d = j.find("prompt_tokens_details"); d != j.end() && d->is_object())
    u.cached_tokens = num(*d, "cached_tokens");
  if (auto d = j.find("completion_tokens_details"); d != j.end() && d->is_object())
    u.reasoning_tokens = num(*d, "reasoning_tokens");
}

// An OpenAI model list with only the entries the tenant may use (the body unchanged when it is not one).
std::string only_allowed_models(std::string body, const std::vector<std::string>& allowed) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("data") || !doc["data"].is_array()) return body;
  nlohmann::json kept = nlohmann::json::array();
  for (auto& m : doc["data"]) {
    if (m.is_object() && m.contains("id") && m["id"].is_string() &&
        std::find(allowed.begin(), allowed.end(), m["id"].get<std::string>()) != allowed.end())
      kept.push_back(std::move(m));
  }
  doc["data"] = std::move(kept);
  return doc.dump();
}

}  // namespace

Status GatewayConfig::validate() const {
  HEARTH_RETURN_IF_ERROR(upstream.validate());
  if (decode.default_max_tokens < 1)
    return make_error(ErrorCode::kInvalidArgument, "--default-max-tokens must be >= 1");
  if (authz.limits_ttl_ms < 0)
    return make_error(ErrorCode::kInvalidArgument, "--permissions-ttl-ms must be >= 0");
  if (quota.max_concurrent_per_tenant < 0)
    return make_error(ErrorCode::kInvalidArgument, "--max-concurrent-per-tenant must be >= 0");
  if (blocking_threads < 1) return make_error(ErrorCode::kInvalidArgument, "--blocking-threads must be >= 1");
  if (!oidc_admin_roles.empty() && authn.oidc.jwks.location.empty())
    return make_error(ErrorCode::kInvalidArgument,
                      "--oidc-admin-role needs OIDC (--oidc-jwks or --oidc-discover)");
  if (!ldap_admin_groups.empty() && authn.ldap == nullptr)
    return make_error(ErrorCode::kInvalidArgument, "--ldap-admin-group needs LDAP (--ldap-url)");
  return Status::ok();
}

struct Gateway::Impl {
  GatewayConfig config;
  store::Store& store;
  Registry registry;
  std::unique_ptr<RecordWriter> records;
  std::vector<std::unique_ptr<Filter>> chain;
  std::unique_ptr<UpstreamPool> upstream;
  std::unique_ptr<server::HttpServer> http;
  std::unique_ptr<AdminApi> admin;
  std::unique_ptr<boost::asio::thread_pool> blocking;  // see GatewayConfig::blocking_threads
  CounterFamily* requests = nullptr;
  CounterFamily* upstream_errors = nullptr;
  CounterFamily* handoffs = nullptr;
  HistogramFamily* overhead = nullptr;
  GaugeFamily* in_flight = nullptr;

  Impl(GatewayConfig c, store::Store& s) : config(std::move(c)), store(s) {}

  void handle(const std::shared_ptr<server::Exchange>& ex);
  // The filter chain from filter `from` on, then the proxy (or the rejection, or the usage answer). A filter
  // that may block moves the rest to the blocking pool (on_pool: already there).
  void admit(const std::shared_ptr<server::Exchange>& ex, std::shared_ptr<RequestContext> ctx, size_t from,
             bool on_pool);
  // GET /v1/usage (after authn): the caller's tenant's metered totals and budgets, from the store.
  void usage(const std::shared_ptr<server::Exchange>& ex, const RequestContext& ctx);
  void proxy(const std::shared_ptr<server::Exchange>& ex, std::shared_ptr<RequestContext> ctx, size_t ran);
};

namespace {

// One forwarded request: the upstream call's callbacks (on its strand) and the client's close (on the
// exchange's strand) meet here, under mu.
struct Forward : std::enable_shared_from_this<Forward> {
  Gateway::Impl* gw = nullptr;
  std::shared_ptr<server::Exchange> ex;
  std::shared_ptr<RequestContext> ctx;
  size_t filters_ran = 0;
  std::mutex mu;
  std::shared_ptr<UpstreamCall> call;
  bool streaming = false;  // the client got a stream head
  bool head_sent = false;  // the client got any head
  bool client_gone = false;
  bool done = false;
  std::string pending;  // SSE bytes not yet split into events
  std::string body;     // a non-streamed response, whole
  int upstream_status = 0;
  server::HttpHeaders upstream_headers;

  // Splits complete SSE events off `pending`; returns the bytes to pass on. Under mu.
  std::string take_events(bool flush) {
    std::string out;
    size_t start = 0;
    for (;;) {
      size_t end = pending.find("\n\n", start);
      if (end == std::string::npos) break;
      pass_event(std::string_view(pending).substr(start, end + 2 - start), out);
      start = end + 2;
    }
    pending.erase(0, start);
    if (flush && !pending.empty()) {
      out += pending;
      pending.clear();
    }
    return out;
  }

  void pass_event(std::string_view ev, std::string& out) {
    const size_t data = ev.find("data:");
    if (data == std::string_view::npos) {
      out += ev;
      return;
    }
    std::string_view payload = ev.substr(data + 5);
    while (!payload.empty() && payload.front() == ' ') payload.remove_prefix(1);
    if (payload.rfind("[DONE]", 0) == 0) {
      out += ev;
      return;
    }
    // Only chunks that carry a usage object are parsed (the last one, when include_usage is on).
    if (payload.find("\"usage\":{") != std::string_view::npos ||
        payload.find("\"usage\": {") != std::string_view::npos) {
      nlohmann::json j = nlohmann::json::parse(payload, nullptr, false);
      if (!j.is_discarded() && j.is_object()) {
        if (auto it = j.find("usage"); it != j.end() && it->is_object()) {
          read_usage(*it, ctx->usage);
          auto ch = j.find("choices");
          const bool usage_only = ch == j.end() || (ch->is_array() && ch->empty());
          if (usage_only && !ctx->info.client_wants_usage) return;  // added by the gateway: not the client's
        }
      }
    }
    ++ctx->streamed_events;
    out += ev;
  }

  void on_head(int status, const Headers& headers) {
    std::lock_guard lk(mu);
    upstream_status = status;
    for (const auto& [k, v] : headers) {
      if (k == "Server" || k == "Date") continue;
      upstream_headers.emplace_back(k, v);
    }
    std::string ct;
    for (const auto& [k, v] : headers)
      if (k == "Content-Type" || k == "content-type") ct = v;
    if (status == 200 && ct.rfind("text/event-stream", 0) == 0 && !client_gone) {
      streaming = true;
      head_sent = true;
      server::HttpHeaders h = client_headers();
      ex->start_stream(status, ct, std::move(h));
    }
  }

  server::HttpHeaders client_headers() const {
    server::HttpHeaders h;
    h.emplace_back("x-request-id", ctx->request_id);
    for (const auto& kv : ctx->response_headers) h.push_back(kv);
    for (const auto& [k, v] : upstream_headers) {
      if (k == "Content-Type" || k == "content-type" || k == "x-request-id") continue;
      h.emplace_back(k, v);
    }
    return h;
  }

  void on_data(std::string_view bytes) {
    std::lock_guard lk(mu);
    if (client_gone) return;
    if (!streaming) {
      if (body.size() < (64u << 20)) body.append(bytes);
      return;
    }
    pending.append(bytes);
    std::string out = take_events(false);
    if (!out.empty()) ex->send_chunk(std::move(out));
  }

  void on_done(const Status& st) {
    std::unique_lock lk(mu);
    done = true;
    call.reset();  // the call's handlers hold this forward: break the cycle once it is over
    RequestContext& c = *ctx;
    std::string tail;
    if (streaming && !client_gone) tail = take_events(true);
    if (client_gone) {
      c.outcome = "client_disconnected";
      c.status = 499;
    } else if (!st.is_ok()) {
      c.outcome = "upstream_error";
      c.status = head_sent ? upstream_status : 502;
      gw->upstream_errors->labels({}).inc();
      HEARTH_LOG_WARN("gateway: request {}: {}", c.request_id, st.message());
    } else {
      c.status = upstream_status;
      if (!streaming && upstream_status == 200) {
        nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
        if (!j.is_discarded() && j.is_object())
          if (auto it = j.find("usage"); it != j.end()) read_usage(*it, c.usage);
      }
      if (upstream_status != 200) c.outcome = "upstream_status";
    }
    if (!c.usage.known && upstream_status == 200) {
      // Not reported (the client hung up, or the upstream broke off): the gateway's estimate.
      c.usage.prompt_tokens = c.info.prompt_estimate / 4;
      c.usage.completion_tokens = c.streamed_events;
    }
    finish(std::move(lk), st, std::move(tail));
  }

  // Completes the request: filters' on_complete, metrics, the usage record, then (once it is durable) the
  // client's response.
  void finish(std::unique_lock<std::mutex> lk, const Status& st, std::string tail) {
    RequestContext& c = *ctx;
    for (size_t i = filters_ran; i-- > 0;) gw->chain[i]->on_complete(c);
    gw->requests->labels({c.tenant, c.info.model, std::to_string(c.status)}).inc();
    gw->in_flight->labels({}).dec();
    store::UsageRecord u;
    u.ts_ms = wall_ms();
    u.tenant = c.tenant;
    u.key_id = c.key_id;
    u.project = c.project;
    u.user = c.user;
    u.model = c.info.model;
    u.prompt_tokens = c.usage.prompt_tokens;
    u.cached_tokens = c.usage.cached_tokens;
    u.completion_tokens = c.usage.completion_tokens;
    u.reasoning_tokens = c.usage.reasoning_tokens;
    u.latency_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - c.start).count();
    u.status = c.status;
    u.outcome = c.outcome;
    u.request_id = c.request_id;
    u.cost_micros = c.cost_micros;
    u.quota_hold = c.quota_hold;
    u.quota_refund_tokens = c.quota_refund_tokens;
    if (gw->config.audit_requests != AuditRequests::kOff) {
      std::string detail = fmt::format(
          "tenant={} model={} status={} outcome={} prompt_tokens={} completion_tokens={} cost={} "
          "latency_ms={} "
          "{} {} request={}",
          c.tenant, c.info.model, c.status, c.outcome, c.usage.prompt_tokens, c.usage.completion_tokens,
          store::format_money(c.cost_micros), u.latency_ms, c.info.method, c.info.path, c.request_id);
      if (gw->config.audit_requests == AuditRequests::kPrompts) detail += " body=" + c.audit_body;
      gw->records->audit(
          {c.key_prefix.empty() ? std::string("anonymous") : c.key_prefix, "request", std::move(detail)});
    }
    const bool gone = client_gone;
    const bool was_streaming = streaming;
    const bool ok = st.is_ok();
    std::string whole = std::move(body);
    const int status = upstream_status;
    server::HttpHeaders headers = client_headers();
    lk.unlock();
    auto self = shared_from_this();
    gw->records->usage(std::move(u), [self, gone, was_streaming, ok, tail = std::move(tail),
                                      whole = std::move(whole), status,
                                      headers = std::move(headers)](const Status& written) mutable {
      if (!written.is_ok())
        HEARTH_LOG_ERROR("gateway: request {}: usage not recorded: {}", self->ctx->request_id,
                         written.message());
      if (gone) return;
      if (was_streaming) {
        if (!ok)
          tail +=
              "data: {\"error\": {\"message\": \"the upstream stopped mid-stream\", \"type\": "
              "\"server_error\"}}\n\n";
        if (!tail.empty()) self->ex->send_chunk(std::move(tail));
        self->ex->end_stream();
      } else if (!ok) {
        Rejection r;
        r.status = 502;
        r.type = "server_error";
        r.message = fmt::format("the upstream model server did not answer ({}); request id {}",
                                self->gw->upstream->host_port(), self->ctx->request_id);
        self->ex->respond(502, "application/json", error_json(r), {{"x-request-id", self->ctx->request_id}});
      } else {
        std::string ct = "application/json";
        server::HttpHeaders h;
        for (auto& [k, v] : headers) {
          if (k == "Content-Type" || k == "content-type") {
            ct = v;
          } else {
            h.emplace_back(k, v);
          }
        }
        if (status == 200 && self->ctx->allowed_models && self->ctx->info.method == "GET" &&
            self->ctx->info.path == "/v1/models")
          whole = only_allowed_models(std::move(whole), *self->ctx->allowed_models);
        self->ex->respond(status, ct, std::move(whole), std::move(h));
      }
    });
  }

  void on_client_close() {
    std::shared_ptr<UpstreamCall> c;
    {
      std::lock_guard lk(mu);
      if (done) return;
      client_gone = true;
      c = call;
    }
    if (c) c->cancel();
  }
};

}  // namespace

void Gateway::Impl::handle(const std::shared_ptr<server::Exchange>& ex) {
  const std::string_view path = ex->path();
  const auto& req = ex->request();
  if (path == "/health") {
    ex->respond(200, "application/json", "{\"status\":\"ok\"}");
    return;
  }
  if (path == "/metrics") {
    ex->respond(200, "text/plain; version=0.0.4; charset=utf-8", registry.render());
    return;
  }
  if (path.rfind("/admin/v1/", 0) == 0) {
    boost::asio::post(*blocking, [this, ex] { admin->handle(ex); });  // sign-ins hash passwords (~0.3 s)
    return;
  }
  if (path.rfind("/v1/", 0) != 0) {
    Rejection r;
    r.status = 404;
    r.message = fmt::format("no route {}: the gateway serves /v1/*, /health and /metrics", path);
    ex->respond(404, "application/json", error_json(r));
    return;
  }
  auto ctx = std::make_shared<RequestContext>();
  ctx->request_id = new_request_id();
  ctx->info.method = std::string(req.method_string());
  ctx->info.path = std::string(path);
  ctx->info.authorization = std::string(ex->header("Authorization"));
  ctx->body = req.body();
  in_flight->labels({}).inc();
  admit(ex, std::move(ctx), 0, false);
}

void Gateway::Impl::admit(const std::shared_ptr<server::Exchange>& ex, std::shared_ptr<RequestContext> ctx,
                          size_t from, bool on_pool) {
  // The tenant's own usage: authenticated like any request, answered by the gateway.
  const bool usage_api = ctx->info.path == "/v1/usage";
  size_t ran = from;
  for (; ran < (usage_api ? 1 : chain.size()); ++ran) {
    if (!on_pool && chain[ran]->may_block(*ctx)) {  // the rest waits on the blocking pool, not this thread
      handoffs->labels({chain[ran]->name()}).inc();
      boost::asio::post(*blocking, [this, ex, ctx, ran]() mutable { admit(ex, std::move(ctx), ran, true); });
      return;
    }
    if (auto rej = chain[ran]->on_request(*ctx)) {
      for (size_t i = ran; i-- > 0;) chain[i]->on_complete(*ctx);
      ctx->status = rej->status;
      requests->labels({ctx->tenant, ctx->info.model, std::to_string(rej->status)}).inc();
      in_flight->labels({}).dec();
      server::HttpHeaders h(rej->headers.begin(), rej->headers.end());
      h.emplace_back("x-request-id", ctx->request_id);
      ex->respond(rej->status, "application/json", error_json(*rej), std::move(h));
      return;
    }
  }
  if (usage_api) {
    chain[0]->on_complete(*ctx);
    in_flight->labels({}).dec();
    usage(ex, *ctx);
    return;
  }
  proxy(ex, std::move(ctx), ran);
}

namespace {

// "2026-11-01" (UTC midnight) or epoch seconds -> ms; -1 when malformed.
int64_t parse_day_or_seconds(const std::string& v) {
  if (v.empty() || v.size() > 12) return -1;
  if (std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::stoll(v) * 1000;
  unsigned y = 0, m = 0, d = 0;
  char tail = 0;
  if (v.size() != 10 || std::sscanf(v.c_str(), "%4u-%2u-%2u%c", &y, &m, &d, &tail) != 3) return -1;
  using namespace std::chrono;
  const year_month_day ymd{year(static_cast<int>(y)), month(m), day(d)};
  if (!ymd.ok()) return -1;
  return duration_cast<milliseconds>(sys_days(ymd).time_since_epoch()).count();
}

std::string iso_utc(int64_t ms) {
  using namespace std::chrono;
  const sys_time<milliseconds> t{milliseconds(ms)};
  const sys_days d = floor<days>(t);
  const year_month_day ymd(d);
  const hh_mm_ss hms(floor<seconds>(t - d));
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                     hms.hours().count(), hms.minutes().count(), hms.seconds().count());
}

}  // namespace

void Gateway::Impl::usage(const std::shared_ptr<server::Exchange>& ex, const RequestContext& ctx) {
  const auto fail = [&](int status, const char* type, std::string message) {
    Rejection r;
    r.status = status;
    r.type = type;
    r.message = std::move(message);
    ex->respond(status, "application/json", error_json(r), {{"x-request-id", ctx.request_id}});
  };
  if (ctx.info.method != "GET") return fail(405, "invalid_request_error", "GET /v1/usage only");
  const int64_t now = wall_ms();
  const CalendarWindows w = calendar_windows(now);
  const std::string target(ex->request().target());
  const std::string start_s = query_param(target, "start"), end_s = query_param(target, "end");
  const int64_t start = start_s.empty() ? w.month_start_ms : parse_day_or_seconds(start_s);
  const int64_t end = end_s.empty() ? 0 : parse_day_or_seconds(end_s);
  if (start < 0 || end < 0 || (end != 0 && end <= start))
    return fail(400, "invalid_request_error",
                "start and end must be dates (2026-11-01, UTC) or epoch seconds, end after start");
  auto totals = store.usage_totals(ctx.tenant, start, end);
  auto tenants = store.list_tenants();
  auto prices = store.list_prices();
  if (!totals.is_ok() || !tenants.is_ok() || !prices.is_ok())
    return fail(503, "server_error", "the gateway cannot read usage right now; retry shortly");
  const std::string currency = prices->empty() ? std::string() : prices->front().currency;
  store::TenantLimits l;
  for (const auto& t : *tenants)
    if (t.name == ctx.tenant) l = t.limits;
  nlohmann::json budgets = nlohmann::json::array();
  struct B {
    const char* name;
    int64_t limit;
    int64_t since, resets;
    bool money;
  };
  for (const B& b : {B{"tokens_total", l.budget_tokens, 0, 0, false},
                     B{"tokens_day", l.budget_tokens_day, w.day_start_ms, w.day_end_ms, false},
                     B{"tokens_month", l.budget_tokens_month, w.month_start_ms, w.month_end_ms, false},
                     B{"money_day", l.budget_money_day, w.day_start_ms, w.day_end_ms, true},
                     B{"money_month", l.budget_money_month, w.month_start_ms, w.month_end_ms, true}}) {
    if (b.limit <= 0) continue;
    auto used = b.money ? store.money_used(ctx.tenant, b.since) : store.tokens_used(ctx.tenant, b.since);
    if (!used.is_ok())
      return fail(503, "server_error", "the gateway cannot read usage right now; retry shortly");
    nlohmann::json j{{"budget", b.name}};
    if (b.money) {
      j["limit"] = store::format_money(b.limit);
      j["used"] = store::format_money(*used);
    } else {
      j["limit"] = b.limit;
      j["used"] = *used;
    }
    j["resets_at"] = b.resets > 0 ? nlohmann::json(iso_utc(b.resets)) : nlohmann::json(nullptr);
    budgets.push_back(std::move(j));
  }
  const nlohmann::json out{{"object", "usage"},
                           {"tenant", ctx.tenant},
                           {"start", iso_utc(start)},
                           {"end", end != 0 ? nlohmann::json(iso_utc(end)) : nlohmann::json(nullptr)},
                           {"requests", totals->requests},
                           {"prompt_tokens", totals->prompt_tokens},
                           {"cached_tokens", totals->cached_tokens},
                           {"completion_tokens", totals->completion_tokens},
                           {"cost", store::format_money(totals->cost_micros)},
                           {"currency", currency},
                           {"budgets", std::move(budgets)}};
  ex->respond(200, "application/json", out.dump(), {{"x-request-id", ctx.request_id}});
}

void Gateway::Impl::proxy(const std::shared_ptr<server::Exchange>& ex, std::shared_ptr<RequestContext> ctx,
                          size_t ran) {
  auto fw = std::make_shared<Forward>();
  fw->gw = this;
  fw->ex = ex;
  fw->ctx = ctx;
  fw->filters_ran = ran;
  UpstreamRequest r;
  r.method = ctx->info.method;
  r.target = std::string(ex->request().target());
  r.headers.emplace_back("Content-Type", "application/json");
  if (std::string_view a = ex->header("Accept"); !a.empty()) r.headers.emplace_back("Accept", std::string(a));
  r.headers.emplace_back("x-hearth-tenant", ctx->tenant);  // hearth serve's fairness key
  r.headers.emplace_back("x-request-id", ctx->request_id);
  if (!config.upstream_api_key.empty())
    r.headers.emplace_back("Authorization", "Bearer " + config.upstream_api_key);
  if (config.audit_requests == AuditRequests::kPrompts)
    ctx->audit_body = ctx->body.substr(0, kAuditBodyBytes);
  r.body = std::move(ctx->body);
  UpstreamHandlers h;
  h.on_head = [fw](int status, const Headers& headers) { fw->on_head(status, headers); };
  h.on_data = [fw](std::string_view b) { fw->on_data(b); };
  h.on_done = [fw](const Status& st) { fw->on_done(st); };
  // Weak: the exchange must not keep the forward (and, through it, itself) alive.
  ex->on_close([weak = std::weak_ptr<Forward>(fw)] {
    if (auto f = weak.lock()) f->on_client_close();
  });
  overhead->labels({}).observe(std::chrono::duration<double>(Clock::now() - ctx->start).count());
  auto call = upstream->send(std::move(r), std::move(h));
  std::lock_guard lk(fw->mu);
  if (fw->done) return;  // already over (a fast upstream error): keep no reference to the call
  fw->call = call;
  if (fw->client_gone) call->cancel();
}

Result<std::unique_ptr<Gateway>> Gateway::create(const GatewayConfig& config, store::Store& store) {
  HEARTH_RETURN_IF_ERROR(config.validate());
  auto impl = std::make_unique<Impl>(config, store);
  Impl* g = impl.get();
  g->handoffs =
      g->registry
          .counter("hearth_gateway_blocking_handoffs",
                   "Requests whose filter chain moved to the blocking pool, by the filter that may wait.",
                   {"filter"})
          .value();
  g->requests =
      g->registry
          .counter("hearth_gateway_requests", "Requests answered, by tenant, model and HTTP status.",
                   {"tenant", "model", "status"})
          .value();
  g->upstream_errors =
      g->registry
          .counter("hearth_gateway_upstream_errors", "Upstream calls that failed (connect, reset, timeout).")
          .value();
  g->overhead =
      g->registry
          .histogram("hearth_gateway_overhead_seconds",
                     "Gateway time before a request is forwarded (authn, decode, quota).", kOverheadBounds)
          .value();
  g->in_flight = g->registry.gauge("hearth_gateway_requests_in_flight", "Requests being handled.").value();
  g->records = std::make_unique<RecordWriter>(store, config.records);
  RecordWriter* rw = g->records.get();
  auto* written = g->registry
                      .callback_counter("hearth_gateway_records_written",
                                        "Usage and audit records durably written, by kind.", {"kind"})
                      .value();
  (void)written->add({"usage"}, [rw] { return static_cast<double>(rw->stats().usage_written); });
  (void)written->add({"audit"}, [rw] { return static_cast<double>(rw->stats().audit_written); });
  HEARTH_ASSIGN_OR_RETURN(auto authn, AuthnFilter::create(config.authn, store, *g->records, g->registry));
  g->chain.push_back(std::move(authn));
  g->chain.push_back(std::make_unique<DecodeFilter>(config.decode));
  g->chain.push_back(std::make_unique<AuthzFilter>(config.authz, store, *g->records, g->registry));
  g->chain.push_back(std::make_unique<QuotaFilter>(config.quota, store, g->registry));
  AdminDirectory dir;
  if (!config.oidc_admin_roles.empty()) {
    dir.jwks = static_cast<AuthnFilter*>(g->chain.front().get())->jwks();
    dir.policy = config.authn.oidc.policy;
    dir.roles_claim = config.oidc_roles_claim;
    dir.oidc_roles = config.oidc_admin_roles;
  }
  if (!config.ldap_admin_groups.empty()) {
    dir.ldap = config.authn.ldap;
    dir.ldap_group_roles = config.ldap_admin_groups;
  }
  g->admin = std::make_unique<AdminApi>(store, *g->records, config.admin, std::move(dir));
  g->blocking = std::make_unique<boost::asio::thread_pool>(static_cast<size_t>(config.blocking_threads));
  HEARTH_ASSIGN_OR_RETURN(g->upstream, UpstreamPool::create(config.upstream));
  HEARTH_ASSIGN_OR_RETURN(
      g->http,
      server::HttpServer::create(config.http, [g](std::shared_ptr<server::Exchange> ex) { g->handle(ex); }));
  return std::unique_ptr<Gateway>(new Gateway(std::move(impl)));
}

Gateway::Gateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Gateway::~Gateway() {
  stop();
}
uint16_t Gateway::port() const {
  return impl_->http->port();
}
void Gateway::start() {
  impl_->http->start();
}
void Gateway::stop() {
  if (!impl_->http) return;
  impl_->http->stop_accepting();
  impl_->http->stop();
  impl_->http.reset();
  impl_->blocking->join();  // chains and admin calls still running finish before what they use goes
  impl_->upstream.reset();
  impl_->records.reset();  // writes what is queued
}

}  // namespace hearth::gateway
