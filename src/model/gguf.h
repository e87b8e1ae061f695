#pragma once
// GGUF (v2/v3, little-endian) reader: metadata key/values and the tensor table of a llama.cpp/Ollama
// model file, validated in full at open (docs/formats.md "## GGUF" lists every rule and limit).
// Nothing is copied out of the mapping: strings, token arrays and tensor data are views into it, so
// the GgufFile must outlive every view handed out (TensorView::data, string_views, GgufValue).
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"
#include "model/dtype.h"
#include "model/tensor.h"

namespace hearth {

// GGUF metadata value types, numbered as in the file.
enum class GgufType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};
std::string_view gguf_type_name(GgufType t);  // "u8", "i32", "string", "array", ...
uint64_t gguf_scalar_size(GgufType t);        // bytes of a fixed-size value; 0 for string and array

// ggml tensor type ids (enum ggml_type) <-> DType. Unsupported ids map to nullopt.
std::optional<DType> dtype_from_ggml_type(uint32_t ggml_type);
std::optional<uint32_t> ggml_type_from_dtype(DType t);
std::string_view ggml_type_name(uint32_t ggml_type);  // "Q4_K", "IQ2_XXS", ... or "unknown"

// Limits applied at open (also in docs/formats.md).
struct GgufLimits {
  static constexpr uint64_t kMaxKeyBytes = 64 * 1024;  // keys and tensor names
  static constexpr uint32_t kMaxArrayDepth = 8;        // arrays of arrays of ...
  static constexpr uint32_t kMaxDims = 4;
  static constexpr uint64_t kMaxAlignment = 1 << 20;
  static constexpr uint64_t kDefaultAlignment = 32;
  static constexpr uint64_t kMaxTensors = 1 << 20;
  static constexpr uint64_t kMaxKvs = 1 << 20;
};

class GgufFile;

// A metadata value: a small copyable view into the file (valid while the GgufFile lives).
// Scalar accessors return nullopt when the value is not of a compatible type.
class GgufValue {
 public:
  GgufType type() const { return type_; }
  bool is_array() const { return type_ == GgufType::kArray; }

  std::optional<uint64_t> as_u64() const;  // any integer type holding a value >= 0
  std::optional<int64_t> as_i64() const;   // any integer type whose value fits in int64
  std::optional<double> as_f64() const;    // f32 or f64
  std::optional<bool> as_bool() const;
  std::optional<std::string_view> as_string() const;  // raw bytes, not UTF-8 checked

  // Arrays (element_type() and size() are kU8/0 for non-arrays).
  GgufType element_type() const { return elem_type_; }
  uint64_t size() const { return count_; }
  GgufValue element(uint64_t i) const;  // i < size(); O(1), no allocation
  // Arrays of strings: every element as a view (empty span for other types).
  std::span<const std::string_view> strings() const;
  // Arrays of fixed-size scalars: the packed little-endian element bytes (empty otherwise).
  std::span<const uint8_t> raw_elements() const { return is_array() ? raw_ : std::span<const uint8_t>{}; }

  // Human-readable rendering for `hearth model inspect`; arrays show at most max_elems elements and
  // strings at most max_chars bytes.
  std::string describe(size_t max_elems = 8, size_t max_chars = 64) const;

 private:
  friend class GgufParser;
  GgufType type_ = GgufType::kU8;
  GgufType elem_type_ = GgufType::kU8;
  uint64_t count_ = 0;            // arrays: number of elements
  std::span<const uint8_t> raw_;  // scalar bytes, string bytes, or packed fixed-size elements
  uint64_t first_ = 0;            // arrays of strings/arrays: index of element 0 in the file's pool
  const GgufFile* file_ = nullptr;
};

struct GgufKv {
  std::string_view key;
  GgufValue value;
};

class GgufFile : public std::enable_shared_from_this<GgufFile> {
 public:
  static Result<std::shared_ptr<GgufFile>> open(const std::string& path);
  // Parses a copy of `bytes` (fuzzing, tests); `name` stands in for the path in messages.
  static Result<std::shared_ptr<GgufFile>> open_memory(std::span<const uint8_t> bytes,
                                                       std::string name = "<memory>");

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // absolute start of the data section
  uint64_t file_size() const { return bytes_.size(); }
  std::span<const uint8_t> bytes() const { return bytes_; }  // the whole file

  // Metadata in file order; find() is O(log n).
  const std::vector<GgufKv>& metadata() const { return kvs_; }
  const GgufValue* find(std::string_view key) const;

  // Typed accessors: kNotFound names a missing key, kCorrupt names the key and both types.
  Result<std::string_view> get_string(std::string_view key) const;
  Result<uint64_t> get_u64(std::string_view key) const;  // any integer type with a value >= 0
  Result<int64_t> get_i64(std::string_view key) const;   // any integer type that fits
  Result<float> get_f32(std::string_view key) const;     // f32 (or f64, narrowed)
  Result<bool> get_bool(std::string_view key) const;
  // An array; when element_type is given the elements must be of exactly that type.
  Result<GgufValue> get_array(std::string_view key, std::optional<GgufType> element_type = {}) const;
  Result<std::string_view> architecture() const { return get_string("general.architecture"); }

  // Tensors in table order. TensorView::shape is in PyTorch order (ggml dims reversed).
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* find_tensor(std::string_view name) const;
  // The ggml type id of tensors()[i], as stored in the file.
  uint32_t ggml_type(size_t tensor_index) const { return ggml_types_[tensor_index]; }

 private:
  friend class GgufParser;
  friend class GgufValue;
  GgufFile() = default;
  static Result<std::shared_ptr<GgufFile>> parse(std::shared_ptr<GgufFile> file);
  Result<const GgufValue*> find_required(std::string_view key) const;

  std::string path_;
  std::shared_ptr<MappedFile> mapped_;
  std::vector<uint8_t> owned_;  // open_memory's copy
  std::span<const uint8_t> bytes_;
  uint32_t version_ = 0;
  uint64_t alignment_ = GgufLimits::kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<GgufKv> kvs_;
  std::vector<uint32_t> kv_sorted_;            // indices into kvs_, sorted by key
  std::vector<std::string_view> string_pool_;  // elements of string arrays
  std::vector<GgufValue> value_pool_;          // elements of nested arrays
  std::vector<TensorView> tensors_;
  std::vector<uint32_t> ggml_types_;
  std::vector<uint32_t> tensor_sorted_;  // indices into tensors_, sorted by name
};

}  // namespace hearth
