#pragma once
// DecodeFilter: reads what the other filters need from an OpenAI request body (model, stream, max_tokens,
// stream_options) and rewrites the forwarded body where metering needs it: a streamed request gets
// stream_options.include_usage (the gateway drops the extra usage chunk again when the client did not ask
// for it), and a request without max_tokens gets default_max_tokens (what quota reserved). Runs after
// authn: an unauthenticated client learns nothing about the body's validity. Bodies that are not JSON
// objects, or nest too deep, get 400.
#include "gateway/filter.h"

namespace hearth::gateway {

struct DecodeConfig {
  int64_t default_max_tokens = 4096;
  int64_t max_body_bytes = 16 << 20;
};

class DecodeFilter final : public Filter {
 public:
  explicit DecodeFilter(DecodeConfig config) : config_(config) {}
  const char* name() const override { return "decode"; }
  std::optional<Rejection> on_request(RequestContext& ctx) override;

 private:
  const DecodeConfig config_;
};

}  // namespace hearth::gateway
