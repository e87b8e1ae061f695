#include "commands.h"

namespace hearth::app {

void register_all_commands(CLI::App& app, RunFn* run) {
  add_tokenize_command(app, run);
  add_model_command(app, run);
  add_template_command(app, run);
  add_generate_command(app, run);
  add_serve_command(app, run);
  add_bench_command(app, run);
  add_plan_command(app, run);
  add_admin_command(app, run);
  add_gateway_command(app, run);
}

}  // namespace hearth::app
