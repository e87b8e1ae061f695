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

class SafetensorsFile {
 public:
  static Result<std::shared_ptr<SafetensorsFile>> open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  const std::vector<TensorView>& tensors() const { return tensors_; }  // in data-offset order
  const TensorView* find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::shared_ptr<MappedFile> file_;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t, std::less<>> by_name_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint directory's weights: `model.safetensors.index.json` (weight_map name -> shard file) or
// a single `model.safetensors` / all `*.safetensors` files. Tensor names are unique across shards.
class SafetensorsCheckpoint {
 public:
  static Result<std::shared_ptr<SafetensorsCheckpoint>> open_dir(const std::string& dir);

  const std::vector<const TensorView*>& tensors() const { return all_; }  // sorted by name
  const TensorView* find(std::string_view name) const;
  const std::vector<std::shared_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
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
// multi-GB files never sit in memory. The header is padded with spaces to an 8-byte boundary.
Status write_safetensors(const std::string& path, std::span<const SafetensorsTensorToWrite> tensors,
                         const std::map<std::string, std::string>& metadata = {});

}  // namespace hearth
