#pragma once
// Each subcommand registers itself on the CLI11 app and runs when selected.
#include <signal.h>

#include <CLI/CLI.hpp>

#include <cstdint>

#include <functional>
#include <memory>
#include <string>

#include "core/status.h"
#include "engine/model_runner.h"
#include "model/model_files.h"

namespace hearth::app {

// The function a subcommand runs; its return value is the process exit code.
using RunFn = std::function<int()>;

void add_version_command(CLI::App& app, RunFn* run);
void add_tokenize_command(CLI::App& app, RunFn* run);
void add_model_command(CLI::App& app, RunFn* run);
void add_template_command(CLI::App& app, RunFn* run);
void add_generate_command(CLI::App& app, RunFn* run);
void add_serve_command(CLI::App& app, RunFn* run);
void add_bench_command(CLI::App& app, RunFn* run);
void add_plan_command(CLI::App& app, RunFn* run);
void add_admin_command(CLI::App& app, RunFn* run);  // also `hearth audit`
void add_gateway_command(CLI::App& app, RunFn* run);
void print_version(bool json);

}  // namespace hearth::app

namespace hearth::app {
// Registers every subcommand below (commands.cpp holds the list).
void register_all_commands(CLI::App& app, RunFn* run);
}  // namespace hearth::app

namespace hearth::app {
// For long-running servers: blocks SIGINT and SIGTERM (call before starting any thread: threads inherit the
// mask, and the caller sigwait()s on the returned set) and ignores SIGPIPE.
sigset_t block_termination_signals();
// Writes the bound port to `path` atomically (a temporary file, then rename), for scripts to read.
void write_port_file(const std::string& path, uint16_t port);
// All of standard input (the text/JSON commands read).
std::string read_stdin();
// The directory of the running executable ("" when unknown).
std::string exe_dir();
// --quantize none|q8_0|fp8 into the runner options (after apply_device_flags: q8_0 is for the CPU, fp8 for
// CUDA); 0, or 2 (a usage error, printed) otherwise.
int apply_quantize_flag(const std::string& value, RunnerOptions* options);

// --device cpu|cuda[:N] and the GPU options shared by serve and generate.
struct DeviceFlags {
  std::string device = "cpu";
  double gpu_memory_utilization = 0.9;
  std::string gpu_dtype = "auto";
  bool no_cuda_graphs = false;
};
void add_device_flags(CLI::App* cmd, DeviceFlags* flags);
// Applies the flags to the runner options; 0, or 2 (a usage error, printed).
int apply_device_flags(const DeviceFlags& flags, RunnerOptions* options);
// "cpu (avx512, 8 threads)" or "cuda (NVIDIA H100, weights 3.3 GiB, KV 60.1 GiB)" for start-up lines.
std::string describe_runner(const ModelRunner& runner);

// TLS on a listener (serve, gateway): --tls-cert, --tls-key, --tls-min-version, --tls-client-ca.
struct TlsFlags {
  std::string cert, key, min_version = "1.3", client_ca;
  bool enabled() const { return !cert.empty() || !key.empty(); }
};
void add_tls_flags(CLI::App* cmd, TlsFlags* flags);
}  // namespace hearth::app
