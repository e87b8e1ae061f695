// Helpers shared by the subcommands: reading stdin, finding the executable.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "commands.h"

#include <fmt/format.h>

#include "kernels/cpu/cpu_features.h"

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
    if (options->device == RunnerDevice::kCuda) {
      std::fprintf(stderr, "error: --quantize q8_0 is a CPU format; on --device cuda use --quantize fp8\n");
      return 2;
    }
    options->weights.quantize = LoadQuantization::kQ8_0;
  } else if (value == "fp8") {
    if (options->device != RunnerDevice::kCuda) {
      std::fprintf(stderr, "error: --quantize fp8 needs --device cuda (on the CPU use q8_0)\n");
      return 2;
    }
    options->gpu.fp8_weights = true;
  } else if (value != "none") {
    std::fprintf(stderr, "error: --quantize must be none, q8_0 (CPU) or fp8 (CUDA), got '%s'\n",
                 value.c_str());
    return 2;
  }
  return 0;
}

void add_device_flags(CLI::App* cmd, DeviceFlags* f) {
  cmd->add_option("--device", f->device, "Where to run: cpu, cuda or cuda:N (GPU N)")->capture_default_str();
  cmd->add_option(
         "--gpu-memory-utilization", f->gpu_memory_utilization,
         "CUDA: fraction of the GPU's memory to use; the KV cache gets what weights and buffers leave")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 1.0));
  cmd->add_option(
         "--gpu-dtype", f->gpu_dtype,
         "CUDA: compute precision: auto (f32 for f32 checkpoints, else bf16; FP8 is dequantized to bf16), "
         "bf16 or f32")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "bf16", "f32"}));
  cmd->add_flag("--no-cuda-graphs", f->no_cuda_graphs, "CUDA: launch decode steps kernel by kernel");
}

int apply_device_flags(const DeviceFlags& f, RunnerOptions* o) {
  if (f.device == "cpu") {
    o->device = RunnerDevice::kCpu;
    return 0;
  }
  if (f.device.rfind("cuda", 0) != 0) {
    std::fprintf(stderr, "error: --device must be cpu, cuda or cuda:N, got '%s'\n", f.device.c_str());
    return 2;
  }
  o->device = RunnerDevice::kCuda;
  if (f.device.size() > 4) {
    const std::string idx = f.device.substr(4);
    if (idx.size() < 2 || idx[0] != ':' || idx.find_first_not_of("0123456789", 1) != std::string::npos ||
        idx.size() > 4) {
      std::fprintf(stderr, "error: --device must be cpu, cuda or cuda:N, got '%s'\n", f.device.c_str());
      return 2;
    }
    o->gpu.device = std::stoi(idx.substr(1));
  }
  o->gpu.gpu_memory_utilization = f.gpu_memory_utilization;
  o->gpu.cuda_graphs = !f.no_cuda_graphs;
  o->gpu.precision = f.gpu_dtype == "f32"    ? GpuPrecision::kF32
                     : f.gpu_dtype == "bf16" ? GpuPrecision::kBF16
                                             : GpuPrecision::kAuto;
  return 0;
}

std::string describe_runner(const ModelRunner& r) {
  if (const DeviceModel* d = r.device_model(); d != nullptr) {
    const DeviceMemoryReport m = d->memory();
    return fmt::format("cuda ({}, weights {:.2f} GiB, KV {:.2f} GiB, buffers {:.2f} GiB)", m.device_name,
                       static_cast<double>(m.weight_bytes) / (1 << 30),
                       static_cast<double>(m.kv_bytes) / (1 << 30),
                       static_cast<double>(m.activation_bytes) / (1 << 30));
  }
  return fmt::format("cpu ({} kernels, {} threads)", cpu_isa_name(cpu_isa()), r.pool().size());
}

sigset_t block_termination_signals() {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return sigs;
}

void write_port_file(const std::string& path, uint16_t port) {
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << port << "\n";
  std::filesystem::rename(tmp, path);
}

void add_tls_flags(CLI::App* cmd, TlsFlags* flags) {
  cmd->add_option("--tls-cert", flags->cert, "Serve HTTPS with this PEM certificate chain (with --tls-key)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--tls-key", flags->key, "The certificate's PEM private key")->check(CLI::ExistingFile);
  cmd->add_option("--tls-min-version", flags->min_version, "Oldest TLS version accepted: 1.3 or 1.2")
      ->check(CLI::IsMember({"1.2", "1.3"}))
      ->capture_default_str();
  cmd->add_option("--tls-client-ca", flags->client_ca,
                  "Require client certificates signed by these PEM CA certificates (mutual TLS)")
      ->check(CLI::ExistingFile);
}

}  // namespace hearth::app
