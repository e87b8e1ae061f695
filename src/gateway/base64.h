#pragma once
// Base64 (RFC 4648) for credentials: base64url without padding (JWTs, JWKs) and standard base64 with
// padding (HTTP Basic credentials, RFC 7617). Decoding is canonical: any other character, an impossible
// length, misplaced padding or non-zero bits past the last byte is refused, so one value has one spelling.
#include <string>
#include <string_view>

namespace hearth::gateway {

bool base64url_decode(std::string_view in, std::string& out);
std::string base64url_encode(std::string_view in);
// Standard alphabet (+ /), '=' padding to a multiple of 4 characters required.
bool base64_decode(std::string_view in, std::string& out);

}  // namespace hearth::gateway
