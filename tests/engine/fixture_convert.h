#pragma once
// Test helper: writes a copy of an engine fixture (tests/fixtures/engine/<name>) with its tensors
// stored in another float type, FP8 pairs dequantized — the BF16/F16 variants the parity tests run.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <cstring>
#include <functional>
#include "core/half.h"
#include "model/arch_tensors.h"
#include "model/fp8_block.h"
#include "model/gguf_convert.h"
#include "model/model_spec.h"
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
// Which tensors round_through applies to.
enum class RoundScope { kAll, kLinearOnly, kGgufPolicy };

inline Status convert_fixture(const std::string& src, const std::string& dst, DType target,
                              DType round_through = DType::kF32, RoundScope scope = RoundScope::kAll) {
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
    w.fill = [t, &ck, target, round_through, scope](std::span<uint8_t> bytes) -> Status {
      std::vector<float> f(t->numel());
      if (t->dtype == DType::kF8_E4M3) {
        const TensorView* s = ck->find(fp8_scale_inv_name(t->name));
        if (s == nullptr) return make_error(ErrorCode::kCorrupt, "no scale for {}", t->name);
        HEARTH_RETURN_IF_ERROR(dequantize_fp8_block(*t, *s, {128, 128}, f.data()));
      } else {
        HEARTH_RETURN_IF_ERROR(dequantize(t->dtype, t->data, t->numel(), f.data()));
      }
      DType through = round_through;
      if (scope == RoundScope::kLinearOnly && !is_quantizable_linear(*t)) through = DType::kF32;
      if (scope == RoundScope::kGgufPolicy) through = gguf_storage_type(round_through, t->name, t->shape);
      if (through != DType::kF32) {
        HEARTH_ASSIGN_OR_RETURN(std::vector<uint8_t> q, quantize(through, f));
        HEARTH_RETURN_IF_ERROR(dequantize(through, q, f.size(), f.data()));
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
    if (fs::exists(src + "/" + f))
      fs::copy_file(src + "/" + f, dst + "/" + f, fs::copy_options::overwrite_existing);
  }
  return Status::ok();
}

// A random-weight copy of fixture `src` with wider layers (hidden, ffn, moe_ffn), so that every width
// is a multiple of 256 and K-quants apply. Same architecture, tokenizer and vocab; no HF reference.
inline Status widen_fixture(const std::string& src, const std::string& dst, int64_t hidden, int64_t ffn,
                            int64_t moe_ffn, uint64_t seed = 7) {
  namespace fs = std::filesystem;
  fs::create_directories(dst);
  std::ifstream in(src + "/config.json");
  nlohmann::json cfg = nlohmann::json::parse(in);
  cfg.erase("quantization_config");
  cfg["hidden_size"] = hidden;
  cfg["intermediate_size"] = ffn;
  if (cfg.contains("moe_intermediate_size")) cfg["moe_intermediate_size"] = moe_ffn;
  if (!cfg.contains("kv_lora_rank")) cfg["head_dim"] = hidden / cfg["num_attention_heads"].get<int64_t>();
  cfg["dtype"] = "float32";
  const std::string text = cfg.dump(2);
  HEARTH_ASSIGN_OR_RETURN(ModelSpec spec, parse_model_spec(text));
  std::vector<SafetensorsTensorToWrite> out;
  HEARTH_RETURN_IF_ERROR(for_each_expected_tensor(spec, [&](const ExpectedTensor& e) -> Status {
    if (e.optional || e.role == TensorRole::kScaleInv) return Status::ok();
    SafetensorsTensorToWrite w;
    w.name = e.name;
    w.dtype = DType::kF32;
    w.shape = e.shape;
    const bool norm = e.name.find("norm") != std::string::npos;
    const uint64_t s = seed + std::hash<std::string>{}(e.name);
    w.fill = [s, norm](std::span<uint8_t> bytes) -> Status {
      uint64_t x = s | 1;
      for (size_t i = 0; i < bytes.size() / 4; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        const float u = static_cast<float>(x >> 40) / static_cast<float>(1 << 24) - 0.5f;  // [-0.5, 0.5)
        const float v = norm ? 1.0f + 0.2f * u : 0.3f * u;
        std::memcpy(bytes.data() + 4 * i, &v, 4);
      }
      return Status::ok();
    };
    out.push_back(std::move(w));
    return Status::ok();
  }));
  HEARTH_RETURN_IF_ERROR(write_safetensors(dst + "/model.safetensors", out, {{"format", "pt"}}));
  std::ofstream(dst + "/config.json") << text;
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
    fs::copy_file(src + "/" + f, dst + "/" + f, fs::copy_options::overwrite_existing);
  }
  return Status::ok();
}

}  // namespace hearth::testing
