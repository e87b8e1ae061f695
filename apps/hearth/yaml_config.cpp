#include "yaml_config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace hearth::app {
namespace {

struct Item {
  std::string name;
  std::vector<std::string> values;
};

Status flatten(const YAML::Node& map, const std::string& prefix, int depth, std::vector<Item>& out) {
  if (depth > 4) return make_error(ErrorCode::kInvalidArgument, "mappings nested deeper than 4 levels");
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) return make_error(ErrorCode::kInvalidArgument, "keys must be plain names");
    std::string key = kv.first.Scalar();
    std::replace(key.begin(), key.end(), '_', '-');
    const std::string name = prefix.empty() ? key : prefix + "-" + key;
    const YAML::Node& v = kv.second;
    if (v.IsMap()) {
      HEARTH_RETURN_IF_ERROR(flatten(v, name, depth + 1, out));
      continue;
    }
    Item item{name, {}};
    if (v.IsSequence()) {
      for (const auto& e : v) {
        if (!e.IsScalar())
          return make_error(ErrorCode::kInvalidArgument, "'{}': list entries must be plain values", name);
        item.values.push_back(e.Scalar());
      }
    } else if (v.IsScalar()) {
      item.values.push_back(v.Scalar());
    } else {
      return make_error(ErrorCode::kInvalidArgument, "'{}' has no value", name);
    }
    out.push_back(std::move(item));
  }
  return Status::ok();
}

}  // namespace

void add_yaml_config_option(CLI::App* cmd, std::string* path) {
  cmd->add_option("--config", *path,
                  "Read options from this YAML file (long option names as keys, nested keys joined with '-'; "
                  "the command line wins)");
}

Status apply_yaml_config(CLI::App* cmd, const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return make_error(ErrorCode::kNotFound, "--config {}: cannot read the file", path);
  } catch (const YAML::Exception& e) {
    return make_error(ErrorCode::kInvalidArgument, "--config {}: not valid YAML: {}", path, e.what());
  }
  if (root.IsNull()) return Status::ok();
  if (!root.IsMap())
    return make_error(ErrorCode::kInvalidArgument, "--config {}: the file must be a mapping of option: value",
                      path);
  std::vector<Item> items;
  if (Status st = flatten(root, "", 0, items); !st.is_ok()) return st.with_context("--config " + path);
  for (const Item& item : items) {
    CLI::Option* opt = cmd->get_option_no_throw("--" + item.name);
    if (opt == nullptr || item.name == "config" || item.name == "help")
      return make_error(ErrorCode::kInvalidArgument,
                        "--config {}: '{}' is not an option of hearth {} (see --help)", path, item.name,
                        cmd->get_name());
    if (opt->count() > 0) continue;  // given on the command line
    try {
      opt->add_result(item.values);
      opt->run_callback();
    } catch (const CLI::Error& e) {
      return make_error(ErrorCode::kInvalidArgument, "--config {}: '{}': {}", path, item.name, e.what());
    }
  }
  return Status::ok();
}

}  // namespace hearth::app
