#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "hearth/build_info.h"
#include "kernels/device_info.h"

namespace hearth::app {

void print_version(bool json) {
  auto acc = kernels::query_accelerators();
  if (json) {
    nlohmann::json j;
    j["version"] = HEARTH_VERSION;
    j["build_type"] = HEARTH_BUILD_TYPE;
    j["cuda"]["compiled"] = acc.cuda_compiled;
    j["cuda"]["runtime_version"] = acc.cuda_runtime_version;
    j["cuda"]["driver_version"] = acc.cuda_driver_version;
    j["cuda"]["devices"] = nlohmann::json::array();
    for (const auto& d : acc.devices) {
      j["cuda"]["devices"].push_back({{"index", d.index},
                                      {"name", d.name},
                                      {"compute_capability", fmt::format("{}.{}", d.cc_major, d.cc_minor)},
                                      {"memory_bytes", d.total_memory_bytes}});
    }
    if (!acc.error.empty()) j["cuda"]["note"] = acc.error;
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("hearth {} ({})\n", HEARTH_VERSION, HEARTH_BUILD_TYPE);
  if (!acc.cuda_compiled) {
    fmt::print("CUDA support: no (built without CUDA)\n");
    return;
  }
  fmt::print("CUDA support: yes (runtime {}.{}", acc.cuda_runtime_version / 1000,
             (acc.cuda_runtime_version % 1000) / 10);
  if (acc.cuda_driver_version > 0) {
    fmt::print(", driver {}.{}", acc.cuda_driver_version / 1000, (acc.cuda_driver_version % 1000) / 10);
  }
  fmt::print(")\n");
  for (const auto& d : acc.devices) {
    fmt::print("  GPU {}: {} (sm_{}{}, {:.1f} GiB)\n", d.index, d.name, d.cc_major, d.cc_minor,
               static_cast<double>(d.total_memory_bytes) / (1024.0 * 1024 * 1024));
  }
  if (acc.devices.empty()) fmt::print("  no usable GPU: {}\n", acc.error);
}

void add_version_command(CLI::App& app, RunFn* run) {
  auto* cmd = app.add_subcommand("version", "Print the version and whether CUDA support is compiled in");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print as JSON");
  cmd->callback([run, json] {
    *run = [json] {
      print_version(*json);
      return 0;
    };
  });
}

}  // namespace hearth::app
