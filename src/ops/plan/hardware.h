#pragma once
// The accelerator catalog `hearth plan` sizes deployments with: memory, memory bandwidth, dense
// (non-sparse) tensor throughput per precision, board power, scale-up interconnect and an indicative
// price. Figures are the vendors' datasheet numbers (docs/plan.md lists each source); prices are
// indicative street prices in USD and are meant to be overridden (--gpu-price).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::ops {

struct GpuSpec {
  std::string id;            // e.g. "h100-sxm"
  std::string name;          // e.g. "NVIDIA H100 SXM5 80GB"
  double memory_gb = 0;      // usable device memory, GB (1e9 bytes)
  double bandwidth_tbs = 0;  // memory bandwidth, TB/s
  double bf16_tflops = 0;    // dense BF16/FP16 tensor TFLOPS
  double fp8_tflops = 0;     // dense FP8 tensor TFLOPS; 0 = no FP8 tensor cores
  double int8_tops = 0;      // dense INT8 tensor TOPS
  double power_w = 0;        // board power (TDP/TBP), W
  double interconnect_gbs =
      0;                 // scale-up bandwidth per GPU (NVLink, Infinity Fabric, HCCS), GB/s; PCIe-only: PCIe
  double price_usd = 0;  // indicative purchase price
  double cloud_usd_per_hour = 0;  // indicative on-demand rental per GPU-hour
  std::string source;             // datasheet
};

const std::vector<GpuSpec>& gpu_catalog();
// Accepts the id or an alias ("h100", "h100-80g" -> h100-sxm; "4090" -> rtx-4090, ...).
std::optional<GpuSpec> find_gpu(std::string_view id);

}  // namespace hearth::ops
