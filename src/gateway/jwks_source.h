#pragma once
// JwksSource: the identity provider's signing keys (JWKS), from a file or an http(s) URL (libcurl; the
// provider's jwks_uri, or found through its OpenID discovery document), re-read every refresh_s in a
// background thread and at once (at most every min_refresh_s) when a token names a key id the current set
// lacks — so the provider's key rotation needs no restart. A failed refresh keeps the last good set and is
// logged; only the first load must succeed (the gateway does not start without keys).
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/status.h"
#include "gateway/jwt.h"

namespace hearth::gateway {

struct JwksSourceConfig {
  std::string location;   // a file path, or an http:// / https:// URL
  bool discover = false;  // location is the issuer: read {issuer}/.well-known/openid-configuration's jwks_uri
  std::string ca_file;    // CA certificates for https ("" = the system's)
  int refresh_s = 300;
  int min_refresh_s = 10;  // between refreshes triggered by unknown key ids
  int timeout_ms = 5000;
  size_t max_bytes = 1 << 20;
};

class JwksSource {
 public:
  static Result<std::shared_ptr<JwksSource>> create(JwksSourceConfig config);
  ~JwksSource();
  JwksSource(const JwksSource&) = delete;
  JwksSource& operator=(const JwksSource&) = delete;

  std::shared_ptr<const JwkSet> current() const;
  // A token named a key id the set lacks: refresh now (synchronously, rate-limited); true when the set was
  // replaced.
  bool refresh_for_unknown_key();
  const std::string& where() const { return where_; }

 private:
  explicit JwksSource(JwksSourceConfig config) : config_(std::move(config)) {}
  Result<std::shared_ptr<const JwkSet>> load() const;
  void refresher();

  const JwksSourceConfig config_;
  std::string where_;  // the JWKS's file or URL (after discovery)
  mutable std::mutex mu_;
  std::shared_ptr<const JwkSet> set_;
  std::chrono::steady_clock::time_point loaded_at_{};
  std::mutex refresh_mu_;  // one fetch at a time
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// GET `url` (http or https; redirects followed within the same schemes; certificates and host names
// verified), at most max_bytes of body. Errors name the URL and what failed.
Result<std::string> http_get(const std::string& url, const std::string& ca_file, int timeout_ms,
                             size_t max_bytes);

}  // namespace hearth::gateway
