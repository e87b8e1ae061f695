#include "gateway/admin_identity.h"

#include <fmt/format.h>

#include <algorithm>

#include "store/store.h"

namespace hearth::gateway {

std::vector<std::string> claim_roles(const nlohmann::json& claims, std::string_view path) {
  const nlohmann::json* at = &claims;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t dot = std::min(path.find('.', start), path.size());
    const std::string key(path.substr(start, dot - start));
    if (!at->is_object()) return {};
    auto it = at->find(key);
    if (it == at->end()) return {};
    at = &*it;
    start = dot + 1;
  }
  std::vector<std::string> out;
  if (at->is_array()) {
    for (const auto& v : *at)
      if (v.is_string() && out.size() < 1000) out.push_back(v.get<std::string>());
  } else if (at->is_string()) {
    const std::string s = at->get<std::string>();
    size_t i = 0;
    while (i < s.size() && out.size() < 1000) {
      const size_t e = std::min(s.find(' ', i), s.size());
      if (e > i) out.push_back(s.substr(i, e - i));
      i = e + 1;
    }
  }
  return out;
}

Result<std::string> admin_role_of(const std::vector<std::string>& have, const RoleMap& map, bool dns) {
  std::string role;
  for (const auto& entry : map) {
    const std::string& name = entry.first;
    const std::string& mapped = entry.second;
    const bool member = std::any_of(have.begin(), have.end(), [&](const std::string& h) {
      return dns ? ldap_normalize_dn(h) == ldap_normalize_dn(name) : h == name;
    });
    if (!member) continue;
    if (!role.empty() && role != mapped)
      return make_error(
          ErrorCode::kInvalidArgument,
          "the identity maps to two administrator roles ({} and {}): separation of duties allows one", role,
          mapped);
    role = mapped;
  }
  if (role.empty()) return make_error(ErrorCode::kNotFound, "the identity has no administrator role");
  return role;
}

Result<std::pair<std::string, std::string>> parse_role_mapping(std::string_view spec) {
  const size_t eq = spec.rfind('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == spec.size())
    return make_error(ErrorCode::kInvalidArgument, "role mapping '{}': expected NAME=ROLE", spec);
  const std::string role(spec.substr(eq + 1));
  if (role != "system" && role != "security" && role != "audit")
    return make_error(ErrorCode::kInvalidArgument,
                      "role mapping '{}': the role must be system, security or audit", spec);
  return std::pair<std::string, std::string>(std::string(spec.substr(0, eq)), role);
}

std::string oidc_admin_name(std::string_view subject) {
  if (subject.size() + 5 <= 64 && std::none_of(subject.begin(), subject.end(),
                                               [](char c) { return static_cast<unsigned char>(c) <= 0x20; }))
    return "oidc:" + std::string(subject);
  return "oidc:" + store::credential_hash(subject).substr(0, 32);
}

}  // namespace hearth::gateway
