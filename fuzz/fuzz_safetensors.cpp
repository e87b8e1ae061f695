// libFuzzer target: arbitrary bytes as a .safetensors file. Parsing must fail cleanly or yield views
// that lie inside the input; every tensor is read end to end, and FP8 weight/scale pairs are
// validated and (when small) dequantized.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/fp8_block.h"
#include "model/safetensors.h"

namespace {
volatile uint8_t g_sink;  // keeps the reads from being optimized away
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hearth;
  auto file = SafetensorsFile::open_memory("fuzz.safetensors", std::vector<uint8_t>(data, data + size));
  if (!file.is_ok()) return 0;
  const SafetensorsFile& f = **file;
  uint8_t sink = 0;
  for (const auto& [key, value] : f.metadata()) sink ^= static_cast<uint8_t>(key.size() ^ value.size());
  for (const TensorView& t : f.tensors()) {
    if (f.find(t.name) != &t) __builtin_trap();
    const uint64_t nbytes = tensor_nbytes(t.dtype, t.shape).value_or(~0ull);
    if (nbytes != t.data.size()) __builtin_trap();
    for (uint8_t b : t.data) sink ^= b;  // ASan flags any view outside the input
    sink ^= static_cast<uint8_t>(t.numel());

    if (t.dtype != DType::kF8_E4M3) continue;
    const TensorView* scale = f.find(fp8_scale_inv_name(t.name));
    if (scale == nullptr) continue;
    if (!validate_fp8_block_pair(t, *scale, 128, 128).is_ok()) continue;
    if (t.numel() > (1u << 20)) continue;
    std::vector<float> out(t.numel());
    if (!dequantize_fp8_block(t, *scale, {}, out.data()).is_ok()) __builtin_trap();
  }
  g_sink = sink;
  return 0;
}
