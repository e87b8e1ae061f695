#pragma once
// A read-only view of one tensor inside a mapped checkpoint file.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "model/dtype.h"

namespace hearth {

struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<uint64_t> shape;    // outermost first (PyTorch order; GGUF dims are reversed)
  std::span<const uint8_t> data;  // inside a MappedFile kept alive by the owning reader
  std::string file;               // the file it lives in, for error messages
  uint64_t file_offset = 0;       // absolute byte offset of data in that file

  uint64_t numel() const {
    uint64_t n = 1;
    for (uint64_t d : shape) n *= d;  // validated at parse time: cannot overflow
    return n;
  }
};

}  // namespace hearth
