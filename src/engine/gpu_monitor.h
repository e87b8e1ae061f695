#pragma once
// GpuMonitor: a GPU's utilisation, memory, power, temperature and energy through NVML, loaded with
// dlopen("libnvidia-ml.so.1") at run time, so hearth needs no NVML at build time and runs where the
// driver is absent (open() then says why). Samples are cached for a short while: /metrics reads
// several values per scrape. Thread-safe.
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace hearth {

struct GpuSample {
  double utilization = 0;  // fraction of the last sample period a kernel ran (0..1)
  uint64_t memory_used_bytes = 0;
  uint64_t memory_total_bytes = 0;
  double power_watts = 0;
  double temperature_celsius = 0;
  double energy_joules = 0;  // since the monitor was opened
};

class GpuMonitor {
 public:
  // nullptr with `why` set when NVML or the device is unavailable.
  static std::unique_ptr<GpuMonitor> open(int device, std::string* why);
  ~GpuMonitor();
  GpuMonitor(const GpuMonitor&) = delete;
  GpuMonitor& operator=(const GpuMonitor&) = delete;

  GpuSample sample();
  const std::string& name() const { return name_; }
  int index() const { return index_; }

 private:
  struct Api;
  GpuMonitor() = default;

  std::unique_ptr<Api> api_;
  void* device_ = nullptr;  // nvmlDevice_t
  int index_ = 0;
  std::string name_;
  uint64_t energy_start_mj_ = 0;
  bool has_energy_ = false;
  std::mutex mu_;
  GpuSample last_;
  std::chrono::steady_clock::time_point last_at_{};
};

}  // namespace hearth
