#pragma once
// Query strings of the gateway's own endpoints (/v1/usage, /admin/v1/usage).
#include <string>
#include <string_view>

namespace hearth::gateway {

// The raw value of query parameter `key` in a request target ("" when absent); see url_decode.
std::string query_param(std::string_view target, std::string_view key);
// %XX and '+' decoding; false on a malformed escape.
bool url_decode(std::string_view in, std::string& out);

}  // namespace hearth::gateway
