// libFuzzer target for JWT and JWKS parsing (gateway/jwt.h). Input: [selector byte][bytes]. Selector even:
// the bytes are a token verified against a fixed key set (an ES256 key: P-256's generator as the public
// point); odd: the bytes are a JWKS document. Checks: no crash, no read out of bounds (ASan), and a token
// that verifies has an exp claim (forged signatures cannot pass: the private key is unknown).
#include <cstddef>
#include <cstdint>
#include <string>

#include "gateway/jwt.h"

namespace {

std::string hex_to_b64url(const char* hex) {
  std::string bytes;
  for (size_t i = 0; hex[i] && hex[i + 1]; i += 2)
    bytes.push_back(static_cast<char>(std::stoi(std::string(hex + i, 2), nullptr, 16)));
  return hearth::gateway::base64url_encode(bytes);
}

const hearth::gateway::JwkSet& fixed_keys() {
  static const hearth::gateway::JwkSet keys = [] {
    const std::string jwks =
        R"({"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":")" +
        hex_to_b64url("6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296") + R"(","y":")" +
        hex_to_b64url("4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5") + R"("}]})";
    auto s = hearth::gateway::JwkSet::parse(jwks);
    if (!s.is_ok()) __builtin_trap();
    return std::move(*s);
  }();
  return keys;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] % 2 == 0) {
    hearth::gateway::JwtPolicy p;
    p.audience = "hearth";
    auto r = hearth::gateway::verify_jwt(in, fixed_keys(), p, 1800000000);
    if (r.is_ok() && r->expires_s < 0) __builtin_trap();
  } else {
    auto s = hearth::gateway::JwkSet::parse(in);
    if (s.is_ok() && s->size() == 0) __builtin_trap();
  }
  return 0;
}
