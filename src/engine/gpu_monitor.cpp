#include "engine/gpu_monitor.h"

#include <dlfcn.h>

#include <fmt/format.h>

namespace hearth {

// The few NVML entry points used, with the C ABI of nvml.h (stable across driver versions).
struct GpuMonitor::Api {
  using Ret = int;  // nvmlReturn_t, 0 = NVML_SUCCESS
  struct Utilization {
    unsigned int gpu, memory;
  };
  struct Memory {
    unsigned long long total, free, used;
  };
  void* lib = nullptr;
  Ret (*init)() = nullptr;
  Ret (*shutdown)() = nullptr;
  Ret (*handle_by_index)(unsigned int, void**) = nullptr;
  Ret (*name)(void*, char*, unsigned int) = nullptr;
  Ret (*utilization)(void*, Utilization*) = nullptr;
  Ret (*memory)(void*, Memory*) = nullptr;
  Ret (*power)(void*, unsigned int*) = nullptr;             // milliwatts
  Ret (*temperature)(void*, int, unsigned int*) = nullptr;  // sensor 0 = GPU die
  Ret (*energy)(void*, unsigned long long*) = nullptr;      // millijoules since driver load
  const char* (*error_string)(Ret) = nullptr;

  ~Api() {
    if (shutdown != nullptr) shutdown();
    if (lib != nullptr) dlclose(lib);
  }
};

std::unique_ptr<GpuMonitor> GpuMonitor::open(int device, std::string* why) {
  auto api = std::make_unique<Api>();
  api->lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (api->lib == nullptr) {
    *why = fmt::format("NVML is not available ({}); GPU metrics are off", dlerror());
    return nullptr;
  }
  auto sym = [&](const char* n) { return dlsym(api->lib, n); };
  api->init = reinterpret_cast<Api::Ret (*)()>(sym("nvmlInit_v2"));
  api->handle_by_index =
      reinterpret_cast<Api::Ret (*)(unsigned int, void**)>(sym("nvmlDeviceGetHandleByIndex_v2"));
  api->name = reinterpret_cast<Api::Ret (*)(void*, char*, unsigned int)>(sym("nvmlDeviceGetName"));
  api->utilization =
      reinterpret_cast<Api::Ret (*)(void*, Api::Utilization*)>(sym("nvmlDeviceGetUtilizationRates"));
  api->memory = reinterpret_cast<Api::Ret (*)(void*, Api::Memory*)>(sym("nvmlDeviceGetMemoryInfo"));
  api->power = reinterpret_cast<Api::Ret (*)(void*, unsigned int*)>(sym("nvmlDeviceGetPowerUsage"));
  api->temperature =
      reinterpret_cast<Api::Ret (*)(void*, int, unsigned int*)>(sym("nvmlDeviceGetTemperature"));
  api->energy =
      reinterpret_cast<Api::Ret (*)(void*, unsigned long long*)>(sym("nvmlDeviceGetTotalEnergyConsumption"));
  api->error_string = reinterpret_cast<const char* (*)(Api::Ret)>(sym("nvmlErrorString"));
  auto* shutdown = reinterpret_cast<Api::Ret (*)()>(sym("nvmlShutdown"));
  if (api->init == nullptr || api->handle_by_index == nullptr || api->utilization == nullptr ||
      api->memory == nullptr || shutdown == nullptr) {
    *why = "libnvidia-ml.so.1 lacks the NVML functions hearth uses; GPU metrics are off";
    return nullptr;
  }
  if (const Api::Ret r = api->init(); r != 0) {
    *why =
        fmt::format("nvmlInit failed: {}", api->error_string != nullptr ? api->error_string(r) : "unknown");
    return nullptr;
  }
  api->shutdown = shutdown;
  std::unique_ptr<GpuMonitor> m(new GpuMonitor());
  if (const Api::Ret r = api->handle_by_index(static_cast<unsigned>(device), &m->device_); r != 0) {
    *why = fmt::format("NVML has no GPU {}: {}", device,
                       api->error_string != nullptr ? api->error_string(r) : "");
    return nullptr;
  }
  m->index_ = device;
  char name[96] = {};
  if (api->name != nullptr && api->name(m->device_, name, sizeof name) == 0) m->name_ = name;
  unsigned long long mj = 0;
  if (api->energy != nullptr && api->energy(m->device_, &mj) == 0) {
    m->has_energy_ = true;
    m->energy_start_mj_ = mj;
  }
  m->api_ = std::move(api);
  return m;
}

GpuMonitor::~GpuMonitor() = default;

GpuSample GpuMonitor::sample() {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  if (last_at_ != std::chrono::steady_clock::time_point{} && now - last_at_ < std::chrono::milliseconds(200))
    return last_;
  GpuSample s;
  Api::Utilization u{};
  if (api_->utilization(device_, &u) == 0) s.utilization = u.gpu / 100.0;
  Api::Memory mem{};
  if (api_->memory(device_, &mem) == 0) {
    s.memory_used_bytes = mem.used;
    s.memory_total_bytes = mem.total;
  }
  unsigned int mw = 0;
  if (api_->power != nullptr && api_->power(device_, &mw) == 0) s.power_watts = mw / 1000.0;
  unsigned int c = 0;
  if (api_->temperature != nullptr && api_->temperature(device_, 0, &c) == 0) s.temperature_celsius = c;
  unsigned long long mj = 0;
  if (has_energy_ && api_->energy(device_, &mj) == 0 && mj >= energy_start_mj_)
    s.energy_joules = static_cast<double>(mj - energy_start_mj_) / 1000.0;
  last_ = s;
  last_at_ = now;
  return s;
}

}  // namespace hearth
