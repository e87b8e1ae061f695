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

}  // namespace hearth::app
