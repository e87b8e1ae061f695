// Projects inside tenants and the administrators' failed sign-ins, in SQL both backends run
// (store_internal.h: SqlRunner).
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "store/store_internal.h"

namespace hearth::store::detail {
namespace {

Status check_name(const std::string& name, const char* what) {
  if (name.empty() || name.size() > 128 || std::any_of(name.begin(), name.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
      }))
    return make_error(ErrorCode::kInvalidArgument, "a {} name has 1-128 characters and no control characters",
                      what);
  return Status::ok();
}

Status check_tenant(SqlRunner& db, const std::string& tenant) {
  SqlRows rows;
  HEARTH_RETURN_IF_ERROR(db.run("SELECT 1 FROM tenants WHERE name = $1", {tenant}, &rows).status());
  if (rows.empty()) return make_error(ErrorCode::kNotFound, "no tenant '{}'", tenant);
  return Status::ok();
}

}  // namespace

Status create_project(SqlRunner& db, const std::string& tenant, const std::string& name, int64_t now_ms) {
  HEARTH_RETURN_IF_ERROR(check_name(name, "project"));
  HEARTH_RETURN_IF_ERROR(check_tenant(db, tenant));
  HEARTH_ASSIGN_OR_RETURN(
      int64_t added,
      db.run("INSERT INTO projects (tenant, name, created_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
             {tenant, name, now_ms}));
  if (added == 0)
    return make_error(ErrorCode::kInvalidArgument, "tenant '{}' already has a project '{}'", tenant, name);
  return Status::ok();
}

Result<std::vector<Project>> list_projects(SqlRunner& db, const std::string& tenant) {
  SqlRows rows;
  HEARTH_RETURN_IF_ERROR(db.run("SELECT tenant, name, created_ms FROM projects WHERE ($1 = '' OR tenant = $1)"
                                " ORDER BY tenant, name",
                                {tenant}, &rows)
                             .status());
  std::vector<Project> out;
  for (const auto& r : rows)
    if (r.size() == 3) out.push_back({r[0], r[1], std::strtoll(r[2].c_str(), nullptr, 10)});
  return out;
}

Status delete_project(SqlRunner& db, const std::string& tenant, const std::string& name) {
  SqlRows rows;
  HEARTH_RETURN_IF_ERROR(db.run("SELECT COUNT(*) FROM api_keys k JOIN tenants t ON t.id = k.tenant_id"
                                " WHERE t.name = $1 AND k.project = $2 AND k.revoked_ms = 0",
                                {tenant, name}, &rows)
                             .status());
  if (!rows.empty() && !rows[0].empty() && rows[0][0] != "0")
    return make_error(ErrorCode::kInvalidArgument,
                      "project '{}' of tenant '{}' still has {} active key(s): revoke them first", name,
                      tenant, rows[0][0]);
  HEARTH_ASSIGN_OR_RETURN(int64_t gone,
                          db.run("DELETE FROM projects WHERE tenant = $1 AND name = $2", {tenant, name}));
  if (gone == 0) return make_error(ErrorCode::kNotFound, "tenant '{}' has no project '{}'", tenant, name);
  return Status::ok();
}

Status check_key_scope(SqlRunner& db, const std::string& tenant, const KeyScope& scope) {
  if (!scope.owner.empty()) HEARTH_RETURN_IF_ERROR(check_name(scope.owner, "key owner"));
  if (scope.project.empty()) return Status::ok();
  SqlRows rows;
  HEARTH_RETURN_IF_ERROR(
      db.run("SELECT 1 FROM projects WHERE tenant = $1 AND name = $2", {tenant, scope.project}, &rows)
          .status());
  if (rows.empty())
    return make_error(ErrorCode::kNotFound, "tenant '{}' has no project '{}' (hearth admin project create)",
                      tenant, scope.project);
  return Status::ok();
}

Result<bool> admin_login_failed(SqlRunner& db, const std::string& name, int64_t max_failures,
                                int64_t lockout_ms, int64_t now_ms) {
  SqlRows rows;
  HEARTH_RETURN_IF_ERROR(
      db.run("UPDATE admins SET"
             " locked_until_ms = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until_ms END,"
             " failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END"
             " WHERE name = $1 RETURNING locked_until_ms",
             {name, max_failures, now_ms + lockout_ms}, &rows)
          .status());
  if (rows.empty() || rows[0].empty()) return make_error(ErrorCode::kNotFound, "no administrator '{}'", name);
  return std::strtoll(rows[0][0].c_str(), nullptr, 10) > now_ms;
}

}  // namespace hearth::store::detail
