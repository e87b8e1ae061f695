#include "model/safetensors.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/json_guard.h"

// SafetensorsCheckpoint: a directory of safetensors files, with or without an index.
namespace hearth {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kIndexName = "model.safetensors.index.json";
constexpr std::string_view kSingleName = "model.safetensors";
constexpr std::string_view kExtension = ".safetensors";

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Shard names in an index are plain file names inside the checkpoint directory.
std::string shard_name_problem(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name.find('/') != std::string_view::npos || name.find('\\') != std::string_view::npos) {
    return "contains a path separator";
  }
  if (name.find("..") != std::string_view::npos) return "contains '..'";
  if (name.find('\0') != std::string_view::npos) return "contains a NUL character";
  if (name.size() <= kExtension.size() || !ends_with(name, kExtension)) return "does not end in .safetensors";
  return {};
}

// Parses untrusted JSON into a DOM, rejecting duplicate object keys (nlohmann keeps the last).
Result<nlohmann::json> parse_json_no_duplicates(std::string_view text, const std::string& what) {
  HEARTH_RETURN_IF_ERROR(check_json_limits(
      text, JsonLimits{SafetensorsLimits::kMaxIndexBytes, SafetensorsLimits::kMaxJsonDepth}, what));
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto callback = [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) {
      open_objects.emplace_back();
    } else if (event == E::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == E::key && !open_objects.empty() && duplicate.empty()) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(k).second) duplicate = k;
    }
    return true;
  };
  try {
    nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), callback);
    if (!duplicate.empty()) return make_error(ErrorCode::kCorrupt, "{}: duplicate key '{}'", what, duplicate);
    return j;
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kResourceExhausted, "{}: out of memory while parsing", what);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kCorrupt, "{}: not valid JSON: {}", what, e.what());
  }
}

}  // namespace

Result<std::shared_ptr<SafetensorsCheckpoint>> SafetensorsCheckpoint::open_dir(const std::string& dir) {
  auto ckpt = std::shared_ptr<SafetensorsCheckpoint>(new SafetensorsCheckpoint());
  std::error_code ec;
  const fs::file_status st = fs::status(dir, ec);
  if (fs::is_regular_file(st) && ends_with(dir, kExtension)) {
    HEARTH_ASSIGN_OR_RETURN(auto file, SafetensorsFile::open(dir));
    HEARTH_RETURN_IF_ERROR(ckpt->add_file(std::move(file)));
    ckpt->finish();
    return ckpt;
  }
  if (!fs::is_directory(st)) {
    return make_error(ErrorCode::kNotFound, "{}: not a directory or .safetensors file", dir);
  }
  const fs::path base(dir);
  const std::string index_path = (base / kIndexName).string();
  const std::string single_path = (base / kSingleName).string();
  if (fs::exists(index_path, ec)) {
    HEARTH_RETURN_IF_ERROR(ckpt->open_index(dir, index_path));
  } else if (fs::exists(single_path, ec)) {
    HEARTH_ASSIGN_OR_RETURN(auto file, SafetensorsFile::open(single_path));
    HEARTH_RETURN_IF_ERROR(ckpt->add_file(std::move(file)));
  } else {
    std::vector<std::string> names;
    for (fs::directory_iterator it(base, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      std::error_code type_ec;
      if (ends_with(name, kExtension) && it->is_regular_file(type_ec)) names.push_back(name);
    }
    if (ec) return make_error(ErrorCode::kIo, "{}: cannot list directory: {}", dir, ec.message());
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      HEARTH_ASSIGN_OR_RETURN(auto file, SafetensorsFile::open((base / name).string()));
      HEARTH_RETURN_IF_ERROR(ckpt->add_file(std::move(file)));
    }
  }
  if (ckpt->by_name_.empty() && ckpt->files_.empty()) {
    return make_error(ErrorCode::kNotFound,
                      "{}: no model weights found (expected {}, {} or *.safetensors files)", dir, kIndexName,
                      kSingleName);
  }
  ckpt->finish();
  return ckpt;
}

Status SafetensorsCheckpoint::add_file(std::shared_ptr<SafetensorsFile> file) {
  for (const TensorView& t : file->tensors()) {
    auto [it, inserted] = by_name_.emplace(t.name, &t);
    if (!inserted) {
      return make_error(ErrorCode::kCorrupt, "tensor '{}' is in two files: {} and {}", t.name,
                        it->second->file, file->path());
    }
  }
  files_.push_back(std::move(file));
  return Status::ok();
}

Status SafetensorsCheckpoint::open_index(const std::string& dir, const std::string& index_path) {
  HEARTH_ASSIGN_OR_RETURN(std::string text, read_file(index_path, SafetensorsLimits::kMaxIndexBytes));
  HEARTH_ASSIGN_OR_RETURN(nlohmann::json index, parse_json_no_duplicates(text, index_path));
  if (!index.is_object()) return make_error(ErrorCode::kCorrupt, "{}: not a JSON object", index_path);
  auto wm = index.find("weight_map");
  if (wm == index.end() || !wm->is_object()) {
    return make_error(ErrorCode::kCorrupt, "{}: 'weight_map' is missing or not an object", index_path);
  }
  if (wm->empty()) return make_error(ErrorCode::kNotFound, "{}: 'weight_map' lists no tensors", index_path);

  std::unordered_map<std::string, std::string> shard_of;  // tensor -> shard file name
  std::set<std::string> shards;
  for (const auto& [name, value] : wm->items()) {
    if (!value.is_string()) {
      return make_error(ErrorCode::kCorrupt, "{}: weight_map['{}'] is not a string", index_path, name);
    }
    const std::string& shard = value.get_ref<const std::string&>();
    if (std::string problem = shard_name_problem(shard); !problem.empty()) {
      return make_error(ErrorCode::kCorrupt,
                        "{}: weight_map['{}']: shard name '{}' {} (must be a plain file name)", index_path,
                        name, shard, problem);
    }
    if (std::string problem = safetensors_name_problem(name); !problem.empty()) {
      return make_error(ErrorCode::kCorrupt, "{}: weight_map: {}", index_path, problem);
    }
    shard_of.emplace(name, shard);
    shards.insert(shard);
  }
  const fs::path base(dir);
  for (const std::string& shard : shards) {
    const std::string shard_path = (base / shard).string();
    std::error_code ec;
    if (!fs::exists(shard_path, ec)) {
      return make_error(ErrorCode::kNotFound, "{}: shard '{}' named in the weight_map does not exist",
                        index_path, shard);
    }
    HEARTH_ASSIGN_OR_RETURN(auto file, SafetensorsFile::open(shard_path));
    for (const TensorView& t : file->tensors()) {
      auto it = shard_of.find(t.name);
      if (it == shard_of.end()) {
        return make_error(ErrorCode::kCorrupt, "{}: tensor '{}' in shard '{}' is not listed in the index",
                          index_path, t.name, shard);
      }
      if (it->second != shard) {
        return make_error(ErrorCode::kCorrupt,
                          "{}: tensor '{}' is in shard '{}' but the index places it in '{}'", index_path,
                          t.name, shard, it->second);
      }
    }
    HEARTH_RETURN_IF_ERROR(add_file(std::move(file)));
  }
  for (const auto& [name, shard] : shard_of) {
    if (by_name_.find(name) == by_name_.end()) {
      return make_error(ErrorCode::kCorrupt, "{}: tensor '{}' is listed in shard '{}' but is not there",
                        index_path, name, shard);
    }
  }
  return Status::ok();
}

void SafetensorsCheckpoint::finish() {
  all_.clear();
  all_.reserve(by_name_.size());
  for (const auto& [name, view] : by_name_) all_.push_back(view);  // map order: sorted by name
}

const TensorView* SafetensorsCheckpoint::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

}  // namespace hearth
