#pragma once
// Builds GGUF v3 files: typed metadata, then tensors (PyTorch-order shapes, raw bytes in the tensor's
// DType layout). Used by tests to craft files and by `hearth model synth`. Tensors are streamed to
// disk one at a time, each padded to the alignment, so large checkpoints never sit in memory.
#include <cstdint>
#include <functional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "model/dtype.h"
#include "model/gguf.h"

namespace hearth {

class GgufWriter {
 public:
  // general.alignment is written when it differs from 32. Must be a power of two <= 1 MiB.
  explicit GgufWriter(uint32_t alignment = 32);

  // Metadata, in the order added. A duplicate key is reported by write()/to_bytes().
  GgufWriter& add_u8(std::string_view key, uint8_t v);
  GgufWriter& add_i8(std::string_view key, int8_t v);
  GgufWriter& add_u16(std::string_view key, uint16_t v);
  GgufWriter& add_i16(std::string_view key, int16_t v);
  GgufWriter& add_u32(std::string_view key, uint32_t v);
  GgufWriter& add_i32(std::string_view key, int32_t v);
  GgufWriter& add_u64(std::string_view key, uint64_t v);
  GgufWriter& add_i64(std::string_view key, int64_t v);
  GgufWriter& add_f32(std::string_view key, float v);
  GgufWriter& add_f64(std::string_view key, double v);
  GgufWriter& add_bool(std::string_view key, bool v);
  GgufWriter& add_string(std::string_view key, std::string_view v);
  GgufWriter& add_string_array(std::string_view key, std::span<const std::string> v);
  GgufWriter& add_string_array(std::string_view key, std::span<const std::string_view> v);
  GgufWriter& add_i32_array(std::string_view key, std::span<const int32_t> v);
  GgufWriter& add_u32_array(std::string_view key, std::span<const uint32_t> v);
  GgufWriter& add_f32_array(std::string_view key, std::span<const float> v);
  // Any array of fixed-size scalars: `elements` holds count * gguf_scalar_size(type) packed LE bytes.
  GgufWriter& add_scalar_array(std::string_view key, GgufType element_type, uint64_t count,
                               std::span<const uint8_t> elements);
  // A value already encoded (type id, then its bytes as GGUF lays them out); for crafting test files.
  GgufWriter& add_raw(std::string_view key, uint32_t type_id, std::span<const uint8_t> encoded);

  // Tensors, in file order. `bytes` must be exactly tensor_nbytes(dtype, shape); it is copied.
  GgufWriter& add_tensor(std::string_view name, DType dtype, std::vector<uint64_t> shape,
                         std::span<const uint8_t> bytes);
  // Streaming form: `fill` writes the tensor's bytes into a buffer of tensor_nbytes(dtype, shape).
  GgufWriter& add_tensor(std::string_view name, DType dtype, std::vector<uint64_t> shape,
                         std::function<Status(std::span<uint8_t>)> fill);

  Status write(const std::string& path) const;
  Result<std::vector<uint8_t>> to_bytes() const;

 private:
  struct PendingTensor {
    std::string name;
    DType dtype;
    std::vector<uint64_t> shape;
    uint64_t nbytes = 0;
    uint64_t offset = 0;  // relative to the data section
    std::vector<uint8_t> bytes;
    std::function<Status(std::span<uint8_t>)> fill;
  };
  GgufWriter& begin_kv(std::string_view key, GgufType type);
  void put_string(std::string_view s);
  template <typename T>
  void put(T v);
  GgufWriter& add_tensor_impl(PendingTensor t);
  Result<std::string> header() const;  // everything before the data section, padded
  Status emit(const std::function<Status(std::span<const uint8_t>)>& sink) const;

  uint32_t alignment_;
  std::vector<uint8_t> kv_bytes_;
  uint64_t kv_count_ = 0;
  std::set<std::string, std::less<>> keys_;
  std::vector<PendingTensor> tensors_;
  uint64_t data_size_ = 0;
  Status error_;  // first misuse (duplicate key/name, bad size), reported at write time
};

}  // namespace hearth
