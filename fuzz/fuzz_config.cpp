// libFuzzer target for config.json -> ModelSpec: parse arbitrary bytes; for every accepted spec compute
// the derived numbers, list the expected tensors (when few enough) and check that the config written
// back from the spec parses to the same spec.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "model/arch_tensors.h"
#include "model/model_spec.h"

namespace {
volatile uint64_t g_sink = 0;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hearth;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto spec = parse_model_spec(text, "fuzz/config.json");
  if (!spec.is_ok()) return 0;
  const ModelSpec& s = *spec;

  const ParameterCounts c = count_parameters(s);
  if (c.active_per_token > c.total + c.embedding) std::abort();
  g_sink = g_sink + c.total + kv_cache_bytes_per_token(s) + kv_cache_bytes_per_token(s, DType::kF32) +
           weights_bytes(s);
  const uint64_t count = expected_tensor_count(s);
  if (count <= 20000) {
    const auto tensors = expected_tensors(s);
    if (tensors.size() != count) std::abort();
    for (const ExpectedTensor& t : tensors) g_sink = g_sink + t.name.size() + t.shape.size();
  }

  // The config hearth writes (synth) must read back as the same spec.
  const nlohmann::json written = model_spec_to_hf_config(s);
  auto again = parse_model_spec(written.dump());
  if (!again.is_ok()) std::abort();
  if (model_spec_to_hf_config(*again) != written) std::abort();
  return 0;
}
