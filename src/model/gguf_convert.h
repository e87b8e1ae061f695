#pragma once
// Hugging Face checkpoint -> GGUF file (what llama.cpp's convert_hf_to_gguf.py + llama-quantize do,
// for the architectures hearth runs): metadata from the ModelSpec, the byte-level BPE tokenizer from
// tokenizer.json / tokenizer_config.json, tensors renamed to llama.cpp's names, routed experts stacked
// per layer, Llama's q/k rows permuted to the interleaved RoPE layout and Llama-3 RoPE scaling baked
// into rope_freqs.weight. 2-D weights are stored in `type` (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K);
// a weight whose width is not a multiple of the type's block falls back to Q8_0, then F16; 1-D
// tensors and the MoE router stay F32. FP8 block-scaled weights are dequantized first.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/checkpoint.h"

namespace hearth {

struct GgufConvertOptions {
  DType type = DType::kQ8_0;
  std::string name;  // general.name; default: the directory's name
  // Called after each tensor: (tensors done, tensors total, GGUF name).
  std::function<void(size_t, size_t, const std::string&)> progress;
};

// `checkpoint` must be a safetensors checkpoint (a directory with tokenizer.json). Writes `out_path`
// (via a temporary file) and reopens it to prove it loads.
Status convert_to_gguf(const Checkpoint& checkpoint, const std::string& out_path,
                       const GgufConvertOptions& options);

// The type convert_to_gguf stores tensor `hf_name` of `shape` in when asked for `want`.
DType gguf_storage_type(DType want, const std::string& hf_name, const std::vector<uint64_t>& shape);

// The weight types convert_to_gguf accepts, by their ggml names ("q8_0", "q4_k", "f16", ...).
Result<DType> gguf_convert_type_from_name(std::string_view name);

}  // namespace hearth
