#pragma once
// --config FILE.yaml for a command with many options (hearth gateway): a YAML mapping whose keys are the
// command's long option names without the dashes. Nested mappings join their keys with '-' (`tls: {cert: a}`
// is `--tls-cert a`), '_' and '-' are the same, sequences are repeated options, booleans are flags. Options
// given on the command line win over the file; unknown keys are errors naming the key; every value is
// checked exactly as on the command line (yaml-cpp parses, CLI11 validates).
#include <CLI/CLI.hpp>

#include <string>

#include "core/status.h"

namespace hearth::app {

// Adds --config FILE to `cmd` (stored in `path`).
void add_yaml_config_option(CLI::App* cmd, std::string* path);
// After parsing: applies the file's options that the command line did not give.
Status apply_yaml_config(CLI::App* cmd, const std::string& path);

}  // namespace hearth::app
