#include "gateway/jwks_source.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <fstream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/json_guard.h"
#include "core/log.h"

namespace hearth::gateway {
namespace {

bool is_url(const std::string& s) {
  return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0;
}

struct Body {
  std::string data;
  size_t max;
  bool too_big = false;
};

size_t on_data(char* p, size_t size, size_t n, void* user) {
  auto* b = static_cast<Body*>(user);
  const size_t len = size * n;
  if (b->data.size() + len > b->max) {
    b->too_big = true;
    return 0;  // aborts the transfer
  }
  b->data.append(p, len);
  return len;
}

}  // namespace

Result<std::string> http_get(const std::string& url, const std::string& ca_file, int timeout_ms,
                             size_t max_bytes) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, void (*)(CURL*)> h(curl_easy_init(), curl_easy_cleanup);
  if (!h) return make_error(ErrorCode::kInternal, "libcurl could not start a transfer");
  Body body{{}, max_bytes};
  char err[CURL_ERROR_SIZE] = {};
  CURL* c = h.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, url.rfind("https://", 0) == 0 ? "https" : "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, ca_file.c_str());
  curl_easy_setopt(c, CURLOPT_USERAGENT, "hearth-gateway");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
  const CURLcode rc = curl_easy_perform(c);
  if (body.too_big) return make_error(ErrorCode::kOutOfRange, "GET {}: more than {} bytes", url, max_bytes);
  if (rc != CURLE_OK)
    return make_error(ErrorCode::kIo, "GET {}: {}", url, err[0] != '\0' ? err : curl_easy_strerror(rc));
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) return make_error(ErrorCode::kIo, "GET {}: HTTP status {}", url, status);
  return std::move(body.data);
}

Result<std::shared_ptr<JwksSource>> JwksSource::create(JwksSourceConfig config) {
  std::shared_ptr<JwksSource> s(new JwksSource(std::move(config)));
  const JwksSourceConfig& c = s->config_;
  if (c.refresh_s <= 0 || c.min_refresh_s < 0)
    return make_error(ErrorCode::kInvalidArgument, "the JWKS refresh interval must be > 0 seconds");
  s->where_ = c.location;
  if (c.discover) {
    if (!is_url(c.location))
      return make_error(ErrorCode::kInvalidArgument,
                        "OIDC discovery needs the issuer as an http(s) URL, got '{}'", c.location);
    std::string issuer = c.location;
    while (!issuer.empty() && issuer.back() == '/') issuer.pop_back();
    const std::string url = issuer + "/.well-known/openid-configuration";
    HEARTH_ASSIGN_OR_RETURN(std::string doc, http_get(url, c.ca_file, c.timeout_ms, c.max_bytes));
    HEARTH_RETURN_IF_ERROR(check_json_limits(doc, JsonLimits{c.max_bytes, 16}, "OpenID configuration"));
    const nlohmann::json j = nlohmann::json::parse(doc, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("jwks_uri") || !j["jwks_uri"].is_string())
      return make_error(ErrorCode::kInvalidArgument, "{}: no jwks_uri in the OpenID configuration", url);
    s->where_ = j["jwks_uri"].get<std::string>();
    if (!is_url(s->where_))
      return make_error(ErrorCode::kInvalidArgument, "{}: jwks_uri '{}' is not an http(s) URL", url,
                        s->where_);
  }
  if (s->where_.rfind("http://", 0) == 0)
    HEARTH_LOG_WARN(
        "gateway: the OIDC key set comes over plain http ({}): anyone on the path could replace it",
        s->where_);
  HEARTH_ASSIGN_OR_RETURN(auto first, s->load());
  s->set_ = std::move(first);
  s->loaded_at_ = std::chrono::steady_clock::now();
  s->thread_ = std::thread([raw = s.get()] { raw->refresher(); });
  return s;
}

JwksSource::~JwksSource() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<std::shared_ptr<const JwkSet>> JwksSource::load() const {
  std::string text;
  if (is_url(where_)) {
    HEARTH_ASSIGN_OR_RETURN(text, http_get(where_, config_.ca_file, config_.timeout_ms, config_.max_bytes));
  } else {
    std::ifstream in(where_, std::ios::binary);
    if (!in) return make_error(ErrorCode::kNotFound, "cannot read the OIDC key set {}", where_);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto set = JwkSet::parse(text);
  if (!set.is_ok()) return set.status().with_context(where_);
  return std::shared_ptr<const JwkSet>(std::make_shared<JwkSet>(std::move(*set)));
}

std::shared_ptr<const JwkSet> JwksSource::current() const {
  std::lock_guard lk(mu_);
  return set_;
}

bool JwksSource::refresh_for_unknown_key() {
  std::lock_guard one(refresh_mu_);
  {
    std::lock_guard lk(mu_);
    if (std::chrono::steady_clock::now() - loaded_at_ < std::chrono::seconds(config_.min_refresh_s))
      return false;
  }
  auto set = load();
  std::lock_guard lk(mu_);
  loaded_at_ = std::chrono::steady_clock::now();  // also after a failure: no retry storm
  if (!set.is_ok()) {
    HEARTH_LOG_ERROR("gateway: refreshing the OIDC key set failed (keeping the last one): {}",
                     set.status().message());
    return false;
  }
  set_ = std::move(*set);
  HEARTH_LOG_INFO("gateway: OIDC key set refreshed from {} ({} keys) for an unknown key id", where_,
                  set_->size());
  return true;
}

void JwksSource::refresher() {
  std::unique_lock lk(mu_);
  while (!stop_) {
    if (cv_.wait_for(lk, std::chrono::seconds(config_.refresh_s), [this] { return stop_; })) break;
    lk.unlock();
    {
      std::lock_guard one(refresh_mu_);
      auto set = load();
      std::lock_guard relock(mu_);
      loaded_at_ = std::chrono::steady_clock::now();
      if (set.is_ok()) {
        set_ = std::move(*set);
      } else {
        HEARTH_LOG_ERROR("gateway: refreshing the OIDC key set failed (keeping the last one): {}",
                         set.status().message());
      }
    }
    lk.lock();
  }
}

}  // namespace hearth::gateway
