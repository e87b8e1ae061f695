#pragma once
// AuthnFilter: who is calling. An API key (Authorization: Bearer hk_...) is checked against the store; valid
// keys are cached (keyed by the key's SHA-256, never the key) for cache_ttl_ms, so revocation takes effect
// within that time on every replica. Every decision goes to the audit log (key prefix, path, request id;
// never the key). No valid credential: 401 with an OpenAI error object.
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/metrics.h"
#include "gateway/filter.h"
#include "gateway/record_writer.h"
#include "store/store.h"

namespace hearth::gateway {

struct AuthnConfig {
  int cache_ttl_ms = 5000;
  size_t max_cache_entries = 100000;
};

class AuthnFilter final : public Filter {
 public:
  AuthnFilter(AuthnConfig config, store::Store& store, RecordWriter& records, Registry& metrics);
  const char* name() const override { return "authn"; }
  std::optional<Rejection> on_request(RequestContext& ctx) override;

  // The credential of an Authorization header value ("Bearer X" -> X; "" when absent or malformed).
  static std::string_view bearer_token(std::string_view authorization);

 private:
  struct Cached {
    store::ApiKeyInfo info;
    Clock::time_point until;
  };
  Rejection deny(RequestContext& ctx, const std::string& who, const char* reason, std::string message);

  const AuthnConfig config_;
  store::Store& store_;
  RecordWriter& records_;
  CounterFamily* failures_;
  std::mutex mu_;
  std::unordered_map<std::string, Cached> cache_;  // SHA-256 hex of the key -> its record
};

}  // namespace hearth::gateway
