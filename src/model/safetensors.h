#pragma once
// safetensors reader (single file and sharded index) and streaming writer.
// Format: u64 LE header length N, N bytes of JSON {name: {dtype, shape, data_offsets:[b,e)}, optional
// "__metadata__": {str: str}}, then the data buffer. Every rule of docs/formats.md is checked at open.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"
#include "model/tensor.h"

namespace hearth {

// Limits enforced at open (the reference implementation's header cap, plus bounds of our own).
struct SafetensorsLimits {
  static constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
  static constexpr int kMaxJsonDepth = 8;
  static constexpr size_t kMaxDims = 8;
  static constexpr size_t kMaxNameBytes = 64u << 10;
  static constexpr uint64_t kMaxIndexBytes = 64ull << 20;
};

// Why `name` cannot be a tensor name (empty, over 64 KiB, invalid UTF-8, holds a NUL), or "" if it can.
std::string safetensors_name_problem(std::string_view name);

class SafetensorsFile {
 public:
  static Result<std::shared_ptr<SafetensorsFile>> open(const std::string& path);
  // Parses bytes already in memory (fuzzing, tests); `name` stands in for the path in errors.
  static Result<std::shared_ptr<SafetensorsFile>> open_memory(std::string name, std::vector<uint8_t> bytes);

  const std::string& path() const { return path_; }
  const std::vector<TensorView>& tensors() const { return tensors_; }  // in data-offset order
  const TensorView* find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  Status parse(std::span<const uint8_t> bytes);

  std::string path_;
  std::shared_ptr<MappedFile> file_;  // backing of open(); open_memory() keeps owned_ instead
  std::vector<uint8_t> owned_;
  std::vector<TensorView> tensors_;
  std::vector<uint32_t> by_name_;  // indices into tensors_, sorted by name
  std::map<std::string, std::string> metadata_;
};

// A checkpoint directory's weights: `model.safetensors.index.json` (weight_map name -> shard file) or
// a single `model.safetensors` / all `*.safetensors` files. Tensor names are unique across shards.
// `dir` may also name one .safetensors file.
class SafetensorsCheckpoint {
 public:
  static Result<std::shared_ptr<SafetensorsCheckpoint>> open_dir(const std::string& dir);

  const std::vector<const TensorView*>& tensors() const { return all_; }  // sorted by name
  const TensorView* find(std::string_view name) const;
  const std::vector<std::shared_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  Status add_file(std::shared_ptr<SafetensorsFile> file);
  Status open_index(const std::string& dir, const std::string& index_path);
  void finish();

  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::vector<const TensorView*> all_;
  std::map<std::string, const TensorView*, std::less<>> by_name_;
};

// One tensor to write; `fill` produces its bytes (exactly tensor_nbytes(dtype, shape) of them).
struct SafetensorsTensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<uint64_t> shape;
  std::function<Status(std::span<uint8_t> out)> fill;
};

// Streams tensors to `path` in the order given (header first, then each tensor's bytes), so
// multi-GB files never sit in memory: one reusable buffer holds the largest tensor, and `fill` is
// called once per tensor with exactly its bytes. The header is padded with spaces to an 8-byte
// boundary (so data starts 8-aligned). Writes `path`.tmp, fsyncs, then renames over `path`.
// Everything the reader would reject (bad names, duplicates, oversized shapes) is refused first.
Status write_safetensors(const std::string& path, std::span<const SafetensorsTensorToWrite> tensors,
                         const std::map<std::string, std::string>& metadata = {});

}  // namespace hearth
