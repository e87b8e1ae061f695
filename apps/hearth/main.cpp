// hearth: private deployment of DeepSeek models. Subcommands live in cmd_*.cpp.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "commands.h"
#include "core/log.h"

int main(int argc, char** argv) {
  using namespace hearth;
  CLI::App app{"hearth: serve, secure, meter and plan private DeepSeek deployments"};
  app.require_subcommand(0, 1);
  bool version = false;
  std::string log_level = "info";
  app.add_flag("--version", version, "Print the version and whether CUDA support is compiled in");
  app.add_option("--log-level", log_level, "debug|info|warn|error|off")->capture_default_str();

  app::RunFn run;
  app::add_version_command(app, &run);
  app::register_all_commands(app, &run);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help / the usage error
    return code == 0 ? 0 : 2;      // usage errors exit 2
  }
  LogLevel level;
  if (!parse_log_level(log_level, &level)) {
    std::fprintf(stderr, "error: --log-level must be one of debug, info, warn, error, off\n");
    return 2;
  }
  set_log_level(level);
  if (version) {
    app::print_version(false);
    return 0;
  }
  if (!run) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  }
  try {
    return run();
  } catch (const std::exception& e) {
    // Subcommands report expected failures through Status; this is the last line of defence.
    std::fprintf(stderr, "error: unexpected failure: %s\n", e.what());
    return 70;
  }
}
