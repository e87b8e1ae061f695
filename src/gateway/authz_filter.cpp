#include "gateway/authz_filter.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/log.h"

namespace hearth::gateway {

AuthzFilter::AuthzFilter(AuthzConfig config, store::Store& store, RecordWriter& records, Registry& metrics)
    : config_(config),
      store_(store),
      records_(records),
      denials_(metrics
                   .counter("hearth_gateway_authz_denied",
                            "Requests refused because the tenant may not use the model, by tenant.",
                            {"tenant"})
                   .value()) {}

Result<AuthzFilter::ModelList> AuthzFilter::allowed_models(const std::string& tenant) {
  std::lock_guard lk(mu_);
  const Clock::time_point now = Clock::now();
  if (read_at_ == Clock::time_point{} || now - read_at_ >= std::chrono::milliseconds(config_.limits_ttl_ms)) {
    HEARTH_ASSIGN_OR_RETURN(auto tenants, store_.list_tenants());
    models_.clear();
    for (store::Tenant& t : tenants)
      if (!t.limits.models.empty())
        models_[t.name] = std::make_shared<const std::vector<std::string>>(std::move(t.limits.models));
    read_at_ = now;
  }
  const auto it = models_.find(tenant);
  return it == models_.end() ? nullptr : it->second;
}

std::optional<Rejection> AuthzFilter::on_request(RequestContext& ctx) {
  auto allowed = allowed_models(ctx.tenant);
  if (!allowed.is_ok()) {
    HEARTH_LOG_ERROR("gateway: model allow-list of '{}' not readable: {}", ctx.tenant,
                     allowed.status().to_string());
    return unavailable("the gateway cannot read this tenant's permissions right now; retry shortly");
  }
  ctx.allowed_models = std::move(*allowed);
  // No model named (GET /v1/models: filtered on the way back), or no list, or on the list.
  const auto* list = ctx.allowed_models.get();
  if (ctx.info.model.empty() || list == nullptr ||
      std::find(list->begin(), list->end(), ctx.info.model) != list->end())
    return std::nullopt;
  denials_->labels({ctx.tenant}).inc();
  records_.audit({ctx.key_prefix.empty() ? "tenant:" + ctx.tenant : ctx.key_prefix, "authz.deny",
                  fmt::format("tenant={} model={} {} {} request={}", ctx.tenant, ctx.info.model,
                              ctx.info.method, ctx.info.path, ctx.request_id)});
  Rejection r;
  r.status = 404;
  r.code = "model_not_found";
  r.message = fmt::format("The model `{}` does not exist or you do not have access to it.", ctx.info.model);
  return r;
}

}  // namespace hearth::gateway
