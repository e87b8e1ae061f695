// libFuzzer target for the gateway's credential parsing: JWTs and JWKS (gateway/jwt.h), HTTP Basic
// credentials and LDAP filter escaping (gateway/ldap_auth.h). Input: [selector byte][bytes]. Selector even:
// the bytes are a token verified against a fixed key set (an ES256 key: P-256's generator as the public
// point); 1 mod 4: a JWKS document; 3 mod 4: an Authorization header value for basic_credentials, and a
// user name to escape. Checks: no crash, no read out of bounds (ASan), a token that verifies has an exp
// claim (forged signatures cannot pass: the private key is unknown), Basic users are non-empty and
// colon-free, and an escaped value has no filter metacharacter left.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>

#include "gateway/jwt.h"
#include "gateway/ldap_auth.h"

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
  } else if (data[0] % 4 == 1) {
    auto s = hearth::gateway::JwkSet::parse(in);
    if (s.is_ok() && s->size() == 0) __builtin_trap();
  } else {
    if (auto c = hearth::gateway::basic_credentials(in)) {
      if (c->user.empty() || c->user.find(':') != std::string::npos) __builtin_trap();
    }
    const std::string e = hearth::gateway::ldap_escape_filter_value(in);
    for (size_t i = 0; i < e.size(); ++i) {
      const char ch = e[i];
      if (ch == '*' || ch == '(' || ch == ')' || ch == '\0') __builtin_trap();
      if (ch == '\\') {  // every backslash starts a two-hex-digit escape
        if (i + 2 >= e.size() || !std::isxdigit(static_cast<unsigned char>(e[i + 1])) ||
            !std::isxdigit(static_cast<unsigned char>(e[i + 2])))
          __builtin_trap();
        i += 2;
      }
    }
  }
  return 0;
}
