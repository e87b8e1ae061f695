#pragma once
// A model checkpoint opened and checked against its ModelSpec: a Hugging Face directory
// (config.json + safetensors, single or sharded) or a GGUF file. open() proves that every tensor the
// architecture needs is present with the right shape and a usable dtype, that fp8 weights have valid
// scale pairs, and lists the tensors nothing will read. Errors name the file and the tensor.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/status.h"
#include "model/dtype.h"
#include "model/model_spec.h"
#include "model/tensor.h"

namespace hearth {

class SafetensorsCheckpoint;
class GgufFile;

enum class CheckpointFormat : uint8_t { kSafetensors, kGguf };
std::string_view checkpoint_format_name(CheckpointFormat f);  // "safetensors", "gguf"

struct DTypeStats {
  uint64_t tensors = 0;
  uint64_t bytes = 0;
};

class Checkpoint {
 public:
  // `path`: a directory with config.json and *.safetensors (or one .safetensors file next to its
  // config.json), or a .gguf file.
  static Result<std::shared_ptr<Checkpoint>> open(const std::string& path);

  const std::string& path() const { return path_; }
  CheckpointFormat format() const { return format_; }
  const ModelSpec& spec() const { return spec_; }

  // Tensors by their Hugging Face name (GGUF checkpoints: mapped from the llama.cpp names; routed
  // experts of GGUF files are stacked per layer and keep their GGUF name).
  const TensorView* find(std::string_view hf_name) const;
  const std::vector<const TensorView*>& tensors() const { return tensors_; }  // every tensor in the files
  const std::vector<std::string>& files() const { return files_; }            // weight files, in order

  // Tensors in the files that no expected tensor accounts for (reported, not an error).
  const std::vector<std::string>& unexpected_tensors() const { return unexpected_; }
  // Optional (MTP) tensors: how many the spec declares and how many are present.
  uint64_t optional_expected() const { return optional_expected_; }
  uint64_t optional_present() const { return optional_present_; }

  std::map<DType, DTypeStats> dtype_stats() const;
  uint64_t total_bytes() const;
  // Side files present next to the weights: tokenizer.json, tokenizer_config.json,
  // generation_config.json, tokenizer.model (GGUF: "tokenizer.ggml.*" when embedded).
  const std::vector<std::string>& tokenizer_files() const { return tokenizer_files_; }
  // GGUF general.* metadata worth showing (name, file_type, quantization_version); empty otherwise.
  const std::map<std::string, std::string>& info() const { return info_; }

 private:
  Checkpoint() = default;
  Status open_safetensors(const std::string& dir);
  Status open_gguf(const std::string& file);
  // Checks the tensors against expected_tensors(spec_); `where` names the checkpoint in errors.
  Status validate_hf(const std::string& where);
  // The same for GGUF files, through gguf_tensor_name() (routed experts stacked per layer).
  Status validate_gguf();

  std::string path_;
  CheckpointFormat format_ = CheckpointFormat::kSafetensors;
  ModelSpec spec_;
  std::shared_ptr<SafetensorsCheckpoint> safetensors_;
  std::shared_ptr<GgufFile> gguf_;
  std::vector<const TensorView*> tensors_;
  std::unordered_map<std::string, const TensorView*> by_hf_name_;
  std::vector<std::string> files_;
  std::vector<std::string> unexpected_;
  std::vector<std::string> tokenizer_files_;
  std::map<std::string, std::string> info_;
  uint64_t optional_expected_ = 0;
  uint64_t optional_present_ = 0;
};

// Everything `hearth model inspect --json` prints: architecture, parameter counts (total, active),
// shape, context and RoPE, KV-cache bytes per token, dtypes, bytes, quantization, MTP, tokenizer
// files, unexpected tensors. docs/cli.md lists the fields.
nlohmann::json describe_checkpoint(const Checkpoint& checkpoint);

}  // namespace hearth
