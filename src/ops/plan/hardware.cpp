#include "ops/plan/hardware.h"

#include <algorithm>
#include <cctype>

namespace hearth::ops {

const std::vector<GpuSpec>& gpu_catalog() {
  // id, name, memory GB, TB/s, BF16 TF, FP8 TF, INT8 TOPS, W, interconnect GB/s, USD, cloud USD/GPU-hour,
  // source
  static const std::vector<GpuSpec> k = {
      {"a100-40g", "NVIDIA A100 SXM4 40GB", 40, 1.555, 312, 0, 624, 400, 600, 8000, 1.3,
       "NVIDIA A100 Tensor Core GPU datasheet (2021)"},
      {"a100-80g", "NVIDIA A100 SXM4 80GB", 80, 2.039, 312, 0, 624, 400, 600, 15000, 1.8,
       "NVIDIA A100 Tensor Core GPU datasheet (2021)"},
      {"h100-sxm", "NVIDIA H100 SXM5 80GB", 80, 3.35, 989, 1979, 1979, 700, 900, 30000, 2.5,
       "NVIDIA H100 Tensor Core GPU datasheet (2023), dense figures (half the sparsity figures)"},
      {"h100-pcie", "NVIDIA H100 PCIe 80GB", 80, 2.0, 756, 1513, 1513, 350, 600, 25000, 2.1,
       "NVIDIA H100 Tensor Core GPU datasheet (2023), PCIe with NVLink bridge"},
      {"h800", "NVIDIA H800 SXM5 80GB", 80, 3.35, 989, 1979, 1979, 700, 400, 30000, 2.4,
       "NVIDIA H800 (China variant of H100 SXM, NVLink 400 GB/s)"},
      {"h20", "NVIDIA H20 96GB", 96, 4.0, 148, 296, 296, 400, 900, 12000, 1.2,
       "NVIDIA H20 product brief (2024)"},
      {"h200", "NVIDIA H200 SXM 141GB", 141, 4.8, 989, 1979, 1979, 700, 900, 35000, 3.5,
       "NVIDIA H200 Tensor Core GPU datasheet (2024)"},
      {"l20", "NVIDIA L20 48GB", 48, 0.864, 119.5, 239, 239, 275, 64, 5000, 0.7,
       "NVIDIA L20 product brief (2024), PCIe Gen4"},
      {"l40s", "NVIDIA L40S 48GB", 48, 0.864, 362, 733, 733, 350, 64, 8000, 1.0,
       "NVIDIA L40S datasheet (2023), dense figures, PCIe Gen4"},
      {"rtx-4090", "NVIDIA GeForce RTX 4090 24GB", 24, 1.008, 165, 330, 660, 450, 64, 2000, 0.4,
       "NVIDIA Ada Lovelace architecture whitepaper (2022), FP16/BF16 tensor with FP32 accumulate halved on "
       "GeForce: 165 "
       "with FP16 accumulate"},
      {"mi300x", "AMD Instinct MI300X 192GB", 192, 5.3, 1307, 2615, 2615, 750, 896, 15000, 2.5,
       "AMD Instinct MI300X datasheet (2023), dense figures"},
      {"ascend-910b", "Huawei Ascend 910B 64GB", 64, 1.6, 320, 0, 640, 400, 392, 15000, 1.5,
       "Huawei Ascend 910B public specifications (2023; FP16 ~320 TFLOPS, HCCS 392 GB/s)"},
  };
  return k;
}

std::optional<GpuSpec> find_gpu(std::string_view id) {
  std::string s(id);
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const std::pair<const char*, const char*> kAliases[] = {
      {"h100", "h100-sxm"},    {"h100-80g", "h100-sxm"}, {"h100-sxm5", "h100-sxm"},
      {"a100", "a100-80g"},    {"4090", "rtx-4090"},     {"rtx4090", "rtx-4090"},
      {"910b", "ascend-910b"}, {"h200-141g", "h200"},    {"mi300", "mi300x"},
      {"h20-96g", "h20"},      {"l40", "l40s"}};
  for (const auto& [a, to] : kAliases) {
    if (s == a) s = to;
  }
  for (const GpuSpec& g : gpu_catalog()) {
    if (g.id == s) return g;
  }
  return std::nullopt;
}

}  // namespace hearth::ops
