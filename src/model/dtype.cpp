#include "model/dtype.h"

#include <array>

#include "core/checked_math.h"

namespace hearth {
namespace {
constexpr std::array<DTypeInfo, 22> kInfos = {{
    {"F32", 1, 4, true, false},     {"F16", 1, 2, true, false},     {"BF16", 1, 2, true, false},
    {"F64", 1, 8, true, false},     {"F8_E4M3", 1, 1, true, false}, {"F8_E5M2", 1, 1, true, false},
    {"I8", 1, 1, false, false},     {"U8", 1, 1, false, false},     {"I16", 1, 2, false, false},
    {"I32", 1, 4, false, false},    {"I64", 1, 8, false, false},    {"BOOL", 1, 1, false, false},
    {"Q4_0", 32, 18, true, true},   {"Q4_1", 32, 20, true, true},   {"Q5_0", 32, 22, true, true},
    {"Q5_1", 32, 24, true, true},   {"Q8_0", 32, 34, true, true},   {"Q2_K", 256, 84, true, true},
    {"Q3_K", 256, 110, true, true}, {"Q4_K", 256, 144, true, true}, {"Q5_K", 256, 176, true, true},
    {"Q6_K", 256, 210, true, true},
}};
}  // namespace

const DTypeInfo& dtype_info(DType t) {
  return kInfos[static_cast<size_t>(t)];
}

std::optional<DType> dtype_from_safetensors(std::string_view name) {
  for (size_t i = 0; i < kInfos.size(); ++i) {
    if (kInfos[i].is_quantized) continue;
    if (kInfos[i].name == name) return static_cast<DType>(i);
  }
  return std::nullopt;
}

std::optional<uint64_t> tensor_nbytes(DType t, std::span<const uint64_t> shape) {
  const DTypeInfo& info = dtype_info(t);
  auto numel = checked_product(shape);
  if (!numel) return std::nullopt;
  if (info.block_elems == 1) return checked_mul(*numel, info.block_bytes);
  if (shape.empty() || shape.back() % info.block_elems != 0) return std::nullopt;
  return checked_mul(*numel / info.block_elems, info.block_bytes);
}

}  // namespace hearth
