// Helpers shared by the subcommands: reading stdin, finding the executable.
#include <cstdio>
#include <filesystem>

#include "commands.h"

namespace hearth::app {

std::string read_stdin() {
  std::string s;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) s.append(buf, n);
  return s;
}

std::string exe_dir() {
  std::error_code ec;
  const auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : p.parent_path().string();
}

int apply_quantize_flag(const std::string& value, RunnerOptions* options) {
  if (value == "q8_0") {
    options->weights.quantize = LoadQuantization::kQ8_0;
  } else if (value != "none") {
    std::fprintf(stderr, "error: --quantize must be none or q8_0, got '%s'\n", value.c_str());
    return 2;
  }
  return 0;
}

}  // namespace hearth::app
