#include "server/openssl_error.h"

#include <openssl/err.h>

namespace hearth::server {

std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "no detail";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

}  // namespace hearth::server
