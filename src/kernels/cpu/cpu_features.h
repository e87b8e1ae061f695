#pragma once
// Which x86 vector extensions this CPU has, read once with cpuid (and xgetbv for OS support).
// HEARTH_CPU_ISA=reference|avx2|avx512 in the environment caps the level (tests, benchmarks).
#include <string_view>

namespace hearth {

enum class CpuIsa : int { kReference = 0, kAvx2 = 1, kAvx512 = 2 };

struct CpuFeatures {
  bool avx2 = false;    // with FMA and F16C
  bool avx512 = false;  // F, BW, VL, DQ
  bool avx512_bf16 = false;
  bool avx512_vnni = false;
};

const CpuFeatures& cpu_features();
// The best level the CPU supports, capped by HEARTH_CPU_ISA.
CpuIsa cpu_isa();
std::string_view cpu_isa_name(CpuIsa isa);  // "reference", "avx2", "avx512"

}  // namespace hearth
