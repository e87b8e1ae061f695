#include "commands.h"

namespace hearth::app {

void register_all_commands(CLI::App& app, RunFn* run) {
  (void)app;
  (void)run;
}

}  // namespace hearth::app
