#pragma once
// OpenSSL's reason for its last failure on this thread, for error messages (the error queue is cleared).
#include <string>

namespace hearth::server {

std::string openssl_error();  // "no detail" when OpenSSL recorded none

}  // namespace hearth::server
