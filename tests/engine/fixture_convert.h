#pragma once
// Test helper: writes a copy of an engine fixture (tests/fixtures/engine/<name>) with its tensors
// stored in another float type, FP8 pairs dequantized — the BF16/F16 variants the parity tests run.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/half.h"
#include "model/fp8_block.h"
#include "model/quant.h"
#include "model/safetensors.h"

namespace hearth::testing {

// The linear weights ModelWeights may quantize at load: 2-D, not the embedding, the MoE router or MLA's
// kv_b (which the engine always reads as stored).
inline bool is_quantizable_linear(const TensorView& t) {
  return t.shape.size() == 2 && !t.name.ends_with("embed_tokens.weight") &&
         !t.name.ends_with("mlp.gate.weight") && !t.name.ends_with("kv_b_proj.weight") &&
         t.shape[1] % 32 == 0;
}

// Stores every tensor as `target`. `round_through` (when not F32): values first pass through that
// type and back — for every tensor, or only the quantizable linear weights when `linear_only`.
inline Status convert_fixture(const std::string& src, const std::string& dst, DType target,
                              DType round_through = DType::kF32, bool linear_only = false) {
  namespace fs = std::filesystem;
  fs::create_directories(dst);
  HEARTH_ASSIGN_OR_RETURN(auto ck, SafetensorsCheckpoint::open_dir(src));
  std::vector<SafetensorsTensorToWrite> out;
  for (const TensorView* t : ck->tensors()) {
    if (t->name.ends_with("_scale_inv")) continue;
    SafetensorsTensorToWrite w;
    w.name = t->name;
    w.dtype = target;
    w.shape = t->shape;
    w.fill = [t, &ck, target, round_through, linear_only](std::span<uint8_t> bytes) -> Status {
      std::vector<float> f(t->numel());
      if (t->dtype == DType::kF8_E4M3) {
        const TensorView* s = ck->find(fp8_scale_inv_name(t->name));
        if (s == nullptr) return make_error(ErrorCode::kCorrupt, "no scale for {}", t->name);
        HEARTH_RETURN_IF_ERROR(dequantize_fp8_block(*t, *s, {128, 128}, f.data()));
      } else {
        HEARTH_RETURN_IF_ERROR(dequantize(t->dtype, t->data, t->numel(), f.data()));
      }
      if (round_through != DType::kF32 && (!linear_only || is_quantizable_linear(*t))) {
        HEARTH_ASSIGN_OR_RETURN(std::vector<uint8_t> q, quantize(round_through, f));
        HEARTH_RETURN_IF_ERROR(dequantize(round_through, q, f.size(), f.data()));
      }
      return quantize(target, f, bytes);
    };
    out.push_back(std::move(w));
  }
  HEARTH_RETURN_IF_ERROR(write_safetensors(dst + "/model.safetensors", out, {{"format", "pt"}}));
  std::ifstream in(src + "/config.json");
  nlohmann::json cfg = nlohmann::json::parse(in);
  cfg.erase("quantization_config");
  cfg["dtype"] = target == DType::kBF16 ? "bfloat16" : target == DType::kF16 ? "float16" : "float32";
  std::ofstream(dst + "/config.json") << cfg.dump(2);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "reference.json"}) {
    fs::copy_file(src + "/" + f, dst + "/" + f, fs::copy_options::overwrite_existing);
  }
  return Status::ok();
}

}  // namespace hearth::testing
