#pragma once
// Element types of tensors in safetensors and GGUF files, with their storage geometry.
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace hearth {

enum class DType : uint8_t {
  kF32,
  kF16,
  kBF16,
  kF64,
  kF8_E4M3,
  kF8_E5M2,
  kI8,
  kU8,
  kI16,
  kI32,
  kI64,
  kBool,
  // GGUF block-quantized types (ggml layouts).
  kQ4_0,
  kQ4_1,
  kQ5_0,
  kQ5_1,
  kQ8_0,
  kQ2_K,
  kQ3_K,
  kQ4_K,
  kQ5_K,
  kQ6_K,
};

struct DTypeInfo {
  std::string_view name;  // safetensors spelling for plain types, ggml spelling for blocks
  uint32_t block_elems;   // elements per block (1 for plain types)
  uint32_t block_bytes;   // bytes per block
  bool is_float;
  bool is_quantized;  // block-quantized (GGUF)
};

const DTypeInfo& dtype_info(DType t);
inline std::string_view dtype_name(DType t) {
  return dtype_info(t).name;
}

// safetensors dtype strings ("F32", "BF16", "F8_E4M3", ...).
std::optional<DType> dtype_from_safetensors(std::string_view name);

// Bytes needed to store a tensor of `shape` (outermost first). Block types require the innermost
// dim to be a multiple of the block. nullopt on overflow or a misaligned row.
std::optional<uint64_t> tensor_nbytes(DType t, std::span<const uint64_t> shape);

}  // namespace hearth
