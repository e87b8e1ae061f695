// libFuzzer target for the GGUF reader: parse arbitrary bytes, then touch every metadata value and
// tensor view, dequantize the first block of each tensor and read the tokenizer metadata.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/gguf.h"
#include "model/gguf_tokenizer.h"
#include "model/quant.h"

namespace {

volatile uint64_t g_sink = 0;

void touch(const hearth::GgufValue& v) {
  if (auto x = v.as_u64()) g_sink = g_sink + *x;
  if (auto x = v.as_i64()) g_sink = g_sink + static_cast<uint64_t>(*x);
  if (auto x = v.as_f64()) g_sink = g_sink + static_cast<uint64_t>(*x != 0);
  if (auto x = v.as_bool()) g_sink = g_sink + *x;
  if (auto s = v.as_string()) {
    for (char c : *s) g_sink = g_sink + static_cast<uint8_t>(c);
  }
  if (v.is_array()) {
    for (auto s : v.strings()) g_sink = g_sink + s.size() + (s.empty() ? 0 : static_cast<uint8_t>(s.back()));
    for (uint64_t i = 0; i < v.size(); ++i) touch(v.element(i));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = hearth::GgufFile::open_memory({data, size}, "fuzz.gguf");
  if (!file.is_ok()) return 0;
  const hearth::GgufFile& f = **file;
  for (const auto& kv : f.metadata()) {
    touch(kv.value);
    g_sink = g_sink + kv.value.describe(4, 16).size() + (f.find(kv.key) != nullptr);
  }
  (void)f.architecture();
  std::vector<float> block(256);
  for (const auto& t : f.tensors()) {
    g_sink = g_sink + t.numel() + (f.find_tensor(t.name) != nullptr);
    if (!t.data.empty()) g_sink = g_sink + t.data.front() + t.data.back();
    const hearth::DTypeInfo& info = hearth::dtype_info(t.dtype);
    if (hearth::can_dequantize(t.dtype) && t.data.size() >= info.block_bytes) {
      hearth::Status s =
          hearth::dequantize(t.dtype, t.data.first(info.block_bytes), info.block_elems, block.data());
      if (s.is_ok()) g_sink = g_sink + static_cast<uint64_t>(block[0] == block[0]);
    }
  }
  auto tok = hearth::read_gguf_tokenizer(f);
  if (tok.is_ok()) g_sink = g_sink + tok->tokens.size() + tok->merges.size();
  return 0;
}
